// SystemStatusCollector: one JSON snapshot of the DPU's own health (CPU, memory, load, uptime,
// hostname, kernel, temperatures, network links), read from a configurable /proc and /sys root
// so it can be tested against fixture trees.
// Threading: not thread-safe. Collect() keeps CPU and link baselines between calls; use one
// collector from one thread (or guard it). Collect() blocks for up to the command timeout
// while `ip` runs, so call it off any latency-sensitive event loop.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/dpu/links.h"
#include "agent/dpu/proc_stat.h"

namespace dpustor::agent::dpu {

struct SystemPaths {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::vector<std::string> ip_command = {"ip", "-j", "-s", "link"};
};

class SystemStatusCollector {
 public:
  explicit SystemStatusCollector(
      SystemPaths paths = {}, std::chrono::milliseconds command_timeout = std::chrono::seconds(5))
      : paths_(std::move(paths)), command_timeout_(command_timeout) {}

  // Returns
  //   {"cpu": {...CpuUsage::Sample...} | null, "memory": {...ParseMeminfo...} | null,
  //    "load": {...ParseLoadavg...} | null, "uptime_s": 1234.5 | null,
  //    "hostname": "dpu-a" | null, "kernel": "5.15.0-1035-bluefield" | null,
  //    "temperatures": [...ReadHwmonTemperatures...], "links": [...ParseIpLinks + rates...],
  //    "errors": ["memory: /proc/meminfo: No such file or directory", ...]}
  // Every key is always present. A piece that fails is null (an empty array for
  // temperatures/links) and adds one human-readable string to "errors". Never throws.
  nlohmann::json Collect();

  const SystemPaths& paths() const { return paths_; }

 private:
  nlohmann::json CollectLinks(std::vector<std::string>& errors);

  SystemPaths paths_;
  std::chrono::milliseconds command_timeout_;
  CpuUsage cpu_usage_;
  LinkRates link_rates_;
};

}  // namespace dpustor::agent::dpu
