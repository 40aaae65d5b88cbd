#include "agent/dpu/proc_stat.h"

#include <gtest/gtest.h>

#include <string>

#include "agent/dpu/host_status.h"
#include "fixtures.h"

namespace dpustor::agent::dpu {
namespace {

ProcStat MustParse(const std::string& text) {
  std::string error;
  auto stat = ParseProcStat(text, &error);
  EXPECT_TRUE(stat.has_value()) << error;
  return stat.value_or(ProcStat{});
}

TEST(ProcStatTest, ParsesEightCpuFixture) {
  const ProcStat stat = MustParse(Fixture("proc/stat"));
  EXPECT_EQ(stat.cpus.size(), 8u);
  const CpuTimes expected_agg{17769561, 16012, 4321420, 187195960, 118778, 470, 293295, 0};
  EXPECT_EQ(stat.aggregate, expected_agg);
  const CpuTimes expected_cpu7{2366950, 482, 699323, 23088815, 15108, 71, 43688, 0};
  EXPECT_EQ(stat.cpus.at(7), expected_cpu7);
  // Aggregate is the sum of the per-CPU lines, as in the kernel.
  std::uint64_t sum = 0;
  for (const auto& [index, times] : stat.cpus) sum += times.Total();
  EXPECT_EQ(sum, stat.aggregate.Total());
}

TEST(ProcStatTest, AcceptsOldKernelsWithFourCounters) {
  const ProcStat stat = MustParse("cpu 10 20 30 40\ncpu0 10 20 30 40\n");
  EXPECT_EQ(stat.aggregate.idle, 40u);
  EXPECT_EQ(stat.aggregate.iowait, 0u);
  EXPECT_EQ(stat.cpus.size(), 1u);
}

TEST(ProcStatTest, HandlesCrlfAndNoTrailingNewline) {
  const ProcStat stat = MustParse("cpu 1 2 3 4 5 6 7 8\r\ncpu3 1 2 3 4 5 6 7 8");
  EXPECT_EQ(stat.aggregate.steal, 8u);
  ASSERT_EQ(stat.cpus.count(3), 1u);
}

TEST(ProcStatTest, RejectsMalformedInput) {
  const char* cases[] = {
      "",                                           // empty
      "intr 1 2 3\nctxt 5\n",                       // no cpu lines at all
      "cpu0 1 2 3 4\n",                             // no aggregate line
      "cpu 1 2 x 4\n",                              // non-numeric
      "cpu 1 2 -3 4\n",                             // negative
      "cpu 1 2 3\n",                                // too few counters
      "cpu 1 2 3 4\ncpuX 1 2 3 4\n",                // bad cpu name
      "cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu0 1 2 3 4\n",  // duplicate cpu
      "cpu 1 2 3 4\ncpu 1 2 3 4\n",                 // duplicate aggregate
      "cpu 99999999999999999999999 2 3 4\n",        // overflow
  };
  for (const char* text : cases) {
    std::string error;
    EXPECT_FALSE(ParseProcStat(text, &error).has_value()) << "input: " << text;
    EXPECT_FALSE(error.empty()) << "input: " << text;
  }
  EXPECT_FALSE(ParseProcStat("garbage").has_value());  // null error pointer is fine
}

TEST(CpuUsageTest, FirstSampleReportsCoresOnly) {
  CpuUsage usage;
  const auto j = usage.Sample(MustParse(Fixture("proc/stat")));
  EXPECT_EQ(j["cores"], 8);
  EXPECT_TRUE(j["usage_percent"].is_null());
  EXPECT_TRUE(j["breakdown"].is_null());
  EXPECT_TRUE(j["per_cpu"].is_null());
}

TEST(CpuUsageTest, ComputesPercentagesFromDelta) {
  CpuUsage usage;
  usage.Sample(MustParse(Fixture("proc/stat")));
  const auto j = usage.Sample(MustParse(Fixture("proc_stat_sample2")));
  // Over 1600 jiffies: user 535, nice 20, system 105, idle 895, iowait 35, irq 4, softirq 6.
  EXPECT_EQ(j["cores"], 8);
  EXPECT_DOUBLE_EQ(j["usage_percent"].get<double>(), 41.88);  // 670 / 1600 = 41.875
  const auto& b = j["breakdown"];
  EXPECT_DOUBLE_EQ(b["user"].get<double>(), 33.44);
  EXPECT_DOUBLE_EQ(b["nice"].get<double>(), 1.25);
  EXPECT_DOUBLE_EQ(b["system"].get<double>(), 6.56);
  EXPECT_DOUBLE_EQ(b["idle"].get<double>(), 55.94);
  EXPECT_DOUBLE_EQ(b["iowait"].get<double>(), 2.19);
  EXPECT_DOUBLE_EQ(b["irq"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(b["softirq"].get<double>(), 0.38);
  EXPECT_DOUBLE_EQ(b["steal"].get<double>(), 0.0);

  const double expected[8] = {40, 90, 10, 0, 75, 15, 100, 5};
  ASSERT_EQ(j["per_cpu"].size(), 8u);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(j["per_cpu"][i]["cpu"], i);
    EXPECT_DOUBLE_EQ(j["per_cpu"][i]["usage_percent"].get<double>(), expected[i]) << "cpu" << i;
  }
}

TEST(CpuUsageTest, NoElapsedTimeGivesNullNotDivisionByZero) {
  CpuUsage usage;
  const ProcStat stat = MustParse(Fixture("proc/stat"));
  usage.Sample(stat);
  const auto j = usage.Sample(stat);
  EXPECT_TRUE(j["usage_percent"].is_null());
  EXPECT_TRUE(j["per_cpu"].is_null());
}

TEST(CpuUsageTest, AggregateCounterDecreaseGivesNullAndRebaselines) {
  CpuUsage usage;
  usage.Sample(MustParse("cpu 1000 0 1000 8000 0 0 0 0\ncpu0 1000 0 1000 8000 0 0 0 0\n"));
  // Counters went backwards (e.g. reset / hotplug): no negative or huge numbers.
  auto j = usage.Sample(MustParse("cpu 500 0 500 4000 0 0 0 0\ncpu0 500 0 500 4000 0 0 0 0\n"));
  EXPECT_TRUE(j["usage_percent"].is_null());
  EXPECT_EQ(j["cores"], 1);
  // The decreased sample became the baseline; the next delta is normal.
  j = usage.Sample(MustParse("cpu 550 0 550 4100 0 0 0 0\ncpu0 550 0 550 4100 0 0 0 0\n"));
  EXPECT_DOUBLE_EQ(j["usage_percent"].get<double>(), 50.0);
  EXPECT_DOUBLE_EQ(j["per_cpu"][0]["usage_percent"].get<double>(), 50.0);
}

TEST(CpuUsageTest, HotplugNullsOnlyTheAffectedCpus) {
  CpuUsage usage;
  usage.Sample(
      MustParse("cpu 200 0 0 200 0 0 0 0\ncpu0 100 0 0 100 0 0 0 0\ncpu1 100 0 0 100 0 0 0 0\n"));
  // cpu1 went offline and came back with reset counters; cpu2 appeared.
  const auto j = usage.Sample(
      MustParse("cpu 300 0 0 300 0 0 0 0\ncpu0 150 0 0 150 0 0 0 0\ncpu1 10 0 0 10 0 0 0 0\n"
                "cpu2 5 0 0 5 0 0 0 0\n"));
  EXPECT_EQ(j["cores"], 3);
  EXPECT_DOUBLE_EQ(j["usage_percent"].get<double>(), 50.0);
  ASSERT_EQ(j["per_cpu"].size(), 3u);
  EXPECT_DOUBLE_EQ(j["per_cpu"][0]["usage_percent"].get<double>(), 50.0);
  EXPECT_TRUE(j["per_cpu"][1]["usage_percent"].is_null());
  EXPECT_TRUE(j["per_cpu"][2]["usage_percent"].is_null());
  for (const auto& cpu : j["per_cpu"]) {
    if (cpu["usage_percent"].is_number()) {
      EXPECT_GE(cpu["usage_percent"].get<double>(), 0.0);
    }
  }
}

TEST(CpuUsageTest, ResetForgetsBaseline) {
  CpuUsage usage;
  usage.Sample(MustParse(Fixture("proc/stat")));
  usage.Reset();
  EXPECT_TRUE(usage.Sample(MustParse(Fixture("proc_stat_sample2")))["usage_percent"].is_null());
}

}  // namespace
}  // namespace dpustor::agent::dpu
