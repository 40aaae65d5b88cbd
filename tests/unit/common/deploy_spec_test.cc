#include "common/deploy_spec.h"

#include <gtest/gtest.h>

#include "common/json_rpc.h"

namespace dpustor::protocol {
namespace {

using json = nlohmann::json;

json GoodSpec() {
  return {{"name", "snap-bf3"},
          {"flavour", "snap4"},
          {"image", "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0"},
          {"version", "4.6.0"},
          {"cpu_mask", "0xff"},
          {"hugepages_2m", 2048},
          {"memory_request", "2Gi"},
          {"memory_limit", "4Gi"},
          {"cpu_request", 8},
          {"cpu_limit", 16},
          {"rpc_init", {"nvme_subsystem_create --nqn nqn.2024-11.io.dpustor:boot"}},
          {"firmware", {{"NVME_EMULATION_ENABLE", "1"}, {"NVME_EMULATION_NUM_PF", "2"}}},
          {"ready_timeout_s", 120},
          {"env", {{"XLIO_ENABLED", "0"}}}};
}

TEST(DeploySpecTest, ParsesAFullRequest) {
  auto r = ParseDeployRequest({{"generation", 3}, {"deployment", GoodSpec()}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->generation, 3);
  ASSERT_TRUE(r->deployment);
  const DeploySpec& s = *r->deployment;
  EXPECT_EQ(s.name, "snap-bf3");
  EXPECT_EQ(s.flavour, Flavour::kSnap4);
  EXPECT_EQ(s.hugepages_2m, 2048);
  EXPECT_EQ(s.firmware.at("NVME_EMULATION_NUM_PF"), "2");
  EXPECT_EQ(s.rpc_init.size(), 1u);
  EXPECT_EQ(s.ready_timeout_s, 120);
  // The JSON form parses back to the same spec (the state file relies on it).
  auto again = ParseDeploySpec(ToJson(s));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(*again, s);
}

TEST(DeploySpecTest, DefaultsAndRemoval) {
  auto r = ParseDeployRequest(
      {{"generation", 1},
       {"deployment", {{"name", "d"}, {"image", "doca_snap:4.6.0"}, {"version", "4.6.0"}}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->deployment->cpu_request, 8);
  EXPECT_EQ(r->deployment->cpu_limit, 16);
  EXPECT_EQ(r->deployment->ready_timeout_s, 300);
  EXPECT_EQ(r->deployment->memory_limit, "4Gi");
  auto removal = ParseDeployRequest({{"generation", 2}, {"deployment", nullptr}});
  ASSERT_TRUE(removal.ok());
  EXPECT_FALSE(removal->deployment);
  // snap3 needs no image.
  auto snap3 = ParseDeployRequest(
      {{"generation", 1},
       {"deployment", {{"name", "d"}, {"flavour", "snap3"}, {"version", "3.8"}}}});
  ASSERT_TRUE(snap3.ok()) << snap3.error().message;
  EXPECT_EQ(snap3->deployment->flavour, Flavour::kSnap3);
}

// Every bad field is refused with kInvalidParams naming it.
TEST(DeploySpecTest, RefusesEveryBadField) {
  struct Case {
    const char* field;
    json value;  // null: remove the field
    const char* error_field;
  };
  const std::vector<Case> cases = {
      {"name", nullptr, "deployment.name"},
      {"name", "bad name", "deployment.name"},
      {"name", std::string(64, 'a'), "deployment.name"},
      {"flavour", "snap5", "deployment.flavour"},
      {"flavour", 4, "deployment.flavour"},
      {"image", nullptr, "deployment.image"},
      {"image", "nvcr.io/x:1 --privileged", "deployment.image"},
      {"image", "", "deployment.image"},
      {"version", nullptr, "deployment.version"},
      {"version", "4.6 beta", "deployment.version"},
      {"cpu_mask", "ff", "deployment.cpu_mask"},
      {"cpu_mask", "0xZZ", "deployment.cpu_mask"},
      {"cpu_mask", "0x0", "deployment.cpu_mask"},
      {"hugepages_2m", -1, "deployment.hugepages_2m"},
      {"hugepages_2m", "2048", "deployment.hugepages_2m"},
      {"hugepages_2m", 1.5, "deployment.hugepages_2m"},
      {"memory_request", "2 GB", "deployment.memory_request"},
      {"memory_request", "8Gi", "deployment.memory_request"},  // above the limit
      {"memory_limit", "lots", "deployment.memory_limit"},
      {"memory_limit", "0Gi", "deployment.memory_limit"},
      {"cpu_request", 0, "deployment.cpu_request"},
      {"cpu_request", 32, "deployment.cpu_request"},  // above the limit
      {"cpu_limit", "16", "deployment.cpu_limit"},
      {"rpc_init", "one line", "deployment.rpc_init"},
      {"rpc_init", json::array({"ok", 3}), "deployment.rpc_init[1]"},
      {"rpc_init", json::array({"two\nlines"}), "deployment.rpc_init[0]"},
      {"firmware", json::array(), "deployment.firmware"},
      {"firmware", {{"nvme_emulation_enable", "1"}}, "deployment.firmware.nvme_emulation_enable"},
      {"firmware", {{"NVME_EMULATION_ENABLE", 1}}, "deployment.firmware.NVME_EMULATION_ENABLE"},
      {"firmware",
       {{"NVME_EMULATION_ENABLE", "1; reboot"}},
       "deployment.firmware.NVME_EMULATION_ENABLE"},
      {"ready_timeout_s", 0, "deployment.ready_timeout_s"},
      {"env", {{"1BAD", "x"}}, "deployment.env.1BAD"},
      {"env", {{"APP_ARGS", "-m 0x1"}}, "deployment.env.APP_ARGS"},
      {"env", {{"X", 1}}, "deployment.env.X"},
      {"colour", "blue", "deployment.colour"},
  };
  for (const auto& c : cases) {
    json spec = GoodSpec();
    if (c.value.is_null())
      spec.erase(c.field);
    else
      spec[c.field] = c.value;
    auto r = ParseDeployRequest({{"generation", 1}, {"deployment", spec}});
    ASSERT_FALSE(r.ok()) << c.field << "=" << c.value.dump();
    EXPECT_EQ(r.error().code, rpc::kInvalidParams);
    EXPECT_NE(r.error().message.find("'" + std::string(c.error_field) + "'"), std::string::npos)
        << c.field << "=" << c.value.dump() << ": " << r.error().message;
  }
}

TEST(DeploySpecTest, RefusesBadEnvelope) {
  for (const json& params : {json(nullptr), json::array(), json{{"deployment", nullptr}},
                             json{{"generation", -1}, {"deployment", nullptr}},
                             json{{"generation", "1"}, {"deployment", nullptr}},
                             json{{"generation", 1}}, json{{"generation", 1}, {"deployment", 5}},
                             json{{"generation", 1}, {"deployment", nullptr}, {"extra", 1}}}) {
    auto r = ParseDeployRequest(params);
    ASSERT_FALSE(r.ok()) << params.dump();
    EXPECT_EQ(r.error().code, rpc::kInvalidParams) << params.dump();
  }
}

TEST(DeploySpecTest, Quantities) {
  EXPECT_EQ(ParseQuantity("4Gi"), 4ull << 30);
  EXPECT_EQ(ParseQuantity("512Mi"), 512ull << 20);
  EXPECT_EQ(ParseQuantity("1G"), 1000000000ull);
  EXPECT_EQ(ParseQuantity("1048576"), 1048576ull);
  EXPECT_FALSE(ParseQuantity("Gi"));
  EXPECT_FALSE(ParseQuantity("4GB"));
  EXPECT_FALSE(ParseQuantity("-1Gi"));
  EXPECT_FALSE(ParseQuantity("99999999999999Ti"));
}

}  // namespace
}  // namespace dpustor::protocol
