// Views turn inventory records into what the REST API, dpustorctl and /metrics show: one
// summary per DPU, host, Ceph cluster, pool and image, derived from the latest reports.
// A field an agent did not report is null, never a made-up zero.
// Pure functions of their inputs; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "manager/inventory.h"

namespace dpustor::manager {

// The value at a "/"-separated path, or null when any step is missing.
const json& At(const json& doc, const char* pointer);

json AgentView(const AgentRecord& r);
json DpuSummary(const AgentRecord& r);
json DpuDetail(const AgentRecord& r);  // summary + the full latest status
json HostsView(const std::vector<AgentRecord>& dpus);
json ClusterSummary(const AgentRecord& r);
json ClusterDetail(const AgentRecord& r);
// Pools / images of every cluster, each row naming its cluster; optional filters.
json PoolsView(const std::vector<AgentRecord>& clusters, const std::string& cluster);
json ImagesView(const std::vector<AgentRecord>& clusters, const std::string& cluster,
                const std::string& pool);

}  // namespace dpustor::manager
