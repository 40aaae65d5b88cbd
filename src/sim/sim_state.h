// SimState is the model behind dpustor-snap-sim: what a BlueField running SNAP holds. It knows
// emulated PCIe functions (static PFs and their VFs, plus hot-plugged PFs), NVMe subsystems
// with their namespaces, NVMe and virtio-blk controllers on those functions, SPDK bdevs (null,
// malloc, rbd) and registered Ceph clusters. It is dialect-neutral: the SNAP-4 and SNAP 3.x
// method tables decode their own parameter names and render their own result shapes, and call
// the operations below, which enforce what a real SNAP enforces (names unique, a bdev claimed
// once, a function carrying one controller, nothing destroyed while something uses it).
//
// Every mutating operation either succeeds completely or returns an Error and changes nothing.
// Error codes: kNotFound ("No such device: ..."), kAlreadyExists ("File exists: ..."),
// kBusy ("Device or resource busy: ..."), kInvalidParams for a value the model rejects,
// kFailed (Ceph failures, with librados' errno text).
//
// Chosen semantics (a real SNAP is not documented on these points):
//  - suspend of a suspended controller and resume of a running one succeed and change nothing,
//    so a retried create -> attach -> resume sequence converges;
//  - a namespace is attached to at most one controller (SNAP-4's documented limit), and is
//    destroyed only when no controller has it attached;
//  - a virtio-blk controller's bdev may be detached only while the controller is suspended;
//  - destroying an NVMe controller with attached namespaces needs `force` (which detaches them);
//  - a hot-plugged function can be detached only without a controller, after a detach-prepare
//    unless forced; static functions cannot be detached.
//
// Thread-safety: none. The simulator runs every request on one strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sim/rbd_opener.h"

namespace dpustor::sim {

enum class FunctionType { kNvme, kVirtioBlk, kVirtioFs };

struct EmulationFunction {
  FunctionType type = FunctionType::kNvme;
  int pf_index = 0;             // among the PFs of this type, hot-plugged ones included
  std::optional<int> vf_index;  // set for a VF
  std::string pci_bdf;          // host-side "bb:dd.f", the form SNAP reports
  int vhca_id = 0;
  std::string vuid;
  bool hotplugged = false;
  bool detach_prepared = false;
  int num_vfs = 0;         // PFs only
  std::string controller;  // name of the controller on this function, "" if none
};

struct Namespace {
  std::uint32_t nsid = 0;
  std::string bdev;
  std::string uuid;
  std::string controller;  // the controller it is attached to, "" if none
};

struct Subsystem {
  std::string nqn;
  std::string serial_number;
  std::string model_number;
  std::uint32_t nn = 0xFFFFFFFE;  // largest valid nsid
  std::uint32_t mnan = 1024;      // most namespaces
  std::map<std::uint32_t, Namespace> namespaces;
  std::uint16_t next_cntlid = 0;
};

struct NvmeController {
  std::string name;  // SNAP-4 "ctrl_id", SNAP 3 "name"
  std::string nqn;
  std::uint16_t cntlid = 0;
  std::string vuid;  // of its function
  bool suspended = false;
  std::uint32_t num_queues = 0;
  std::uint32_t mdts = 0;
};

struct VirtioBlkController {
  std::string name;
  std::string vuid;  // of its function
  std::string bdev;  // "" when none is attached
  bool suspended = false;
  std::uint32_t num_queues = 0;
  std::uint32_t queue_size = 0;
  std::uint32_t seg_max = 0;
  std::uint32_t size_max = 0;
  bool read_only = false;
  std::string serial;
};

enum class BdevKind { kNull, kMalloc, kRbd };

// SPDK's per-bdev counters. The simulator moves no data, so they only ever read zero; they
// are kept so bdev_get_iostat has the real shape.
struct IoStat {
  std::uint64_t bytes_read = 0;
  std::uint64_t num_read_ops = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t num_write_ops = 0;
  std::uint64_t bytes_unmapped = 0;
  std::uint64_t num_unmap_ops = 0;
};

struct Bdev {
  std::string name;
  BdevKind kind = BdevKind::kNull;
  std::uint32_t block_size = 512;
  std::uint64_t num_blocks = 0;
  std::string uuid;
  IoStat iostat;
  // rbd only
  std::string pool_name;
  std::string rbd_name;
  std::string cluster_name;                // "" when the bdev has its own connection
  std::shared_ptr<RbdCluster> connection;  // own connection (no cluster_name)
  std::unique_ptr<RbdImage> image;
};

struct RegisteredCluster {
  std::string name;
  RbdClusterConfig config;
  std::shared_ptr<RbdCluster> connection;
};

struct SimConfig {
  int pfs = 2;                          // static PFs per emulation type (NVMe, virtio-blk)
  int vfs = 4;                          // VFs per PF
  std::string serial = "MT2334X00000";  // the card's serial, the prefix of every vuid
  std::string emulation_manager = "mlx5_0";
  // A BlueField-3 whose firmware enables virtio-fs emulation (VIRTIO_FS_EMULATION_ENABLE):
  // `pfs` static VIRTIO_FS PFs (no VFs: SNAP's virtio-fs has no SR-IOV) and the SNAP-4
  // virtio_fs_* / fsdev_* methods.
  bool virtio_fs = false;
};

// Checks a SimConfig; the layout must fit the PCI buses the simulator lays functions on.
Status ValidateSimConfig(const SimConfig& config);

struct NvmeControllerSpec {
  std::string name;
  std::string nqn;
  std::string vuid;
  bool suspended = false;
  std::uint32_t num_queues = 32;
  std::uint32_t mdts = 7;
};

struct VirtioBlkControllerSpec {
  std::string name;
  std::string vuid;
  std::string bdev;  // may be empty
  bool suspended = false;
  std::uint32_t num_queues = 1;
  std::uint32_t queue_size = 128;
  std::uint32_t seg_max = 1;
  std::uint32_t size_max = 4096;
  bool read_only = false;
  std::string serial;
};

struct RbdBdevSpec {
  std::string name;  // "" -> "Ceph<N>"
  std::string pool_name;
  std::string rbd_name;
  std::uint32_t block_size = 512;
  std::string cluster_name;     // a registered cluster, or "" for a connection of its own
  RbdClusterConfig own_config;  // used when cluster_name is empty
  std::string uuid;             // "" -> random
};

// SPDK file-system devices (the backends of SNAP's virtio-fs devices).
struct Fsdev {
  std::string name;
  std::string kind;        // "nfs" or "aio"
  std::string server;      // nfs
  std::string exportname;  // nfs
  std::string root_path;   // aio
};

struct VirtioFsDeviceSpec {
  std::string dev_name;
  std::string transport_name;
  std::string tag;
  std::string fsdev;
  std::uint32_t num_request_queues = 1;
  std::uint32_t queue_size = 128;
  std::string driver_platform = "x86_64";
};

// The counters virtio_fs_device_get_stat reports. The simulator moves no data: they stay zero.
struct VirtioFsStat {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;
};

struct VirtioFsDevice {
  VirtioFsDeviceSpec spec;
  std::string manager;  // set by virtio_fs_doca_device_modify
  std::string vuid;     // the VIRTIO_FS function it is bound to, "" if none yet
  bool started = false;
  bool hotplugged = false;
  VirtioFsStat stat;
};

class SimState {
 public:
  // REQUIRES: ValidateSimConfig(config).ok()
  SimState(SimConfig config, std::unique_ptr<RbdOpener> rbd);
  SimState(const SimState&) = delete;
  SimState& operator=(const SimState&) = delete;
  ~SimState();

  const SimConfig& config() const { return config_; }

  // --- emulation functions -------------------------------------------------------------
  const std::vector<EmulationFunction>& functions() const { return functions_; }
  const EmulationFunction* FindFunction(FunctionType type, int pf_index,
                                        std::optional<int> vf_index) const;
  // Accepts "bb:dd.f" and "dddd:bb:dd.f".
  const EmulationFunction* FindFunctionByBdf(std::string_view bdf) const;
  const EmulationFunction* FindFunctionByVuid(std::string_view vuid) const;
  // Plugs a new PF of `type`; returns it.
  const EmulationFunction& HotplugFunction(FunctionType type);
  Status PrepareDetach(const std::string& vuid);
  Status DetachFunction(const std::string& vuid, bool force);

  // --- NVMe subsystems and namespaces --------------------------------------------------
  const std::map<std::string, Subsystem>& subsystems() const { return subsystems_; }
  const Subsystem* FindSubsystem(const std::string& nqn) const;
  Status CreateSubsystem(Subsystem subsystem);
  // Without `force`, fails while the subsystem has controllers or namespaces; with it,
  // destroys them too (detaching first).
  Status DestroySubsystem(const std::string& nqn, bool force);
  // nsid 0 picks the lowest free one. Returns the nsid.
  Result<std::uint32_t> CreateNamespace(const std::string& nqn, std::uint32_t nsid,
                                        const std::string& bdev, std::string uuid);
  Status DestroyNamespace(const std::string& nqn, std::uint32_t nsid);

  // --- NVMe controllers ----------------------------------------------------------------
  const std::map<std::string, NvmeController>& nvme_controllers() const { return nvme_; }
  const NvmeController* FindNvmeController(const std::string& name) const;
  const NvmeController* FindNvmeController(const std::string& nqn, std::uint16_t cntlid) const;
  Result<const NvmeController*> CreateNvmeController(const NvmeControllerSpec& spec);
  Status DestroyNvmeController(const std::string& name, bool force);
  Status SuspendNvmeController(const std::string& name);
  Status ResumeNvmeController(const std::string& name);
  Status AttachNamespace(const std::string& ctrl, std::uint32_t nsid);
  Status DetachNamespace(const std::string& ctrl, std::uint32_t nsid);
  // The namespaces attached to `ctrl`, by nsid.
  std::vector<const Namespace*> AttachedNamespaces(const std::string& ctrl) const;

  // --- virtio-blk controllers ----------------------------------------------------------
  const std::map<std::string, VirtioBlkController>& virtio_blk_controllers() const { return vblk_; }
  const VirtioBlkController* FindVirtioBlkController(const std::string& name) const;
  Result<const VirtioBlkController*> CreateVirtioBlkController(const VirtioBlkControllerSpec& spec);
  Status DestroyVirtioBlkController(const std::string& name);
  Status SuspendVirtioBlkController(const std::string& name);
  Status ResumeVirtioBlkController(const std::string& name);
  Status AttachVirtioBlkBdev(const std::string& name, const std::string& bdev);
  Status DetachVirtioBlkBdev(const std::string& name);

  // True when `name` names any controller (NVMe or virtio-blk).
  bool ControllerNameTaken(const std::string& name) const;

  // --- bdevs and Ceph clusters ---------------------------------------------------------
  const std::map<std::string, Bdev>& bdevs() const { return bdevs_; }
  const Bdev* FindBdev(const std::string& name) const;
  // What claims a bdev ("namespace 1 of nqn..." / "virtio-blk controller X"), "" if free.
  std::string BdevClaim(const std::string& name) const;
  // `name` empty -> "<prefix><N>" (SPDK's automatic names). Returns the name.
  Result<std::string> CreateNullBdev(const std::string& name, std::uint64_t num_blocks,
                                     std::uint32_t block_size, std::string uuid);
  Result<std::string> CreateMallocBdev(const std::string& name, std::uint64_t num_blocks,
                                       std::uint32_t block_size, std::string uuid);
  // Opens the image through RbdOpener; on any failure nothing is created.
  Result<std::string> CreateRbdBdev(const RbdBdevSpec& spec);
  // Deletes a bdev of `kind` (a bdev of another kind counts as missing, as in SPDK).
  Status DeleteBdev(const std::string& name, BdevKind kind);
  // Re-reads every rbd bdev's size from its image (a failed read keeps the old size).
  void RefreshRbdSizes();

  const std::map<std::string, RegisteredCluster>& rbd_clusters() const { return clusters_; }
  Status RegisterRbdCluster(const std::string& name, const RbdClusterConfig& config);
  Status UnregisterRbdCluster(const std::string& name);

  // --- virtio-fs (virtio_fs_state.cc; SNAP-4 with config().virtio_fs only) ---------------
  // Transport "DOCA" and emulation managers must exist, and the transport be started, before
  // a device starts. Creating what exists fails with "File exists".
  Status CreateVirtioFsTransport(const std::string& name);
  Status CreateVirtioFsManager(const std::string& manager);
  Status StartVirtioFsTransport(const std::string& name);
  // A new hot-plugged VIRTIO_FS PF on `manager`; returns it.
  Result<const EmulationFunction*> CreateVirtioFsFunction(const std::string& manager);
  const std::map<std::string, Fsdev>& fsdevs() const { return fsdevs_; }
  Status CreateFsdev(Fsdev fsdev);
  // Fails while a device uses it; a fsdev of another kind counts as missing.
  Status DeleteFsdev(const std::string& name, const std::string& kind);
  const std::map<std::string, VirtioFsDevice>& virtio_fs_devices() const { return fs_devices_; }
  Status CreateVirtioFsDevice(const VirtioFsDeviceSpec& spec);
  // Binds a stopped device to a VIRTIO_FS function of `manager`.
  Status ModifyVirtioFsDevice(const std::string& dev_name, const std::string& manager,
                              const std::string& vuid);
  Status StartVirtioFsDevice(const std::string& dev_name);
  Status StopVirtioFsDevice(const std::string& dev_name);
  Status HotplugVirtioFsDevice(const std::string& dev_name);
  // Only a stopped device; releases its function.
  Status DestroyVirtioFsDevice(const std::string& dev_name);

  // Nanoseconds since the simulator started: the clock of bdev_get_iostat's "ticks".
  std::uint64_t ticks() const;

 private:
  EmulationFunction* MutableFunctionByVuid(std::string_view vuid);
  Result<EmulationFunction*> FreeFunction(const std::string& vuid, FunctionType type);
  Result<NvmeController*> MutableNvme(const std::string& name);
  Result<VirtioBlkController*> MutableVblk(const std::string& name);
  Status CheckNewBdevName(const std::string& name) const;
  std::string AutoBdevName(const std::string& prefix) const;

  SimConfig config_;
  std::unique_ptr<RbdOpener> rbd_;
  std::vector<EmulationFunction> functions_;
  int next_vhca_id_ = 2;
  int hotplug_count_ = 0;
  std::map<std::string, Subsystem> subsystems_;
  std::map<std::string, NvmeController> nvme_;
  std::map<std::string, VirtioBlkController> vblk_;
  std::map<std::string, Bdev> bdevs_;
  std::map<std::string, RegisteredCluster> clusters_;
  std::map<std::string, bool> fs_transports_;  // name -> started
  std::vector<std::string> fs_managers_;
  std::map<std::string, Fsdev> fsdevs_;
  std::map<std::string, VirtioFsDevice> fs_devices_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

// Errors in the simulator's wording (the strerror text SPDK uses, then the detail).
Error NoSuchDevice(const std::string& detail);
Error AlreadyExists(const std::string& detail);
Error Busy(const std::string& detail);
Error InvalidValue(const std::string& field, const std::string& problem);

// A random RFC 4122 version 4 UUID in lower-case text form.
std::string RandomUuid();

}  // namespace dpustor::sim
