// ShareService's REST side on an in-process manager core: validation with clear errors that
// change nothing, and the store round-trip.
#include "manager/share_service.h"

#include <gtest/gtest.h>

#include "test_env.h"

namespace dpustor::manager {
namespace {

TEST(ShareServiceTest, ValidatesBeforeAnythingIsStored) {
  std::string dir = TestDir("shares");
  ManagerCore core(dir);
  ShareService shares(core.store(), core.inventory(), core.events(), core.service(), {});
  json good = {{"name", "s1"}, {"dpu", "dpu-a"}, {"backend", "memory:"}, {"tag", "t1"}};
  auto error = [&](json body) {
    auto r = shares.Create(body);
    return r.ok() ? std::string("ok") : std::to_string(r.error().code) + " " + r.error().message;
  };
  json bad = good;
  bad["squash"] = "most";
  EXPECT_EQ(error(bad), "-32602 invalid params: 'squash': must be \"none\", \"root\" or \"all\"");
  bad = good;
  bad["tag"] = "has space";
  EXPECT_EQ(error(bad), "-32602 invalid params: 'tag': 1-36 printable characters without spaces");
  bad = good;
  bad["request_queues"] = 0;
  EXPECT_EQ(error(bad), "-32602 invalid params: 'request_queues': must be from 1 to 64");
  bad = good;
  bad["data_plane"] = "snap";
  EXPECT_EQ(error(bad),
            "-32602 invalid params: 'data_plane': SNAP's virtio-fs serves only nfs:// backends");
  bad = good;
  bad["colour"] = "red";
  EXPECT_EQ(error(bad), "-32602 invalid params: 'colour': unknown parameter");
  EXPECT_EQ(error(good), "-32004 no DPU named 'dpu-a'");  // not registered
  EXPECT_TRUE(shares.List().empty());
  EXPECT_TRUE(core.store().LoadShares().empty());
  EXPECT_EQ(shares.Get("s1").error().code, rpc::kNotFound);
  EXPECT_EQ(shares.Delete("s1").error().code, rpc::kNotFound);
}

TEST(ShareTest, RoundTripsThroughJson) {
  Share s;
  s.name = "s";
  s.dpu = "d";
  s.backend = "nfs://h/e";
  s.tag = "t";
  s.pf_index = 1;
  s.read_only = true;
  s.squash = "all";
  s.anon_uid = 7;
  s.request_queues = 4;
  s.observed_state = "ready";
  s.counters = {{"requests", 3}};
  Share back = ShareFromJson(ToJson(s));
  EXPECT_EQ(back.Desired(), s.Desired());
  EXPECT_EQ(back.dpu, "d");
  EXPECT_EQ(back.State(), "ready");
  EXPECT_EQ(back.counters["requests"], 3);
  back.deleting = true;
  EXPECT_EQ(back.State(), "deleting");
  EXPECT_EQ(ShareFromJson(json::object()).State(), "creating");
}

}  // namespace
}  // namespace dpustor::manager
