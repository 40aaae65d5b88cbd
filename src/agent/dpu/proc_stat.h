// /proc/stat CPU time parser and CpuUsage, which turns two consecutive samples into
// utilisation percentages.
// Threading: ParseProcStat is pure and thread-safe. A CpuUsage instance keeps the previous
// sample and is not thread-safe; use one instance from one thread (or guard it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::agent::dpu {

// Cumulative CPU time in USER_HZ ticks ("jiffies"), as in one "cpu" line of /proc/stat.
// Guest time is already included in user/nice by the kernel and is not kept separately.
struct CpuTimes {
  std::uint64_t user = 0;
  std::uint64_t nice = 0;
  std::uint64_t system = 0;
  std::uint64_t idle = 0;
  std::uint64_t iowait = 0;
  std::uint64_t irq = 0;
  std::uint64_t softirq = 0;
  std::uint64_t steal = 0;

  std::uint64_t Total() const {
    return user + nice + system + idle + iowait + irq + softirq + steal;
  }
  // Time not doing work: idle plus waiting for I/O.
  std::uint64_t Idle() const { return idle + iowait; }

  bool operator==(const CpuTimes&) const = default;
};

struct ProcStat {
  CpuTimes aggregate;            // the "cpu" line: all CPUs together
  std::map<int, CpuTimes> cpus;  // "cpuN" lines, keyed by N (online CPUs only)
};

// Parses /proc/stat text. Lines other than "cpu"/"cpuN" are ignored. A cpu line needs at least
// the four classic fields (user nice system idle); later ones default to 0 as on old kernels.
// Fails (nullopt + *error) on a missing aggregate line, non-numeric fields, duplicate or
// malformed cpu names.
std::optional<ProcStat> ParseProcStat(std::string_view text, std::string* error = nullptr);

// Computes utilisation from the difference between successive samples.
//
// Sample() returns
//   {"cores": 8,
//    "usage_percent": 23.5,              // busy share of all CPU time, 0..100
//    "breakdown": {"user": .., "nice": .., "system": .., "idle": .., "iowait": ..,
//                  "irq": .., "softirq": .., "steal": ..},   // percent, sums to ~100
//    "per_cpu": [{"cpu": 0, "usage_percent": 35.0}, ...]}
// Percentages are rounded to two decimals. On the first sample, and whenever the delta is
// unusable (no time elapsed, or a counter went backwards, e.g. after CPU hotplug or a counter
// reset), usage_percent/breakdown/per_cpu are null; a single CPU whose counters went
// backwards, or which was not in the previous sample, gets "usage_percent": null.
// Every call makes `now` the new baseline.
class CpuUsage {
 public:
  nlohmann::json Sample(const ProcStat& now);
  void Reset() { previous_.reset(); }

 private:
  std::optional<ProcStat> previous_;
};

}  // namespace dpustor::agent::dpu
