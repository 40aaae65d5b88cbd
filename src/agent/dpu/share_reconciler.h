// ShareReconciler is the DPU agent's side of share.apply (docs/protocol.md, "File shares"):
// it makes the DPU expose exactly the file shares the manager asks for, through SNAP's own
// virtio-fs (BlueField-3 with DOCA SNAP virtio-fs) or through dpustor-fsd (vhost-user-fs),
// and reads back what they hold of dpustor's.
//
// Apply(params) validates the whole set first (a bad one fails with kInvalidParams naming the
// field, and nothing changes), chooses each share's data plane ("snap" when asked, or for
// "auto" when SNAP offers virtio_fs_device_create and the backend is nfs:// without read-only
// or squash, which SNAP's NFS fsdev cannot do; "fsd" otherwise), then per plane removes what
// dpustor holds and the set does not want there (or holds differently), and creates what is
// missing. What is already right is left alone: applying the same set again makes no
// mutating call. A share that cannot be made fails on its own; the others still go ahead.
//
// Result (also the "shares" section of the DPU status, from Observed):
//   {"generation": N | null,
//    "shares": [{"name", "state": "ready" | "failed" | "removing", "error"?, "data_plane",
//                "tag", "counters": {"requests", "errors", ...} | null, ...plane details}]}
// A share held but no longer wanted is listed "removing" only while its removal fails.
//
// Thread-safety: Apply() runs one at a time; Observed() never waits for a running Apply (it
// returns the last result then). Both use the SnapClient given at construction, which nobody
// else may use.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/dpu/share_plane.h"
#include "common/status.h"
#include "snap/snap_client.h"

namespace dpustor::agent::dpu {

struct ShareSetSpec {
  std::int64_t generation = 0;
  std::vector<ShareSpec> shares;
};

// Decodes and checks share.apply's params: {generation, shares: [{name, backend, tag,
// pf_index?, read_only?, squash?, anon_uid?, anon_gid?, request_queues?, data_plane?}]}.
// Names 1-63 of [A-Za-z0-9._-] not starting with '-' or '.'; backend local:/ABS, memory: or
// nfs://HOST/EXPORT; tag 1-36 printable bytes without spaces; no name or tag twice.
Result<ShareSetSpec> ParseShareSpec(const nlohmann::json& params);

struct ShareReconcilerOptions {
  std::string fsd_socket;     // dpustor-fsd's control socket; "" when there is none
  std::string fsd_vhost_dir;  // where fsd creates <share>.sock
  std::string emulation_manager = "mlx5_0";
  std::chrono::milliseconds fsd_timeout{10000};
};

class ShareReconciler {
 public:
  ShareReconciler(snap::SnapClient& snap, ShareReconcilerOptions options);
  ShareReconciler(const ShareReconciler&) = delete;
  ShareReconciler& operator=(const ShareReconciler&) = delete;

  Result<nlohmann::json> Apply(const nlohmann::json& params);
  nlohmann::json Observed();
  nlohmann::json spec_generation() const;
  // Mutating calls (SNAP and fsd) made by all applies so far.
  int mutations() const;

 private:
  // REQUIRES: apply_mu_ held. `errors`: share -> why its last step failed.
  nlohmann::json Converge(const ShareSetSpec& spec, bool mutate,
                          std::map<std::string, std::string> errors);

  ShareReconcilerOptions options_;
  SnapSharePlane snap_plane_;
  std::unique_ptr<FsdSharePlane> fsd_plane_;
  std::mutex apply_mu_;
  mutable std::mutex state_mu_;  // guards the members below
  std::optional<ShareSetSpec> last_spec_;
  std::map<std::string, std::string> last_errors_;
  nlohmann::json last_result_;
};

}  // namespace dpustor::agent::dpu
