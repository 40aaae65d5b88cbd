#include "agent/dpu/meminfo.h"

#include <gtest/gtest.h>

#include <string>

#include "agent/dpu/host_status.h"
#include "fixtures.h"

namespace dpustor::agent::dpu {
namespace {

TEST(MeminfoTest, ParsesFixtureIntoBytes) {
  std::string error;
  const auto j = ParseMeminfo(Fixture("proc/meminfo"), &error);
  ASSERT_TRUE(j.has_value()) << error;
  EXPECT_EQ((*j)["total_bytes"], 32598272ull * 1024);
  EXPECT_EQ((*j)["free_bytes"], 20125440ull * 1024);
  EXPECT_EQ((*j)["available_bytes"], 24876544ull * 1024);
  EXPECT_EQ((*j)["buffers_bytes"], 187392ull * 1024);
  EXPECT_EQ((*j)["cached_bytes"], 4719616ull * 1024);
  EXPECT_EQ((*j)["swap_total_bytes"], 1048572ull * 1024);
  EXPECT_EQ((*j)["swap_free_bytes"], 1048572ull * 1024);
  const auto& huge = (*j)["hugepages"];
  EXPECT_EQ(huge["size_bytes"], 2048u * 1024);
  EXPECT_EQ(huge["total"], 2048);
  EXPECT_EQ(huge["free"], 1536);
  EXPECT_EQ(huge["reserved"], 12);
  EXPECT_EQ(huge["surplus"], 0);
  // Only the documented keys: unknown lines (CmaTotal, Hugetlb, ...) are ignored.
  EXPECT_EQ(j->size(), 8u);
  EXPECT_EQ(huge.size(), 5u);
}

TEST(MeminfoTest, MissingKeysAreAbsentNotZero) {
  const auto j = ParseMeminfo("MemTotal: 1000 kB\nMemFree: 10 kB\nSomethingNew: 5 kB\n");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ((*j)["total_bytes"], 1024000);
  EXPECT_EQ((*j)["free_bytes"], 10240);
  EXPECT_FALSE(j->contains("available_bytes"));
  EXPECT_FALSE(j->contains("swap_total_bytes"));
  EXPECT_FALSE(j->contains("hugepages"));  // no hugepage lines at all
}

TEST(MeminfoTest, PartialHugepagesKeepsOnlyPresentKeys) {
  const auto j = ParseMeminfo("MemTotal: 1 kB\nHugePages_Total: 4\n");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ((*j)["hugepages"], (nlohmann::json{{"total", 4}}));
}

TEST(MeminfoTest, MalformedValuesAreSkipped) {
  const auto j = ParseMeminfo(
      "MemTotal: 1000 kB\n"
      "MemFree: lots kB\n"                 // not a number
      "MemAvailable: 100 MB\n"             // unexpected unit
      "Buffers: 100\n"                     // missing unit
      "Cached: 99999999999999999999 kB\n"  // overflows
      "SwapTotal: 18014398509481984 kB\n"  // 2^54 kB overflows u64 bytes
      "no colon here\n"
      ":\n"
      "HugePages_Free: -1\n");
  ASSERT_TRUE(j.has_value());
  EXPECT_EQ(*j, (nlohmann::json{{"total_bytes", 1024000}}));
}

TEST(MeminfoTest, NotMeminfoIsAnError) {
  for (const char* text : {"", "hello world", "MemTotal: abc kB\n", "MemFree: 1 kB\n"}) {
    std::string error;
    EXPECT_FALSE(ParseMeminfo(text, &error).has_value()) << text;
    EXPECT_NE(error.find("MemTotal"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace dpustor::agent::dpu
