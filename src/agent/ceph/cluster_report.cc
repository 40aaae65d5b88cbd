#include "agent/ceph/cluster_report.h"

#include <map>

namespace dpustor::agent::ceph {

namespace {

// Copies `src[key]` into `dst[as]` when it is present and of the kind `want` accepts.
template <class Pred>
void CopyIf(json& dst, const char* as, const json& src, const char* key, Pred want) {
  if (!src.is_object()) return;
  auto it = src.find(key);
  if (it != src.end() && want(*it)) dst[as] = *it;
}
bool IsNumber(const json& v) {
  return v.is_number();
}
bool IsString(const json& v) {
  return v.is_string();
}

const json& Obj(const json& parent, const char* key) {
  static const json kEmpty = json::object();
  if (!parent.is_object()) return kEmpty;
  auto it = parent.find(key);
  return (it != parent.end() && it->is_object()) ? *it : kEmpty;
}

}  // namespace

json SummariseStatus(const json& status) {
  json out = json::object();
  json cluster = json::object();
  CopyIf(cluster, "fsid", status, "fsid", IsString);
  out["cluster"] = cluster;

  const json& health = Obj(status, "health");
  json h = {{"checks", json::array()}};
  CopyIf(h, "status", health, "status", IsString);
  for (const auto& [name, check] : Obj(health, "checks").items()) {
    json c = {{"name", name}};
    CopyIf(c, "severity", check, "severity", IsString);
    const json& summary = Obj(check, "summary");
    CopyIf(c, "summary", summary, "message", IsString);
    CopyIf(c, "count", summary, "count", IsNumber);
    if (check.is_object() && check.value("muted", false)) c["muted"] = true;
    h["checks"].push_back(std::move(c));
  }
  out["health"] = h;

  json mons = json::object();
  CopyIf(mons, "total", Obj(status, "monmap"), "num_mons", IsNumber);
  if (status.is_object() && status.contains("quorum_names") && status["quorum_names"].is_array()) {
    mons["quorum"] = status["quorum_names"];
    mons["in_quorum"] = status["quorum_names"].size();
  }
  out["mons"] = mons;

  // Pacific nests the counters in osdmap.osdmap on some paths and flat on others.
  const json* osdmap = &Obj(status, "osdmap");
  if (osdmap->contains("osdmap")) osdmap = &Obj(*osdmap, "osdmap");
  json osds = json::object();
  CopyIf(osds, "total", *osdmap, "num_osds", IsNumber);
  CopyIf(osds, "up", *osdmap, "num_up_osds", IsNumber);
  CopyIf(osds, "in", *osdmap, "num_in_osds", IsNumber);
  out["osds"] = osds;

  json mgr = json::object();
  const json& mgrmap = Obj(status, "mgrmap");
  if (mgrmap.contains("available") && mgrmap["available"].is_boolean())
    mgr["available"] = mgrmap["available"];
  CopyIf(mgr, "standbys", mgrmap, "num_standbys", IsNumber);
  out["mgr"] = mgr;

  const json& pgmap = Obj(status, "pgmap");
  json pgs = {{"states", json::object()}};
  CopyIf(pgs, "total", pgmap, "num_pgs", IsNumber);
  if (pgmap.contains("pgs_by_state") && pgmap["pgs_by_state"].is_array()) {
    for (const auto& s : pgmap["pgs_by_state"]) {
      if (s.is_object() && s.contains("state_name") && s["state_name"].is_string() &&
          s.contains("count") && s["count"].is_number())
        pgs["states"][s["state_name"].get<std::string>()] = s["count"];
    }
  }
  out["pgs"] = pgs;

  json cap = json::object();
  CopyIf(cap, "total_bytes", pgmap, "bytes_total", IsNumber);
  CopyIf(cap, "used_bytes", pgmap, "bytes_used", IsNumber);
  CopyIf(cap, "avail_bytes", pgmap, "bytes_avail", IsNumber);
  CopyIf(cap, "data_bytes", pgmap, "data_bytes", IsNumber);
  CopyIf(cap, "objects", pgmap, "num_objects", IsNumber);
  out["capacity"] = cap;
  return out;
}

json SummarisePools(const json& df, const json& pools_detail) {
  json rows = json::array();
  std::map<std::string, const json*> usage;
  if (df.is_object() && df.contains("pools") && df["pools"].is_array()) {
    for (const auto& p : df["pools"])
      if (p.is_object() && p.contains("name") && p["name"].is_string())
        usage[p["name"].get<std::string>()] = &p;
  }
  if (!pools_detail.is_array()) return rows;
  for (const auto& p : pools_detail) {
    if (!p.is_object() || !p.contains("pool_name") || !p["pool_name"].is_string()) continue;
    std::string name = p["pool_name"];
    json row = {{"name", name}, {"applications", json::array()}};
    CopyIf(row, "id", p, "pool", IsNumber);
    CopyIf(row, "size", p, "size", IsNumber);
    CopyIf(row, "min_size", p, "min_size", IsNumber);
    CopyIf(row, "pg_num", p, "pg_num", IsNumber);
    for (const auto& [app, _] : Obj(p, "application_metadata").items())
      row["applications"].push_back(app);
    if (auto it = usage.find(name); it != usage.end()) {
      const json& st = Obj(*it->second, "stats");
      CopyIf(row, "stored_bytes", st, "stored", IsNumber);
      CopyIf(row, "used_bytes", st, "bytes_used", IsNumber);
      CopyIf(row, "objects", st, "objects", IsNumber);
      CopyIf(row, "max_avail_bytes", st, "max_avail", IsNumber);
      CopyIf(row, "percent_used", st, "percent_used", IsNumber);
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

json SummariseImages(const std::string& pool, const json& rbd_ls) {
  json rows = json::array();
  if (!rbd_ls.is_array()) return rows;
  for (const auto& i : rbd_ls) {
    if (!i.is_object() || !i.contains("image") || !i["image"].is_string()) continue;
    if (i.contains("snapshot")) continue;  // `rbd ls -l` lists snapshots as extra rows
    json row = {{"pool", pool}, {"name", i["image"]}};
    CopyIf(row, "size_bytes", i, "size", IsNumber);
    CopyIf(row, "format", i, "format", IsNumber);
    CopyIf(row, "id", i, "id", IsString);
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<std::string> RbdPools(const json& pools_detail) {
  std::vector<std::string> out;
  if (!pools_detail.is_array()) return out;
  for (const auto& p : pools_detail) {
    if (p.is_object() && p.contains("pool_name") && p["pool_name"].is_string() &&
        Obj(p, "application_metadata").contains("rbd"))
      out.push_back(p["pool_name"]);
  }
  return out;
}

json ClusterVersion(const json& versions) {
  const json& overall = Obj(versions, "overall");
  std::string best;
  std::int64_t best_count = -1;
  for (const auto& [text, count] : overall.items()) {
    if (count.is_number_integer() && count.get<std::int64_t>() > best_count) {
      best = text;
      best_count = count.get<std::int64_t>();
    }
  }
  if (best.empty()) return nullptr;
  // "ceph version 16.2.15 (618f...) pacific (stable)" -> "16.2.15 pacific"
  const std::string prefix = "ceph version ";
  if (best.starts_with(prefix)) best = best.substr(prefix.size());
  auto paren = best.find(" (");
  auto close = best.find(") ", paren == std::string::npos ? 0 : paren);
  if (paren != std::string::npos && close != std::string::npos) {
    std::string release = best.substr(close + 2);
    auto space = release.find(' ');
    best = best.substr(0, paren) + " " + release.substr(0, space);
  }
  return best;
}

}  // namespace dpustor::agent::ceph
