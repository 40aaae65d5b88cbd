// VolumeReconciler is the DPU agent's side of spec.apply (docs/protocol.md, "Block volumes"):
// it makes SNAP hold exactly the block attachments the manager asks for, and reads back what
// SNAP holds of dpustor's.
//
// Apply(spec) validates the whole spec first (a bad one fails with kInvalidParams naming the
// field, and nothing changes); writes each Ceph cluster's ceph.conf and keyring under
// <state_dir>/ceph/ (mode 0600, written to a temporary file and renamed; keys are never
// logged); then diffs SNAP's objects against the spec and converges:
//   1. removes what dpustor owns and the spec does not want (or wants elsewhere), in reverse
//      order: controllers (force), namespaces, subsystems, bdevs;
//   2. registers each cluster as "dpustor-<cluster>";
//   3. per attachment, creates what is missing, in order: RBD bdev "dpustor-<volume>", then
//      for NVMe the subsystem "nqn.2024-11.io.dpustor:<volume>" -> namespace <nsid> ->
//      controller "dpustor-<volume>" created suspended -> attach -> resume; for virtio-blk
//      the controller "dpustor-<volume>" with the bdev;
//   4. unregisters dpustor's clusters no attachment uses any more.
// Half-made state (a bdev without a controller, a suspended controller, a detached
// namespace) is completed or removed; what is already right is left alone, so applying the
// same spec again makes no mutating SNAP call. An attachment that cannot be made (a function
// that does not exist or carries a controller dpustor does not own, a Ceph error, SNAP
// without the RBD module) fails on its own; the others still go ahead. Objects dpustor does
// not own (see snap_volume_ops.h) are never touched.
//
// Result (also the "attachments" section of the DPU status, from Observed*):
//   {"generation": N | null,
//    "attachments": [{"volume", "state": "attached" | "failed", "error"?, "bdev", "controller",
//                     "nqn"? (NVMe), "size_bytes", "protocol", "pf_index", "vf_index"}],
//    "errors"?: ["..."]}   // removals of undesired objects that failed
//
// Thread-safety: Apply() and Observed() serialise on an internal mutex and use the SnapClient
// given at construction, which nobody else may use meanwhile (the agent gives the reconciler
// a connection of its own). ApplySequence(), ObservedFrom() and spec_generation() may be
// called from any thread at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "snap/snap_client.h"
#include "snap/snap_volume_ops.h"

namespace dpustor::agent::dpu {

enum class AttachProtocol { kNvme, kVirtioBlk };

struct ClusterSpec {
  std::string name;
  std::string fsid;
  std::string mon_host;
  std::string user_id;  // without "client."
  std::string key;
};

struct AttachmentSpec {
  std::string volume;
  std::string cluster;
  std::string pool;
  std::string image;
  AttachProtocol protocol = AttachProtocol::kNvme;
  snap::FunctionAddress function;
  std::uint32_t nsid = 1;  // NVMe only
};

struct VolumeSpec {
  std::int64_t generation = 0;
  std::map<std::string, ClusterSpec> clusters;
  std::vector<AttachmentSpec> attachments;
};

// Decodes and checks a whole spec.apply params object: names of 1-100 characters of
// [A-Za-z0-9._-] not starting with '-' or '.', protocol "nvme" | "virtio-blk", pf_index and
// vf_index non-negative integers, nsid >= 1, every attachment's cluster given, no volume and
// no function twice, no unknown keys. Errors are kInvalidParams and name the field
// ("attachments[1].nsid").
Result<VolumeSpec> ParseVolumeSpec(const nlohmann::json& params);

// The files SNAP reads for a cluster: "[global]\nfsid = ...\nmon_host = ...\n" and
// "[client.<user_id>]\n\tkey = ...\n".
std::string CephConfText(const ClusterSpec& cluster);
std::string CephKeyringText(const ClusterSpec& cluster);

class VolumeReconciler {
 public:
  // `snap` must outlive the reconciler. `state_dir` is created when first needed.
  VolumeReconciler(snap::SnapClient& snap, std::string state_dir);
  VolumeReconciler(const VolumeReconciler&) = delete;
  VolumeReconciler& operator=(const VolumeReconciler&) = delete;

  // Converges SNAP to `spec` (the params of spec.apply) and returns the result shape above.
  // Fails only for an invalid spec.
  Result<nlohmann::json> Apply(const nlohmann::json& spec);

  // What SNAP holds of dpustor's now (read on the reconciler's own connection), with the
  // last applied spec's failures for attachments SNAP does not hold.
  nlohmann::json Observed();

  // The same, from a snapshot someone else took (SnapClient::CollectStatus), without a SNAP
  // call. Take ApplySequence() before the snapshot and pass it: if an apply ran meanwhile the
  // snapshot may show it half done, and the last apply's result is returned instead.
  std::uint64_t ApplySequence() const { return sequence_.load(); }
  nlohmann::json ObservedFrom(const nlohmann::json& snap_status, std::uint64_t sequence_before);

  // The generation of the last applied spec; null until one was applied in this process.
  nlohmann::json spec_generation() const;

  // Where a cluster's files go.
  std::string CephConfPath(const std::string& cluster) const;
  std::string KeyringPath(const std::string& cluster) const;

  // Mutating SNAP calls made by all applies so far (tests check that a re-apply makes none).
  int mutations() const { return mutations_.load(); }

 private:
  nlohmann::json Reconcile(const VolumeSpec& spec);
  // Writes the files of the clusters in use and removes the others'. Returns, per cluster,
  // whether its files changed; failures go to `errors` (cluster -> message).
  std::map<std::string, bool> WriteClusterFiles(const VolumeSpec& spec,
                                                std::map<std::string, std::string>& errors);
  // REQUIRES: state_mu_ held.
  nlohmann::json BuildObserved(const Result<snap::SnapObjects>& objects) const;

  snap::SnapClient& snap_;
  std::string state_dir_;
  std::mutex apply_mu_;                     // one Apply / Observed at a time
  std::atomic<std::uint64_t> sequence_{0};  // odd while an Apply runs
  std::atomic<int> mutations_{0};

  mutable std::mutex state_mu_;  // guards the members below
  std::optional<std::int64_t> generation_;
  std::vector<AttachmentSpec> last_attachments_;    // of the last applied spec (no keys kept)
  std::map<std::string, std::string> last_errors_;  // volume -> why its last apply failed
  nlohmann::json last_result_;                      // null until the first apply
};

}  // namespace dpustor::agent::dpu
