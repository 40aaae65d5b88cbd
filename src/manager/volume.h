// Volume is the manager's record of one block volume: what the operator asked for (desired:
// cluster, pool, size, the attachment to a DPU function, snapshots, deletion) and what the
// agents last reported (observed). The volume's `state` is derived from the two, never stored.
// Plain value; JSON round-trips through ToJson/FromJson (the SQLite row is that document).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dpustor::manager {

using json = nlohmann::json;

struct VolumeAttachment {
  std::string dpu;
  std::string protocol;  // "nvme" or "virtio-blk"
  int pf_index = 0;
  std::optional<int> vf_index;
  int nsid = 1;
  bool operator==(const VolumeAttachment&) const = default;
};

struct Volume {
  // desired
  std::string name;
  std::string cluster;  // the Ceph agent's name
  std::string pool;
  std::string image;
  std::uint64_t size_bytes = 0;
  std::optional<VolumeAttachment> attach;
  std::vector<std::string> snapshots;          // wanted
  std::vector<std::string> snapshots_created;  // done
  bool deleting = false;

  // observed
  bool created = false;
  std::uint64_t observed_size = 0;
  std::string observed_dpu;  // the DPU that holds it in SNAP, "" if none
  std::string attach_state;  // "attached", "failed" or "" as the DPU reported
  std::string attach_error;
  std::string error;  // the last failed Ceph step, "" after a success
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::int64_t ceph_ms = 0;   // time spent in Ceph operations for this volume
  std::int64_t apply_ms = 0;  // time of the last spec.apply that covered it
  std::int64_t attached_ms = 0;

  // creating, error, available, attaching, attached, attach-failed, detaching, deleting
  std::string State() const;
};

json ToJson(const Volume& v);
Volume VolumeFromJson(const json& j);

// What dpustorctl and the REST API show: the record plus its derived state.
json VolumeView(const Volume& v);

}  // namespace dpustor::manager
