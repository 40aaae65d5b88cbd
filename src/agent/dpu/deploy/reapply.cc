#include "agent/dpu/deploy/reapply.h"

namespace dpustor::agent::dpu::deploy {

namespace {

using json = nlohmann::json;

// Applies `params` (again if something failed); the number of items not in `good` state.
template <class Reconciler>
Result<json> ApplyRetrying(Reconciler& reconciler, const json& params, const char* list,
                           const char* good, int* failed) {
  Result<json> r = Error{0, ""};
  for (int pass = 0; pass < 2; ++pass) {
    r = reconciler.Apply(params);
    if (!r.ok()) return r;
    *failed = 0;
    for (const auto& item : (*r)[list])
      if (item.value("state", "") != good) ++*failed;
    if (*failed == 0) break;
  }
  return r;
}

}  // namespace

Result<std::string> ReapplyDesired(VolumeReconciler& volume_reconciler, const json& volumes,
                                   ShareReconciler& share_reconciler, const json& shares) {
  if (volumes.is_null() && shares.is_null())
    return std::string("no volume or share spec received yet");
  std::string note;
  if (!volumes.is_null()) {
    int failed = 0;
    auto r = ApplyRetrying(volume_reconciler, volumes, "attachments", "attached", &failed);
    if (!r.ok()) return r.error();
    note = std::to_string((*r)["attachments"].size()) + " attachment(s)";
    if (failed) note += " (" + std::to_string(failed) + " failed)";
  }
  if (!shares.is_null()) {
    int failed = 0;
    auto r = ApplyRetrying(share_reconciler, shares, "shares", "ready", &failed);
    if (!r.ok()) return r.error();
    note += (note.empty() ? "" : ", ") + std::to_string((*r)["shares"].size()) + " share(s)";
    if (failed) note += " (" + std::to_string(failed) + " failed)";
  }
  return note + " re-applied";
}

}  // namespace dpustor::agent::dpu::deploy
