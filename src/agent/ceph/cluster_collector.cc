#include "agent/ceph/cluster_collector.h"

#include <chrono>

#include "agent/ceph/cluster_report.h"

namespace dpustor::agent::ceph {

json ClusterCollector::Collect() {
  auto started = std::chrono::steady_clock::now();
  json errors = json::array();
  json report;

  auto status = cli_.Ceph({"status"});
  if (status.ok()) {
    report = SummariseStatus(*status);
    report["reachable"] = true;
  } else {
    // Without `ceph status` the cluster is unreachable from here (no quorum, bad key, no
    // network); the other commands would only repeat the same wait.
    errors.push_back(status.error().message);
    report = {{"reachable", false}, {"errors", errors}};
    return report;
  }

  if (auto versions = cli_.Ceph({"versions"}); versions.ok()) {
    report["cluster"]["version"] = ClusterVersion(*versions);
  } else {
    errors.push_back(versions.error().message);
  }

  auto df = cli_.Ceph({"df"});
  if (!df.ok()) errors.push_back(df.error().message);
  auto detail = cli_.Ceph({"osd", "pool", "ls", "detail"});
  if (!detail.ok()) errors.push_back(detail.error().message);
  json pools_detail = detail.ok() ? *detail : json::array();
  report["pools"] = SummarisePools(df.ok() ? *df : json::object(), pools_detail);

  json images = json::array();
  for (const auto& pool : RbdPools(pools_detail)) {
    auto ls = cli_.Rbd({"ls", "-l", "-p", pool});
    if (!ls.ok()) {
      errors.push_back(ls.error().message);
      continue;
    }
    for (auto& row : SummariseImages(pool, *ls)) images.push_back(std::move(row));
  }
  report["images"] = images;
  report["errors"] = errors;
  report["collect_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();
  return report;
}

}  // namespace dpustor::agent::ceph
