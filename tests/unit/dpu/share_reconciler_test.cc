// ShareReconciler (share.apply) against the in-process SNAP simulator of a BlueField-3 with
// virtio-fs: the SNAP path end to end, idempotence, removal of only dpustor's objects, and
// spec validation. (The dpustor-fsd path runs against the real daemon in
// tests/integration/shares.)
#include "agent/dpu/share_reconciler.h"

#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::agent::dpu {
namespace {

using json = nlohmann::json;
using sim::testing::SimHarness;
using namespace std::chrono_literals;

json Spec(std::int64_t generation, json shares) {
  return {{"generation", generation}, {"shares", std::move(shares)}};
}

json NfsShare(const std::string& name, const std::string& tag, int pf = 0) {
  return {
      {"name", name}, {"backend", "nfs://10.0.0.5/export/" + name}, {"tag", tag}, {"pf_index", pf}};
}

class ShareReconcilerTest : public ::testing::Test {
 protected:
  ShareReconcilerTest()
      : sim_(sim::Dialect::kSnap4, sim::SimConfig{.pfs = 2, .vfs = 0, .virtio_fs = true}),
        snap_(sim_.socket(), 5s),
        reconciler_(snap_, {}) {}

  SimHarness sim_;
  snap::SnapClient snap_;
  ShareReconciler reconciler_;
};

TEST_F(ShareReconcilerTest, SnapPathCreatesIsIdempotentAndRemovesOnlyItsOwn) {
  // A foreign device dpustor must never touch.
  sim_.Ok("virtio_fs_transport_create", {{"transport_name", "DOCA"}});
  sim_.Ok("fsdev_aio_create", {{"name", "theirs"}, {"root_path", "/srv"}});
  sim_.Ok("virtio_fs_device_create",
          {{"transport_name", "DOCA"}, {"dev_name", "theirs"}, {"tag", "t"}, {"fsdev", "theirs"}});

  auto r = reconciler_.Apply(Spec(1, {NfsShare("home", "home"), NfsShare("work", "work", 1)}));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ((*r)["shares"].size(), 2u) << r->dump();
  for (const auto& s : (*r)["shares"]) {
    EXPECT_EQ(s["state"], "ready") << s.dump();
    EXPECT_EQ(s["data_plane"], "snap");
    EXPECT_EQ(s["counters"]["requests"], 0);
  }
  json devices = sim_.Ok("virtio_fs_get_devices");
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0]["dev_name"], "dpustor-home");
  EXPECT_EQ(devices[0]["state"], "started");
  EXPECT_EQ(devices[2]["dev_name"], "theirs");

  // The same set again: no mutating call.
  int before = reconciler_.mutations();
  r = reconciler_.Apply(Spec(2, {NfsShare("home", "home"), NfsShare("work", "work", 1)}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(reconciler_.mutations(), before);
  EXPECT_EQ(reconciler_.spec_generation(), 2);
  EXPECT_EQ(reconciler_.Observed()["shares"].size(), 2u);

  // A changed tag is rebuilt; a share left out is removed; the foreign device stays.
  r = reconciler_.Apply(Spec(3, {NfsShare("home", "home2")}));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)["shares"].size(), 1u) << r->dump();
  EXPECT_EQ((*r)["shares"][0]["state"], "ready");
  devices = sim_.Ok("virtio_fs_get_devices");
  ASSERT_EQ(devices.size(), 2u) << devices.dump();
  EXPECT_EQ(devices[0]["tag"], "home2");
  EXPECT_EQ(devices[1]["dev_name"], "theirs");

  r = reconciler_.Apply(Spec(4, json::array()));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE((*r)["shares"].empty()) << r->dump();
  EXPECT_EQ(sim_.Ok("virtio_fs_get_devices").size(), 1u);
  EXPECT_EQ(sim_.Ok("fsdev_get_fsdevs").size(), 1u);  // theirs
}

TEST_F(ShareReconcilerTest, SharesSnapCannotServeFailOnTheirOwn) {
  json local = {{"name", "loc"}, {"backend", "local:/srv/x"}, {"tag", "loc"}};
  json missing_pf = NfsShare("far", "far", 7);
  auto r = reconciler_.Apply(Spec(1, {local, missing_pf, NfsShare("ok", "ok")}));
  ASSERT_TRUE(r.ok());
  const json& s = (*r)["shares"];
  EXPECT_EQ(s[0]["state"], "failed");
  EXPECT_NE(s[0]["error"].get<std::string>().find("--fsd-socket"), std::string::npos);
  EXPECT_EQ(s[1]["state"], "failed");
  EXPECT_NE(s[1]["error"].get<std::string>().find("no VIRTIO_FS emulation function at pf 7"),
            std::string::npos)
      << s[1].dump();
  EXPECT_EQ(s[2]["state"], "ready");
  // Nothing half made of the failed one.
  EXPECT_EQ(sim_.Ok("fsdev_get_fsdevs").size(), 1u);
}

TEST(ShareReconcilerNoVirtioFsTest, ExplicitSnapFailsWithAReason) {
  SimHarness sim(sim::Dialect::kSnap4, sim::SimConfig{.pfs = 1, .vfs = 0});
  snap::SnapClient snap(sim.socket(), 5s);
  ShareReconciler reconciler(snap, {});
  json share = NfsShare("home", "home");
  share["data_plane"] = "snap";
  auto r = reconciler.Apply(Spec(1, {share}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["shares"][0]["state"], "failed");
  EXPECT_NE((*r)["shares"][0]["error"].get<std::string>().find("has no virtio-fs"),
            std::string::npos);
  EXPECT_EQ(reconciler.mutations(), 0);
}

TEST(ParseShareSpecTest, RefusesBadSpecsNamingTheField) {
  auto error = [](json params) {
    auto r = ParseShareSpec(params);
    return r.ok() ? std::string("ok") : r.error().message;
  };
  json good = {{"name", "a"}, {"backend", "memory:"}, {"tag", "a"}};
  EXPECT_EQ(error(Spec(1, {good})), "ok");
  EXPECT_EQ(error({{"generation", 1}}), "invalid params: 'shares': required");
  json bad = good;
  bad["backend"] = "ftp://x";
  EXPECT_EQ(error(Spec(1, {bad})),
            "invalid params: 'shares[0].backend': 'ftp://x' is not a backend URL (local:/DIR, "
            "memory: or nfs://HOST/EXPORT)");
  bad = good;
  bad["squash"] = "some";
  EXPECT_EQ(error(Spec(1, {bad})),
            "invalid params: 'shares[0].squash': must be \"none\", \"root\" or \"all\"");
  bad = good;
  bad["extra"] = 1;
  EXPECT_EQ(error(Spec(1, {bad})), "invalid params: 'shares[0].extra': unknown parameter");
  bad = good;
  bad["request_queues"] = "2";
  EXPECT_EQ(error(Spec(1, {bad})),
            "invalid params: 'shares[0].request_queues': expected an integer");
  json other = good;
  other["name"] = "b";
  EXPECT_EQ(error(Spec(1, {good, other})),
            "invalid params: 'shares[1].tag': 'a' is used by two shares");
}

}  // namespace
}  // namespace dpustor::agent::dpu
