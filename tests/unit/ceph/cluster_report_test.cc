#include "agent/ceph/cluster_report.h"

#include <fstream>

#include <gtest/gtest.h>

#include "fixtures.h"

namespace dpustor::agent::ceph {
namespace {

TEST(ClusterReport, HealthyStatus) {
  json s = SummariseStatus(Fixture("status.json"));
  EXPECT_EQ(s["health"]["status"], "HEALTH_OK");
  EXPECT_TRUE(s["health"]["checks"].empty());
  EXPECT_EQ(s["cluster"]["fsid"], Fixture("status.json")["fsid"]);
  EXPECT_EQ(s["mons"]["total"], 1);
  EXPECT_EQ(s["mons"]["in_quorum"], 1);
  EXPECT_EQ(s["mons"]["quorum"], json({"a"}));
  EXPECT_EQ(s["osds"], json({{"total", 1}, {"up", 1}, {"in", 1}}));
  EXPECT_EQ(s["mgr"]["available"], true);
  EXPECT_EQ(s["capacity"]["total_bytes"], 4294967296);
  EXPECT_GT(s["capacity"]["used_bytes"].get<double>(), 0);
  EXPECT_EQ(s["pgs"]["total"], Fixture("status.json")["pgmap"]["num_pgs"]);
  EXPECT_TRUE(s["pgs"]["states"].contains("active+clean"));
}

TEST(ClusterReport, WarningChecksAreListed) {
  json s = SummariseStatus(Fixture("status_warn.json"));
  EXPECT_EQ(s["health"]["status"], "HEALTH_WARN");
  ASSERT_EQ(s["health"]["checks"].size(), 3u);
  json osd_down;
  for (const auto& c : s["health"]["checks"])
    if (c["name"] == "OSD_DOWN") osd_down = c;
  EXPECT_EQ(osd_down["severity"], "HEALTH_WARN");
  EXPECT_EQ(osd_down["summary"], "1 osds down");
  EXPECT_EQ(osd_down["count"], 1);
  EXPECT_EQ(s["osds"]["up"], 0);
}

TEST(ClusterReport, GarbageStatusGivesEmptyPartsNotAThrow) {
  for (const json& bad :
       {json(nullptr), json::array(), json("x"),
        json{{"health", 3}, {"osdmap", "up"}, {"pgmap", {{"pgs_by_state", 1}}}}}) {
    json s;
    ASSERT_NO_THROW(s = SummariseStatus(bad)) << bad.dump();
    EXPECT_FALSE(s["health"].contains("status"));
    EXPECT_TRUE(s["osds"].empty());
  }
}

TEST(ClusterReport, PoolsJoinDetailAndUsage) {
  json pools = SummarisePools(Fixture("df.json"), Fixture("osd_pool_ls_detail.json"));
  ASSERT_EQ(pools.size(), 2u);
  json rbd = pools[1]["name"] == "rbdtest" ? pools[1] : pools[0];
  EXPECT_EQ(rbd["name"], "rbdtest");
  EXPECT_EQ(rbd["size"], 1);
  EXPECT_EQ(rbd["pg_num"], 8);
  EXPECT_EQ(rbd["applications"], json({"rbd"}));
  EXPECT_TRUE(rbd["stored_bytes"].is_number());
  EXPECT_TRUE(rbd["max_avail_bytes"].is_number());
  EXPECT_EQ(RbdPools(Fixture("osd_pool_ls_detail.json")), std::vector<std::string>{"rbdtest"});
}

TEST(ClusterReport, PoolsWithoutUsageKeepDetail) {
  json pools = SummarisePools(json::object(), Fixture("osd_pool_ls_detail.json"));
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_FALSE(pools[0].contains("stored_bytes"));
  EXPECT_TRUE(pools[0].contains("pg_num"));
}

TEST(ClusterReport, ImagesWithSizesAndSnapshotsSkipped) {
  json ls = Fixture("rbd_ls_rbdtest.json");
  ls.push_back({{"image", "img1"}, {"snapshot", "s1"}, {"size", 67108864}, {"format", 2}});
  json images = SummariseImages("rbdtest", ls);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0]["pool"], "rbdtest");
  EXPECT_EQ(images[0]["name"], "img1");
  EXPECT_EQ(images[0]["size_bytes"], 64 << 20);
  EXPECT_EQ(images[1]["size_bytes"], 1 << 30);
  EXPECT_TRUE(SummariseImages("p", json::object()).empty());
}

TEST(ClusterReport, VersionFromVersionsOutput) {
  json v = {
      {"mon",
       {{"ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)", 1}}},
      {"overall",
       {{"ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)", 3},
        {"ceph version 16.2.11 (3cf40e2dca667f68c6ce3ff5cd94f01e711af894) pacific (stable)", 1}}}};
  EXPECT_EQ(ClusterVersion(v), "16.2.15 pacific");
  EXPECT_TRUE(ClusterVersion(json::object()).is_null());
}

}  // namespace
}  // namespace dpustor::agent::ceph
