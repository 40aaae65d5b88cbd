// GuestMemory: mapping memfd regions and translating guest and user addresses.
#include "fs/transport/vhost_user/guest_memory.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "test_driver.h"

namespace dpustor::fs::vhost_user {
namespace {

using namespace testing;  // NOLINT

TEST(GuestMemoryTest, TranslatesInsideEachRegion) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  ASSERT_EQ(mem->regions().size(), 3u);
  for (const GuestRegion& r : mem->regions()) {
    auto first = mem->Translate(r.gpa, 1);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first->data(), r.host);
    auto whole = mem->Translate(r.gpa, r.size);
    ASSERT_TRUE(whole.ok());
    EXPECT_EQ(whole->size(), r.size);
    auto last = mem->Translate(r.gpa + r.size - 8, 8);
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(last->data(), r.host + r.size - 8);
    auto user = mem->TranslateUser(r.uaddr + 100, 10);
    ASSERT_TRUE(user.ok());
    EXPECT_EQ(user->data(), r.host + 100);
  }
  // Writes through one translation are seen through the other.
  auto g = mem->Translate(kGpaB + 4000, 4);
  auto u = mem->TranslateUser(kUserB + 4000, 4);
  ASSERT_TRUE(g.ok() && u.ok());
  std::memcpy(g->data(), "abcd", 4);
  EXPECT_EQ(std::memcmp(u->data(), "abcd", 4), 0);
}

TEST(GuestMemoryTest, RefusesRangesOutsideOneRegion) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  EXPECT_FALSE(mem->Translate(kGpaA, 0).ok());                    // empty
  EXPECT_FALSE(mem->Translate(kGpaA + kRegionSize, 1).ok());      // the hole
  EXPECT_FALSE(mem->Translate(kGpaA + kRegionSize - 4, 8).ok());  // runs into the hole
  EXPECT_FALSE(mem->Translate(kGpaB + kRegionSize - 4, 8).ok());  // straddles B and C
  EXPECT_FALSE(mem->Translate(kGpaB, 2 * kRegionSize).ok());      // covers B and C
  EXPECT_FALSE(mem->Translate(kGpaC + kRegionSize, 1).ok());      // past the end
  EXPECT_FALSE(mem->Translate(UINT64_MAX, 1).ok());
  EXPECT_FALSE(mem->Translate(kGpaB + 8, UINT64_MAX).ok());       // gpa + len wraps
  EXPECT_FALSE(mem->Translate(UINT64_MAX - 3, 8).ok());           // wraps to 4
  EXPECT_FALSE(mem->Translate(kGpaA + 16, UINT64_MAX - 8).ok());  // wraps into A
  EXPECT_FALSE(mem->TranslateUser(kGpaA, 1).ok());                // a gpa is no user address
  EXPECT_FALSE(mem->TranslateUser(kUserA + kRegionSize - 1, 2).ok());
  EXPECT_FALSE(mem->TranslateUser(kUserA + 1, UINT64_MAX).ok());
}

TEST(GuestMemoryTest, ContainsOnlyMappedBytes) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  const GuestRegion& b = mem->regions()[1];
  EXPECT_TRUE(mem->Contains(b.host, b.size));
  EXPECT_FALSE(mem->Contains(b.host, b.size + 1));
  EXPECT_FALSE(mem->Contains(b.host - 1, 1));
  int local = 0;
  EXPECT_FALSE(mem->Contains(&local, sizeof local));
}

TEST(GuestMemoryTest, HonoursUnalignedMmapOffset) {
  int fd = MakeMemfd("guest", 8192);
  ASSERT_EQ(pwrite(fd, "hello", 5, 100), 5);
  std::vector<MemoryRegionDesc> table = {{0x10000, 4096, 0x5000000, 100}};
  std::vector<int> fds = {fd};
  auto mem = GuestMemory::Map(table, fds);
  close(fd);
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  auto s = (*mem)->Translate(0x10000, 5);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(std::memcmp(s->data(), "hello", 5), 0);
}

TEST(GuestMemoryTest, RefusesBadTables) {
  int fd = MakeMemfd("guest", 2 * kMiB);
  auto map = [&](std::vector<MemoryRegionDesc> table) {
    std::vector<int> fds(table.size(), fd);
    return GuestMemory::Map(table, fds).ok();
  };
  EXPECT_TRUE(map({{0, kMiB, kUserA, 0}, {kMiB, kMiB, kUserB, 0}}));
  EXPECT_FALSE(map({{0, 0, kUserA, 0}}));                                   // empty
  EXPECT_FALSE(map({{UINT64_MAX - 10, 4096, kUserA, 0}}));                  // gpa wraps
  EXPECT_FALSE(map({{0, 4096, UINT64_MAX - 10, 0}}));                       // uaddr wraps
  EXPECT_FALSE(map({{0, 4096, kUserA, UINT64_MAX - 10}}));                  // offset wraps
  EXPECT_FALSE(map({{0, kMiB, kUserA, 0}, {kMiB / 2, kMiB, kUserB, 0}}));   // gpa overlap
  EXPECT_FALSE(map({{0, kMiB, kUserA, 0}, {kMiB, kMiB, kUserA + 10, 0}}));  // uaddr overlap
  std::vector<MemoryRegionDesc> one = {{0, 4096, kUserA, 0}};
  std::vector<int> none;
  EXPECT_FALSE(GuestMemory::Map(one, none).ok());  // count mismatch
  std::vector<int> bad = {-1};
  EXPECT_FALSE(GuestMemory::Map(one, bad).ok());
  close(fd);
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::vector<int> unmappable = {pipe_fds[0]};
  EXPECT_FALSE(GuestMemory::Map(one, unmappable).ok());  // mmap fails: an error, not a crash
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(GuestMemoryTest, EmptyTableTranslatesNothing) {
  auto mem = GuestMemory::Map({}, {});
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE((*mem)->Translate(0, 1).ok());
  EXPECT_FALSE((*mem)->TranslateUser(0, 1).ok());
}

}  // namespace
}  // namespace dpustor::fs::vhost_user
