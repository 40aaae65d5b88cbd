#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "agent/dpu/deploy/mlxconfig.h"
#include "fixtures.h"

namespace dpustor::agent::dpu::deploy {
namespace {

TEST(MlxconfigTest, ParsesBlueField3Query) {
  auto q = ParseMlxQuery(Fixture("mlxconfig/bf3_emulation_query.txt"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->device_type, "BlueField3");
  EXPECT_NE(q->description.find("BlueField-3 B3220"), std::string::npos);
  ASSERT_EQ(q->values.size(), 9u);
  const MlxValue& nvme = q->values.at("NVME_EMULATION_ENABLE");
  EXPECT_EQ(nvme.default_value, "False(0)");
  EXPECT_EQ(nvme.current, "True(1)");
  EXPECT_EQ(nvme.next_boot, "True(1)");
  EXPECT_TRUE(nvme.modified);
  EXPECT_EQ(q->values.at("NVME_EMULATION_NUM_PF").current, "2");
  EXPECT_FALSE(q->values.at("NVME_EMULATION_NUM_VF").modified);
  EXPECT_EQ(q->values.at("INTERNAL_CPU_MODEL").current, "EMBEDDED_CPU(1)");
  // The pending change: next boot differs from current.
  EXPECT_EQ(q->values.at("VIRTIO_FS_EMULATION_ENABLE").current, "False(0)");
  EXPECT_EQ(q->values.at("VIRTIO_FS_EMULATION_ENABLE").next_boot, "True(1)");
}

TEST(MlxconfigTest, ParsesBlueField2Query) {
  auto q = ParseMlxQuery(Fixture("mlxconfig/bf2_query.txt"));
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->device_type, "BlueField2");
  EXPECT_EQ(q->values.size(), 3u);
  EXPECT_EQ(q->values.at("INTERNAL_CPU_MODEL").next_boot, "EMBEDDED_CPU(1)");
}

TEST(MlxconfigTest, RefusesTextThatIsNotAQuery) {
  EXPECT_FALSE(ParseMlxQuery("").ok());
  EXPECT_FALSE(ParseMlxQuery("-E- Failed to open the device\n").ok());
}

TEST(MlxconfigTest, ValuesMatchByNumberOrLabel) {
  EXPECT_TRUE(MlxValueMatches("True(1)", "1"));
  EXPECT_TRUE(MlxValueMatches("True(1)", "true"));
  EXPECT_TRUE(MlxValueMatches("True(1)", "True(1)"));
  EXPECT_FALSE(MlxValueMatches("False(0)", "1"));
  EXPECT_TRUE(MlxValueMatches("2", "2"));
  EXPECT_FALSE(MlxValueMatches("2", "4"));
  EXPECT_TRUE(MlxValueMatches("EMBEDDED_CPU(1)", "EMBEDDED_CPU"));
}

TEST(MlxconfigTest, PlansWhatToSetAndWhatIsPending) {
  auto q = ParseMlxQuery(Fixture("mlxconfig/bf3_emulation_query.txt"));
  ASSERT_TRUE(q.ok());
  FirmwarePlan plan = PlanFirmware(*q, {{"NVME_EMULATION_ENABLE", "1"},
                                        {"NVME_EMULATION_NUM_PF", "2"},
                                        {"VIRTIO_BLK_EMULATION_ENABLE", "1"},
                                        {"VIRTIO_FS_EMULATION_ENABLE", "1"},
                                        {"PCI_SWITCH_EMULATION_ENABLE", "1"}});
  EXPECT_EQ(plan.to_set,
            (std::map<std::string, std::string>{{"VIRTIO_BLK_EMULATION_ENABLE", "1"}}));
  EXPECT_EQ(plan.pending, std::vector<std::string>{"VIRTIO_FS_EMULATION_ENABLE"});
  EXPECT_EQ(plan.missing, std::vector<std::string>{"PCI_SWITCH_EMULATION_ENABLE"});
  FirmwarePlan nothing = PlanFirmware(*q, {{"NVME_EMULATION_ENABLE", "True"}});
  EXPECT_TRUE(nothing.to_set.empty() && nothing.pending.empty() && nothing.missing.empty());
}

TEST(MlxconfigTest, BuildsCommands) {
  EXPECT_EQ(MlxQueryArgv("mlxconfig", "/dev/mst/mt41692_pciconf0", {"NVME_EMULATION_ENABLE"}),
            (std::vector<std::string>{"mlxconfig", "-d", "/dev/mst/mt41692_pciconf0", "-e", "q",
                                      "NVME_EMULATION_ENABLE"}));
  EXPECT_EQ(MlxSetArgv("/opt/mlxconfig", "/dev/mst/mt41692_pciconf0",
                       {{"NVME_EMULATION_ENABLE", "1"}, {"NVME_EMULATION_NUM_PF", "2"}}),
            (std::vector<std::string>{"/opt/mlxconfig", "-d", "/dev/mst/mt41692_pciconf0", "-y",
                                      "s", "NVME_EMULATION_ENABLE=1", "NVME_EMULATION_NUM_PF=2"}));
}

}  // namespace
}  // namespace dpustor::agent::dpu::deploy
