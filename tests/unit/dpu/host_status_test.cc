#include "agent/dpu/host_status.h"
#include "fixtures.h"

#include <gtest/gtest.h>

#include <string>

namespace dpustor::agent::dpu {
namespace {

TEST(HostStatusTest, ParsesLoadavgFixture) {
  std::string error;
  const auto j = ParseLoadavg(Fixture("proc/loadavg"), &error);
  ASSERT_TRUE(j.has_value()) << error;
  EXPECT_DOUBLE_EQ((*j)["load1"].get<double>(), 2.41);
  EXPECT_DOUBLE_EQ((*j)["load5"].get<double>(), 1.87);
  EXPECT_DOUBLE_EQ((*j)["load15"].get<double>(), 1.52);
  EXPECT_EQ((*j)["running_tasks"], 5);
  EXPECT_EQ((*j)["total_tasks"], 734);
}

TEST(HostStatusTest, RejectsMalformedLoadavg) {
  for (const char* text :
       {"", "0.1 0.2 0.3", "0.1 0.2 x 1/2 3", "0.1 0.2 0.3 12 3", "0.1 0.2 0.3 a/2 3",
        "0.1 0.2 0.3 1/ 3", "nan 0.2 0.3 1/2 3", "-1 0.2 0.3 1/2 3"}) {
    std::string error;
    EXPECT_FALSE(ParseLoadavg(text, &error).has_value()) << text;
    EXPECT_NE(error.find("loadavg"), std::string::npos) << text;
  }
}

TEST(HostStatusTest, ParsesUptime) {
  std::string error;
  const auto up = ParseUptime(Fixture("proc/uptime"), &error);
  ASSERT_TRUE(up.has_value()) << error;
  EXPECT_DOUBLE_EQ(*up, 262144.37);
  EXPECT_DOUBLE_EQ(ParseUptime("5\n").value_or(-1), 5.0);  // idle column optional
  for (const char* text : {"", "   \n", "abc 1.0", "inf 1", "-3.0 1"}) {
    EXPECT_FALSE(ParseUptime(text, &error).has_value()) << text;
  }
}

TEST(HostStatusTest, ParsesHostnameAndKernel) {
  EXPECT_EQ(ParseSingleLine(Fixture("proc/sys/kernel/hostname")), "bf3-dpu-07");
  EXPECT_EQ(ParseSingleLine(Fixture("proc/sys/kernel/osrelease")), "5.15.0-1035-bluefield");
  EXPECT_EQ(ParseSingleLine("  spaced \n"), "spaced");
}

TEST(HostStatusTest, SingleLineRejectsEmptyAndMultiLineAndSanitises) {
  std::string error;
  EXPECT_FALSE(ParseSingleLine("", &error).has_value());
  EXPECT_FALSE(ParseSingleLine(" \n\t", &error).has_value());
  EXPECT_FALSE(ParseSingleLine("a\nb\n", &error).has_value());
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(ParseSingleLine("bad\x01host\xff"), "bad?host?");  // always valid UTF-8
}

TEST(HostStatusTest, ReadTextFileReportsMissingFileAndSizeLimit) {
  std::string error;
  EXPECT_FALSE(ReadTextFile(FixturePath("does/not/exist"), &error).has_value());
  EXPECT_NE(error.find("does/not/exist"), std::string::npos);
  EXPECT_NE(error.find("No such file"), std::string::npos);
  EXPECT_FALSE(ReadTextFile(FixturePath("proc/meminfo"), &error, 16).has_value());
  EXPECT_NE(error.find("larger than"), std::string::npos);
  EXPECT_FALSE(ReadTextFile(FixturePath("proc"), &error).has_value());  // a directory
  // /proc files report size 0 but still have content.
  const auto self = ReadTextFile("/proc/self/stat");
  ASSERT_TRUE(self.has_value());
  EXPECT_FALSE(self->empty());
}

}  // namespace
}  // namespace dpustor::agent::dpu
