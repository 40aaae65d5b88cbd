// The SNAP 3.x method table (mlnx_snap, BlueField-2), after shared/reference/snap-rpc.md and
// the method pages NVIDIA published with snap-rdma (rpc/md/*.md, snap_rpc.py). In this dialect
// namespaces are attached to a controller directly (controller_nvme_namespace_attach creates
// the namespace in the controller's subsystem); controllers are named by SNAP
// ("NvmeEmu0pf0", "VblkEmu0pf1vf2") and addressed by name, or by subsystem nqn + cntlid;
// emulation types are "nvme" / "virtio_blk"; creates of subsystems and deletes return true.
// controller_virtio_blk_bdev_list is not in snap-rpc.md's list but is in NVIDIA's pages; it is
// the only way to read a virtio-blk controller's bdev in this dialect.
#include <nlohmann/json.hpp>

#include "sim/handler_support.h"
#include "sim/sim_methods.h"

namespace dpustor::sim {

namespace {

using json = nlohmann::json;
using rpc::Params;

const char* TypeName(FunctionType t) {
  return t == FunctionType::kNvme ? "nvme" : "virtio_blk";
}

// Every method that names an emulation manager must name the card's.
void CheckManager(const SimState& s, const Params& p, bool required) {
  auto m = required ? std::optional(p.Required<std::string>("emulation_manager"))
                    : p.Optional<std::string>("emulation_manager");
  if (m && *m != s.config().emulation_manager)
    Check(Status(NoSuchDevice("emulation manager " + *m)));
}

FunctionType DecodeDeviceType(const Params& p) {
  if (!p.Has("device_type")) throw rpc::ParamError("device_type", "required");
  return DecodeChoice(p, "device_type", {"nvme", "virtio_blk"}, "") == "nvme"
             ? FunctionType::kNvme
             : FunctionType::kVirtioBlk;
}

// SNAP 3 names controllers after their function: <prefix><manager index>pf<n>[vf<m>].
std::string ControllerName(const SimState& s, const char* prefix, const EmulationFunction& f) {
  std::string manager = s.config().emulation_manager;
  auto digits = manager.find_last_not_of("0123456789");
  std::string index = manager.substr(digits == std::string::npos ? 0 : digits + 1);
  std::string name = prefix + (index.empty() ? "0" : index) + "pf" + std::to_string(f.pf_index);
  if (f.vf_index) name += "vf" + std::to_string(*f.vf_index);
  return name;
}

const EmulationFunction& SelectSnap3Function(const SimState& s, const Params& p,
                                             FunctionType type) {
  // Older pages call pf_id "pci_index"; accept either, not both.
  if (p.Has("pci_index")) {
    if (p.Has("pf_id")) throw rpc::ParamError("pci_index", "give either 'pci_index' or 'pf_id'");
    return SelectFunction(s, p, type, FunctionKeys{"pci_bdf", "vuid", "pci_index", "vf_id"});
  }
  return SelectFunction(s, p, type);
}

// A controller named by "ctrl" or "name", or by "subnqn" + "cntlid".
const NvmeController& SelectNvmeController(const SimState& s, const Params& p) {
  auto ctrl = p.Optional<std::string>("ctrl");
  auto name = p.Optional<std::string>("name");
  auto subnqn = p.Optional<std::string>("subnqn");
  auto cntlid = p.Optional<std::uint16_t>("cntlid");
  if (ctrl && name) throw rpc::ParamError("ctrl", "give either 'ctrl' or 'name'");
  if (ctrl) name = ctrl;
  const NvmeController* c = nullptr;
  if (name) {
    if (subnqn || cntlid)
      throw rpc::ParamError("subnqn", "give either a controller name or 'subnqn' + 'cntlid'");
    c = s.FindNvmeController(*name);
    if (c == nullptr) Check(Status(NoSuchDevice("NVMe controller " + *name)));
  } else {
    if (!subnqn) throw rpc::ParamError("name", "required (or 'subnqn' + 'cntlid')");
    if (!cntlid) throw rpc::ParamError("cntlid", "required together with 'subnqn'");
    c = s.FindNvmeController(*subnqn, *cntlid);
    if (c == nullptr)
      Check(Status(NoSuchDevice("controller " + std::to_string(*cntlid) + " of " + *subnqn)));
  }
  return *c;
}

void AddFunctionKeys(const SimState& s, const std::string& vuid, json& out) {
  const EmulationFunction* f = s.FindFunctionByVuid(vuid);
  if (f == nullptr) return;
  out["pci_index"] = f->pf_index;
  if (f->vf_index) out["vf_index"] = *f->vf_index;
  out["pci_bdf"] = f->pci_bdf;
  out["vuid"] = f->vuid;
}

// --- emulation managers and functions ------------------------------------------------------

json EmulationManagersList(SimState& s, const json& params) {
  Params(params).RejectUnknown({});
  return json::array({{{"emulation_manager", s.config().emulation_manager},
                       {"hotplug_support", true},
                       {"supported_types", {"nvme", "virtio_blk"}}}});
}

json EmulationFunctionsList(SimState& s, const json& params) {
  Params(params).RejectUnknown({});
  json out = json::array();
  for (const auto& f : s.functions()) {
    if (f.vf_index) continue;
    json vfs = json::array();
    for (const auto& v : s.functions())
      if (v.vf_index && v.type == f.type && v.pf_index == f.pf_index)
        vfs.push_back({{"vf_index", *v.vf_index}, {"vf_bdf", v.pci_bdf}, {"vuid", v.vuid}});
    out.push_back({{"emulation_manager", s.config().emulation_manager},
                   {"emulation_type", TypeName(f.type)},
                   {"pci_type", "physical function"},
                   {"pci_index", f.pf_index},
                   {"pci_bdf", f.pci_bdf},
                   {"vuid", f.vuid},
                   {"hotplugged", f.hotplugged},
                   {"total_vf", f.num_vfs},
                   {"virtual_functions", std::move(vfs)}});
  }
  return out;
}

json EmulationDeviceAttach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"emulation_manager", "device_type", "id", "vid", "ssid", "ssvid", "revid",
                   "class_code", "bdev_type", "bdev", "num_queues", "queue_depth", "total_vf",
                   "num_msix", "transitional_device", "version"});
  CheckManager(s, p, true);
  FunctionType type = DecodeDeviceType(p);
  for (auto k : {"id", "vid", "ssid", "ssvid", "revid", "class_code", "num_queues", "queue_depth",
                 "total_vf", "num_msix"})
    p.Get<std::uint32_t>(k, 0);
  p.Get<std::string>("bdev_type", "");
  p.Get<std::string>("bdev", "");
  p.Get<std::string>("version", "");
  if (p.Get<bool>("transitional_device", false) && type != FunctionType::kVirtioBlk)
    throw rpc::ParamError("transitional_device", "only for virtio_blk devices");
  const EmulationFunction& f = s.HotplugFunction(type);
  return {{"emulation_manager", s.config().emulation_manager},
          {"emulation_type", TypeName(f.type)},
          {"pci_type", "physical function"},
          {"pci_index", f.pf_index},
          {"pci_bdf", f.pci_bdf},
          {"vuid", f.vuid}};
}

json EmulationDeviceDetach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"emulation_manager", "device_type", "pci_bdf", "pci_index", "vuid", "force"});
  CheckManager(s, p, true);
  FunctionType type = DecodeDeviceType(p);
  p.Get<bool>("force", false);
  const EmulationFunction& f =
      SelectFunction(s, p, type, FunctionKeys{"pci_bdf", "vuid", "pci_index", "vf_id"});
  // SNAP 3 has no detach-prepare step: the detach itself is the whole operation.
  Check(s.DetachFunction(f.vuid, /*force=*/true));
  return true;
}

// --- NVMe subsystems ---------------------------------------------------------------------

json SubsystemCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "serial_number", "model_number", "nn", "mnan", "number_namespaces",
                   "maximum_namespaces"});
  Subsystem sub;
  sub.serial_number = p.Required<std::string>("serial_number");
  sub.model_number = p.Required<std::string>("model_number");
  if (p.Has("nn") && p.Has("number_namespaces"))
    throw rpc::ParamError("nn", "give either 'nn' or 'number_namespaces'");
  if (p.Has("mnan") && p.Has("maximum_namespaces"))
    throw rpc::ParamError("mnan", "give either 'mnan' or 'maximum_namespaces'");
  sub.nn = p.Get<std::uint32_t>("nn", p.Get<std::uint32_t>("number_namespaces", sub.nn));
  sub.mnan = p.Get<std::uint32_t>("mnan", p.Get<std::uint32_t>("maximum_namespaces", sub.mnan));
  if (auto nqn = p.Optional<std::string>("nqn")) {
    sub.nqn = *nqn;
  } else {
    for (int n = 1; sub.nqn.empty() || s.FindSubsystem(sub.nqn) != nullptr; ++n)
      sub.nqn = "nqn.2014.08.org.nvmexpress.snap:cnode" + std::to_string(n);
  }
  Check(s.CreateSubsystem(std::move(sub)));
  return true;
}

json SubsystemDelete(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn"});
  Check(s.DestroySubsystem(p.Required<std::string>("nqn"), /*force=*/false));
  return true;
}

json SubsystemList(SimState& s, const json& params) {
  Params(params).RejectUnknown({});
  json out = json::array();
  for (const auto& [nqn, sub] : s.subsystems()) {
    json controllers = json::array();
    for (const auto& [name, c] : s.nvme_controllers()) {
      if (c.nqn != nqn) continue;
      json entry = {{"name", name}, {"cntlid", c.cntlid}};
      AddFunctionKeys(s, c.vuid, entry);
      controllers.push_back(std::move(entry));
    }
    out.push_back({{"nqn", nqn},
                   {"serial_number", sub.serial_number},
                   {"model_number", sub.model_number},
                   {"nn", sub.nn},
                   {"mnan", sub.mnan},
                   {"controllers", std::move(controllers)}});
  }
  return out;
}

// --- NVMe controllers and their namespaces -------------------------------------------------

json NvmeControllerCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "emulation_manager", "pci_bdf", "pf_id", "pci_index", "vf_id", "vuid",
                   "conf_file", "nr_io_queues", "mdts", "max_namespaces", "quirks", "rdma_device",
                   "mem", "cntlid", "version"});
  CheckManager(s, p, true);
  NvmeControllerSpec spec;
  spec.nqn = p.Required<std::string>("nqn");
  spec.num_queues = p.Get<std::uint32_t>("nr_io_queues", spec.num_queues);
  spec.mdts = p.Get<std::uint32_t>("mdts", spec.mdts);
  p.Get<std::string>("conf_file", "");
  p.Get<std::uint32_t>("max_namespaces", 0);
  p.Get<std::uint32_t>("quirks", 0);
  p.Get<std::string>("rdma_device", "");
  p.Get<std::string>("version", "");
  DecodeChoice(p, "mem", {"static", "pool"}, "static");
  if (p.Has("cntlid")) throw rpc::ParamError("cntlid", "is assigned by the subsystem");
  const EmulationFunction& f = SelectSnap3Function(s, p, FunctionType::kNvme);
  spec.vuid = f.vuid;
  spec.name = ControllerName(s, "NvmeEmu", f);
  const NvmeController* c = Check(s.CreateNvmeController(spec));
  return {{"name", c->name}, {"cntlid", c->cntlid}};
}

json NvmeControllerDelete(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "subnqn", "cntlid", "vuid", "force"});
  bool force = p.Get<bool>("force", false);
  std::string name;
  if (auto vuid = p.Optional<std::string>("vuid")) {
    if (p.Has("name") || p.Has("subnqn"))
      throw rpc::ParamError("vuid", "give either 'vuid' or a controller name");
    const EmulationFunction* f = s.FindFunctionByVuid(*vuid);
    if (f == nullptr || f->controller.empty() || !s.FindNvmeController(f->controller))
      Check(Status(NoSuchDevice("no NVMe controller on vuid " + *vuid)));
    name = f->controller;
  } else {
    name = SelectNvmeController(s, p).name;
  }
  Check(s.DestroyNvmeController(name, force));
  return true;
}

json ControllerList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"type"});
  std::string type = DecodeChoice(p, "type", {"nvme", "virtio_blk", "virtio_net"}, "");
  json out = json::array();
  if (type.empty() || type == "nvme") {
    for (const auto& [name, c] : s.nvme_controllers()) {
      json e = {{"subnqn", c.nqn},
                {"cntlid", c.cntlid},
                {"name", name},
                {"emulation_manager", s.config().emulation_manager},
                {"type", "nvme"}};
      AddFunctionKeys(s, c.vuid, e);
      out.push_back(std::move(e));
    }
  }
  if (type.empty() || type == "virtio_blk") {
    for (const auto& [name, c] : s.virtio_blk_controllers()) {
      json e = {{"name", name},
                {"emulation_manager", s.config().emulation_manager},
                {"type", "virtio_blk"}};
      AddFunctionKeys(s, c.vuid, e);
      out.push_back(std::move(e));
    }
  }
  return out;
}

json NamespaceAttach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "name", "subnqn", "cntlid", "bdev_type", "bdev", "nsid", "qn",
                   "protocol", "uuid", "nguid", "eui64"});
  if (!p.Has("bdev_type")) throw rpc::ParamError("bdev_type", "required");
  DecodeChoice(p, "bdev_type", {"spdk"}, "spdk");
  auto bdev = p.Required<std::string>("bdev");
  auto nsid = p.Required<std::uint32_t>("nsid");
  if (nsid == 0) throw rpc::ParamError("nsid", "must be at least 1");
  auto uuid = p.Get<std::string>("uuid", "");
  for (auto k : {"qn", "protocol", "nguid", "eui64"}) p.Get<std::string>(k, "");
  const NvmeController& c = SelectNvmeController(s, p);
  std::string ctrl = c.name, nqn = c.nqn;
  Check(s.CreateNamespace(nqn, nsid, bdev, uuid));
  // Cannot fail: the namespace is new, so nothing else has it attached.
  Check(s.AttachNamespace(ctrl, nsid));
  return true;
}

json NamespaceDetach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "name", "subnqn", "cntlid", "nsid"});
  auto nsid = p.Required<std::uint32_t>("nsid");
  const NvmeController& c = SelectNvmeController(s, p);
  std::string ctrl = c.name, nqn = c.nqn;
  Check(s.DetachNamespace(ctrl, nsid));
  Check(s.DestroyNamespace(nqn, nsid));
  return true;
}

json NamespaceList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "name", "subnqn", "cntlid"});
  const NvmeController& c = SelectNvmeController(s, p);
  json namespaces = json::array();
  for (const Namespace* ns : s.AttachedNamespaces(c.name)) {
    const Bdev* b = s.FindBdev(ns->bdev);
    namespaces.push_back({{"nsid", ns->nsid},
                          {"bdev", ns->bdev},
                          {"bdev_type", "spdk"},
                          {"uuid", ns->uuid},
                          {"qn", ""},
                          {"protocol", ""},
                          {"block_size", b ? b->block_size : 0},
                          {"num_blocks", b ? b->num_blocks : 0}});
  }
  return {{"name", c.name}, {"cntlid", c.cntlid}, {"Namespaces", std::move(namespaces)}};
}

// --- virtio-blk controllers --------------------------------------------------------------

const VirtioBlkController& SelectVirtioBlk(const SimState& s, const Params& p,
                                           std::string_view key) {
  auto name = p.Required<std::string>(key);
  const VirtioBlkController* c = s.FindVirtioBlkController(name);
  if (c == nullptr) Check(Status(NoSuchDevice("virtio-blk controller " + name)));
  return *c;
}

json VirtioBlkCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"emulation_manager", "pci_bdf", "pf_id", "pci_index", "vf_id", "vuid",
                   "num_queues", "queue_depth", "size_max", "seg_max", "bdev_type", "bdev",
                   "serial", "force_in_order", "suspend", "mem", "admin_q"});
  CheckManager(s, p, true);
  VirtioBlkControllerSpec spec;
  std::string bdev_type = DecodeChoice(p, "bdev_type", {"spdk", "none"}, "none");
  spec.bdev = p.Get<std::string>("bdev", "");
  if (bdev_type == "spdk" && spec.bdev.empty())
    throw rpc::ParamError("bdev", "required with bdev_type 'spdk'");
  if (bdev_type == "none" && !spec.bdev.empty())
    throw rpc::ParamError("bdev_type", "must be 'spdk' when 'bdev' is given");
  spec.num_queues = p.Get<std::uint32_t>("num_queues", spec.num_queues);
  spec.queue_size = p.Get<std::uint32_t>("queue_depth", spec.queue_size);
  spec.size_max = p.Get<std::uint32_t>("size_max", spec.size_max);
  spec.seg_max = p.Get<std::uint32_t>("seg_max", spec.seg_max);
  spec.serial = p.Get<std::string>("serial", "");
  spec.suspended = p.Get<bool>("suspend", false);
  p.Get<bool>("force_in_order", false);
  p.Get<bool>("admin_q", false);
  DecodeChoice(p, "mem", {"static", "pool"}, "static");
  const EmulationFunction& f = SelectSnap3Function(s, p, FunctionType::kVirtioBlk);
  spec.vuid = f.vuid;
  spec.name = ControllerName(s, "VblkEmu", f);
  return Check(s.CreateVirtioBlkController(spec))->name;
}

json VirtioBlkDelete(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "vuid", "force"});
  p.Get<bool>("force", false);
  std::string name;
  if (auto vuid = p.Optional<std::string>("vuid")) {
    if (p.Has("name")) throw rpc::ParamError("vuid", "give either 'vuid' or 'name'");
    const EmulationFunction* f = s.FindFunctionByVuid(*vuid);
    if (f == nullptr || f->controller.empty() || !s.FindVirtioBlkController(f->controller))
      Check(Status(NoSuchDevice("no virtio-blk controller on vuid " + *vuid)));
    name = f->controller;
  } else {
    name = SelectVirtioBlk(s, p, "name").name;
  }
  Check(s.DestroyVirtioBlkController(name));
  return true;
}

json VirtioBlkBdevAttach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "bdev_type", "bdev", "size_max", "seg_max"});
  auto name = p.Required<std::string>("name");
  if (!p.Has("bdev_type")) throw rpc::ParamError("bdev_type", "required");
  DecodeChoice(p, "bdev_type", {"spdk"}, "spdk");
  auto bdev = p.Required<std::string>("bdev");
  p.Get<std::uint32_t>("size_max", 0);
  p.Get<std::uint32_t>("seg_max", 0);
  Check(s.AttachVirtioBlkBdev(name, bdev));
  return true;
}

json VirtioBlkBdevDetach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name"});
  Check(s.DetachVirtioBlkBdev(p.Required<std::string>("name")));
  return true;
}

json VirtioBlkBdevList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl"});
  const VirtioBlkController& c = SelectVirtioBlk(s, p, "ctrl");
  json bdev = {{"bdev_type", "none"}};
  if (const Bdev* b = c.bdev.empty() ? nullptr : s.FindBdev(c.bdev)) {
    bdev = {{"bdev", b->name},
            {"bdev_type", "spdk"},
            {"block_size", b->block_size},
            {"num_blocks", b->num_blocks}};
  }
  return {{"name", c.name}, {"bdev", std::move(bdev)}};
}

rpc::MethodTable<SimState>::SyncHandler VirtioBlkSuspendResume(bool suspend) {
  return [suspend](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"name"});
    auto name = p.Required<std::string>("name");
    Check(suspend ? s.SuspendVirtioBlkController(name) : s.ResumeVirtioBlkController(name));
    return true;
  };
}

// Key names (unconfirmed): per-controller counters in the style of SNAP 3's NVMe iostat.
json VirtioBlkGetIostat(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name"});
  auto only = p.Optional<std::string>("name");
  if (only && s.FindVirtioBlkController(*only) == nullptr)
    Check(Status(NoSuchDevice("virtio-blk controller " + *only)));
  json controllers = json::array();
  for (const auto& [name, c] : s.virtio_blk_controllers()) {
    if (only && name != *only) continue;
    IoStat st;
    if (const Bdev* b = c.bdev.empty() ? nullptr : s.FindBdev(c.bdev)) st = b->iostat;
    controllers.push_back({{"name", name},
                           {"bdev", c.bdev},
                           {"read_ios", st.num_read_ops},
                           {"completed_read_ios", st.num_read_ops},
                           {"completed_unsuccessful_read_ios", 0},
                           {"read_bytes", st.bytes_read},
                           {"write_ios", st.num_write_ops},
                           {"completed_write_ios", st.num_write_ops},
                           {"completed_unsuccessful_write_ios", 0},
                           {"write_bytes", st.bytes_written},
                           {"flush_ios", 0},
                           {"completed_flush_ios", 0},
                           {"completed_unsuccessful_flush_ios", 0}});
  }
  return {{"controllers", std::move(controllers)}};
}

}  // namespace

void AddSnap3Methods(SimMethodTable& t) {
  t.Add("emulation_managers_list", "emulation managers and what they emulate",
        EmulationManagersList);
  t.Add("emulation_functions_list", "emulated PCIe functions with their VFs",
        EmulationFunctionsList);
  t.Add("emulation_device_attach",
        "hot-plug a PF {emulation_manager, device_type: nvme|virtio_blk, ...}",
        EmulationDeviceAttach);
  t.Add("emulation_device_detach",
        "unplug a hot-plugged PF {emulation_manager, device_type, pci_bdf | pci_index | vuid}",
        EmulationDeviceDetach);

  t.Add("subsystem_nvme_create", "{serial_number, model_number, nqn?, nn?, mnan?}",
        SubsystemCreate);
  t.Add("subsystem_nvme_delete", "{nqn}", SubsystemDelete);
  t.Add("subsystem_nvme_list", "subsystems with their controllers", SubsystemList);

  t.Add("controller_nvme_create",
        "{nqn, emulation_manager, pci_bdf | pf_id [vf_id] | vuid, nr_io_queues?, mdts?} -> "
        "{name, cntlid}",
        NvmeControllerCreate);
  t.Add("controller_nvme_delete", "{name | subnqn + cntlid | vuid, force?}", NvmeControllerDelete);
  t.Add("controller_list", "NVMe and virtio-blk controllers {type?}", ControllerList);
  t.Add("controller_nvme_namespace_attach",
        "{ctrl | name | subnqn + cntlid, bdev_type: spdk, bdev, nsid, uuid?}", NamespaceAttach);
  t.Add("controller_nvme_namespace_detach", "{ctrl | name | subnqn + cntlid, nsid}",
        NamespaceDetach);
  t.Add("controller_nvme_namespace_list", "{ctrl | name | subnqn + cntlid}", NamespaceList);

  t.Add("controller_virtio_blk_create",
        "{emulation_manager, pci_bdf | pf_id [vf_id] | vuid, bdev_type?, bdev?, num_queues?, "
        "queue_depth?, size_max?, seg_max?, serial?, suspend?} -> name",
        VirtioBlkCreate);
  t.Add("controller_virtio_blk_delete", "{name | vuid, force?}", VirtioBlkDelete);
  t.Add("controller_virtio_blk_bdev_attach", "{name, bdev_type: spdk, bdev}", VirtioBlkBdevAttach);
  t.Add("controller_virtio_blk_bdev_detach", "{name} (controller suspended)", VirtioBlkBdevDetach);
  t.Add("controller_virtio_blk_bdev_list", "the bdev behind a controller {ctrl}",
        VirtioBlkBdevList);
  t.Add("controller_virtio_blk_suspend", "{name}", VirtioBlkSuspendResume(true));
  t.Add("controller_virtio_blk_resume", "{name}", VirtioBlkSuspendResume(false));
  t.Add("controller_virtio_blk_get_iostat", "per-controller I/O counters {name?}",
        VirtioBlkGetIostat);
}

}  // namespace dpustor::sim
