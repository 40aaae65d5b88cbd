// The fsd.* control methods against fake shares: shapes, totals, share creation and
// deletion through the context's functions, and params errors.
#include "fs/fsd/control_methods.h"

#include <gtest/gtest.h>

namespace dpustor::fs::fsd {
namespace {

using nlohmann::json;

class FakeShare : public ShareView {
 public:
  FakeShare(std::string name, json ops) : ops_(std::move(ops)) {
    config_.name = std::move(name);
    config_.mount = "/mnt/" + config_.name;
    config_.backend = "memory:";
  }
  explicit FakeShare(ShareConfig config) : config_(std::move(config)) {}
  const ShareConfig& config() const override { return config_; }
  bool serving() const override { return serving_; }
  size_t inflight() const override { return 3; }
  bool initialized() const override { return true; }
  json op_stats() const override { return ops_; }
  json device() const override {
    return config_.transport == "fuse" ? json() : json{{"connected", false}, {"sessions", 0}};
  }

  ShareConfig config_;
  bool serving_ = true;
  json ops_;
};

class ControlMethodsTest : public ::testing::Test {
 protected:
  ControlMethodsTest()
      : a_("a",
           {{"LOOKUP", {{"count", 5}, {"errors", 2}}}, {"READ", {{"count", 7}, {"errors", 0}}}}),
        b_("b", {{"WRITE", {{"count", 11}, {"errors", 1}}}}) {
    b_.serving_ = false;
    ctx_.shares = {&a_, &b_};
    ctx_.create = [this](const ShareConfig& c) -> Result<const ShareView*> {
      if (c.backend == "memory:?fail") return Error{rpc::kFailed, "backend refused"};
      created_.push_back(std::make_unique<FakeShare>(c));
      ctx_.shares.push_back(created_.back().get());
      return created_.back().get();
    };
    ctx_.remove = [this](const std::string& name) {
      removed_.push_back(name);
      std::erase_if(ctx_.shares, [&](const ShareView* s) { return s->config().name == name; });
    };
  }

  Result<json> Call(const std::string& method, const json& params) {
    std::optional<Result<json>> out;
    table_.Dispatch(ctx_, method, params, [&](Result<json> r) { out = std::move(r); });
    EXPECT_TRUE(out.has_value());
    return *out;
  }

  FakeShare a_, b_;
  std::vector<std::unique_ptr<FakeShare>> created_;
  std::vector<std::string> removed_;
  ControlContext ctx_;
  ControlMethodTable table_ = BuildControlMethodTable();
};

TEST_F(ControlMethodsTest, Shares) {
  auto r = Call("fsd.shares", nullptr);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0]["name"], "a");
  EXPECT_EQ((*r)[0]["state"], "serving");
  EXPECT_EQ((*r)[0]["mount"], "/mnt/a");
  EXPECT_EQ((*r)[0]["backend"], "memory:");
  EXPECT_EQ((*r)[0]["transport"], "fuse");
  EXPECT_EQ((*r)[0]["inflight"], 3);
  EXPECT_EQ((*r)[0]["threads"], 4);
  EXPECT_EQ((*r)[0]["initialized"], true);
  EXPECT_EQ((*r)[1]["state"], "stopped");
}

TEST_F(ControlMethodsTest, StatsAllAndOne) {
  auto all = Call("fsd.stats", json::object());
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ((*all)["totals"]["count"], 23);
  EXPECT_EQ((*all)["totals"]["errors"], 3);
  ASSERT_EQ((*all)["shares"].size(), 2u);
  EXPECT_EQ((*all)["shares"][0]["ops"]["LOOKUP"]["count"], 5);
  EXPECT_EQ((*all)["shares"][0]["totals"]["count"], 12);

  auto one = Call("fsd.stats", {{"name", "b"}});
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ((*one)["shares"].size(), 1u);
  EXPECT_EQ((*one)["shares"][0]["name"], "b");
  EXPECT_EQ((*one)["totals"]["count"], 11);
}

TEST_F(ControlMethodsTest, ParamsErrors) {
  auto missing = Call("fsd.stats", {{"name", "nope"}});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, rpc::kNotFound);
  EXPECT_NE(missing.error().message.find("'nope'"), std::string::npos);

  auto wrong_type = Call("fsd.stats", {{"name", 5}});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_EQ(wrong_type.error().code, rpc::kInvalidParams);
  EXPECT_NE(wrong_type.error().message.find("'name'"), std::string::npos);

  auto unknown = Call("fsd.stats", {{"nmae", "a"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, rpc::kInvalidParams);
  EXPECT_NE(unknown.error().message.find("'nmae'"), std::string::npos);

  auto array = Call("fsd.shares", json::array({1}));
  ASSERT_FALSE(array.ok());
  EXPECT_EQ(array.error().code, rpc::kInvalidParams);

  auto extra = Call("fsd.shares", {{"verbose", true}});
  ASSERT_FALSE(extra.ok());
  EXPECT_EQ(extra.error().code, rpc::kInvalidParams);

  auto no_method = Call("fsd.nope", nullptr);
  ASSERT_FALSE(no_method.ok());
  EXPECT_EQ(no_method.error().code, rpc::kMethodNotFound);
}

TEST_F(ControlMethodsTest, Version) {
  auto r = Call("fsd.version", nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)["program"], "dpustor-fsd");
  EXPECT_EQ((*r)["version"], DPUSTOR_VERSION);
  EXPECT_EQ((*r)["transports"], json({"fuse", "vhost-user"}));
}

json VhostShare(const std::string& name) {
  return {
      {"name", name},    {"transport", "vhost-user"}, {"socket", "/run/dpustor/" + name + ".sock"},
      {"tag", name},     {"backend", "memory:"},      {"request_queues", 2},
      {"squash", "root"}};
}

TEST_F(ControlMethodsTest, ShareCreateIsIdempotentAndDeleteRemoves) {
  auto made = Call("fsd.share_create", VhostShare("c"));
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ((*made)["name"], "c");
  EXPECT_EQ((*made)["socket"], "/run/dpustor/c.sock");
  EXPECT_EQ((*made)["request_queues"], 2);
  EXPECT_EQ((*made)["squash"], "root");
  EXPECT_EQ((*made)["device"]["connected"], false);
  EXPECT_FALSE(made->contains("mount"));
  ASSERT_EQ(created_.size(), 1u);

  auto again = Call("fsd.share_create", VhostShare("c"));
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(created_.size(), 1u);  // nothing new opened

  auto listed = Call("fsd.shares", nullptr);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[2]["tag"], "c");

  auto deleted = Call("fsd.share_delete", {{"name", "c"}});
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_EQ((*deleted)["deleted"], true);
  EXPECT_EQ(removed_, std::vector<std::string>{"c"});
  EXPECT_EQ(Call("fsd.shares", nullptr)->size(), 2u);

  auto gone = Call("fsd.share_delete", {{"name", "c"}});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, rpc::kNotFound);
}

TEST_F(ControlMethodsTest, ShareCreateRefusalsChangeNothing) {
  ASSERT_TRUE(Call("fsd.share_create", VhostShare("c")).ok());
  json different = VhostShare("c");
  different["read_only"] = true;
  json same_socket = VhostShare("d");
  same_socket["socket"] = "/run/dpustor/c.sock";
  json same_mount = {{"name", "e"}, {"mount", "/mnt/a/"}, {"backend", "memory:"}};
  json failing = VhostShare("f");
  failing["backend"] = "memory:?fail";
  struct Case {
    json params;
    int code;
    const char* expect;
  } cases[] = {
      {different, rpc::kAlreadyExists, "exists with a different config"},
      {same_socket, rpc::kAlreadyExists, "socket '/run/dpustor/c.sock' is used"},
      {same_mount, rpc::kAlreadyExists, "mount '/mnt/a/' is used"},
      {failing, rpc::kFailed, "backend refused"},
      {json{{"name", "g"}, {"backend", "memory:"}, {"transport", "vhost-user"}},
       rpc::kInvalidParams, "socket: a socket path is required"},
      {json{{"name", "g"}, {"backend", "memory:"}, {"mount", "/m"}, {"bogus", 1}},
       rpc::kInvalidParams, "unknown key 'bogus'"},
      {json::array(), rpc::kInvalidParams, "expected an object"},
  };
  for (const Case& c : cases) {
    auto r = Call("fsd.share_create", c.params);
    ASSERT_FALSE(r.ok()) << c.params.dump();
    EXPECT_EQ(r.error().code, c.code) << c.params.dump();
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos) << r.error().message;
  }
  EXPECT_EQ(created_.size(), 1u);
  EXPECT_EQ(ctx_.shares.size(), 3u);
  EXPECT_EQ(Call("fsd.share_delete", {{"name", 3}}).error().code, rpc::kInvalidParams);
  EXPECT_TRUE(removed_.empty());
}

}  // namespace
}  // namespace dpustor::fs::fsd
