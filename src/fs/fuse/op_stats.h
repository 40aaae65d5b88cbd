// Per-FUSE-opcode counters and latency histograms, updated lock-free by the engine on
// every completion and read by the control socket. Buckets are powers of two of
// microseconds: bucket i counts latencies in [2^(i-1), 2^i) us, bucket 0 is < 1 us.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::fs {

class OpStats {
 public:
  static constexpr size_t kOps = 64;  // FUSE opcodes are < 64 (CUSE_INIT is elsewhere)
  static constexpr size_t kBuckets = 32;

  struct Op {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> total_ns{0};
    std::array<std::atomic<uint64_t>, kBuckets> buckets{};
  };

  void Record(uint32_t opcode, bool error, uint64_t ns);
  const Op* op(uint32_t opcode) const { return opcode < kOps ? &ops_[opcode] : nullptr; }
  // {"LOOKUP": {"count": n, "errors": e, "avg_us": x, "p50_us": .., "p99_us": .., "buckets_us":
  // {"<1":..,"<2":..}}, ...} Only opcodes seen at least once.
  nlohmann::json ToJson() const;

 private:
  std::array<Op, kOps> ops_;
};

// "LOOKUP", "GETATTR"...; "UNKNOWN" for opcodes this build does not know.
std::string_view OpcodeName(uint32_t opcode);

}  // namespace dpustor::fs
