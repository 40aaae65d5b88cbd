#include "manager/views.h"

#include <algorithm>
#include <map>

namespace dpustor::manager {

namespace {
const json kNull = nullptr;

const json& StatusOf(const AgentRecord& r) {
  return r.status ? *r.status : kNull;
}

json Size(const json& array) {
  return array.is_array() ? json(array.size()) : json(nullptr);
}

json MaxTemperature(const json& temps) {
  if (!temps.is_array()) return nullptr;
  json best = nullptr;
  for (const auto& t : temps) {
    const auto& c = At(t, "celsius");
    if (c.is_number() && (best.is_null() || c.get<double>() > best.get<double>())) best = c;
  }
  return best;
}
}  // namespace

const json& At(const json& doc, const char* pointer) {
  const json* cur = &doc;
  std::string_view rest(pointer);
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string key(rest.substr(0, slash));
    if (!cur->is_object()) return kNull;
    auto it = cur->find(key);
    if (it == cur->end()) return kNull;
    cur = &*it;
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return *cur;
}

json AgentView(const AgentRecord& r) {
  return {{"name", r.name},
          {"kind", r.kind},
          {"version", r.version},
          {"state", r.state},
          {"state_reason", r.state_reason},
          {"state_since_ms", r.state_since_ms},
          {"address", r.address},
          {"first_seen_ms", r.first_seen_ms},
          {"last_seen_ms", r.last_seen_ms},
          {"last_report_ms", r.last_report_ms},
          {"reports", r.reports},
          {"capabilities", r.capabilities}};
}

json DpuSummary(const AgentRecord& r) {
  const json& s = StatusOf(r);
  const json& snap = At(s, "snap");
  json controllers = nullptr;
  if (At(snap, "nvme_controllers").is_array() || At(snap, "virtio_blk_controllers").is_array()) {
    controllers = At(snap, "nvme_controllers").size() + At(snap, "virtio_blk_controllers").size();
  }
  return {{"name", r.name},
          {"state", r.state},
          {"state_reason", r.state_reason},
          {"host", At(s, "host")},
          {"agent_version", r.version},
          {"address", r.address},
          {"last_report_ms", r.last_report_ms},
          {"hostname", At(s, "system/hostname")},
          {"uptime_s", At(s, "system/uptime_s")},
          {"cpu_percent", At(s, "system/cpu/usage_percent")},
          {"cores", At(s, "system/cpu/cores")},
          {"load1", At(s, "system/load/load1")},
          {"memory_total_bytes", At(s, "system/memory/total_bytes")},
          {"memory_available_bytes", At(s, "system/memory/available_bytes")},
          {"hugepages_total", At(s, "system/memory/hugepages/total")},
          {"hugepages_free", At(s, "system/memory/hugepages/free")},
          {"max_temperature_c", MaxTemperature(At(s, "system/temperatures"))},
          {"snap",
           {{"reachable", At(snap, "reachable")},
            {"dialect", At(snap, "dialect")},
            {"version", At(snap, "version")},
            {"simulator", At(snap, "simulator")},
            {"error", At(snap, "error")}}},
          {"emulation_functions", Size(At(snap, "emulation_functions"))},
          {"nvme_subsystems", Size(At(snap, "nvme_subsystems"))},
          {"controllers", controllers},
          {"bdevs", Size(At(snap, "bdevs"))}};
}

json DpuDetail(const AgentRecord& r) {
  json d = DpuSummary(r);
  d["agent"] = AgentView(r);
  d["status"] = StatusOf(r);
  return d;
}

json HostsView(const std::vector<AgentRecord>& dpus) {
  std::map<std::string, json> hosts;
  for (const auto& r : dpus) {
    const json& host = At(StatusOf(r), "host");
    std::string name = host.is_string() ? host.get<std::string>() : "";
    if (name.empty()) continue;
    auto& h = hosts[name];
    if (h.is_null()) h = {{"name", name}, {"dpus", json::array()}, {"state", kUnreachable}};
    h["dpus"].push_back(r.name);
    if (r.state == kOnline) h["state"] = kOnline;  // reachable through at least one DPU
  }
  json out = json::array();
  for (auto& [_, h] : hosts) out.push_back(std::move(h));
  return out;
}

json ClusterSummary(const AgentRecord& r) {
  const json& s = StatusOf(r);
  return {{"name", r.name},
          {"state", r.state},
          {"state_reason", r.state_reason},
          {"fsid", At(s, "cluster/fsid")},
          {"ceph_version", At(s, "cluster/version")},
          {"health", At(s, "health/status")},
          {"health_checks", Size(At(s, "health/checks"))},
          {"mons", At(s, "mons/total")},
          {"mons_in_quorum", At(s, "mons/in_quorum")},
          {"osds", At(s, "osds/total")},
          {"osds_up", At(s, "osds/up")},
          {"osds_in", At(s, "osds/in")},
          {"total_bytes", At(s, "capacity/total_bytes")},
          {"used_bytes", At(s, "capacity/used_bytes")},
          {"avail_bytes", At(s, "capacity/avail_bytes")},
          {"pools", Size(At(s, "pools"))},
          {"images", Size(At(s, "images"))},
          {"errors", At(s, "errors")},
          {"last_report_ms", r.last_report_ms}};
}

json ClusterDetail(const AgentRecord& r) {
  json d = ClusterSummary(r);
  d["agent"] = AgentView(r);
  d["status"] = StatusOf(r);
  return d;
}

json PoolsView(const std::vector<AgentRecord>& clusters, const std::string& cluster) {
  json out = json::array();
  for (const auto& r : clusters) {
    if (!cluster.empty() && r.name != cluster) continue;
    const json& pools = At(StatusOf(r), "pools");
    if (!pools.is_array()) continue;
    for (const auto& p : pools) {
      json row = p;
      row["cluster"] = r.name;
      out.push_back(std::move(row));
    }
  }
  return out;
}

json ImagesView(const std::vector<AgentRecord>& clusters, const std::string& cluster,
                const std::string& pool) {
  json out = json::array();
  for (const auto& r : clusters) {
    if (!cluster.empty() && r.name != cluster) continue;
    const json& images = At(StatusOf(r), "images");
    if (!images.is_array()) continue;
    for (const auto& i : images) {
      if (!pool.empty() && At(i, "pool") != pool) continue;
      json row = i;
      row["cluster"] = r.name;
      out.push_back(std::move(row));
    }
  }
  return out;
}

}  // namespace dpustor::manager
