#include "snap/snap_volume_ops.h"

#include <algorithm>

#include "common/json_rpc.h"

namespace dpustor::snap {

namespace {

using json = nlohmann::json;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() > prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::optional<FunctionAddress> AddressOf(const json& obj) {
  auto pf = obj.find("pf_index");
  if (pf == obj.end() || !pf->is_number_integer()) return std::nullopt;
  FunctionAddress f{pf->get<int>(), std::nullopt};
  auto vf = obj.find("vf_index");
  if (vf != obj.end() && vf->is_number_integer()) f.vf_index = vf->get<int>();
  return f;
}

std::optional<bool> OptBool(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

const json& ArrayOf(const json& obj, const char* key) {
  static const json kEmpty = json::array();
  auto it = obj.find(key);
  return it != obj.end() && it->is_array() ? *it : kEmpty;
}

Error Named(std::string_view method, const Error& e) {
  return Error{e.code, std::string(method) + ": " + e.message};
}

// pf_id (and vf_id) selecting a function, as both dialects take them.
void AddFunction(json& params, const FunctionAddress& f) {
  params["pf_id"] = f.pf_index;
  if (f.vf_index) params["vf_id"] = *f.vf_index;
}

}  // namespace

// --- naming and ownership ------------------------------------------------------------------

bool IsOwnedName(std::string_view name) {
  return StartsWith(name, kOwnedPrefix);
}

bool IsOwnedNqn(std::string_view nqn) {
  return StartsWith(nqn, kOwnedNqnPrefix);
}

std::string OwnedName(std::string_view volume) {
  return std::string(kOwnedPrefix) + std::string(volume);
}

std::string OwnedNqn(std::string_view volume) {
  return std::string(kOwnedNqnPrefix) + std::string(volume);
}

const char* const kNoRbdModuleError =
    "SNAP on this DPU has no RBD bdev module (bdev_rbd_create missing); export the image "
    "through Ceph's NVMe-oF gateway and attach it with bdev_nvme_attach_controller";

bool HasRbdModule(const std::vector<std::string>& methods) {
  return std::find(methods.begin(), methods.end(), "bdev_rbd_create") != methods.end();
}

std::string Describe(const FunctionAddress& f) {
  return "pf " + std::to_string(f.pf_index) +
         (f.vf_index ? " vf " + std::to_string(*f.vf_index) : "");
}

const SnapFunction* SnapObjects::FindFunction(std::string_view type,
                                              const FunctionAddress& f) const {
  for (const auto& fn : functions)
    if (fn.type == type && fn.address == f) return &fn;
  return nullptr;
}

std::string VolumeOf(const SnapBdev& b) {
  return b.name.substr(kOwnedPrefix.size());
}

std::string VolumeOf(const SnapSubsystem& s) {
  return s.nqn.substr(kOwnedNqnPrefix.size());
}

std::string VolumeOf(const SnapNvmeController& c) {
  if (IsOwnedName(c.name)) return c.name.substr(kOwnedPrefix.size());
  return IsOwnedNqn(c.nqn) ? c.nqn.substr(kOwnedNqnPrefix.size()) : std::string();
}

std::string VolumeOf(const SnapVirtioBlkController& c) {
  if (IsOwnedName(c.name)) return c.name.substr(kOwnedPrefix.size());
  return IsOwnedName(c.bdev) ? c.bdev.substr(kOwnedPrefix.size()) : std::string();
}

Result<SnapObjects> ParseSnapObjects(const json& status) {
  if (!status.is_object() || status.value("reachable", false) != true)
    return Error{rpc::kFailed,
                 "SNAP is not reachable: " + (status.is_object()
                                                  ? status.value("error", std::string("no answer"))
                                                  : std::string("no answer"))};
  if (status.contains("error"))
    return Error{rpc::kFailed, "SNAP answers but " + status.value("error", std::string())};
  if (auto it = status.find("errors"); it != status.end() && it->is_object()) {
    for (const auto& [section, message] : it->items()) {
      if (section == "iostat") continue;
      return Error{rpc::kFailed, "cannot read SNAP's " + section + ": " +
                                     (message.is_string() ? message.get<std::string>() : "")};
    }
  }

  SnapObjects out;
  for (const auto& f : ArrayOf(status, "emulation_functions")) {
    auto address = AddressOf(f);
    if (!address) continue;
    out.functions.push_back(
        {rpc::StringField(f, "type"), *address, rpc::StringField(f, "controller")});
  }
  for (const auto& b : ArrayOf(status, "bdevs")) {
    std::string name = rpc::StringField(b, "name");
    if (!IsOwnedName(name)) continue;
    SnapBdev bdev{name, rpc::StringField(b, "driver"),          "", "",
                  "",   b.value("size_bytes", std::uint64_t{0})};
    if (auto rbd = b.find("rbd"); rbd != b.end() && rbd->is_object()) {
      bdev.pool = rpc::StringField(*rbd, "pool_name");
      bdev.image = rpc::StringField(*rbd, "rbd_name");
      bdev.cluster = rpc::StringField(*rbd, "cluster_name");
    }
    out.bdevs.push_back(std::move(bdev));
  }
  for (const auto& s : ArrayOf(status, "nvme_subsystems")) {
    std::string nqn = rpc::StringField(s, "nqn");
    if (!IsOwnedNqn(nqn)) continue;
    SnapSubsystem sub{nqn, {}};
    for (const auto& ns : ArrayOf(s, "namespaces")) {
      if (!ns.contains("nsid") || !ns["nsid"].is_number_integer() ||
          ns["nsid"].get<long long>() < 0)
        continue;
      SnapNamespace n{ns["nsid"].get<std::uint32_t>(), rpc::StringField(ns, "bdev"), {}};
      for (const auto& c : ArrayOf(ns, "controllers"))
        if (c.is_string()) n.controllers.push_back(c.get<std::string>());
      sub.namespaces.push_back(std::move(n));
    }
    out.subsystems.push_back(std::move(sub));
  }
  for (const auto& c : ArrayOf(status, "nvme_controllers")) {
    SnapNvmeController ctrl{rpc::StringField(c, "name"),
                            rpc::StringField(c, "nqn"),
                            AddressOf(c),
                            OptBool(c, "suspended"),
                            {}};
    if (!IsOwnedName(ctrl.name) && !IsOwnedNqn(ctrl.nqn)) continue;
    for (const auto& nsid : ArrayOf(c, "namespaces"))
      if (nsid.is_number_integer() && nsid.get<long long>() >= 0)
        ctrl.namespaces.push_back(nsid.get<std::uint32_t>());
    out.nvme_controllers.push_back(std::move(ctrl));
  }
  for (const auto& c : ArrayOf(status, "virtio_blk_controllers")) {
    SnapVirtioBlkController ctrl{rpc::StringField(c, "name"), AddressOf(c),
                                 rpc::StringField(c, "bdev"), OptBool(c, "suspended")};
    if (!IsOwnedName(ctrl.name) && !IsOwnedName(ctrl.bdev)) continue;
    out.virtio_blk_controllers.push_back(std::move(ctrl));
  }
  return out;
}

// --- SnapVolumeOps -------------------------------------------------------------------------

SnapVolumeOps::SnapVolumeOps(SnapClient& client) : client_(client) {}

bool SnapVolumeOps::names_controllers() const {
  return !m().nvme_controller_name_key.empty();
}

bool SnapVolumeOps::separate_namespaces() const {
  return !m().create_namespace.empty();
}

bool SnapVolumeOps::can_suspend_nvme() const {
  return !m().nvme_create_suspended_key.empty() && !m().resume_nvme_controller.empty();
}

Result<json> SnapVolumeOps::Read(std::string_view method, const json& params) {
  auto r = client_.Call(std::string(method), params);
  if (!r.ok()) return Named(method, r.error());
  return r;
}

Result<json> SnapVolumeOps::Mutate(std::string_view method, const json& params) {
  ++mutations_;
  auto r = client_.Call(std::string(method), params);
  if (!r.ok()) return Named(method, r.error());
  return r;
}

Status SnapVolumeOps::Prepare() {
  auto dialect = client_.Probe();
  if (!dialect.ok()) return dialect.error();
  dialect_ = *dialect;
  auto methods = Read(m().list_methods);
  if (!methods.ok()) return methods.error();
  std::vector<std::string> names;
  for (const auto& n : *methods)
    if (n.is_string()) names.push_back(n.get<std::string>());
  has_rbd_ = HasRbdModule(names);
  managers_ = json::array();
  if (!m().list_emulation_managers.empty()) {
    auto managers = Read(m().list_emulation_managers);
    if (!managers.ok()) return managers.error();
    if (managers->is_array()) managers_ = std::move(*managers);
  }
  return Status::Ok();
}

Result<std::string> SnapVolumeOps::EmulationManager(std::string_view type) {
  // The first manager that emulates `type` (one that does not say what it emulates counts).
  for (const auto& mgr : managers_) {
    std::string name = rpc::StringField(mgr, "emulation_manager");
    if (name.empty()) continue;
    auto types = mgr.find("supported_types");
    if (types == mgr.end() || !types->is_array()) return name;
    for (const auto& t : *types)
      if (t == type) return name;
  }
  return Error{rpc::kNotFound, std::string(m().list_emulation_managers) +
                                   ": no emulation manager emulates " + std::string(type)};
}

Result<SnapObjects> SnapVolumeOps::ReadObjects(json* raw) {
  json status = client_.CollectStatus(/*with_iostat=*/false);
  auto objects = ParseSnapObjects(status);
  if (raw != nullptr) *raw = std::move(status);
  return objects;
}

// --- Ceph clusters and bdevs ---------------------------------------------------------------

Result<std::vector<RbdClusterRegistration>> SnapVolumeOps::ListRbdClusters() {
  auto r = Read(m().rbd_clusters_info);
  if (!r.ok()) return r.error();
  std::vector<RbdClusterRegistration> out;
  for (const auto& c : r->is_array() ? *r : json::array()) {
    out.push_back({rpc::StringField(c, "cluster_name").empty()
                       ? rpc::StringField(c, "name")
                       : rpc::StringField(c, "cluster_name"),
                   rpc::StringField(c, "config_file"), rpc::StringField(c, "user_id"),
                   rpc::StringField(c, "key_file")});
  }
  return out;
}

Status SnapVolumeOps::EnsureRbdCluster(const RbdClusterRegistration& want, bool refresh) {
  json params = {{"name", want.name}, {"config_file", want.config_file}};
  if (!want.user_id.empty()) params["user_id"] = want.user_id;
  if (!want.key_file.empty()) params["key_file"] = want.key_file;

  auto list = ListRbdClusters();
  if (!list.ok()) {
    if (list.error().code != rpc::kMethodNotFound) return list.error();
    // This SPDK cannot list clusters: register, and take "already registered" as done.
    auto r = Mutate(m().rbd_register_cluster, params);
    if (!r.ok() && r.error().message.find("File exists") == std::string::npos) return r.error();
    return Status::Ok();
  }
  auto it = std::find_if(list->begin(), list->end(),
                         [&](const RbdClusterRegistration& c) { return c.name == want.name; });
  if (it != list->end()) {
    bool alike = *it == want;
    if (alike && !refresh) return Status::Ok();
    auto r = Mutate(m().rbd_unregister_cluster, {{"name", want.name}});
    if (!r.ok()) {
      if (alike) return Status::Ok();  // in use: its open connection stays valid
      return Error{r.error().code, "Ceph cluster " + want.name +
                                       " is registered with other settings and cannot be "
                                       "replaced: " +
                                       r.error().message};
    }
  }
  auto r = Mutate(m().rbd_register_cluster, params);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::UnregisterRbdCluster(const std::string& name) {
  auto r = Mutate(m().rbd_unregister_cluster, {{"name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::CreateRbdBdev(const std::string& name, const std::string& cluster,
                                    const std::string& pool, const std::string& image,
                                    std::uint32_t block_size) {
  if (!has_rbd_) return Error{rpc::kFailed, kNoRbdModuleError};
  auto r = Mutate(m().rbd_create, {{"name", name},
                                   {"cluster_name", cluster},
                                   {"pool_name", pool},
                                   {"rbd_name", image},
                                   {"block_size", block_size}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::DeleteBdev(const std::string& name, const std::string& driver) {
  std::string_view method;
  if (driver == "rbd") method = m().rbd_delete;
  if (driver == "null") method = m().null_delete;
  if (driver == "malloc") method = m().malloc_delete;
  if (method.empty())
    return Error{rpc::kFailed, "cannot delete bdev " + name +
                                   ": no delete method known for driver '" + driver + "'"};
  auto r = Mutate(method, {{"name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

// --- NVMe ----------------------------------------------------------------------------------

Status SnapVolumeOps::CreateSubsystem(const std::string& nqn, const std::string& serial_number,
                                      const std::string& model_number) {
  auto r = Mutate(m().create_subsystem,
                  {{"nqn", nqn}, {"serial_number", serial_number}, {"model_number", model_number}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::DestroySubsystem(const std::string& nqn) {
  auto r = Mutate(m().destroy_subsystem, {{"nqn", nqn}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::CreateNamespace(const std::string& nqn, std::uint32_t nsid,
                                      const std::string& bdev) {
  if (!separate_namespaces()) return Status::Ok();
  auto r = Mutate(m().create_namespace,
                  {{"nqn", nqn}, {"nsid", nsid}, {"bdev_name", bdev}, {"bdev_type", "spdk"}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::DestroyNamespace(const std::string& nqn, std::uint32_t nsid) {
  if (!separate_namespaces()) return Status::Ok();
  auto r = Mutate(m().destroy_namespace, {{"nqn", nqn}, {"nsid", nsid}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Result<std::string> SnapVolumeOps::CreateNvmeController(const std::string& name,
                                                        const std::string& nqn,
                                                        const FunctionAddress& function,
                                                        bool suspended) {
  json params = {{"nqn", nqn}};
  AddFunction(params, function);
  if (names_controllers()) params[std::string(m().nvme_controller_name_key)] = name;
  if (suspended && !m().nvme_create_suspended_key.empty())
    params[std::string(m().nvme_create_suspended_key)] = true;
  if (!m().list_emulation_managers.empty()) {
    auto mgr = EmulationManager("nvme");
    if (!mgr.ok()) return mgr.error();
    params["emulation_manager"] = *mgr;
  }
  auto r = Mutate(m().create_nvme_controller, params);
  if (!r.ok()) return r.error();
  // SNAP-4 answers {"ctrl_id"}, SNAP 3 {"name"}; fall back to the name we gave.
  for (const char* key : {"ctrl_id", "name", "ctrl"})
    if (auto id = rpc::StringField(*r, key); !id.empty()) return id;
  if (r->is_string()) return r->get<std::string>();
  return name;
}

Status SnapVolumeOps::DestroyNvmeController(const std::string& name,
                                            const std::vector<std::uint32_t>& attached) {
  if (!separate_namespaces()) {
    for (std::uint32_t nsid : attached)
      if (Status s = DetachNamespace(name, nsid); !s.ok()) return s;
  }
  auto r = Mutate(m().destroy_nvme_controller,
                  {{std::string(m().nvme_controller_key), name}, {"force", true}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::AttachNamespace(const std::string& controller, std::uint32_t nsid,
                                      const std::string& bdev) {
  json params = {{std::string(m().namespace_controller_key), controller}, {"nsid", nsid}};
  if (!separate_namespaces()) {
    params["bdev_type"] = "spdk";
    params["bdev"] = bdev;
  }
  auto r = Mutate(m().attach_namespace, params);
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::DetachNamespace(const std::string& controller, std::uint32_t nsid) {
  auto r = Mutate(m().detach_namespace,
                  {{std::string(m().namespace_controller_key), controller}, {"nsid", nsid}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::SuspendNvmeController(const std::string& name) {
  if (m().suspend_nvme_controller.empty()) return Status::Ok();
  auto r = Mutate(m().suspend_nvme_controller, {{std::string(m().nvme_controller_key), name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::ResumeNvmeController(const std::string& name) {
  if (m().resume_nvme_controller.empty()) return Status::Ok();
  auto r = Mutate(m().resume_nvme_controller, {{std::string(m().nvme_controller_key), name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

// --- virtio-blk ----------------------------------------------------------------------------

Result<std::string> SnapVolumeOps::CreateVirtioBlkController(const std::string& name,
                                                             const FunctionAddress& function,
                                                             const std::string& bdev) {
  json params = {{"bdev", bdev}, {"bdev_type", "spdk"}};
  AddFunction(params, function);
  if (!m().virtio_blk_controller_name_key.empty())
    params[std::string(m().virtio_blk_controller_name_key)] = name;
  if (!m().list_emulation_managers.empty()) {
    auto mgr = EmulationManager("virtio_blk");
    if (!mgr.ok()) return mgr.error();
    params["emulation_manager"] = *mgr;
  }
  auto r = Mutate(m().create_virtio_blk_controller, params);
  if (!r.ok()) return r.error();
  if (r->is_string() && !r->get<std::string>().empty()) return r->get<std::string>();
  for (const char* key : {"ctrl_id", "name", "ctrl"})
    if (auto id = rpc::StringField(*r, key); !id.empty()) return id;
  return name;
}

Status SnapVolumeOps::DestroyVirtioBlkController(const std::string& name) {
  auto r = Mutate(m().destroy_virtio_blk_controller,
                  {{std::string(m().virtio_blk_controller_key), name}, {"force", true}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::SuspendVirtioBlkController(const std::string& name) {
  auto r = Mutate(m().suspend_virtio_blk_controller,
                  {{std::string(m().virtio_blk_controller_key), name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapVolumeOps::ResumeVirtioBlkController(const std::string& name) {
  auto r = Mutate(m().resume_virtio_blk_controller,
                  {{std::string(m().virtio_blk_controller_key), name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

}  // namespace dpustor::snap
