#include "agent/dpu/system_status.h"
#include "fixtures.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace dpustor::agent::dpu {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

SystemPaths FixturePaths() {
  SystemPaths paths;
  paths.proc_root = FixturePath("proc");
  paths.sys_root = FixturePath("sys");
  paths.ip_command = {"cat", FixturePath("ip_link.json")};
  return paths;
}

bool HasErrorContaining(const json& status, const std::string& needle) {
  for (const auto& e : status.at("errors")) {
    if (e.get<std::string>().find(needle) != std::string::npos) return true;
  }
  return false;
}

const char* const kKeys[] = {"cpu",    "memory",       "load",  "uptime_s", "hostname",
                             "kernel", "temperatures", "links", "errors"};

TEST(SystemStatusTest, DefaultPathsAreTheRealSystem) {
  const SystemPaths paths;
  EXPECT_EQ(paths.proc_root, "/proc");
  EXPECT_EQ(paths.sys_root, "/sys");
  EXPECT_EQ(paths.ip_command, (std::vector<std::string>{"ip", "-j", "-s", "link"}));
}

TEST(SystemStatusTest, CollectsFixtureRoot) {
  SystemStatusCollector collector(FixturePaths());
  const json s = collector.Collect();
  for (const char* key : kKeys) EXPECT_TRUE(s.contains(key)) << key;
  EXPECT_EQ(s.at("errors"), json::array()) << s.dump(2);

  EXPECT_EQ(s.at("cpu").at("cores"), 8);
  EXPECT_TRUE(s.at("cpu").at("usage_percent").is_null());  // first sample
  EXPECT_EQ(s.at("memory").at("total_bytes"), 32598272ull * 1024);
  EXPECT_EQ(s.at("memory").at("hugepages").at("total"), 2048);
  EXPECT_EQ(s.at("load").at("running_tasks"), 5);
  EXPECT_DOUBLE_EQ(s.at("uptime_s").get<double>(), 262144.37);
  EXPECT_EQ(s.at("hostname"), "bf3-dpu-07");
  EXPECT_EQ(s.at("kernel"), "5.15.0-1035-bluefield");
  EXPECT_EQ(s.at("temperatures").size(), 4u);
  ASSERT_EQ(s.at("links").size(), 4u);
  EXPECT_EQ(s.at("links")[2].at("name"), "p0");
  EXPECT_TRUE(s.at("links")[2].at("rx_bytes_per_s").is_null());  // first sample

  // Second collection: same counters -> rates are 0 over the elapsed time.
  const json again = collector.Collect();
  EXPECT_EQ(again.at("errors"), json::array());
  EXPECT_DOUBLE_EQ(again.at("links")[2].at("rx_bytes_per_s").get<double>(), 0.0);
  EXPECT_TRUE(again.at("cpu").at("usage_percent").is_null());  // no jiffies elapsed
  EXPECT_NO_THROW((void)again.dump());
}

TEST(SystemStatusTest, MissingIpCommandIsReportedNotThrown) {
  SystemPaths paths = FixturePaths();
  paths.ip_command = {"dpustor-no-such-ip-binary", "-j", "-s", "link"};
  SystemStatusCollector collector(paths);
  json s;
  const auto start = Clock::now();
  ASSERT_NO_THROW(s = collector.Collect());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(s.at("links"), json::array());
  ASSERT_EQ(s.at("errors").size(), 1u) << s.dump(2);
  EXPECT_TRUE(HasErrorContaining(s, "links: 'dpustor-no-such-ip-binary -j -s link': cannot start"))
      << s.at("errors").dump();
  EXPECT_EQ(s.at("hostname"), "bf3-dpu-07");  // the rest is unaffected
}

TEST(SystemStatusTest, HangingIpCommandTimesOutQuickly) {
  SystemPaths paths = FixturePaths();
  paths.ip_command = {"sleep", "10"};
  SystemStatusCollector collector(paths, std::chrono::milliseconds(200));
  const auto start = Clock::now();
  const json s = collector.Collect();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(s.at("links"), json::array());
  EXPECT_TRUE(HasErrorContaining(s, "timed out after 200 ms")) << s.at("errors").dump();
}

TEST(SystemStatusTest, FailingOrGarbageIpOutputIsReported) {
  SystemPaths paths = FixturePaths();
  paths.ip_command = {"sh", "-c", "echo 'Error: some failure' >&2; exit 2"};
  json s = SystemStatusCollector(paths).Collect();
  EXPECT_TRUE(HasErrorContaining(s, "links: sh exited with status 2: Error: some failure"))
      << s.at("errors").dump();

  paths.ip_command = {"cat", FixturePath("proc/loadavg")};  // not JSON
  s = SystemStatusCollector(paths).Collect();
  EXPECT_TRUE(HasErrorContaining(s, "links: ip link: output is not valid JSON"))
      << s.at("errors").dump();

  paths.ip_command = {};
  s = SystemStatusCollector(paths).Collect();
  EXPECT_TRUE(HasErrorContaining(s, "links: no ip command configured"));
}

TEST(SystemStatusTest, MissingRootsGiveNullsAndErrors) {
  SystemPaths paths;
  paths.proc_root = FixturePath("no-such-proc");
  paths.sys_root = FixturePath("no-such-sys");
  paths.ip_command = {"cat", FixturePath("no-such-file.json")};
  SystemStatusCollector collector(paths);
  json s;
  ASSERT_NO_THROW(s = collector.Collect());
  for (const char* key : kKeys) EXPECT_TRUE(s.contains(key)) << key;
  for (const char* key : {"cpu", "memory", "load", "uptime_s", "hostname", "kernel"}) {
    EXPECT_TRUE(s.at(key).is_null()) << key;
  }
  EXPECT_EQ(s.at("temperatures"), json::array());  // no hwmon is not an error
  EXPECT_EQ(s.at("links"), json::array());
  EXPECT_EQ(s.at("errors").size(), 7u) << s.at("errors").dump(2);
  for (const char* prefix :
       {"cpu: ", "memory: ", "load: ", "uptime: ", "hostname: ", "kernel: ", "links: "}) {
    EXPECT_TRUE(HasErrorContaining(s, prefix)) << prefix;
  }
  EXPECT_TRUE(HasErrorContaining(s, "No such file or directory"));
}

TEST(SystemStatusTest, CollectsFromThisMachine) {
  // Smoke test against the real /proc: must not throw, and the basics must be readable.
  SystemStatusCollector collector;
  json s;
  ASSERT_NO_THROW(s = collector.Collect());
  EXPECT_TRUE(s.at("cpu").is_object()) << s.at("errors").dump();
  EXPECT_GE(s.at("cpu").at("cores").get<int>(), 1);
  EXPECT_TRUE(s.at("memory").is_object()) << s.at("errors").dump();
  EXPECT_TRUE(s.at("errors").is_array());
  EXPECT_NO_THROW((void)s.dump());
}

}  // namespace
}  // namespace dpustor::agent::dpu
