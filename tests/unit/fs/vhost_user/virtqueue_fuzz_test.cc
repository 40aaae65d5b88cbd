// Virtqueue against randomly corrupted rings: PopChain must never crash, hang, or hand out
// a buffer outside guest memory, whatever the descriptor tables and indices say.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>

#include "fs/transport/vhost_user/virtqueue.h"
#include "test_driver.h"

namespace dpustor::fs::vhost_user {
namespace {

using namespace testing;  // NOLINT

constexpr uint64_t kTables = kGpaB + 0x40000;  // indirect tables, 4 KiB apart
constexpr int kTableCount = 8;
constexpr int kTableEntries = 64;

class Fuzzer {
 public:
  explicit Fuzzer(uint64_t seed) : rng_(seed) {}
  uint64_t U(uint64_t n) { return rng_() % n; }
  bool Coin(int one_in) { return U(static_cast<uint64_t>(one_in)) == 0; }

  uint64_t Addr() {
    switch (U(10)) {
      case 0:
        return kGpaA + 512 * 1024 + U(512 * 1024);
      case 1:
        return kGpaB + U(kRegionSize);
      case 2:
        return kGpaC + U(kRegionSize);
      case 3:
        return kGpaC - U(64);  // end of B, straddles into C
      case 4:
        return kGpaA + kRegionSize - U(64);  // runs into the hole
      case 5:
        return kGpaA + kRegionSize + U(kRegionSize);  // the hole
      case 6:
        return UINT64_MAX - U(128);
      case 7:
        return kTables + 4096 * U(kTableCount) + 16 * U(4);
      case 8:
        return kGpaC + kRegionSize - U(64);
      default:
        return rng_();
    }
  }
  uint32_t Len() {
    switch (U(9)) {
      case 0:
        return 0;
      case 1:
        return static_cast<uint32_t>(U(64));
      case 2:
        return static_cast<uint32_t>(U(8192));
      case 3:
        return static_cast<uint32_t>(U(kRegionSize + 16));
      case 4:
        return static_cast<uint32_t>(16 * U(kTableEntries + 4));
      case 5:
        return 0xffffffffu;
      case 6:
        return 1025 * 16;
      case 7:
        return static_cast<uint32_t>(16 * U(2000) + U(2) * 8);
      default:
        return static_cast<uint32_t>(rng_());
    }
  }
  uint16_t Flags() { return Coin(8) ? static_cast<uint16_t>(rng_()) : static_cast<uint16_t>(U(8)); }
  uint16_t Next(uint32_t size) {
    return Coin(8) ? static_cast<uint16_t>(rng_()) : static_cast<uint16_t>(U(size + 2));
  }

 private:
  std::mt19937_64 rng_;
};

TEST(VirtqueueFuzzTest, CorruptedRingsNeverEscapeGuestMemory) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  Fuzzer f(0x5eed);
  int chains = 0, errors = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    const uint32_t size = 1u << f.U(7);  // 1..64
    TestDriver d(*mem, size);
    for (uint32_t i = 0; i < size; ++i) d.SetDesc(i, f.Addr(), f.Len(), f.Flags(), f.Next(size));
    for (int t = 0; t < kTableCount; ++t)
      for (int i = 0; i < kTableEntries; ++i)
        d.SetDescAt(kTables + 4096ull * t, i, f.Addr(), f.Len(), f.Flags(), f.Next(kTableEntries));
    for (uint32_t slot = 0; slot < size; ++slot)
      d.SetRingEntry(
          slot, f.Coin(8) ? static_cast<uint16_t>(f.U(65536)) : static_cast<uint16_t>(f.U(size)));
    d.SetUsedIdx(static_cast<uint16_t>(f.U(65536)));
    d.SetUsedEvent(static_cast<uint16_t>(f.U(65536)));
    const uint16_t start = static_cast<uint16_t>(f.U(65536));
    d.SetAvailIdx(start);
    VirtqueueConfig c = d.Config(f.Coin(2), !f.Coin(4));
    c.max_indirect = f.Coin(2) ? 1024 : static_cast<uint32_t>(1 + f.U(kTableEntries));
    c.max_chain_bytes = f.Coin(2) ? (64u << 20) : f.U(1 << 20);
    auto q = Virtqueue::Create(*mem, c);
    ASSERT_TRUE(q.ok());
    d.SetAvailIdx(f.Coin(8) ? static_cast<uint16_t>(f.U(65536))
                            : static_cast<uint16_t>(start + f.U(size + 1)));

    for (uint32_t n = 0; n < size + 2; ++n) {
      auto r = (*q)->PopChain();
      if (!r.ok()) {
        ++errors;
        EXPECT_TRUE((*q)->broken());
        break;
      }
      if (!r->has_value()) break;
      ++chains;
      const Chain& ch = **r;
      ASSERT_LT(ch.head, size);
      uint64_t in = 0, out = 0;
      ASSERT_LE(ch.in.size() + ch.out.size(), size + c.max_indirect);
      for (const iovec& v : ch.in) {
        ASSERT_TRUE(mem->Contains(v.iov_base, v.iov_len));
        in += v.iov_len;
      }
      for (const iovec& v : ch.out) {
        ASSERT_TRUE(mem->Contains(v.iov_base, v.iov_len));
        out += v.iov_len;
      }
      ASSERT_EQ(in, ch.in_bytes);
      ASSERT_EQ(out, ch.out_bytes);
      ASSERT_LE(in + out, c.max_chain_bytes);
      ASSERT_TRUE((*q)->PushUsed(ch.head, static_cast<uint32_t>(out)).ok());
      (*q)->NeedsNotify();
      // Corrupt a little more while the queue runs.
      if (f.Coin(3))
        d.SetDesc(static_cast<uint32_t>(f.U(size)), f.Addr(), f.Len(), f.Flags(), f.Next(size));
    }
  }
  // The generator must exercise both outcomes.
  EXPECT_GT(chains, 100);
  EXPECT_GT(errors, 100);
}

// Starts from well-formed chains and flips random bytes of the descriptor tables.
TEST(VirtqueueFuzzTest, BitFlippedValidChains) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  Fuzzer f(42);
  int chains = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const uint32_t size = 16;
    TestDriver d(*mem, size);
    // Four 4-descriptor chains, the last one indirect.
    for (uint16_t h = 0; h < 12; h += 4) {
      for (uint16_t i = 0; i < 4; ++i) {
        uint16_t flags = (i < 3 ? kDescFNext : 0) | (i >= 2 ? kDescFWrite : 0);
        d.SetDesc(h + i, kGpaB + 4096ull * (h + i), 512, flags, static_cast<uint16_t>(h + i + 1));
      }
      d.MakeAvail(h);
    }
    for (uint16_t i = 0; i < 4; ++i)
      d.SetDescAt(kTables, i, kGpaC + 4096ull * i, 256,
                  (i < 3 ? kDescFNext : 0) | (i >= 2 ? kDescFWrite : 0),
                  static_cast<uint16_t>(i + 1));
    d.SetDesc(12, kTables, 64, kDescFIndirect);
    d.MakeAvail(12);
    // Flip bytes in the ring's table or the indirect table.
    const int flips = 1 + static_cast<int>(f.U(4));
    for (int k = 0; k < flips; ++k) {
      uint64_t at = f.Coin(2) ? d.desc_gpa() + f.U(16 * size) : kTables + f.U(64);
      uint8_t* p = d.Host(at);
      *p ^= static_cast<uint8_t>(1u << f.U(8));
    }
    auto q = Virtqueue::Create(*mem, d.Config(false, true));
    ASSERT_TRUE(q.ok());
    for (int n = 0; n < 5; ++n) {
      auto r = (*q)->PopChain();
      if (!r.ok() || !r->has_value()) break;
      ++chains;
      for (const iovec& v : (*r)->in) ASSERT_TRUE(mem->Contains(v.iov_base, v.iov_len));
      for (const iovec& v : (*r)->out) ASSERT_TRUE(mem->Contains(v.iov_base, v.iov_len));
    }
  }
  EXPECT_GT(chains, 1000);
}

}  // namespace
}  // namespace dpustor::fs::vhost_user
