// SnapClient is how the DPU agent reads NVIDIA SNAP: JSON-RPC on SNAP's Unix socket, either
// dialect (SNAP-4 on BlueField-3, SNAP 3.x on BlueField-2; see snap_dialect.h), with results
// normalised to one shape so nothing above this class knows which dialect answered.
//
// Blocking: every call waits up to `timeout` (the agent runs this on its collector thread).
// Not thread-safe: one caller at a time. A connection is opened on first use and dropped when
// SNAP closes it or stops answering; the next call reconnects (and re-probes the dialect,
// since a restarted SNAP may be another version).
//
// CollectStatus() returns, for either dialect:
// {
//   "reachable": true,
//   "dialect": "snap4" | "snap3",
//   "version": {...},             // spdk_get_version's result as SNAP gave it
//   "simulator": bool,            // true only for dpustor-snap-sim
//   "emulation_functions": [      // PFs, each followed by its VFs
//     {"type": "nvme" | "virtio_blk" | "virtio_fs" | <lower-cased SNAP type>,
//      "pf_index": int, "vf_index": int | null, "pci_bdf": "25:00.2", "vuid": str | null,
//      "hotplugged": bool, "controller": str | null}   // name of the controller on it
//   ],
//   "nvme_subsystems": [
//     {"nqn": str, "serial_number": str, "model_number": str, "nn": int | null,
//      "mnan": int | null, "controllers": [name, ...],
//      "namespaces": [{"nsid": int, "bdev": str, "size_bytes": int | null,  // the bdev's size
//                      "uuid": str | null, "controllers": [name]}]}
//   ],
//   "nvme_controllers": [
//     {"name": str, "nqn": str, "cntlid": int | null, "pci_bdf": str | null,
//      "pf_index": int | null, "vf_index": int | null, "vuid": str | null,
//      "suspended": bool | null,            // null: the dialect does not report it (SNAP 3)
//      "namespaces": [nsid, ...]}
//   ],
//   "virtio_blk_controllers": [
//     {"name": str, "pci_bdf": str | null, "pf_index": int | null, "vf_index": int | null,
//      "vuid": str | null, "bdev": str | null, "size_bytes": int | null,
//      "suspended": bool | null}
//   ],
//   "bdevs": [
//     {"name": str, "driver": "null" | "malloc" | "rbd" | "nvme" | ..., "product_name": str,
//      "block_size": int, "num_blocks": int, "size_bytes": int, "uuid": str | null,
//      "claimed": bool, "rbd": {"pool_name", "rbd_name", "cluster_name"?}  // rbd bdevs only
//     }
//   ],
//   "iostat": {"tick_rate": int, "ticks": int,
//              "bdevs": {"<bdev name>": {"bytes_read", "num_read_ops", "bytes_written",
//                                        "num_write_ops", "bytes_unmapped", "num_unmap_ops"}}},
//   "errors": {"<section>": "message"}  // only when a section could not be read (it is then
//                                        // empty); the rest of the snapshot is still valid
// }
// When SNAP cannot be reached: {"reachable": false, "error": "..."}. When it answers but its
// dialect cannot be told: {"reachable": true, "error": "...", "version": ..., "simulator": ...}.
// CollectStatus never throws.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/rpc_client.h"
#include "common/status.h"
#include "snap/snap_dialect.h"

namespace dpustor::snap {

class SnapClient {
 public:
  // `socket_path`: SNAP's socket (usually /var/tmp/spdk.sock), a path or "unix:PATH".
  SnapClient(std::string socket_path, std::chrono::milliseconds timeout);
  SnapClient(const SnapClient&) = delete;
  SnapClient& operator=(const SnapClient&) = delete;
  ~SnapClient();

  // Finds the dialect: from rpc_get_methods; if SNAP lacks it, from spdk_get_version (and a
  // marker method of each dialect). Remembered until the connection drops.
  Result<Dialect> Probe();

  // The normalised snapshot described above. Without `with_iostat` the snapshot has no
  // "iostat" section (one SNAP call fewer, for callers that only need the objects).
  nlohmann::json CollectStatus(bool with_iostat = true);

  // One raw call on the (re)connected socket; for the agent's actions and for tests. Null
  // `params` sends none (SPDK refuses even {} on methods that take no parameters).
  Result<nlohmann::json> Call(const std::string& method, const nlohmann::json& params = nullptr);

 private:
  nlohmann::json Collect(Dialect dialect, nlohmann::json version, bool with_iostat);

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<rpc::RpcClient> client_;
  std::optional<Dialect> dialect_;
};

}  // namespace dpustor::snap
