// ClusterCollector gathers one Ceph cluster report by running the ceph/rbd commands in turn
// (see cluster_report.h for the shape). Each failing command adds a line to "errors" and
// leaves its part out; an unreachable cluster yields a report that says so, not a crash.
// Not thread-safe: call Collect from one thread.
#pragma once

#include <nlohmann/json.hpp>

#include "agent/ceph/ceph_cli.h"

namespace dpustor::agent::ceph {

class ClusterCollector {
 public:
  explicit ClusterCollector(const CephCli& cli) : cli_(cli) {}
  nlohmann::json Collect();

 private:
  const CephCli& cli_;
};

}  // namespace dpustor::agent::ceph
