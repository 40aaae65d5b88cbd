// Turns the JSON of `ceph status`, `ceph df`, `ceph osd pool ls detail`, `ceph versions`
// and `rbd ls -l` into the Ceph agent's report (docs/protocol.md, "Ceph cluster status"):
//   {cluster:{fsid, version}, health:{status, checks:[{name, severity, summary, count}]},
//    mons:{total, in_quorum, quorum:[names]}, osds:{total, up, in}, mgr:{available},
//    pgs:{total, states:{state: count}}, capacity:{total_bytes, used_bytes, avail_bytes},
//    pools:[{name, id, size, min_size, pg_num, applications:[...], stored_bytes, used_bytes,
//            objects, max_avail_bytes, percent_used}],
//    images:[{pool, name, size_bytes, format}], errors:[...]}
// Pure functions: a field missing from the input is left out (or null), never invented.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dpustor::agent::ceph {

using json = nlohmann::json;

// From `ceph status -f json`: cluster, health, mons, osds, mgr, pgs, capacity.
json SummariseStatus(const json& status);

// From `ceph df -f json` and `ceph osd pool ls detail -f json`: one row per pool.
json SummarisePools(const json& df, const json& pools_detail);

// From `rbd ls -l --format json -p POOL`: images of that pool; snapshots are skipped.
json SummariseImages(const std::string& pool, const json& rbd_ls);

// Pools whose images should be listed: those with the "rbd" application enabled.
std::vector<std::string> RbdPools(const json& pools_detail);

// The most common daemon version from `ceph versions -f json` ("16.2.15 pacific").
json ClusterVersion(const json& versions);

}  // namespace dpustor::agent::ceph
