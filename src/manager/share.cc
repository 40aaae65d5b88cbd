#include "manager/share.h"

namespace dpustor::manager {

std::string Share::State() const {
  if (deleting) return "deleting";
  if (observed_state == "ready") return "ready";
  if (observed_state == "failed") return "failed";
  return "creating";
}

json Share::Desired() const {
  return protocol::ToJson(static_cast<const protocol::ShareSpec&>(*this));
}

json ToJson(const Share& s) {
  json j = s.Desired();
  j["dpu"] = s.dpu;
  j["deleting"] = s.deleting;
  j["observed_state"] = s.observed_state;
  j["error"] = s.error;
  j["observed_plane"] = s.observed_plane;
  j["counters"] = s.counters;
  j["created_ms"] = s.created_ms;
  j["updated_ms"] = s.updated_ms;
  j["ready_ms"] = s.ready_ms;
  return j;
}

Share ShareFromJson(const json& j) {
  Share s;
  s.name = j.value("name", "");
  s.dpu = j.value("dpu", "");
  s.backend = j.value("backend", "");
  s.tag = j.value("tag", "");
  s.pf_index = j.value("pf_index", 0);
  s.read_only = j.value("read_only", false);
  s.squash = j.value("squash", "none");
  s.anon_uid = j.value("anon_uid", std::uint32_t{65534});
  s.anon_gid = j.value("anon_gid", std::uint32_t{65534});
  s.request_queues = j.value("request_queues", std::uint32_t{1});
  s.data_plane = j.value("data_plane", "auto");
  s.deleting = j.value("deleting", false);
  s.observed_state = j.value("observed_state", "");
  s.error = j.value("error", "");
  s.observed_plane = j.value("observed_plane", "");
  s.counters = j.contains("counters") ? j["counters"] : json(nullptr);
  s.created_ms = j.value("created_ms", std::int64_t{0});
  s.updated_ms = j.value("updated_ms", std::int64_t{0});
  s.ready_ms = j.value("ready_ms", std::int64_t{0});
  return s;
}

json ShareView(const Share& s) {
  json j = ToJson(s);
  j["state"] = s.State();
  j["data_plane_in_use"] = s.observed_plane.empty() ? json(nullptr) : json(s.observed_plane);
  return j;
}

}  // namespace dpustor::manager
