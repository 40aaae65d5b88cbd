// LatencyHistogram: an HDR-style log-linear histogram of microsecond values with fixed
// memory (a few thousand counters) and about 1.6% relative precision, so a benchmark can
// record every sample of a long run without keeping them.
// Thread-safety: Record() may be called from any thread concurrently (relaxed atomics);
// read the summary after the writers have stopped, or accept a slightly torn view.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace dpustor::bench {

class LatencyHistogram {
 public:
  void Record(std::uint64_t us) {
    if (us > kMaxValue) us = kMaxValue;
    counts_[Index(us)].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    std::uint64_t seen = max_.load(std::memory_order_relaxed);
    while (us > seen && !max_.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
    }
  }

  void Reset() {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
    count_.store(0, std::memory_order_relaxed);
    max_.store(0, std::memory_order_relaxed);
  }

  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  std::uint64_t max() const { return max_.load(std::memory_order_relaxed); }

  // The value at quantile q (0..1): the upper bound of the bucket holding it, capped at the
  // exact maximum. 0 when empty.
  std::uint64_t Quantile(double q) const {
    std::uint64_t total = 0;
    for (const auto& c : counts_) total += c.load(std::memory_order_relaxed);
    if (total == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total));
    if (rank >= total) rank = total - 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i].load(std::memory_order_relaxed);
      if (seen > rank) {
        std::uint64_t upper = UpperBound(i);
        return upper < max() ? upper : max();
      }
    }
    return max();
  }

 private:
  // Values below 2^kSubBits are exact; above, each power of two is split into 2^(kSubBits-1)
  // equal buckets.
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kHalf = 1u << (kSubBits - 1);
  static constexpr std::uint64_t kMaxValue = (std::uint64_t{1} << 40) - 1;  // ~12.7 days
  static constexpr std::size_t kBuckets = (40 - kSubBits + 2) * kHalf;

  static std::size_t Index(std::uint64_t v) {
    int width = std::bit_width(v);
    int shift = width > kSubBits ? width - kSubBits : 0;
    return static_cast<std::size_t>(shift) * kHalf + (v >> shift);
  }
  static std::uint64_t UpperBound(std::size_t index) {
    if (index < 2 * kHalf) return index;
    std::size_t shift = index / kHalf - 1;
    std::uint64_t sub = index - shift * kHalf;  // in [kHalf, 2 * kHalf)
    return ((sub + 1) << shift) - 1;
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace dpustor::bench
