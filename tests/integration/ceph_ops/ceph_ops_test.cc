// The Ceph agent's block-volume methods (CephOps, called in-process) against a real
// single-node Ceph started by the test: idempotent create / resize / snapshot / delete, an
// image held open by a client, cephx users whose keys really open exactly their pools, and
// the cluster's fsid and mon_host as a client's ceph.conf needs them. What CephOps did is
// checked with the admin's own `rbd` and `ceph`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <sstream>

#include <gtest/gtest.h>

#include "agent/ceph/rbd_methods.h"
#include "common/json_rpc.h"
#include "harness/lab.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using agent::ceph::CephOps;
using namespace std::chrono_literals;

class CephOpsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ceph_suite_.Start("dpustor-ceph-ops", {"volumes", "other"});
    if (!ceph_suite_.ok()) return;
    lab_ = ceph_suite_.lab();
    agent::ceph::CephCliOptions o;
    o.conf = lab_->conf();
    o.keyring = lab_->keyring();
    o.user = "admin";
    o.timeout = 60s;
    ops_ = new CephOps(std::make_shared<agent::ceph::CephCli>(o));
  }
  static void TearDownTestSuite() {
    delete ops_;
    ceph_suite_.Stop();
  }

  void SetUp() override { ASSERT_TRUE(ceph_suite_.ok()) << "no Ceph: " << ceph_suite_.error(); }

  static Result<json> Call(const std::string& method, const json& params) {
    auto started = std::chrono::steady_clock::now();
    auto r = ops_->Call(method, params);
    std::cout << "  " << method << " " << params.dump() << ": "
              << std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - started)
                     .count()
              << " ms\n";
    return r;
  }

  // The admin's view of an image: `rbd info` as JSON, or null when it does not exist.
  static json AdminInfo(const std::string& pool, const std::string& image) {
    auto r = lab_->Rbd({"info", pool + "/" + image, "--format", "json"});
    if (!r.ok() || r->exit_code != 0) return nullptr;
    return json::parse(r->out, nullptr, false);
  }

  static json Watchers(const std::string& pool, const std::string& image) {
    auto r = lab_->Rbd({"status", pool + "/" + image, "--format", "json"});
    if (!r.ok() || r->exit_code != 0) return nullptr;
    auto status = json::parse(r->out, nullptr, false);
    return status.is_object() ? status.value("watchers", json::array()) : json(nullptr);
  }

  // `rbd ls -p POOL` as the cephx user `id` with the key in `keyring`, through `conf`.
  static Result<ProcessResult> RbdLsAs(const std::string& conf, const std::string& id,
                                       const std::string& keyring, const std::string& pool) {
    return RunProcess({"rbd", "--conf", conf, "--id", id, "--keyring", keyring, "ls", "-p", pool},
                      ProcessOptions{});
  }

  static std::string KeyringFor(const std::string& id, const std::string& key) {
    auto path = ceph_suite_.dir() / (id + ".keyring");
    WriteFile(path, "[client." + id + "]\n\tkey = " + key + "\n");
    ::chmod(path.c_str(), 0600);
    return path;
  }

  static inline CephSuite ceph_suite_;
  static inline CephLab* lab_ = nullptr;  // ceph_suite_'s
  static inline CephOps* ops_ = nullptr;
};

constexpr std::uint64_t kGiB = 1ull << 30;

TEST_F(CephOpsTest, CreateIsIdempotentAndExactToTheByte) {
  const std::uint64_t size = kGiB + 512;  // not a whole MiB: the size must be taken in bytes
  json params = {{"pool", "volumes"}, {"image", "create-1"}, {"size_bytes", size}};
  auto r = Call("rbd.create", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(
      *r,
      (json{{"pool", "volumes"}, {"image", "create-1"}, {"size_bytes", size}, {"created", true}}));
  EXPECT_EQ(AdminInfo("volumes", "create-1")["size"], size);

  r = Call("rbd.create", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["created"], false);

  params["size_bytes"] = 2 * kGiB;
  r = Call("rbd.create", params);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
  EXPECT_EQ(r.error().message,
            "image 'volumes/create-1' already exists with size 1073742336 bytes, not the "
            "requested 2147483648 bytes");
  EXPECT_EQ(AdminInfo("volumes", "create-1")["size"], size);

  r = Call("rbd.info", {{"pool", "volumes"}, {"image", "create-1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"pool", "volumes"},
                      {"image", "create-1"},
                      {"size_bytes", size},
                      {"snapshots", json::array()}}));
}

TEST_F(CephOpsTest, MissingPoolAndImageAreNotFound) {
  auto r = Call("rbd.create", {{"pool", "nosuchpool"}, {"image", "x"}, {"size_bytes", kGiB}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");

  r = Call("rbd.info", {{"pool", "volumes"}, {"image", "nosuchimage"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "image 'volumes/nosuchimage' does not exist");

  r = Call("rbd.resize", {{"pool", "volumes"}, {"image", "nosuchimage"}, {"size_bytes", kGiB}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  r = Call("rbd.snapshot", {{"pool", "volumes"}, {"image", "nosuchimage"}, {"snapshot", "s"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  r = Call("rbd.delete", {{"pool", "nosuchpool"}, {"image", "x"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
}

TEST_F(CephOpsTest, ResizeGrowsAndShrinksOnlyWhenAllowed) {
  json params = {{"pool", "volumes"}, {"image", "resize-1"}, {"size_bytes", kGiB}};
  ASSERT_TRUE(Call("rbd.create", params).ok());

  params["size_bytes"] = 3 * kGiB + 4096;
  auto r = Call("rbd.resize", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"size_bytes", 3 * kGiB + 4096}, {"changed", true}}));
  EXPECT_EQ(AdminInfo("volumes", "resize-1")["size"], 3 * kGiB + 4096);

  r = Call("rbd.resize", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["changed"], false);

  params["size_bytes"] = kGiB;
  r = Call("rbd.resize", params);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  EXPECT_NE(r.error().message.find("shrinking needs allow_shrink"), std::string::npos);
  EXPECT_EQ(AdminInfo("volumes", "resize-1")["size"], 3 * kGiB + 4096);

  params["allow_shrink"] = true;
  r = Call("rbd.resize", params);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(AdminInfo("volumes", "resize-1")["size"], kGiB);
}

TEST_F(CephOpsTest, SnapshotsAreIdempotentAndGoWithTheImage) {
  ASSERT_TRUE(
      Call("rbd.create", {{"pool", "volumes"}, {"image", "snap-1"}, {"size_bytes", kGiB}}).ok());
  json snap = {{"pool", "volumes"}, {"image", "snap-1"}, {"snapshot", "s1"}};
  auto r = Call("rbd.snapshot", snap);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"created", true}}));
  r = Call("rbd.snapshot", snap);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"created", false}}));
  snap["snapshot"] = "s2";
  ASSERT_TRUE(Call("rbd.snapshot", snap).ok());

  r = Call("rbd.info", {{"pool", "volumes"}, {"image", "snap-1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["snapshots"], (json{"s1", "s2"}));

  r = Call("rbd.delete", {{"pool", "volumes"}, {"image", "snap-1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"deleted", true}}));
  EXPECT_TRUE(AdminInfo("volumes", "snap-1").is_null());

  r = Call("rbd.delete", {{"pool", "volumes"}, {"image", "snap-1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"deleted", false}}));
}

TEST_F(CephOpsTest, AnImageHeldOpenIsNotDeletedNorStrippedOfSnapshots) {
  json image = {{"pool", "volumes"}, {"image", "held-1"}};
  ASSERT_TRUE(
      Call("rbd.create", {{"pool", "volumes"}, {"image", "held-1"}, {"size_bytes", kGiB}}).ok());
  ASSERT_TRUE(
      Call("rbd.snapshot", {{"pool", "volumes"}, {"image", "held-1"}, {"snapshot", "keep"}}).ok());

  // `rbd watch` keeps a watcher on the image, as SNAP's librbd does, until it reads a line.
  // Its stdin is a FIFO this test holds open, so a newline lets it unwatch cleanly (a killed
  // watcher would linger in the cluster for 30 s).
  std::string fifo = ceph_suite_.dir() / "watch.fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  int fd = ::open(fifo.c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(fd, 0);
  ChildProcess watch({"bash", "-c", "exec rbd --conf \"$1\" --keyring \"$2\" watch \"$3\" < \"$4\"",
                      "rbd-watch", lab_->conf(), lab_->keyring(), "volumes/held-1", fifo},
                     ceph_suite_.dir() / "watch.log");
  ASSERT_TRUE(WaitFor([&] { return !Watchers("volumes", "held-1").empty(); }, 20s))
      << ReadFile(ceph_suite_.dir() / "watch.log");

  auto r = Call("rbd.delete", image);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kBusy);
  EXPECT_NE(r.error().message.find("image 'volumes/held-1' is still open by 1 client (watcher "),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("; detach it first"), std::string::npos) << r.error().message;
  r = Call("rbd.info", image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["snapshots"], (json{"keep"}));  // nothing was half-done

  ASSERT_EQ(::write(fd, "\n", 1), 1);
  EXPECT_EQ(watch.Wait(20s), 0) << ReadFile(ceph_suite_.dir() / "watch.log");
  ::close(fd);
  ASSERT_TRUE(WaitFor([&] { return Watchers("volumes", "held-1") == json::array(); }, 20s));

  r = Call("rbd.delete", image);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"deleted", true}}));
  EXPECT_TRUE(AdminInfo("volumes", "held-1").is_null());
}

TEST_F(CephOpsTest, ConcurrentCreatesOfOneImageCreateItOnce) {
  json params = {{"pool", "volumes"}, {"image", "race-1"}, {"size_bytes", kGiB}};
  std::vector<std::future<Result<json>>> calls;
  for (int i = 0; i < 4; ++i)
    calls.push_back(
        std::async(std::launch::async, [&] { return ops_->Call("rbd.create", params); }));
  int created = 0;
  for (auto& c : calls) {
    auto r = c.get();
    ASSERT_TRUE(r.ok()) << r.error().message;
    created += (*r)["created"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(created, 1);
}

TEST_F(CephOpsTest, ClientKeyGivesAccessToExactlyItsPools) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  auto r = ops_->Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"volumes"}}});
  std::string logged = ::testing::internal::GetCapturedStdout();
  logged += ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["user_id"], "dpustor.dpu-a");
  std::string key = (*r)["key"];
  ASSERT_EQ(key.size(), 40u);
  EXPECT_NE(logged.find("ceph.client_key: client.dpustor.dpu-a created"), std::string::npos)
      << logged;
  EXPECT_EQ(logged.find(key), std::string::npos) << "the key was logged";
  auto keyring = KeyringFor("dpustor.dpu-a", key);

  auto ls = RbdLsAs(lab_->conf(), "dpustor.dpu-a", keyring, "volumes");
  ASSERT_TRUE(ls.ok());
  EXPECT_EQ(ls->exit_code, 0) << ls->err;
  ls = RbdLsAs(lab_->conf(), "dpustor.dpu-a", keyring, "other");
  ASSERT_TRUE(ls.ok());
  EXPECT_NE(ls->exit_code, 0);
  EXPECT_NE(ls->err.find("Operation not permitted"), std::string::npos) << ls->err;

  // Same pools again: nothing changes. More pools: caps updated, same key.
  r = Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"volumes"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["key"], key);
  r = Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"other", "volumes"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["key"], key);
  ls = RbdLsAs(lab_->conf(), "dpustor.dpu-a", keyring, "other");
  EXPECT_EQ(ls->exit_code, 0) << ls->err;

  // Fewer pools: the dropped one is closed again.
  r = Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"other"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["key"], key);
  ls = RbdLsAs(lab_->conf(), "dpustor.dpu-a", keyring, "volumes");
  EXPECT_NE(ls->exit_code, 0);
  auto caps = lab_->Ceph({"auth", "get", "client.dpustor.dpu-a", "--format", "json"});
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(json::parse(caps->out)[0]["caps"],
            (json{{"mon", "profile rbd"}, {"osd", "profile rbd pool=other"}}));

  r = Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"nosuchpool"}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
}

TEST_F(CephOpsTest, ClusterInfoIsWhatAClientNeeds) {
  auto r = Call("ceph.cluster_info", json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["fsid"], lab_->fsid());

  std::map<std::string, std::string> env;
  std::istringstream in(ReadFile(ceph_suite_.dir() / "ceph/env"));
  for (std::string line; std::getline(in, line);)
    if (auto eq = line.find('='); eq != std::string::npos)
      env[line.substr(0, eq)] = line.substr(eq + 1);
  EXPECT_EQ((*r)["mon_host"],
            "[v2:" + env["CEPH_MON_ADDR"] + ",v1:" + env["CEPH_MON_ADDR_V1"] + "]");

  // A ceph.conf made of nothing but these two lines, with a key from ceph.client_key, is
  // all a client (SNAP's librbd) needs.
  auto key = Call("ceph.client_key", {{"client", "dpustor.dpu-b"}, {"pools", {"volumes"}}});
  ASSERT_TRUE(key.ok()) << key.error().message;
  auto conf = ceph_suite_.dir() / "client.conf";
  WriteFile(conf, "[global]\nfsid = " + (*r)["fsid"].get<std::string>() +
                      "\nmon_host = " + (*r)["mon_host"].get<std::string>() + "\n");
  auto ls = RbdLsAs(conf, "dpustor.dpu-b", KeyringFor("dpustor.dpu-b", (*key)["key"]), "volumes");
  ASSERT_TRUE(ls.ok());
  EXPECT_EQ(ls->exit_code, 0) << ls->err;
}

}  // namespace
}  // namespace dpustor::testing
