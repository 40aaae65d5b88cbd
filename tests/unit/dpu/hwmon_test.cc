#include "agent/dpu/hwmon.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fixtures.h"

namespace dpustor::agent::dpu {
namespace {

namespace fs = std::filesystem;

// A scratch directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "dpustor-hwmon-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  void Write(const fs::path& rel, const std::string& content) const {
    fs::create_directories((path_ / rel).parent_path());
    std::ofstream(path_ / rel) << content;
  }

 private:
  fs::path path_;
};

TEST(HwmonTest, ReadsFixtureTree) {
  const auto temps = ReadHwmonTemperatures(FixturePath("sys"));
  ASSERT_TRUE(temps.is_array());
  // hwmon0: temp1 + temp2; hwmon1: temp1 + temp3 (temp2_input is garbage and skipped).
  ASSERT_EQ(temps.size(), 4u) << temps.dump(2);

  EXPECT_EQ(temps[0], (nlohmann::json{{"chip", "mlx5"},
                                      {"hwmon", "hwmon0"},
                                      {"sensor", "temp1"},
                                      {"label", "asic"},
                                      {"celsius", 54.0},
                                      {"crit_celsius", 105.0},
                                      {"max_celsius", 95.0}}));
  EXPECT_EQ(temps[1]["sensor"], "temp2");
  EXPECT_EQ(temps[1]["label"], "module0");
  EXPECT_DOUBLE_EQ(temps[1]["celsius"].get<double>(), 47.5);
  EXPECT_DOUBLE_EQ(temps[1]["crit_celsius"].get<double>(), 75.0);
  EXPECT_FALSE(temps[1].contains("max_celsius"));

  EXPECT_EQ(temps[2]["chip"], "nvme");
  EXPECT_EQ(temps[2]["label"], "Composite");
  EXPECT_DOUBLE_EQ(temps[2]["celsius"].get<double>(), 41.85);
  EXPECT_DOUBLE_EQ(temps[2]["crit_celsius"].get<double>(), 84.85);
  EXPECT_DOUBLE_EQ(temps[2]["max_celsius"].get<double>(), 81.85);

  // No label file -> null label; garbage max and empty crit are left out.
  EXPECT_EQ(temps[3]["sensor"], "temp3");
  EXPECT_TRUE(temps[3]["label"].is_null());
  EXPECT_DOUBLE_EQ(temps[3]["celsius"].get<double>(), 43.85);
  EXPECT_FALSE(temps[3].contains("crit_celsius"));
  EXPECT_FALSE(temps[3].contains("max_celsius"));
}

TEST(HwmonTest, MissingDirectoryGivesEmptyArray) {
  const auto temps = ReadHwmonTemperatures(FixturePath("sys") + "/does-not-exist");
  EXPECT_TRUE(temps.is_array());
  EXPECT_TRUE(temps.empty());
  EXPECT_EQ(ReadHwmonTemperatures(""), nlohmann::json::array());
}

TEST(HwmonTest, OrdersNumericallyAndHandlesOddEntries) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("class/hwmon/hwmon10/name", "late\n");
  dir.Write("class/hwmon/hwmon10/temp1_input", "1000\n");
  dir.Write("class/hwmon/hwmon2/name", "early\n");
  dir.Write("class/hwmon/hwmon2/temp10_input", "-5500\n");  // below zero is valid
  dir.Write("class/hwmon/hwmon2/temp9_input", "9000\n");
  dir.Write("class/hwmon/hwmon2/temp3_input", "");         // empty: skipped
  dir.Write("class/hwmon/hwmon2/tempX_input", "1000\n");   // not a sensor name
  dir.Write("class/hwmon/hwmon2/temp4_input", "12 34\n");  // trailing junk: skipped
  dir.Write("class/hwmon/hwmon3/temp1_input", "30000\n");  // no name file
  dir.Write("class/hwmon/hwmonX/temp1_input", "1000\n");   // not an hwmon dir
  dir.Write("class/hwmon/README", "not a directory\n");
  fs::create_directories(dir.path() / "class/hwmon/hwmon2/temp5_input");  // a directory

  const auto temps = ReadHwmonTemperatures(dir.path().string());
  ASSERT_EQ(temps.size(), 4u) << temps.dump(2);
  EXPECT_EQ(temps[0]["chip"], "early");
  EXPECT_EQ(temps[0]["sensor"], "temp9");
  EXPECT_EQ(temps[1]["sensor"], "temp10");
  EXPECT_DOUBLE_EQ(temps[1]["celsius"].get<double>(), -5.5);
  EXPECT_EQ(temps[2]["chip"], "hwmon3");  // falls back to the directory name
  EXPECT_EQ(temps[3]["chip"], "late");
}

TEST(HwmonTest, UnreadableFilesAreSkipped) {
  if (::geteuid() == 0) GTEST_SKIP() << "root can read mode-000 files";
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  dir.Write("class/hwmon/hwmon0/name", "chip\n");
  dir.Write("class/hwmon/hwmon0/temp1_input", "1000\n");
  dir.Write("class/hwmon/hwmon0/temp2_input", "2000\n");
  fs::permissions(dir.path() / "class/hwmon/hwmon0/temp1_input", fs::perms::none);
  const auto temps = ReadHwmonTemperatures(dir.path().string());
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_EQ(temps[0]["sensor"], "temp2");
}

}  // namespace
}  // namespace dpustor::agent::dpu
