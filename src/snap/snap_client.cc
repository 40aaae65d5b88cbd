#include "snap/snap_client.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "common/json_rpc.h"

namespace dpustor::snap {

namespace {

using json = nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// --- tolerant readers: SNAP versions differ in key names and types ----------------------

// The first of `keys` present in `obj` (and not null), else null.
json Field(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return nullptr;
  for (const char* k : keys) {
    auto it = obj.find(k);
    if (it != obj.end() && !it->is_null()) return *it;
  }
  return nullptr;
}

json IntField(const json& obj, std::initializer_list<const char*> keys) {
  json v = Field(obj, keys);
  if (v.is_number_integer()) return v;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!s.empty() && s.size() < 19 &&
        std::all_of(s.begin(), s.end(), [](unsigned char ch) { return std::isdigit(ch); }))
      return std::stoll(s);
  }
  return nullptr;
}

// A non-empty string, else null.
json StrField(const json& obj, std::initializer_list<const char*> keys) {
  json v = Field(obj, keys);
  if (v.is_string() && !v.get_ref<const std::string&>().empty()) return v;
  return nullptr;
}

std::string StrOr(const json& obj, std::initializer_list<const char*> keys, std::string dflt) {
  json v = StrField(obj, keys);
  return v.is_string() ? v.get<std::string>() : dflt;
}

// true/false, "true"/"false", "yes"/"no", 1/0; else null.
json BoolField(const json& obj, std::initializer_list<const char*> keys) {
  json v = Field(obj, keys);
  if (v.is_boolean()) return v;
  if (v.is_number_integer()) return v.get<long long>() != 0;
  if (v.is_string()) {
    std::string s = Lower(v.get<std::string>());
    if (s == "true" || s == "yes") return true;
    if (s == "false" || s == "no") return false;
  }
  return nullptr;
}

json ArrayField(const json& obj, std::initializer_list<const char*> keys) {
  json v = Field(obj, keys);
  return v.is_array() ? v : json::array();
}

std::string FunctionType(std::string reported) {
  reported = Lower(std::move(reported));
  if (reported == "vblk" || reported == "virtio_blk" || reported == "virtio-blk")
    return "virtio_blk";
  if (reported == "vfs" || reported == "virtio_fs" || reported == "virtiofs") return "virtio_fs";
  return reported;
}

// A controller's suspended state: "suspended": bool, or "state": "suspended"/"running"/...
json Suspended(const json& c) {
  json b = BoolField(c, {"suspended"});
  if (!b.is_null()) return b;
  json state = StrField(c, {"state"});
  if (state.is_string()) {
    return Lower(state.get<std::string>()).find("suspend") != std::string::npos;
  }
  return nullptr;
}

// --- normalisers -------------------------------------------------------------------------

json NormaliseFunction(const json& f, const json& pf_index, json vf_index,
                       const std::string& type) {
  return {{"type", type},
          {"pf_index", pf_index},
          {"vf_index", std::move(vf_index)},
          {"pci_bdf", StrField(f, {"pci_bdf", "vf_bdf"})},
          {"vuid", StrField(f, {"vuid"})},
          {"hotplugged", BoolField(f, {"hotplugged"}).is_boolean()
                             ? BoolField(f, {"hotplugged"}).get<bool>()
                             : false},
          {"controller", StrField(f, {"ctrl_id", "ctrl", "controller"})}};
}

json NormaliseFunctions(Dialect dialect, const json& list) {
  json out = json::array();
  for (const auto& f : list.is_array() ? list : json::array()) {
    std::string type = FunctionType(StrOr(f, {"emulation_type", "type"}, "unknown"));
    json pf = IntField(f, {"pf_index", "pci_index", "pf_id"});
    out.push_back(NormaliseFunction(f, pf, nullptr, type));
    json vfs = ArrayField(f, dialect == Dialect::kSnap4
                                 ? std::initializer_list<const char*>{"vfs", "virtual_functions"}
                                 : std::initializer_list<const char*>{"virtual_functions", "vfs"});
    for (const auto& v : vfs) {
      json vf_pf = IntField(v, {"pf_index", "pci_index"});
      out.push_back(NormaliseFunction(v, vf_pf.is_null() ? pf : vf_pf,
                                      IntField(v, {"vf_index", "vf_id"}), type));
    }
  }
  return out;
}

json NormaliseBdev(const json& b) {
  std::string product = StrOr(b, {"product_name"}, "");
  json driver_specific = Field(b, {"driver_specific"});
  std::string driver;
  if (driver_specific.is_object() && !driver_specific.empty())
    driver = driver_specific.begin().key();
  if (driver.empty()) {
    if (product == "Null disk")
      driver = "null";
    else if (product == "Malloc disk")
      driver = "malloc";
    else if (product == "Ceph Rbd Disk")
      driver = "rbd";
    else
      driver = product;
  }
  json block_size = IntField(b, {"block_size"});
  json num_blocks = IntField(b, {"num_blocks"});
  json out = {
      {"name", StrOr(b, {"name"}, "")},
      {"driver", driver},
      {"product_name", product},
      {"block_size", block_size.is_null() ? json(0) : block_size},
      {"num_blocks", num_blocks.is_null() ? json(0) : num_blocks},
      {"size_bytes", (block_size.is_null() || num_blocks.is_null())
                         ? std::uint64_t{0}
                         : block_size.get<std::uint64_t>() * num_blocks.get<std::uint64_t>()},
      {"uuid", StrField(b, {"uuid"})},
      {"claimed", BoolField(b, {"claimed"}).is_boolean() && BoolField(b, {"claimed"}).get<bool>()}};
  if (driver_specific.is_object() && driver_specific.contains("rbd")) {
    const json& rbd = driver_specific["rbd"];
    json r = {{"pool_name", StrOr(rbd, {"pool_name"}, "")},
              {"rbd_name", StrOr(rbd, {"rbd_name"}, "")}};
    if (json c = StrField(rbd, {"cluster_name"}); c.is_string()) r["cluster_name"] = c;
    out["rbd"] = std::move(r);
  }
  return out;
}

json NormaliseIostat(const json& stat) {
  json bdevs = json::object();
  for (const auto& b : ArrayField(stat, {"bdevs"})) {
    std::string name = StrOr(b, {"name"}, "");
    if (name.empty()) continue;
    json counters = json::object();
    for (const char* k : {"bytes_read", "num_read_ops", "bytes_written", "num_write_ops",
                          "bytes_unmapped", "num_unmap_ops"}) {
      json v = IntField(b, {k});
      counters[k] = v.is_null() ? json(0) : v;
    }
    bdevs[name] = std::move(counters);
  }
  json tick_rate = IntField(stat, {"tick_rate"});
  json ticks = IntField(stat, {"ticks"});
  return {{"tick_rate", tick_rate.is_null() ? json(0) : tick_rate},
          {"ticks", ticks.is_null() ? json(0) : ticks},
          {"bdevs", std::move(bdevs)}};
}

// Fills pci_bdf / pf_index / vf_index / vuid of a controller from the function it sits on.
void AddFunctionOf(json& ctrl, const json& functions) {
  for (const auto& f : functions) {
    bool match =
        (ctrl["pci_bdf"].is_string() && f["pci_bdf"] == ctrl["pci_bdf"]) ||
        (ctrl["vuid"].is_string() && f["vuid"] == ctrl["vuid"]) ||
        (ctrl["pci_bdf"].is_null() && ctrl["vuid"].is_null() && f["controller"] == ctrl["name"]);
    if (!match) continue;
    for (const char* k : {"pci_bdf", "pf_index", "vf_index", "vuid"})
      if (ctrl[k].is_null()) ctrl[k] = f[k];
    return;
  }
}

std::string ErrorText(const Error& e) {
  return e.message + " (" + std::to_string(e.code) + ")";
}

}  // namespace

SnapClient::SnapClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

SnapClient::~SnapClient() = default;

Result<json> SnapClient::Call(const std::string& method, const json& params) {
  if (!client_) {
    std::string endpoint =
        socket_path_.rfind("unix:", 0) == 0 ? socket_path_ : "unix:" + socket_path_;
    auto c = rpc::RpcClient::Connect(endpoint, timeout_);
    if (!c.ok()) return c.error();
    client_ = std::move(*c);
    dialect_.reset();  // a new connection may be a different SNAP
  }
  auto r = client_->Call(method, params, timeout_);
  if (!r.ok() && (r.error().code == rpc::kConnectionClosed || r.error().code == rpc::kTimeout))
    client_.reset();  // reconnect next time
  return r;
}

Result<Dialect> SnapClient::Probe() {
  if (client_ && dialect_) return *dialect_;
  auto methods = Call("rpc_get_methods");
  if (!client_ && !methods.ok()) return methods.error();  // not reachable
  if (methods.ok() && methods->is_array()) {
    std::vector<std::string> names;
    for (const auto& m : *methods)
      if (m.is_string()) names.push_back(m.get<std::string>());
    if (auto d = DialectFromMethods(names)) return *(dialect_ = *d);
    return Error{rpc::kFailed,
                 "rpc_get_methods lists neither SNAP-4 nor SNAP 3.x methods: is this SNAP?"};
  }
  // No rpc_get_methods: identify SNAP through spdk_get_version and the dialects' markers.
  auto version = Call("spdk_get_version");
  if (!version.ok()) return version.error();
  if (auto named = ParseDialect(StrOr(*version, {"dialect"}, ""))) return *(dialect_ = *named);
  for (Dialect d : {Dialect::kSnap4, Dialect::kSnap3}) {
    auto r = Call(std::string(MethodsOf(d).marker));
    if (r.ok() || r.error().code != rpc::kMethodNotFound) {
      if (!client_) return r.error();
      return *(dialect_ = d);
    }
  }
  return Error{rpc::kFailed, "SNAP answers neither SNAP-4 nor SNAP 3.x methods"};
}

json SnapClient::CollectStatus(bool with_iostat) {
  try {
    // A SNAP restart closes our connection: the first call notices, the retry reconnects.
    auto version = Call("spdk_get_version");
    if (!version.ok() && !client_) version = Call("spdk_get_version");
    if (!version.ok()) {
      if (!client_) return {{"reachable", false}, {"error", ErrorText(version.error())}};
      version = json(nullptr);  // reachable but without spdk_get_version: odd, carry on
    }
    json simulator = BoolField(*version, {"simulator"});
    auto dialect = Probe();
    if (!dialect.ok()) {
      if (!client_) return {{"reachable", false}, {"error", ErrorText(dialect.error())}};
      return {{"reachable", true},
              {"error", ErrorText(dialect.error())},
              {"version", *version},
              {"simulator", simulator.is_boolean() && simulator.get<bool>()}};
    }
    json out = Collect(*dialect, *version, with_iostat);
    if (!client_) return {{"reachable", false}, {"error", "SNAP closed the connection"}};
    return out;
  } catch (const std::exception& e) {
    client_.reset();
    return {{"reachable", false}, {"error", std::string("unexpected: ") + e.what()}};
  }
}

json SnapClient::Collect(Dialect dialect, json version, bool with_iostat) {
  const DialectMethods& m = MethodsOf(dialect);
  json errors = json::object();
  auto get = [&](const char* section, std::string_view method, const json& params) -> json {
    auto r = Call(std::string(method), params);
    if (!r.ok()) {
      std::string previous = errors.value(section, "");
      errors[section] = previous + (previous.empty() ? "" : "; ") + std::string(method) + ": " +
                        ErrorText(r.error());
      return nullptr;
    }
    return std::move(*r);
  };

  json simulator = BoolField(version, {"simulator"});
  json out = {{"reachable", true},
              {"dialect", DialectName(dialect)},
              {"version", version},
              {"simulator", simulator.is_boolean() && simulator.get<bool>()}};

  // bdevs first: namespace and virtio-blk sizes are their bdevs' sizes.
  json bdevs = json::array();
  json raw_bdevs = get("bdevs", m.list_bdevs, nullptr);
  for (const auto& b : raw_bdevs.is_array() ? raw_bdevs : json::array())
    bdevs.push_back(NormaliseBdev(b));
  auto size_of = [&](const json& bdev) -> json {
    for (const auto& b : bdevs)
      if (bdev.is_string() && b["name"] == bdev) return b["size_bytes"];
    return nullptr;
  };

  // Functions.
  json fn_params = dialect == Dialect::kSnap4 ? json{{"all", true}} : json(nullptr);
  json functions =
      NormaliseFunctions(dialect, get("emulation_functions", m.list_functions, fn_params));

  // Subsystems, NVMe controllers and namespaces.
  json subsystems = json::array();
  json nvme = json::array();
  std::map<std::string, std::map<int, json>> ns_by_nqn;  // nqn -> nsid -> namespace
  json raw_subsystems = get("nvme_subsystems", m.list_subsystems, nullptr);
  for (const auto& s : raw_subsystems.is_array() ? raw_subsystems : json::array()) {
    std::string nqn = StrOr(s, {"nqn", "subnqn"}, "");
    json controllers = json::array();
    for (const auto& c : ArrayField(s, {"controllers"})) {
      json name = c.is_string() ? c : StrField(c, {"ctrl_id", "name", "ctrl"});
      if (name.is_string()) controllers.push_back(name);
    }
    for (const auto& ns : ArrayField(s, {"namespaces", "Namespaces"})) {
      json nsid = IntField(ns, {"nsid"});
      if (nsid.is_null()) continue;
      json attached = json::array();
      for (const auto& c : ArrayField(ns, {"controllers"})) {
        json name = c.is_string() ? c : StrField(c, {"ctrl_id", "name", "ctrl"});
        if (name.is_string()) attached.push_back(name);
      }
      json bdev = StrOr(ns, {"bdev", "bdev_name"}, "");
      ns_by_nqn[nqn][nsid.get<int>()] = {{"nsid", nsid},
                                         {"bdev", bdev},
                                         {"size_bytes", size_of(bdev)},
                                         {"uuid", StrField(ns, {"uuid"})},
                                         {"controllers", std::move(attached)}};
    }
    subsystems.push_back({{"nqn", nqn},
                          {"serial_number", StrOr(s, {"serial_number", "sn"}, "")},
                          {"model_number", StrOr(s, {"model_number", "mn"}, "")},
                          {"nn", IntField(s, {"nn", "number_namespaces"})},
                          {"mnan", IntField(s, {"mnan", "maximum_namespaces"})},
                          {"controllers", std::move(controllers)},
                          {"namespaces", json::array()}});
  }

  json nvme_params = dialect == Dialect::kSnap3 ? json{{"type", "nvme"}} : json(nullptr);
  json raw_nvme = get("nvme_controllers", m.list_nvme_controllers, nvme_params);
  for (const auto& c : raw_nvme.is_array() ? raw_nvme : json::array()) {
    std::string type = StrOr(c, {"type"}, "nvme");
    if (type != "nvme") continue;
    json name = StrField(c, {"ctrl_id", "name", "ctrl"});
    if (!name.is_string()) continue;
    std::string nqn = StrOr(c, {"nqn", "subnqn"}, "");
    json ctrl = {{"name", name},
                 {"nqn", nqn},
                 {"cntlid", IntField(c, {"cntlid"})},
                 {"pci_bdf", StrField(c, {"pci_bdf"})},
                 {"pf_index", IntField(c, {"pf_index", "pci_index", "pf_id"})},
                 {"vf_index", IntField(c, {"vf_index", "vf_id"})},
                 {"vuid", StrField(c, {"vuid"})},
                 {"suspended", Suspended(c)}};
    AddFunctionOf(ctrl, functions);
    std::set<int> nsids;
    for (const auto& ns : ArrayField(c, {"namespaces", "Namespaces"}))
      if (json id = IntField(ns.is_object() ? ns : json{{"nsid", ns}}, {"nsid"}); !id.is_null())
        nsids.insert(id.get<int>());
    if (!m.list_controller_namespaces.empty()) {
      // SNAP 3: namespaces hang off controllers; they are the subsystem's namespaces too.
      json list = get("nvme_namespaces", m.list_controller_namespaces,
                      {{std::string(m.controller_namespaces_key), name}});
      for (const auto& ns : ArrayField(list, {"Namespaces", "namespaces"})) {
        json nsid = IntField(ns, {"nsid"});
        if (nsid.is_null()) continue;
        nsids.insert(nsid.get<int>());
        json& entry = ns_by_nqn[nqn][nsid.get<int>()];
        if (entry.is_null()) {
          json bdev = StrOr(ns, {"bdev", "bdev_name"}, "");
          entry = {{"nsid", nsid},
                   {"bdev", bdev},
                   {"size_bytes", size_of(bdev)},
                   {"uuid", StrField(ns, {"uuid"})},
                   {"controllers", json::array()}};
        }
        entry["controllers"].push_back(name);
      }
    }
    for (const auto& [nsid, ns] : ns_by_nqn[nqn])
      for (const auto& attached : ns["controllers"])
        if (attached == name) nsids.insert(nsid);
    ctrl["namespaces"] = nsids;
    nvme.push_back(std::move(ctrl));
  }
  for (auto& s : subsystems) {
    for (const auto& [nsid, ns] : ns_by_nqn[s["nqn"].get<std::string>()])
      s["namespaces"].push_back(ns);
    if (s["controllers"].empty()) {
      for (const auto& c : nvme)
        if (c["nqn"] == s["nqn"]) s["controllers"].push_back(c["name"]);
    }
  }

  // virtio-blk controllers.
  json vblk = json::array();
  json vblk_params = dialect == Dialect::kSnap3 ? json{{"type", "virtio_blk"}} : json(nullptr);
  json raw_vblk = get("virtio_blk_controllers", m.list_virtio_blk_controllers, vblk_params);
  for (const auto& c : raw_vblk.is_array() ? raw_vblk : json::array()) {
    if (StrOr(c, {"type"}, "virtio_blk") != "virtio_blk") continue;
    json name = StrField(c, {"ctrl_id", "name", "ctrl"});
    if (!name.is_string()) continue;
    json bdev = StrField(c, {"bdev", "bdev_name"});
    if (bdev.is_object()) bdev = StrField(bdev, {"bdev", "name"});
    if (!m.virtio_blk_controller_bdev.empty()) {
      json r = get("virtio_blk_controllers", m.virtio_blk_controller_bdev,
                   {{std::string(m.virtio_blk_controller_bdev_key), name}});
      json b = Field(r, {"bdev"});
      bdev = b.is_object() ? StrField(b, {"bdev", "name"}) : StrField(r, {"bdev"});
    }
    json ctrl = {{"name", name},
                 {"pci_bdf", StrField(c, {"pci_bdf"})},
                 {"pf_index", IntField(c, {"pf_index", "pci_index", "pf_id"})},
                 {"vf_index", IntField(c, {"vf_index", "vf_id"})},
                 {"vuid", StrField(c, {"vuid"})},
                 {"bdev", bdev},
                 {"size_bytes", size_of(bdev)},
                 {"suspended", Suspended(c)}};
    AddFunctionOf(ctrl, functions);
    vblk.push_back(std::move(ctrl));
  }

  // Which controller sits on each function, where the function list did not say.
  for (auto& f : functions) {
    if (!f["controller"].is_null()) continue;
    for (const json* list : {&nvme, &vblk})
      for (const auto& c : *list)
        if (c["pci_bdf"].is_string() && c["pci_bdf"] == f["pci_bdf"]) f["controller"] = c["name"];
  }

  json raw_iostat = with_iostat ? get("iostat", m.iostat, nullptr) : json(nullptr);

  out["emulation_functions"] = std::move(functions);
  out["nvme_subsystems"] = std::move(subsystems);
  out["nvme_controllers"] = std::move(nvme);
  out["virtio_blk_controllers"] = std::move(vblk);
  out["bdevs"] = std::move(bdevs);
  if (with_iostat) out["iostat"] = NormaliseIostat(raw_iostat);
  if (!errors.empty()) out["errors"] = std::move(errors);
  return out;
}

}  // namespace dpustor::snap
