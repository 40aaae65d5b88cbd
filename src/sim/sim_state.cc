#include "sim/sim_state.h"

#include <cstdio>
#include <random>

#include "common/json_rpc.h"

namespace dpustor::sim {

namespace {

constexpr int kStaticPfBus = 0x25;  // NVMe PFs from function 2, then virtio-blk PFs
constexpr int kNvmeVfBus = 0x26;
constexpr int kVblkVfBus = 0x27;
constexpr int kHotplugBus = 0x28;  // one bus per hot-plugged PF (a switch port each)
constexpr int kFirstPfFunction = 2;

std::string Bdf(int bus, int linear) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02x:%02x.%d", bus & 0xff, (linear / 8) & 0x1f, linear % 8);
  return buf;
}

const char* TypeTag(FunctionType t) {
  return t == FunctionType::kNvme ? "NVME" : t == FunctionType::kVirtioBlk ? "VBLK" : "VFS";
}

const char* TypeName(FunctionType t) {
  return t == FunctionType::kNvme        ? "NVMe"
         : t == FunctionType::kVirtioBlk ? "virtio-blk"
                                         : "virtio-fs";
}

std::string NamespaceClaim(const std::string& nqn, std::uint32_t nsid) {
  return "namespace " + std::to_string(nsid) + " of " + nqn;
}

}  // namespace

Error NoSuchDevice(const std::string& detail) {
  return Error{rpc::kNotFound, "No such device: " + detail};
}
Error AlreadyExists(const std::string& detail) {
  return Error{rpc::kAlreadyExists, "File exists: " + detail};
}
Error Busy(const std::string& detail) {
  return Error{rpc::kBusy, "Device or resource busy: " + detail};
}
Error InvalidValue(const std::string& field, const std::string& problem) {
  return Error{rpc::kInvalidParams, "invalid params: '" + field + "': " + problem};
}

std::string RandomUuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xFFFFFFFFFFFF0FFFull) | 0x0000000000004000ull;  // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFull) | 0x8000000000000000ull;  // RFC 4122 variant
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", unsigned(hi >> 32),
                unsigned((hi >> 16) & 0xFFFF), unsigned(hi & 0xFFFF), unsigned(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

Status ValidateSimConfig(const SimConfig& c) {
  if (c.pfs < 0 || kFirstPfFunction + 2 * c.pfs > 256)
    return Error{rpc::kInvalidParams, "--pfs must be between 0 and 127"};
  if (c.virtio_fs && kFirstPfFunction + 3 * c.pfs > 256)
    return Error{rpc::kInvalidParams, "--pfs must be between 0 and 84 with virtio-fs"};
  if (c.vfs < 0 || c.pfs * c.vfs > 256)
    return Error{rpc::kInvalidParams, "--vfs times --pfs must be between 0 and 256"};
  if (c.serial.empty()) return Error{rpc::kInvalidParams, "the card serial must not be empty"};
  return Status::Ok();
}

// --- construction ------------------------------------------------------------------------

SimState::SimState(SimConfig config, std::unique_ptr<RbdOpener> rbd)
    : config_(std::move(config)), rbd_(std::move(rbd)) {
  for (FunctionType type : {FunctionType::kNvme, FunctionType::kVirtioBlk}) {
    int base = kFirstPfFunction + (type == FunctionType::kNvme ? 0 : config_.pfs);
    for (int pf = 0; pf < config_.pfs; ++pf) {
      EmulationFunction f;
      f.type = type;
      f.pf_index = pf;
      f.pci_bdf = Bdf(kStaticPfBus, base + pf);
      f.vhca_id = next_vhca_id_++;
      char tail[32];
      std::snprintf(tail, sizeof tail, "S0D%dF%d", (base + pf) / 8, (base + pf) % 8);
      f.vuid = config_.serial + TypeTag(type) + tail;
      f.num_vfs = config_.vfs;
      functions_.push_back(f);
      for (int vf = 0; vf < config_.vfs; ++vf) {
        EmulationFunction v;
        v.type = type;
        v.pf_index = pf;
        v.vf_index = vf;
        v.pci_bdf =
            Bdf(type == FunctionType::kNvme ? kNvmeVfBus : kVblkVfBus, pf * config_.vfs + vf);
        v.vhca_id = next_vhca_id_++;
        v.vuid = f.vuid + "VF" + std::to_string(vf + 1);
        functions_.push_back(v);
      }
    }
  }
  // VIRTIO_FS PFs after the virtio-blk ones, without VFs.
  for (int pf = 0; config_.virtio_fs && pf < config_.pfs; ++pf) {
    int linear = kFirstPfFunction + 2 * config_.pfs + pf;
    EmulationFunction f;
    f.type = FunctionType::kVirtioFs;
    f.pf_index = pf;
    f.pci_bdf = Bdf(kStaticPfBus, linear);
    f.vhca_id = next_vhca_id_++;
    char tail[32];
    std::snprintf(tail, sizeof tail, "S0D%dF%d", linear / 8, linear % 8);
    f.vuid = config_.serial + TypeTag(f.type) + tail;
    functions_.push_back(f);
  }
}

SimState::~SimState() {
  // Images before the connections they use (RbdImage holds its cluster, so any order is
  // safe; clearing explicitly keeps shutdown order obvious).
  bdevs_.clear();
  clusters_.clear();
}

std::uint64_t SimState::ticks() const {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now() - started_)
                                        .count());
}

// --- emulation functions ---------------------------------------------------------------

const EmulationFunction* SimState::FindFunction(FunctionType type, int pf_index,
                                                std::optional<int> vf_index) const {
  for (const auto& f : functions_)
    if (f.type == type && f.pf_index == pf_index && f.vf_index == vf_index) return &f;
  return nullptr;
}

const EmulationFunction* SimState::FindFunctionByBdf(std::string_view bdf) const {
  // "0000:25:00.2" -> "25:00.2": SNAP reports BDFs without the PCI domain.
  if (bdf.size() == 12 && bdf[4] == ':') bdf.remove_prefix(5);
  for (const auto& f : functions_)
    if (f.pci_bdf == bdf) return &f;
  return nullptr;
}

const EmulationFunction* SimState::FindFunctionByVuid(std::string_view vuid) const {
  for (const auto& f : functions_)
    if (f.vuid == vuid) return &f;
  return nullptr;
}

EmulationFunction* SimState::MutableFunctionByVuid(std::string_view vuid) {
  return const_cast<EmulationFunction*>(FindFunctionByVuid(vuid));
}

const EmulationFunction& SimState::HotplugFunction(FunctionType type) {
  int pf_index = 0;
  for (const auto& f : functions_)
    if (f.type == type && !f.vf_index && f.pf_index >= pf_index) pf_index = f.pf_index + 1;
  int n = hotplug_count_++;
  EmulationFunction f;
  f.type = type;
  f.pf_index = pf_index;
  f.pci_bdf = Bdf(kHotplugBus + n, 0);
  f.vhca_id = next_vhca_id_++;
  f.vuid = config_.serial + TypeTag(type) + "S1D" + std::to_string(n) + "F0";
  f.hotplugged = true;
  functions_.push_back(f);
  return functions_.back();
}

Status SimState::PrepareDetach(const std::string& vuid) {
  EmulationFunction* f = MutableFunctionByVuid(vuid);
  if (f == nullptr) return NoSuchDevice("no emulation function with vuid " + vuid);
  if (!f->hotplugged)
    return Error{rpc::kFailed, "Operation not permitted: " + vuid + " is not hot-plugged"};
  f->detach_prepared = true;
  return Status::Ok();
}

Status SimState::DetachFunction(const std::string& vuid, bool force) {
  EmulationFunction* f = MutableFunctionByVuid(vuid);
  if (f == nullptr) return NoSuchDevice("no emulation function with vuid " + vuid);
  if (!f->hotplugged)
    return Error{rpc::kFailed, "Operation not permitted: " + vuid + " is not hot-plugged"};
  if (!f->controller.empty())
    return Busy(vuid + " carries controller " + f->controller + "; destroy it first");
  if (!f->detach_prepared && !force)
    return Busy(vuid + " was not prepared for detach (call the detach-prepare method first)");
  functions_.erase(functions_.begin() + (f - functions_.data()));
  return Status::Ok();
}

Result<EmulationFunction*> SimState::FreeFunction(const std::string& vuid, FunctionType type) {
  EmulationFunction* f = MutableFunctionByVuid(vuid);
  if (f == nullptr) return NoSuchDevice("no emulation function with vuid " + vuid);
  if (f->type != type)
    return NoSuchDevice(f->pci_bdf + " is not a " + TypeName(type) + " function");
  if (!f->controller.empty())
    return Busy("function " + f->pci_bdf + " already carries controller " + f->controller);
  if (f->detach_prepared) return Busy("function " + f->pci_bdf + " is being detached");
  return f;
}

// --- subsystems and namespaces -----------------------------------------------------------

const Subsystem* SimState::FindSubsystem(const std::string& nqn) const {
  auto it = subsystems_.find(nqn);
  return it == subsystems_.end() ? nullptr : &it->second;
}

Status SimState::CreateSubsystem(Subsystem s) {
  if (s.nqn.empty()) return InvalidValue("nqn", "must not be empty");
  if (s.nqn.size() > 223) return InvalidValue("nqn", "longer than 223 bytes");
  if (s.nn == 0) return InvalidValue("nn", "must be at least 1");
  if (s.mnan == 0) return InvalidValue("mnan", "must be at least 1");
  if (subsystems_.count(s.nqn)) return AlreadyExists("subsystem " + s.nqn);
  s.namespaces.clear();
  std::string nqn = s.nqn;
  subsystems_.emplace(nqn, std::move(s));
  return Status::Ok();
}

Status SimState::DestroySubsystem(const std::string& nqn, bool force) {
  auto it = subsystems_.find(nqn);
  if (it == subsystems_.end()) return NoSuchDevice("subsystem " + nqn);
  std::vector<std::string> controllers;
  for (const auto& [name, c] : nvme_)
    if (c.nqn == nqn) controllers.push_back(name);
  if (!force) {
    if (!controllers.empty())
      return Busy("subsystem " + nqn + " still has controller " + controllers.front());
    if (!it->second.namespaces.empty())
      return Busy("subsystem " + nqn + " still has " +
                  std::to_string(it->second.namespaces.size()) + " namespace(s)");
  }
  for (const auto& name : controllers) {
    Status s = DestroyNvmeController(name, /*force=*/true);
    (void)s;  // cannot fail: the controller exists and force detaches its namespaces
  }
  subsystems_.erase(it);
  return Status::Ok();
}

Result<std::uint32_t> SimState::CreateNamespace(const std::string& nqn, std::uint32_t nsid,
                                                const std::string& bdev, std::string uuid) {
  auto it = subsystems_.find(nqn);
  if (it == subsystems_.end()) return NoSuchDevice("subsystem " + nqn);
  Subsystem& s = it->second;
  if (!bdevs_.count(bdev)) return NoSuchDevice("bdev " + bdev);
  if (std::string claim = BdevClaim(bdev); !claim.empty())
    return Busy("bdev " + bdev + " is already claimed by " + claim);
  if (s.namespaces.size() >= s.mnan)
    return Error{rpc::kFailed, "No space left on device: subsystem " + nqn +
                                   " has mnan=" + std::to_string(s.mnan) + " namespaces"};
  if (nsid == 0) {
    nsid = 1;
    while (s.namespaces.count(nsid)) ++nsid;
  }
  if (nsid > s.nn)
    return InvalidValue(
        "nsid", std::to_string(nsid) + " exceeds the subsystem's nn=" + std::to_string(s.nn));
  if (s.namespaces.count(nsid))
    return AlreadyExists("namespace " + std::to_string(nsid) + " in " + nqn);
  if (!uuid.empty()) {
    for (const auto& [_, sub] : subsystems_)
      for (const auto& [__, ns] : sub.namespaces)
        if (ns.uuid == uuid) return AlreadyExists("a namespace with uuid " + uuid);
  }
  Namespace ns;
  ns.nsid = nsid;
  ns.bdev = bdev;
  ns.uuid = uuid.empty() ? bdevs_.at(bdev).uuid : std::move(uuid);
  s.namespaces.emplace(nsid, std::move(ns));
  return nsid;
}

Status SimState::DestroyNamespace(const std::string& nqn, std::uint32_t nsid) {
  auto it = subsystems_.find(nqn);
  if (it == subsystems_.end()) return NoSuchDevice("subsystem " + nqn);
  auto ns = it->second.namespaces.find(nsid);
  if (ns == it->second.namespaces.end())
    return NoSuchDevice("namespace " + std::to_string(nsid) + " in " + nqn);
  if (!ns->second.controller.empty())
    return Busy("namespace " + std::to_string(nsid) + " is attached to controller " +
                ns->second.controller);
  it->second.namespaces.erase(ns);
  return Status::Ok();
}

// --- NVMe controllers --------------------------------------------------------------------

bool SimState::ControllerNameTaken(const std::string& name) const {
  return nvme_.count(name) != 0 || vblk_.count(name) != 0;
}

const NvmeController* SimState::FindNvmeController(const std::string& name) const {
  auto it = nvme_.find(name);
  return it == nvme_.end() ? nullptr : &it->second;
}

const NvmeController* SimState::FindNvmeController(const std::string& nqn,
                                                   std::uint16_t cntlid) const {
  for (const auto& [_, c] : nvme_)
    if (c.nqn == nqn && c.cntlid == cntlid) return &c;
  return nullptr;
}

Result<NvmeController*> SimState::MutableNvme(const std::string& name) {
  auto it = nvme_.find(name);
  if (it == nvme_.end()) return NoSuchDevice("NVMe controller " + name);
  return &it->second;
}

Result<const NvmeController*> SimState::CreateNvmeController(const NvmeControllerSpec& spec) {
  if (spec.name.empty()) return InvalidValue("ctrl", "must not be empty");
  auto sub = subsystems_.find(spec.nqn);
  if (sub == subsystems_.end()) return NoSuchDevice("subsystem " + spec.nqn);
  auto fn = FreeFunction(spec.vuid, FunctionType::kNvme);
  if (!fn.ok()) return fn.error();
  if (ControllerNameTaken(spec.name)) return AlreadyExists("controller " + spec.name);
  if (spec.num_queues == 0) return InvalidValue("num_queues", "must be at least 1");

  NvmeController c;
  c.name = spec.name;
  c.nqn = spec.nqn;
  c.cntlid = sub->second.next_cntlid++;
  c.vuid = spec.vuid;
  c.suspended = spec.suspended;
  c.num_queues = spec.num_queues;
  c.mdts = spec.mdts;
  (*fn)->controller = spec.name;
  return &nvme_.emplace(spec.name, std::move(c)).first->second;
}

Status SimState::DestroyNvmeController(const std::string& name, bool force) {
  auto c = MutableNvme(name);
  if (!c.ok()) return c.error();
  auto attached = AttachedNamespaces(name);
  if (!attached.empty() && !force)
    return Busy("controller " + name + " has " + std::to_string(attached.size()) +
                " attached namespace(s); detach them or use force");
  for (auto& [_, ns] : subsystems_.at((*c)->nqn).namespaces)
    if (ns.controller == name) ns.controller.clear();
  if (EmulationFunction* f = MutableFunctionByVuid((*c)->vuid)) f->controller.clear();
  nvme_.erase(name);
  return Status::Ok();
}

Status SimState::SuspendNvmeController(const std::string& name) {
  auto c = MutableNvme(name);
  if (!c.ok()) return c.error();
  (*c)->suspended = true;
  return Status::Ok();
}

Status SimState::ResumeNvmeController(const std::string& name) {
  auto c = MutableNvme(name);
  if (!c.ok()) return c.error();
  (*c)->suspended = false;
  return Status::Ok();
}

Status SimState::AttachNamespace(const std::string& ctrl, std::uint32_t nsid) {
  auto c = MutableNvme(ctrl);
  if (!c.ok()) return c.error();
  Subsystem& s = subsystems_.at((*c)->nqn);
  auto ns = s.namespaces.find(nsid);
  if (ns == s.namespaces.end())
    return NoSuchDevice("namespace " + std::to_string(nsid) + " in " + s.nqn);
  if (ns->second.controller == ctrl)
    return AlreadyExists("namespace " + std::to_string(nsid) + " is already attached to " + ctrl);
  if (!ns->second.controller.empty())
    return Busy("namespace " + std::to_string(nsid) + " is attached to controller " +
                ns->second.controller + " (namespaces are not shared between controllers)");
  ns->second.controller = ctrl;
  return Status::Ok();
}

Status SimState::DetachNamespace(const std::string& ctrl, std::uint32_t nsid) {
  auto c = MutableNvme(ctrl);
  if (!c.ok()) return c.error();
  Subsystem& s = subsystems_.at((*c)->nqn);
  auto ns = s.namespaces.find(nsid);
  if (ns == s.namespaces.end() || ns->second.controller != ctrl)
    return NoSuchDevice("namespace " + std::to_string(nsid) + " is not attached to " + ctrl);
  ns->second.controller.clear();
  return Status::Ok();
}

std::vector<const Namespace*> SimState::AttachedNamespaces(const std::string& ctrl) const {
  std::vector<const Namespace*> out;
  const NvmeController* c = FindNvmeController(ctrl);
  if (c == nullptr) return out;
  for (const auto& [_, ns] : subsystems_.at(c->nqn).namespaces)
    if (ns.controller == ctrl) out.push_back(&ns);
  return out;
}

// --- virtio-blk controllers --------------------------------------------------------------

const VirtioBlkController* SimState::FindVirtioBlkController(const std::string& name) const {
  auto it = vblk_.find(name);
  return it == vblk_.end() ? nullptr : &it->second;
}

Result<VirtioBlkController*> SimState::MutableVblk(const std::string& name) {
  auto it = vblk_.find(name);
  if (it == vblk_.end()) return NoSuchDevice("virtio-blk controller " + name);
  return &it->second;
}

Result<const VirtioBlkController*> SimState::CreateVirtioBlkController(
    const VirtioBlkControllerSpec& spec) {
  if (spec.name.empty()) return InvalidValue("ctrl", "must not be empty");
  auto fn = FreeFunction(spec.vuid, FunctionType::kVirtioBlk);
  if (!fn.ok()) return fn.error();
  if (ControllerNameTaken(spec.name)) return AlreadyExists("controller " + spec.name);
  if (!spec.bdev.empty()) {
    if (!bdevs_.count(spec.bdev)) return NoSuchDevice("bdev " + spec.bdev);
    if (std::string claim = BdevClaim(spec.bdev); !claim.empty())
      return Busy("bdev " + spec.bdev + " is already claimed by " + claim);
  }
  if (spec.num_queues == 0) return InvalidValue("num_queues", "must be at least 1");
  if (spec.queue_size == 0 || (spec.queue_size & (spec.queue_size - 1)) != 0)
    return InvalidValue("queue_size", "must be a power of two");

  VirtioBlkController c;
  c.name = spec.name;
  c.vuid = spec.vuid;
  c.bdev = spec.bdev;
  c.suspended = spec.suspended;
  c.num_queues = spec.num_queues;
  c.queue_size = spec.queue_size;
  c.seg_max = spec.seg_max;
  c.size_max = spec.size_max;
  c.read_only = spec.read_only;
  c.serial = spec.serial;
  (*fn)->controller = spec.name;
  return &vblk_.emplace(spec.name, std::move(c)).first->second;
}

Status SimState::DestroyVirtioBlkController(const std::string& name) {
  auto c = MutableVblk(name);
  if (!c.ok()) return c.error();
  if (EmulationFunction* f = MutableFunctionByVuid((*c)->vuid)) f->controller.clear();
  vblk_.erase(name);
  return Status::Ok();
}

Status SimState::SuspendVirtioBlkController(const std::string& name) {
  auto c = MutableVblk(name);
  if (!c.ok()) return c.error();
  (*c)->suspended = true;
  return Status::Ok();
}

Status SimState::ResumeVirtioBlkController(const std::string& name) {
  auto c = MutableVblk(name);
  if (!c.ok()) return c.error();
  (*c)->suspended = false;
  return Status::Ok();
}

Status SimState::AttachVirtioBlkBdev(const std::string& name, const std::string& bdev) {
  auto c = MutableVblk(name);
  if (!c.ok()) return c.error();
  if (!(*c)->bdev.empty())
    return Busy("controller " + name + " already has bdev " + (*c)->bdev + " attached");
  if (!bdevs_.count(bdev)) return NoSuchDevice("bdev " + bdev);
  if (std::string claim = BdevClaim(bdev); !claim.empty())
    return Busy("bdev " + bdev + " is already claimed by " + claim);
  (*c)->bdev = bdev;
  return Status::Ok();
}

Status SimState::DetachVirtioBlkBdev(const std::string& name) {
  auto c = MutableVblk(name);
  if (!c.ok()) return c.error();
  if ((*c)->bdev.empty()) return NoSuchDevice("controller " + name + " has no bdev attached");
  if (!(*c)->suspended)
    return Busy("controller " + name + " is running; suspend it before detaching its bdev");
  (*c)->bdev.clear();
  return Status::Ok();
}

// --- bdevs -------------------------------------------------------------------------------

const Bdev* SimState::FindBdev(const std::string& name) const {
  auto it = bdevs_.find(name);
  return it == bdevs_.end() ? nullptr : &it->second;
}

std::string SimState::BdevClaim(const std::string& name) const {
  for (const auto& [nqn, s] : subsystems_)
    for (const auto& [nsid, ns] : s.namespaces)
      if (ns.bdev == name) return NamespaceClaim(nqn, nsid);
  for (const auto& [cname, c] : vblk_)
    if (c.bdev == name) return "virtio-blk controller " + cname;
  return "";
}

Status SimState::CheckNewBdevName(const std::string& name) const {
  if (name.empty()) return InvalidValue("name", "must not be empty");
  if (bdevs_.count(name)) return AlreadyExists("bdev " + name);
  return Status::Ok();
}

std::string SimState::AutoBdevName(const std::string& prefix) const {
  for (int n = 0;; ++n) {
    std::string name = prefix + std::to_string(n);
    if (!bdevs_.count(name)) return name;
  }
}

Result<std::string> SimState::CreateNullBdev(const std::string& name, std::uint64_t num_blocks,
                                             std::uint32_t block_size, std::string uuid) {
  if (Status s = CheckNewBdevName(name); !s.ok()) return s.error();
  Bdev b;
  b.name = name;
  b.kind = BdevKind::kNull;
  b.block_size = block_size;
  b.num_blocks = num_blocks;
  b.uuid = uuid.empty() ? RandomUuid() : std::move(uuid);
  bdevs_.emplace(name, std::move(b));
  return name;
}

Result<std::string> SimState::CreateMallocBdev(const std::string& name, std::uint64_t num_blocks,
                                               std::uint32_t block_size, std::string uuid) {
  std::string n = name.empty() ? AutoBdevName("Malloc") : name;
  if (Status s = CheckNewBdevName(n); !s.ok()) return s.error();
  Bdev b;
  b.name = n;
  b.kind = BdevKind::kMalloc;
  b.block_size = block_size;
  b.num_blocks = num_blocks;
  b.uuid = uuid.empty() ? RandomUuid() : std::move(uuid);
  bdevs_.emplace(n, std::move(b));
  return n;
}

Result<std::string> SimState::CreateRbdBdev(const RbdBdevSpec& spec) {
  std::string name = spec.name.empty() ? AutoBdevName("Ceph") : spec.name;
  if (Status s = CheckNewBdevName(name); !s.ok()) return s.error();

  std::shared_ptr<RbdCluster> cluster;
  std::shared_ptr<RbdCluster> own;
  if (!spec.cluster_name.empty()) {
    auto it = clusters_.find(spec.cluster_name);
    if (it == clusters_.end()) return NoSuchDevice("rbd cluster " + spec.cluster_name);
    cluster = it->second.connection;
  } else {
    auto c = rbd_->Connect(spec.own_config);
    if (!c.ok()) return c.error();
    own = *c;
    cluster = own;
  }
  auto image = cluster->Open(spec.pool_name, spec.rbd_name);
  if (!image.ok()) return image.error();
  auto size = (*image)->Size();
  if (!size.ok()) return size.error();
  if (*size < spec.block_size)
    return Error{rpc::kFailed, "image " + spec.pool_name + "/" + spec.rbd_name + " (" +
                                   std::to_string(*size) + " bytes) is smaller than one block"};

  Bdev b;
  b.name = name;
  b.kind = BdevKind::kRbd;
  b.block_size = spec.block_size;
  b.num_blocks = *size / spec.block_size;
  b.uuid = spec.uuid.empty() ? RandomUuid() : spec.uuid;
  b.pool_name = spec.pool_name;
  b.rbd_name = spec.rbd_name;
  b.cluster_name = spec.cluster_name;
  b.connection = std::move(own);
  b.image = std::move(*image);
  bdevs_.emplace(name, std::move(b));
  return name;
}

Status SimState::DeleteBdev(const std::string& name, BdevKind kind) {
  auto it = bdevs_.find(name);
  if (it == bdevs_.end() || it->second.kind != kind) return NoSuchDevice("bdev " + name);
  if (std::string claim = BdevClaim(name); !claim.empty())
    return Busy("bdev " + name + " is claimed by " + claim);
  bdevs_.erase(it);  // closes an rbd image (and its own connection)
  return Status::Ok();
}

void SimState::RefreshRbdSizes() {
  for (auto& [_, b] : bdevs_) {
    if (b.kind != BdevKind::kRbd || !b.image) continue;
    auto size = b.image->Size();
    if (size.ok()) b.num_blocks = *size / b.block_size;
  }
}

Status SimState::RegisterRbdCluster(const std::string& name, const RbdClusterConfig& config) {
  if (name.empty()) return InvalidValue("name", "must not be empty");
  if (clusters_.count(name)) return AlreadyExists("rbd cluster " + name);
  auto c = rbd_->Connect(config);
  if (!c.ok()) return c.error();
  clusters_.emplace(name, RegisteredCluster{name, config, *c});
  return Status::Ok();
}

Status SimState::UnregisterRbdCluster(const std::string& name) {
  auto it = clusters_.find(name);
  if (it == clusters_.end()) return NoSuchDevice("rbd cluster " + name);
  for (const auto& [bname, b] : bdevs_)
    if (b.kind == BdevKind::kRbd && b.cluster_name == name)
      return Busy("rbd cluster " + name + " is used by bdev " + bname);
  clusters_.erase(it);
  return Status::Ok();
}

}  // namespace dpustor::sim
