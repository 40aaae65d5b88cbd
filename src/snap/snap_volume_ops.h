// SnapVolumeOps is how the DPU agent changes SNAP: the steps that build and tear down a block
// attachment (Ceph cluster registration, RBD bdev, NVMe subsystem / namespace / controller,
// virtio-blk controller), each one typed call that hides which dialect answers. Where a dialect
// has no such step it is mapped onto the dialect's concept or skipped:
//  - SNAP 3 has no namespace object of its own: AttachNamespace creates it (with the bdev) and
//    DetachNamespace destroys it, so CreateNamespace / DestroyNamespace do nothing there;
//  - SNAP 3 names controllers itself ("NvmeEmu0pf0"): the Create calls return the name SNAP
//    chose; SNAP-4 takes ours;
//  - SNAP 3 cannot create an NVMe controller suspended nor suspend / resume one: those steps
//    do nothing there (names_controllers(), separate_namespaces(), can_suspend_nvme() say so).
// It also reads what SNAP holds of dpustor's (ReadObjects) and knows the ownership rules:
// dpustor owns exactly the objects named "dpustor-..." and the NVMe subsystems whose NQN starts
// with "nqn.2024-11.io.dpustor:". Because SNAP 3 names controllers itself, a controller is also
// owned when it serves an owned subsystem (NVMe) or an owned bdev (virtio-blk).
//
// Blocking, like SnapClient; not thread-safe (one caller at a time, on a SnapClient no one
// else uses concurrently). Errors name the SNAP method: "nvme_controller_create: File exists:
// ...". Every call but the read-only ones counts as a mutation (mutations()).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "snap/snap_client.h"
#include "snap/snap_dialect.h"

namespace dpustor::snap {

// --- naming and ownership ----------------------------------------------------------------

inline constexpr std::string_view kOwnedPrefix = "dpustor-";
inline constexpr std::string_view kOwnedNqnPrefix = "nqn.2024-11.io.dpustor:";

bool IsOwnedName(std::string_view name);
bool IsOwnedNqn(std::string_view nqn);
// "dpustor-<volume>" and "nqn.2024-11.io.dpustor:<volume>".
std::string OwnedName(std::string_view volume);
std::string OwnedNqn(std::string_view volume);

// The error every RBD attachment gets when SNAP has no RBD bdev module.
extern const char* const kNoRbdModuleError;
// Whether an rpc_get_methods result lists bdev_rbd_create.
bool HasRbdModule(const std::vector<std::string>& methods);

// An emulated PCIe function as the spec and SNAP address it: a PF, or a VF of a PF.
struct FunctionAddress {
  int pf_index = 0;
  std::optional<int> vf_index;
  bool operator==(const FunctionAddress&) const = default;
  auto operator<=>(const FunctionAddress&) const = default;
};
// "pf 0" / "pf 0 vf 2".
std::string Describe(const FunctionAddress& f);

// --- what SNAP holds (from one CollectStatus snapshot) ------------------------------------

struct SnapFunction {
  std::string type;  // "nvme" | "virtio_blk" | ...
  FunctionAddress address;
  std::string controller;  // "" when none
};

struct SnapBdev {
  std::string name;
  std::string driver;  // "rbd", "null", ...
  std::string pool;    // rbd only
  std::string image;
  std::string cluster;  // the registered cluster it uses ("" for its own connection)
  std::uint64_t size_bytes = 0;
};

struct SnapNamespace {
  std::uint32_t nsid = 0;
  std::string bdev;
  std::vector<std::string> controllers;  // attached to
};

struct SnapSubsystem {
  std::string nqn;
  std::vector<SnapNamespace> namespaces;
};

struct SnapNvmeController {
  std::string name;
  std::string nqn;
  std::optional<FunctionAddress> function;
  std::optional<bool> suspended;  // unknown in SNAP 3
  std::vector<std::uint32_t> namespaces;
};

struct SnapVirtioBlkController {
  std::string name;
  std::optional<FunctionAddress> function;
  std::string bdev;  // "" when none
  std::optional<bool> suspended;
};

// Every emulation function (to find collisions) and dpustor's own objects, nothing else.
struct SnapObjects {
  std::vector<SnapFunction> functions;
  std::vector<SnapBdev> bdevs;
  std::vector<SnapSubsystem> subsystems;
  std::vector<SnapNvmeController> nvme_controllers;
  std::vector<SnapVirtioBlkController> virtio_blk_controllers;

  const SnapFunction* FindFunction(std::string_view type, const FunctionAddress& f) const;
};

// Reads a SnapClient::CollectStatus() snapshot. Fails when SNAP was unreachable or a section
// other than iostat could not be read: acting on a partial picture could re-create or miss
// objects.
Result<SnapObjects> ParseSnapObjects(const nlohmann::json& status);

// The volume an owned object belongs to: the name after "dpustor-" / the NQN's suffix; for a
// SNAP-named controller, its subsystem's (NVMe) or its bdev's (virtio-blk) volume.
std::string VolumeOf(const SnapBdev& b);
std::string VolumeOf(const SnapSubsystem& s);
std::string VolumeOf(const SnapNvmeController& c);
std::string VolumeOf(const SnapVirtioBlkController& c);

struct RbdClusterRegistration {
  std::string name;
  std::string config_file;
  std::string user_id;
  std::string key_file;
  bool operator==(const RbdClusterRegistration&) const = default;
};

// --- the operations ----------------------------------------------------------------------

class SnapVolumeOps {
 public:
  explicit SnapVolumeOps(SnapClient& client);
  SnapVolumeOps(const SnapVolumeOps&) = delete;
  SnapVolumeOps& operator=(const SnapVolumeOps&) = delete;

  // Probes the dialect, the method list (RBD module) and, for SNAP 3, the emulation managers.
  // Call at the start of every pass: a restarted SNAP may be another version.
  Status Prepare();

  // REQUIRES (all below): Prepare() succeeded.
  Dialect dialect() const { return dialect_; }
  bool has_rbd_module() const { return has_rbd_; }
  bool names_controllers() const;    // Create* takes our controller name
  bool separate_namespaces() const;  // namespaces are created / destroyed on their own
  bool can_suspend_nvme() const;     // NVMe controllers can be created suspended and resumed

  // A snapshot of SNAP (without iostat), parsed. `raw`, if given, receives the snapshot.
  Result<SnapObjects> ReadObjects(nlohmann::json* raw = nullptr);

  // Registered Ceph clusters; kMethodNotFound if SNAP cannot list them.
  Result<std::vector<RbdClusterRegistration>> ListRbdClusters();
  // Registers `want` unless it is registered alike. A registration that differs, or any when
  // `refresh` (its files changed), is replaced when no bdev uses it; one in use is kept when
  // only `refresh` asked (its open connection stays valid), an error otherwise.
  Status EnsureRbdCluster(const RbdClusterRegistration& want, bool refresh);
  Status UnregisterRbdCluster(const std::string& name);

  Status CreateRbdBdev(const std::string& name, const std::string& cluster, const std::string& pool,
                       const std::string& image, std::uint32_t block_size);
  // Deletes a bdev through its driver's delete method ("rbd", "null", "malloc").
  Status DeleteBdev(const std::string& name, const std::string& driver);

  Status CreateSubsystem(const std::string& nqn, const std::string& serial_number,
                         const std::string& model_number);
  Status DestroySubsystem(const std::string& nqn);
  // Nothing to do where the dialect creates namespaces by attaching (SNAP 3).
  Status CreateNamespace(const std::string& nqn, std::uint32_t nsid, const std::string& bdev);
  // Nothing to do where detaching destroyed the namespace (SNAP 3).
  Status DestroyNamespace(const std::string& nqn, std::uint32_t nsid);

  // Returns the controller's name (ours, or the one SNAP chose). `suspended` is honoured
  // where can_suspend_nvme().
  Result<std::string> CreateNvmeController(const std::string& name, const std::string& nqn,
                                           const FunctionAddress& function, bool suspended);
  // Detaches `attached` namespaces first where detaching is what destroys them (SNAP 3), then
  // destroys the controller with force.
  Status DestroyNvmeController(const std::string& name, const std::vector<std::uint32_t>& attached);
  // `bdev` is used where attaching creates the namespace (SNAP 3).
  Status AttachNamespace(const std::string& controller, std::uint32_t nsid,
                         const std::string& bdev);
  Status DetachNamespace(const std::string& controller, std::uint32_t nsid);
  Status SuspendNvmeController(const std::string& name);  // no-op without can_suspend_nvme()
  Status ResumeNvmeController(const std::string& name);   // likewise

  // Returns the controller's name (ours, or the one SNAP chose).
  Result<std::string> CreateVirtioBlkController(const std::string& name,
                                                const FunctionAddress& function,
                                                const std::string& bdev);
  Status DestroyVirtioBlkController(const std::string& name);
  Status SuspendVirtioBlkController(const std::string& name);
  Status ResumeVirtioBlkController(const std::string& name);

  // Mutating calls made so far (successful or not).
  int mutations() const { return mutations_; }

 private:
  Result<nlohmann::json> Read(std::string_view method, const nlohmann::json& params = nullptr);
  Result<nlohmann::json> Mutate(std::string_view method, const nlohmann::json& params);
  Result<std::string> EmulationManager(std::string_view type);
  const DialectMethods& m() const { return MethodsOf(dialect_); }

  SnapClient& client_;
  Dialect dialect_ = Dialect::kSnap4;
  bool has_rbd_ = false;
  nlohmann::json managers_;  // SNAP 3: emulation_managers_list's result
  int mutations_ = 0;
};

}  // namespace dpustor::snap
