// What the deployer's reapply phase does in the agent: the last block attachments
// (spec.apply) and file shares (share.apply) the manager sent are applied again to a SNAP
// the deployer (re)started, which holds none of them. Runs on the deployer's thread; the
// reconcilers serialise with their own applies.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "agent/dpu/share_reconciler.h"
#include "agent/dpu/volume_reconciler.h"
#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

// `volumes` / `shares`: the last params received, or null when none was. A pass in which
// something failed is run once more: the reconcilers' SNAP connections still point at the
// SNAP that was replaced, and the first call on such a connection fails and reconnects.
// Returns a summary for the phase message ("2 attachment(s), 1 share(s) re-applied").
Result<std::string> ReapplyDesired(VolumeReconciler& volume_reconciler,
                                   const nlohmann::json& volumes, ShareReconciler& share_reconciler,
                                   const nlohmann::json& shares);

}  // namespace dpustor::agent::dpu::deploy
