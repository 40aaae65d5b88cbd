// Share is the manager's record of one file share: what the operator asked for (desired: the
// DPU, the backend URL, the virtio-fs tag, the host function, access options, the data plane,
// deletion) and what the DPU agent last reported (observed state, error, the data plane it
// chose, counters). The share's `state` is derived from the two, never stored.
// Plain value; JSON round-trips through ToJson/ShareFromJson (the SQLite row is that document).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "common/share_spec.h"

namespace dpustor::manager {

using json = nlohmann::json;

// desired: the spec share.apply carries (common/share_spec.h), the DPU and deletion
struct Share : protocol::ShareSpec {
  std::string dpu;
  bool deleting = false;

  // observed
  std::string observed_state;  // "ready", "failed" or "" as the DPU reported
  std::string error;
  std::string observed_plane;  // "snap" | "fsd" | ""
  json counters;               // {requests, errors, ...} or null
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::int64_t ready_ms = 0;

  // creating, ready, failed, deleting
  std::string State() const;
  // The fields share.apply carries (the desired state).
  json Desired() const;
};

json ToJson(const Share& s);
Share ShareFromJson(const json& j);

// What dpustorctl and the REST API show: the record plus its derived state.
json ShareView(const Share& s);

}  // namespace dpustor::manager
