// The SNAP-4 / DOCA SNAP method table (BlueField-3), after the table in
// shared/reference/snap-rpc.md and NVIDIA's public clients. Controllers are named by a string
// ctrl_id ("NVMeCtrl1", "VblkCtrl1", or the `ctrl` given at creation); emulation types are
// "NVME" / "VBLK"; BDFs are reported without the PCI domain ("25:00.2").
// Key names marked (unconfirmed) in snap-rpc.md are kept in one place per method below.
#include <nlohmann/json.hpp>

#include "sim/handler_support.h"
#include "sim/sim_methods.h"

namespace dpustor::sim {

namespace {

using json = nlohmann::json;
using rpc::Params;

const char* TypeTag(FunctionType t) {
  return t == FunctionType::kNvme ? "NVME" : t == FunctionType::kVirtioBlk ? "VBLK" : "VIRTIO_FS";
}

json FunctionJson(const EmulationFunction& f) {
  json out = {
      {"hotplugged", f.hotplugged}, {"emulation_type", TypeTag(f.type)}, {"pf_index", f.pf_index}};
  if (f.vf_index) out["vf_index"] = *f.vf_index;
  out["pci_bdf"] = f.pci_bdf;
  out["vhca_id"] = f.vhca_id;
  out["vuid"] = f.vuid;
  out["ctrl_id"] = f.controller;
  return out;
}

// "<prefix><N>" with the lowest N >= 1 not naming a controller yet.
std::string AutoControllerName(const SimState& s, const std::string& prefix) {
  for (int n = 1;; ++n) {
    std::string name = prefix + std::to_string(n);
    if (!s.ControllerNameTaken(name)) return name;
  }
}

// --- emulation functions -----------------------------------------------------------------

json EmulationFunctionList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"all", "emulation_manager"});
  bool all = p.Get<bool>("all", false);
  p.Get<std::string>("emulation_manager", "");
  json out = json::array();
  for (const auto& f : s.functions()) {
    if (f.vf_index) continue;
    json pf = FunctionJson(f);
    pf["num_vfs"] = f.num_vfs;
    json vfs = json::array();
    if (all) {
      for (const auto& v : s.functions())
        if (v.vf_index && v.type == f.type && v.pf_index == f.pf_index)
          vfs.push_back(FunctionJson(v));
    }
    pf["vfs"] = std::move(vfs);
    out.push_back(std::move(pf));
  }
  return out;
}

json NvmeEmulationDeviceAttach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"protocol", "id", "vid", "ssid", "ssvid", "revid", "class_code", "num_msix",
                   "total_vf", "num_queues", "queue_depth", "version", "emulation_manager"});
  DecodeChoice(p, "protocol", {"nvme"}, "");
  if (!p.Has("protocol")) throw rpc::ParamError("protocol", "required");
  for (auto k : {"id", "vid", "ssid", "ssvid", "revid", "class_code", "num_msix", "total_vf",
                 "num_queues", "queue_depth"})
    p.Get<std::uint32_t>(k, 0);
  p.Get<std::string>("version", "");
  p.Get<std::string>("emulation_manager", "");
  return s.HotplugFunction(FunctionType::kNvme).vuid;
}

json EmulationDeviceDetachPrepare(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"vuid", "emulation_manager"});
  auto vuid = p.Required<std::string>("vuid");
  p.Get<std::string>("emulation_manager", "");
  Check(s.PrepareDetach(vuid));
  return true;
}

json EmulationDeviceDetach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"vuid", "force", "emulation_manager"});
  auto vuid = p.Required<std::string>("vuid");
  bool force = p.Get<bool>("force", false);
  p.Get<std::string>("emulation_manager", "");
  Check(s.DetachFunction(vuid, force));
  return true;
}

// --- NVMe subsystems and namespaces --------------------------------------------------------

json SubsystemCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "serial_number", "model_number", "nn", "mnan"});
  Subsystem sub;
  sub.nqn = p.Required<std::string>("nqn");
  sub.serial_number = p.Get<std::string>("serial_number", "DPUSTORSIM");
  sub.model_number = p.Get<std::string>("model_number", "NVIDIA BlueField NVMe SNAP Controller");
  sub.nn = p.Get<std::uint32_t>("nn", sub.nn);
  sub.mnan = p.Get<std::uint32_t>("mnan", sub.mnan);
  Check(s.CreateSubsystem(std::move(sub)));
  return true;
}

json SubsystemList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn"});
  auto only = p.Optional<std::string>("nqn");
  if (only && s.FindSubsystem(*only) == nullptr) Check(Status(NoSuchDevice("subsystem " + *only)));
  json out = json::array();
  for (const auto& [nqn, sub] : s.subsystems()) {
    if (only && *only != nqn) continue;
    json controllers = json::array();
    for (const auto& [name, c] : s.nvme_controllers())
      if (c.nqn == nqn) controllers.push_back({{"ctrl_id", name}, {"cntlid", c.cntlid}});
    json namespaces = json::array();
    for (const auto& [nsid, ns] : sub.namespaces) {
      json attached = json::array();
      if (!ns.controller.empty()) attached.push_back({{"ctrl_id", ns.controller}});
      // "ready" is a string in NVIDIA's own client types.
      // Sizes come from the bdev (key names unconfirmed).
      const Bdev* b = s.FindBdev(ns.bdev);
      namespaces.push_back({{"nsid", nsid},
                            {"bdev", ns.bdev},
                            {"uuid", ns.uuid},
                            {"nqn", nqn},
                            {"ready", "true"},
                            {"block_size", b ? b->block_size : 0},
                            {"num_blocks", b ? b->num_blocks : 0},
                            {"controllers", std::move(attached)}});
    }
    out.push_back({{"nqn", nqn},
                   {"sn", sub.serial_number},
                   {"mn", sub.model_number},
                   {"nn", sub.nn},
                   {"mnan", sub.mnan},
                   {"controllers", std::move(controllers)},
                   {"namespaces", std::move(namespaces)}});
  }
  return out;
}

json SubsystemDestroy(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "force"});
  auto nqn = p.Required<std::string>("nqn");
  bool force = p.Get<bool>("force", false);
  Check(s.DestroySubsystem(nqn, force));
  return true;
}

json NamespaceCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"bdev_type", "nqn", "nsid", "uuid", "bdev_name", "nguid", "eui64"});
  DecodeChoice(p, "bdev_type", {"spdk"}, "spdk");
  auto nqn = p.Required<std::string>("nqn");
  auto bdev = p.Required<std::string>("bdev_name");
  auto nsid = p.Get<std::uint32_t>("nsid", 0);
  if (p.Has("nsid") && nsid == 0) throw rpc::ParamError("nsid", "must be at least 1");
  auto uuid = p.Get<std::string>("uuid", "");
  p.Get<std::string>("nguid", "");
  p.Get<std::string>("eui64", "");
  Check(s.CreateNamespace(nqn, nsid, bdev, uuid));
  return true;
}

json NamespaceDestroy(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "nsid"});
  auto nqn = p.Required<std::string>("nqn");
  auto nsid = p.Required<std::uint32_t>("nsid");
  Check(s.DestroyNamespace(nqn, nsid));
  return true;
}

// --- NVMe controllers --------------------------------------------------------------------

json NvmeControllerJson(const SimState& s, const NvmeController& c) {
  const EmulationFunction* f = s.FindFunctionByVuid(c.vuid);
  json namespaces = json::array();
  for (const Namespace* ns : s.AttachedNamespaces(c.name))
    namespaces.push_back({{"nsid", ns->nsid}, {"bdev", ns->bdev}});
  json out = {{"ctrl_id", c.name}, {"nqn", c.nqn}, {"cntlid", c.cntlid}};
  if (f != nullptr) {
    out["emulation_type"] = TypeTag(f->type);
    out["pf_index"] = f->pf_index;
    if (f->vf_index) out["vf_index"] = *f->vf_index;
    out["pci_bdf"] = f->pci_bdf;
    out["vhca_id"] = f->vhca_id;
    out["vuid"] = f->vuid;
  }
  out["num_queues"] = c.num_queues;
  out["mdts"] = c.mdts;
  out["suspended"] = c.suspended;
  out["namespaces"] = std::move(namespaces);
  return out;
}

json NvmeControllerCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "ctrl", "pf_id", "vf_id", "pci_bdf", "vuid", "num_queues", "mdts",
                   "suspended", "admin_only", "quirks", "mempool", "fw_slots"});
  NvmeControllerSpec spec;
  spec.nqn = p.Required<std::string>("nqn");
  spec.name = p.Get<std::string>("ctrl", "");
  if (p.Has("ctrl") && spec.name.empty()) throw rpc::ParamError("ctrl", "must not be empty");
  spec.num_queues = p.Get<std::uint32_t>("num_queues", spec.num_queues);
  spec.mdts = p.Get<std::uint32_t>("mdts", spec.mdts);
  spec.suspended = p.Get<bool>("suspended", false);
  p.Get<bool>("admin_only", false);
  p.Get<std::uint32_t>("quirks", 0);
  p.Get<bool>("mempool", false);
  p.Get<std::uint32_t>("fw_slots", 0);
  spec.vuid = SelectFunction(s, p, FunctionType::kNvme).vuid;
  if (spec.name.empty()) spec.name = AutoControllerName(s, "NVMeCtrl");
  const NvmeController* c = Check(s.CreateNvmeController(spec));
  return {{"ctrl_id", c->name}, {"cntlid", c->cntlid}};
}

json NvmeControllerList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"nqn", "ctrl_id"});
  auto nqn = p.Optional<std::string>("nqn");
  auto ctrl = p.Optional<std::string>("ctrl_id");
  if (ctrl && s.FindNvmeController(*ctrl) == nullptr)
    Check(Status(NoSuchDevice("NVMe controller " + *ctrl)));
  json out = json::array();
  for (const auto& [name, c] : s.nvme_controllers()) {
    if ((nqn && c.nqn != *nqn) || (ctrl && name != *ctrl)) continue;
    out.push_back(NvmeControllerJson(s, c));
  }
  return out;
}

json NvmeControllerDestroy(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl_id", "force"});
  auto ctrl = p.Required<std::string>("ctrl_id");
  bool force = p.Get<bool>("force", false);
  Check(s.DestroyNvmeController(ctrl, force));
  return true;
}

rpc::MethodTable<SimState>::SyncHandler NvmeSuspendResume(bool suspend) {
  return [suspend](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"ctrl_id", "timeout_ms", "force"});
    auto ctrl = p.Required<std::string>("ctrl_id");
    p.Get<std::uint32_t>("timeout_ms", 0);
    p.Get<bool>("force", false);
    Check(suspend ? s.SuspendNvmeController(ctrl) : s.ResumeNvmeController(ctrl));
    return true;
  };
}

rpc::MethodTable<SimState>::SyncHandler NvmeAttachDetach(bool attach) {
  return [attach](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"ctrl_id", "nsid"});
    auto ctrl = p.Required<std::string>("ctrl_id");
    auto nsid = p.Required<std::uint32_t>("nsid");
    Check(attach ? s.AttachNamespace(ctrl, nsid) : s.DetachNamespace(ctrl, nsid));
    return true;
  };
}

// --- virtio-blk controllers --------------------------------------------------------------

json VirtioBlkControllerJson(const SimState& s, const VirtioBlkController& c) {
  const EmulationFunction* f = s.FindFunctionByVuid(c.vuid);
  json out = {{"ctrl_id", c.name}};
  if (f != nullptr) {
    out["emulation_type"] = TypeTag(f->type);
    out["pf_index"] = f->pf_index;
    if (f->vf_index) out["vf_index"] = *f->vf_index;
    out["pci_bdf"] = f->pci_bdf;
    out["vhca_id"] = f->vhca_id;
    out["vuid"] = f->vuid;
  }
  out["bdev"] = c.bdev;
  // virtio-blk config space: capacity in 512-byte sectors and the block size, from the bdev.
  const Bdev* b = c.bdev.empty() ? nullptr : s.FindBdev(c.bdev);
  out["capacity"] = b ? b->num_blocks * b->block_size / 512 : 0;
  out["blk_size"] = b ? b->block_size : 512;
  out["num_queues"] = c.num_queues;
  out["queue_size"] = c.queue_size;
  out["seg_max"] = c.seg_max;
  out["size_max"] = c.size_max;
  out["read_only"] = c.read_only;
  out["serial"] = c.serial;
  out["suspended"] = c.suspended;
  return out;
}

json VirtioBlkControllerCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "pf_id", "vf_id", "pci_bdf", "vuid", "bdev", "bdev_type", "num_queues",
                   "queue_size", "seg_max", "size_max", "read_only", "suspended", "serial",
                   "force_in_order", "indirect_desc", "admin_q", "dynamic_msix",
                   "live_update_listener"});
  VirtioBlkControllerSpec spec;
  spec.name = p.Get<std::string>("ctrl", "");
  if (p.Has("ctrl") && spec.name.empty()) throw rpc::ParamError("ctrl", "must not be empty");
  std::string bdev_type = DecodeChoice(p, "bdev_type", {"spdk", "none"}, "spdk");
  spec.bdev = p.Get<std::string>("bdev", "");
  if (bdev_type == "none" && !spec.bdev.empty())
    throw rpc::ParamError("bdev", "not allowed with bdev_type 'none'");
  spec.num_queues = p.Get<std::uint32_t>("num_queues", spec.num_queues);
  spec.queue_size = p.Get<std::uint32_t>("queue_size", spec.queue_size);
  spec.seg_max = p.Get<std::uint32_t>("seg_max", spec.seg_max);
  spec.size_max = p.Get<std::uint32_t>("size_max", spec.size_max);
  spec.read_only = p.Get<bool>("read_only", false);
  spec.suspended = p.Get<bool>("suspended", false);
  spec.serial = p.Get<std::string>("serial", "");
  for (auto k :
       {"force_in_order", "indirect_desc", "admin_q", "dynamic_msix", "live_update_listener"})
    p.Get<bool>(k, false);
  spec.vuid = SelectFunction(s, p, FunctionType::kVirtioBlk).vuid;
  if (spec.name.empty()) spec.name = AutoControllerName(s, "VblkCtrl");
  return Check(s.CreateVirtioBlkController(spec))->name;
}

json VirtioBlkControllerList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl"});
  auto ctrl = p.Optional<std::string>("ctrl");
  if (ctrl && s.FindVirtioBlkController(*ctrl) == nullptr)
    Check(Status(NoSuchDevice("virtio-blk controller " + *ctrl)));
  json out = json::array();
  for (const auto& [name, c] : s.virtio_blk_controllers())
    if (!ctrl || name == *ctrl) out.push_back(VirtioBlkControllerJson(s, c));
  return out;
}

json VirtioBlkControllerDestroy(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "force"});
  auto ctrl = p.Required<std::string>("ctrl");
  p.Get<bool>("force", false);
  Check(s.DestroyVirtioBlkController(ctrl));
  return true;
}

rpc::MethodTable<SimState>::SyncHandler VirtioBlkSuspendResume(bool suspend) {
  return [suspend](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"ctrl", "timeout_ms", "force"});
    auto ctrl = p.Required<std::string>("ctrl");
    p.Get<std::uint32_t>("timeout_ms", 0);
    p.Get<bool>("force", false);
    Check(suspend ? s.SuspendVirtioBlkController(ctrl) : s.ResumeVirtioBlkController(ctrl));
    return true;
  };
}

json VirtioBlkBdevAttach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl", "bdev", "bdev_type", "size_max", "seg_max"});
  auto ctrl = p.Required<std::string>("ctrl");
  auto bdev = p.Required<std::string>("bdev");
  DecodeChoice(p, "bdev_type", {"spdk"}, "spdk");
  p.Get<std::uint32_t>("size_max", 0);
  p.Get<std::uint32_t>("seg_max", 0);
  Check(s.AttachVirtioBlkBdev(ctrl, bdev));
  return true;
}

json VirtioBlkBdevDetach(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"ctrl"});
  Check(s.DetachVirtioBlkBdev(p.Required<std::string>("ctrl")));
  return true;
}

}  // namespace

void AddSnap4Methods(SimMethodTable& t) {
  t.Add("emulation_function_list", "emulated PCIe functions {all?: include VFs}",
        EmulationFunctionList);
  t.Add("nvme_emulation_device_attach", "hot-plug an NVMe PF {protocol:\"nvme\"} -> vuid",
        NvmeEmulationDeviceAttach);
  t.Add("emulation_device_detach_prepare", "prepare a hot-plugged PF for unplug {vuid}",
        EmulationDeviceDetachPrepare);
  t.Add("emulation_device_detach", "unplug a hot-plugged PF {vuid, force?}", EmulationDeviceDetach);

  t.Add("nvme_subsystem_create", "{nqn, serial_number?, model_number?, nn?, mnan?}",
        SubsystemCreate);
  t.Add("nvme_subsystem_list", "subsystems with namespaces and controllers {nqn?}", SubsystemList);
  t.Add("nvme_subsystem_destroy", "{nqn, force?}", SubsystemDestroy);
  t.Add("nvme_namespace_create", "{nqn, bdev_name, nsid?, uuid?, bdev_type?:\"spdk\"}",
        NamespaceCreate);
  t.Add("nvme_namespace_destroy", "{nqn, nsid}", NamespaceDestroy);

  t.Add("nvme_controller_create",
        "{nqn, pci_bdf | vuid | pf_id [vf_id], ctrl?, num_queues?, mdts?, suspended?} -> "
        "{ctrl_id}",
        NvmeControllerCreate);
  t.Add("nvme_controller_list", "NVMe controllers {nqn?, ctrl_id?}", NvmeControllerList);
  t.Add("nvme_controller_destroy", "{ctrl_id, force?}", NvmeControllerDestroy);
  t.Add("nvme_controller_suspend", "{ctrl_id}", NvmeSuspendResume(true));
  t.Add("nvme_controller_resume", "{ctrl_id}", NvmeSuspendResume(false));
  t.Add("nvme_controller_attach_ns", "{ctrl_id, nsid}", NvmeAttachDetach(true));
  t.Add("nvme_controller_detach_ns", "{ctrl_id, nsid}", NvmeAttachDetach(false));

  t.Add("virtio_blk_controller_create",
        "{pci_bdf | vuid | pf_id [vf_id], ctrl?, bdev?, num_queues?, queue_size?, seg_max?, "
        "size_max?, read_only?, suspended?, serial?} -> ctrl name",
        VirtioBlkControllerCreate);
  t.Add("virtio_blk_controller_list", "virtio-blk controllers {ctrl?}", VirtioBlkControllerList);
  t.Add("virtio_blk_controller_destroy", "{ctrl, force?}", VirtioBlkControllerDestroy);
  t.Add("virtio_blk_controller_suspend", "{ctrl}", VirtioBlkSuspendResume(true));
  t.Add("virtio_blk_controller_resume", "{ctrl}", VirtioBlkSuspendResume(false));
  t.Add("virtio_blk_controller_bdev_attach", "{ctrl, bdev}", VirtioBlkBdevAttach);
  t.Add("virtio_blk_controller_bdev_detach", "{ctrl} (controller suspended)", VirtioBlkBdevDetach);
}

}  // namespace dpustor::sim
