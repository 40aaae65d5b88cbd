// Network link status from `ip -j -s link` output, and LinkRates, which derives per-link
// byte rates from two successive samples.
// Threading: ParseIpLinks is pure and thread-safe. A LinkRates instance keeps the previous
// sample and is not thread-safe; use one instance from one thread (or guard it).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::agent::dpu {

// Parses the JSON array printed by `ip -j -s link` into
//   [{"name": "p0", "state": "UP", "mtu": 9000, "mac": "..", "link_type": "ether",
//     "flags": ["BROADCAST", ...],
//     "rx_bytes": .., "rx_packets": .., "rx_errors": .., "rx_dropped": ..,
//     "tx_bytes": .., "tx_packets": .., "tx_errors": .., "tx_dropped": ..}, ...]
// in input order. Counters come from "stats64" (or "stats" on old iproute2); a counter or
// other field missing from the input is missing from the output (state/mac/link_type null).
// Entries without a string "ifname" are skipped.
// Malformed JSON or a top level that is not an array gives nullopt and a message in *error;
// nothing throws.
std::optional<nlohmann::json> ParseIpLinks(std::string_view json_text,
                                           std::string* error = nullptr);

// Adds "rx_bytes_per_s" and "tx_bytes_per_s" to each entry of a ParseIpLinks() result, from
// the change in rx_bytes/tx_bytes since the previous Sample() and the time between them.
// A rate is null on the first sample, for a link not seen last time, when the counter is
// missing or went backwards (interface re-created, counters reset), or when `at` is not
// later than the previous sample's time. Every call makes this sample the new baseline.
class LinkRates {
 public:
  using Clock = std::chrono::steady_clock;

  nlohmann::json Sample(const nlohmann::json& links, Clock::time_point at);
  void Reset();

 private:
  struct Counters {
    std::optional<std::uint64_t> rx_bytes;
    std::optional<std::uint64_t> tx_bytes;
  };
  std::optional<Clock::time_point> previous_at_;
  std::map<std::string, Counters> previous_;
};

}  // namespace dpustor::agent::dpu
