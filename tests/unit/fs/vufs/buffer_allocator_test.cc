#include "fs/vufs/buffer_allocator.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <random>
#include <vector>

#include "common/json_rpc.h"
#include "fs/vufs/guest_ram.h"

namespace dpustor::fs::vufs {
namespace {

TEST(BufferAllocator, AlignsAndSplits) {
  BufferAllocator a(0, 1 << 20);
  auto x = a.Allocate(100, 64);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(*x, 0u);
  auto y = a.Allocate(10, 4096);
  ASSERT_TRUE(y.ok());
  EXPECT_EQ(*y, 4096u);
  // The gap between 100 and 4096 is still usable.
  auto z = a.Allocate(64, 64);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(*z, 128u);
  EXPECT_EQ(a.allocations(), 3u);
  EXPECT_EQ(a.free_bytes(), (1u << 20) - 174);
}

TEST(BufferAllocator, FreeMergesNeighbours) {
  BufferAllocator a(4096, 3 * 4096);
  auto x = a.Allocate(4096, 4096), y = a.Allocate(4096, 4096), z = a.Allocate(4096, 4096);
  ASSERT_TRUE(x.ok() && y.ok() && z.ok());
  EXPECT_FALSE(a.Allocate(1, 1).ok());  // full
  ASSERT_TRUE(a.Free(*x).ok());
  ASSERT_TRUE(a.Free(*z).ok());
  EXPECT_FALSE(a.Allocate(8192, 1).ok());  // two free pages, not adjacent
  ASSERT_TRUE(a.Free(*y).ok());
  auto all = a.Allocate(3 * 4096, 4096);  // merged back into one range
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 4096u);
}

TEST(BufferAllocator, RefusesBadRequests) {
  BufferAllocator a(0, 8192);
  EXPECT_FALSE(a.Allocate(0, 64).ok());
  EXPECT_FALSE(a.Allocate(10, 3).ok());
  EXPECT_FALSE(a.Allocate(10, 0).ok());
  auto big = a.Allocate(8193, 1);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, rpc::kBusy);
  auto x = a.Allocate(100, 64);
  ASSERT_TRUE(x.ok());
  EXPECT_FALSE(a.Free(*x + 1).ok());  // not a start
  EXPECT_TRUE(a.Free(*x).ok());
  EXPECT_FALSE(a.Free(*x).ok());  // double free
  EXPECT_EQ(a.free_bytes(), 8192u);
}

// Random allocate/free never hands out overlapping ranges and gives everything back.
TEST(BufferAllocator, RandomChurnKeepsRangesDisjoint) {
  constexpr uint64_t kSize = 1 << 20;
  BufferAllocator a(0, kSize);
  std::mt19937 rng(7);
  std::vector<std::pair<uint64_t, uint64_t>> live;
  for (int i = 0; i < 5000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t len = 1 + rng() % 20000, align = uint64_t{1} << (rng() % 13);
      auto r = a.Allocate(len, align);
      if (!r.ok()) continue;
      EXPECT_EQ(*r % align, 0u);
      EXPECT_LE(*r + len, kSize);
      for (auto [s, l] : live) ASSERT_TRUE(*r + len <= s || s + l <= *r) << "overlap";
      live.emplace_back(*r, len);
    } else {
      size_t k = rng() % live.size();
      ASSERT_TRUE(a.Free(live[k].first).ok());
      live.erase(live.begin() + static_cast<long>(k));
    }
  }
  for (auto [s, l] : live) ASSERT_TRUE(a.Free(s).ok());
  EXPECT_EQ(a.free_bytes(), kSize);
  EXPECT_TRUE(a.Allocate(kSize, 4096).ok());
}

TEST(GuestRam, MemfdIsSharedAndAddressesAgree) {
  auto ram = GuestRam::Create(1 << 20);
  ASSERT_TRUE(ram.ok()) << ram.error().message;
  auto b = (*ram)->Allocate(4096, 4096);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, (*ram)->host(b->gpa));
  EXPECT_EQ((*ram)->user_addr(b->gpa), reinterpret_cast<uintptr_t>(b->host));
  std::memcpy(b->host, "guest", 6);
  // Another mapping of the fd, as the back-end makes, sees the same bytes.
  void* other = mmap(nullptr, (*ram)->size(), PROT_READ, MAP_SHARED, (*ram)->fd(), 0);
  ASSERT_NE(other, MAP_FAILED);
  EXPECT_STREQ(static_cast<const char*>(other) + b->gpa, "guest");
  munmap(other, (*ram)->size());
  EXPECT_TRUE((*ram)->Free(*b).ok());
  EXPECT_FALSE(GuestRam::Create(0).ok());
}

}  // namespace
}  // namespace dpustor::fs::vufs
