// Block volumes end to end on real processes: a single-node Ceph, the manager, the Ceph
// agent, and DPU agents on SNAP simulators of both dialects (whose rbd bdevs open the real
// images through librbd). Checked through the manager, the simulators' own state and Ceph.
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness/fleet.h"
#include "snap/snap_client.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kPool = "vols";

class VolumesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ceph_suite_.Start("dpustor-vol", {kPool}); }
  static void TearDownTestSuite() { ceph_suite_.Stop(); }
  void SetUp() override {
    ASSERT_TRUE(ceph_suite_.ok()) << "no Ceph: " << ceph_suite_.error();
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::create_directories(ceph_suite_.dir() / name);
    fleet_ = std::make_unique<Fleet>(ceph_suite_.dir() / name, ceph_suite_.lab());
    sock4_ = fleet_->Path("bf3.sock");
    sock3_ = fleet_->Path("bf2.sock");
    manager_ = fleet_->StartManager();
    ceph_agent_ = fleet_->StartCephAgent("ceph-lab");
    sim4_ = fleet_->StartSim("snap4", sock4_);
    sim3_ = fleet_->StartSim("snap3", sock3_);
    dpu_a_ = StartDpuA();
    dpu_b_ = fleet_->StartDpuAgent("dpu-b", "host-b", sock3_);
    ASSERT_TRUE(WaitFor(
        [&] {
          return fleet_->Dpu("dpu-a")["state"] == "online" &&
                 fleet_->Dpu("dpu-b")["state"] == "online" &&
                 fleet_->Get("/api/v1/clusters/ceph-lab")["state"] == "online";
        },
        20s));
  }
  void TearDown() override {
    dpu_a_ = {};
    dpu_b_ = {};
    ceph_agent_ = {};
    manager_ = {};
    sim4_ = {};
    sim3_ = {};
    fleet_.reset();
  }

  ChildProcess StartDpuA() { return fleet_->StartDpuAgent("dpu-a", "host-a", sock4_); }

  // SNAP's own state, normalised over both dialects.
  json Snap(const std::string& socket) {
    snap::SnapClient c(socket, 5s);
    return c.CollectStatus();
  }
  // The SNAP objects dpustor owns on that simulator: bdevs and subsystems by name, and
  // controllers by name or by what they serve (SNAP 3 names controllers itself).
  std::vector<std::string> Owned(const std::string& socket) {
    json s = Snap(socket);
    std::vector<std::string> out;
    auto ours = [](const json& v, const char* prefix) {
      return v.is_string() && v.get<std::string>().starts_with(prefix);
    };
    for (const auto& o : s["bdevs"])
      if (ours(o["name"], "dpustor-")) out.push_back(o["name"]);
    for (const auto& o : s["nvme_subsystems"])
      if (ours(o["nqn"], "nqn.2024-11.io.dpustor:")) out.push_back(o["nqn"]);
    for (const auto& o : s["nvme_controllers"])
      if (ours(o["name"], "dpustor-") || ours(o["nqn"], "nqn.2024-11.io.dpustor:"))
        out.push_back(o["name"]);
    for (const auto& o : s["virtio_blk_controllers"])
      if (ours(o["name"], "dpustor-") || ours(o["bdev"], "dpustor-")) out.push_back(o["name"]);
    return out;
  }
  std::vector<std::string> Images() {
    auto r = ceph_suite_.lab()->Rbd({"ls", "-p", kPool});
    std::vector<std::string> out;
    std::istringstream in(r.ok() ? r->out : "");
    for (std::string line; std::getline(in, line);)
      if (!line.empty()) out.push_back(line);
    return out;
  }
  bool WaitState(const std::string& volume, const std::string& state,
                 std::chrono::milliseconds timeout = 30s) {
    return WaitFor([&] { return fleet_->Volume(volume)["state"] == state; }, timeout);
  }
  json Find(const json& list, const std::string& key, const std::string& value) {
    for (const auto& o : list)
      if (o[key] == value) return o;
    return nullptr;
  }

  static inline CephSuite ceph_suite_;
  std::unique_ptr<Fleet> fleet_;
  std::string sock4_, sock3_;
  ChildProcess manager_, ceph_agent_, sim4_, sim3_, dpu_a_, dpu_b_;
};

TEST_F(VolumesTest, CreateAttachResizeDetachDeleteInBothDialects) {
  // Foreign SNAP objects that dpustor must never touch.
  ASSERT_FALSE(fleet_
                   ->SnapCall(sock4_, "bdev_null_create",
                              {{"name", "Null0"}, {"num_blocks", 1024}, {"block_size", 512}})
                   .is_null());

  ASSERT_FALSE(fleet_
                   ->Ctl({"create", "volume", "vol-a", "--cluster", "ceph-lab", "--pool", kPool,
                          "--size", "64M", "--wait", "30"})
                   .is_null())
      << fleet_->Volume("vol-a").dump();
  ASSERT_FALSE(fleet_
                   ->Ctl({"create", "volume", "vol-b", "--cluster", "ceph-lab", "--pool", kPool,
                          "--size", "32M", "--wait", "30"})
                   .is_null());
  EXPECT_EQ(Images(), (std::vector<std::string>{"vol-a", "vol-b"}));
  // The same create again is a no-op; another size is refused.
  EXPECT_FALSE(fleet_
                   ->Ctl({"create", "volume", "vol-a", "--cluster", "ceph-lab", "--pool", kPool,
                          "--size", "64M"})
                   .is_null());
  int rc = 0;
  fleet_->Ctl(
      {"create", "volume", "vol-a", "--cluster", "ceph-lab", "--pool", kPool, "--size", "1G"}, &rc);
  EXPECT_EQ(rc, 1);

  ASSERT_FALSE(fleet_
                   ->Ctl({"attach", "vol-a", "--dpu", "dpu-a", "--protocol", "nvme", "--pf", "0",
                          "--wait", "30"})
                   .is_null())
      << fleet_->Volume("vol-a").dump() << dpu_a_.Log();
  ASSERT_FALSE(fleet_
                   ->Ctl({"attach", "vol-b", "--dpu", "dpu-b", "--protocol", "virtio-blk", "--pf",
                          "0", "--wait", "30"})
                   .is_null())
      << fleet_->Volume("vol-b").dump() << dpu_b_.Log();

  // SNAP-4: rbd bdev -> subsystem -> namespace -> controller, resumed, namespace attached.
  json s4 = Snap(sock4_);
  json bdev = Find(s4["bdevs"], "name", "dpustor-vol-a");
  ASSERT_FALSE(bdev.is_null()) << s4.dump(2);
  EXPECT_EQ(bdev["driver"], "rbd");
  EXPECT_EQ(bdev["size_bytes"], 64 << 20);
  json ctrl = Find(s4["nvme_controllers"], "name", "dpustor-vol-a");
  ASSERT_FALSE(ctrl.is_null()) << s4.dump(2);
  EXPECT_EQ(ctrl["suspended"], false);
  EXPECT_EQ(ctrl["namespaces"], json({1}));
  EXPECT_EQ(ctrl["pf_index"], 0);
  EXPECT_FALSE(Find(s4["bdevs"], "name", "Null0").is_null());
  // SNAP 3: a virtio-blk controller on the rbd bdev.
  json s3 = Snap(sock3_);
  json vblk = Find(s3["virtio_blk_controllers"], "bdev", "dpustor-vol-b");  // SNAP 3 names it
  ASSERT_FALSE(vblk.is_null()) << s3.dump(2);
  EXPECT_EQ(vblk["pf_index"], 0);
  EXPECT_EQ(Find(s3["bdevs"], "name", "dpustor-vol-b")["size_bytes"], 32 << 20);
  // Each DPU has its own cephx user, limited to the volume's pool.
  auto caps = ceph_suite_.lab()->Ceph({"auth", "get", "client.dpustor.dpu-a", "--format", "json"});
  ASSERT_TRUE(caps.ok() && caps->exit_code == 0) << (caps.ok() ? caps->err : "");
  EXPECT_NE(caps->out.find("profile rbd pool=vols"), std::string::npos) << caps->out;
  // The manager shows it, and the DPU's report carries it.
  json va = fleet_->Volume("vol-a");
  EXPECT_EQ(va["state"], "attached");
  EXPECT_EQ(va["observed_dpu"], "dpu-a");

  // Resize: Ceph, the bdev and the namespace follow.
  ASSERT_FALSE(fleet_->Ctl({"resize", "vol-a", "--size", "128M"}).is_null());
  ASSERT_TRUE(WaitFor(
      [&] {
        return Find(Snap(sock4_)["bdevs"], "name", "dpustor-vol-a")["size_bytes"] == 128 << 20;
      },
      30s))
      << Snap(sock4_)["bdevs"].dump();
  json ns = Snap(sock4_)["nvme_subsystems"];
  EXPECT_EQ(Find(ns, "nqn", "nqn.2024-11.io.dpustor:vol-a")["namespaces"][0]["size_bytes"],
            128 << 20);
  auto info = ceph_suite_.lab()->Rbd({"info", std::string(kPool) + "/vol-a", "--format", "json"});
  EXPECT_NE(info->out.find("\"size\":134217728"), std::string::npos) << info->out;

  // Snapshot.
  ASSERT_FALSE(fleet_->Ctl({"snapshot", "vol-a", "before-upgrade"}).is_null());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = ceph_suite_.lab()->Rbd({"snap", "ls", std::string(kPool) + "/vol-a"});
        return r.ok() && r->out.find("before-upgrade") != std::string::npos;
      },
      30s));

  // Delete refuses while attached.
  fleet_->Ctl({"delete", "volume", "vol-a"}, &rc);
  EXPECT_EQ(rc, 1);
  EXPECT_EQ(Images().size(), 2u);

  // Detach both, then delete: nothing left in SNAP or Ceph; foreign objects untouched.
  ASSERT_FALSE(fleet_->Ctl({"detach", "vol-a", "--wait", "30"}).is_null())
      << fleet_->Volume("vol-a");
  ASSERT_FALSE(fleet_->Ctl({"detach", "vol-b", "--wait", "30"}).is_null());
  EXPECT_TRUE(Owned(sock4_).empty()) << Snap(sock4_).dump(2);
  EXPECT_TRUE(Owned(sock3_).empty()) << Snap(sock3_).dump(2);
  ASSERT_FALSE(fleet_->Ctl({"delete", "volume", "vol-a", "--wait", "30"}).is_null());
  ASSERT_FALSE(fleet_->Ctl({"delete", "volume", "vol-b", "--wait", "30"}).is_null());
  EXPECT_TRUE(Images().empty());
  EXPECT_FALSE(Find(Snap(sock4_)["bdevs"], "name", "Null0").is_null());
  EXPECT_TRUE(fleet_->Ctl({"get", "volumes"}).empty());

  // Every step left an event.
  json events = fleet_->Get("/api/v1/events?subject=volume/vol-a&limit=100");
  std::vector<std::string> types;
  for (const auto& e : events) types.push_back(e["type"]);
  for (const char* t : {"volume.created", "volume.attached", "volume.resized", "volume.snapshot",
                        "volume.detached", "volume.deleted"})
    EXPECT_NE(std::find(types.begin(), types.end(), t), types.end())
        << t << " in " << events.dump();
}

// Kills one component (-9) right after create+attach was asked for, restarts it, and
// expects the system to converge, then to clean up without orphans.
TEST_F(VolumesTest, ConvergesAfterKillNineOfEachComponent) {
  struct Case {
    const char* volume;
    std::function<void()> kill_and_restart;
  };
  std::vector<Case> cases = {
      {"k-dpu",
       [&] {
         dpu_a_.Kill();
         std::this_thread::sleep_for(500ms);
         dpu_a_ = StartDpuA();
       }},
      {"k-ceph",
       [&] {
         ceph_agent_.Kill();
         std::this_thread::sleep_for(500ms);
         ceph_agent_ = fleet_->StartCephAgent("ceph-lab");
       }},
      {"k-mgr",
       [&] {
         manager_.Kill();
         std::this_thread::sleep_for(500ms);
         manager_ = fleet_->StartManager();
       }},
  };
  // Distinct functions: NVMe PF 0, PF 1, and VF 0 of PF 0.
  std::vector<std::vector<std::string>> functions = {
      {"--pf", "0"}, {"--pf", "1"}, {"--pf", "0", "--vf", "0"}};
  std::size_t next = 0;
  for (auto& c : cases) {
    SCOPED_TRACE(c.volume);
    ASSERT_FALSE(fleet_
                     ->Ctl({"create", "volume", c.volume, "--cluster", "ceph-lab", "--pool", kPool,
                            "--size", "16M"})
                     .is_null());
    std::vector<std::string> args = {"attach", c.volume, "--dpu", "dpu-a"};
    args.insert(args.end(), functions[next].begin(), functions[next].end());
    ++next;
    ASSERT_FALSE(fleet_->Ctl(args).is_null());
    std::this_thread::sleep_for(150ms);
    c.kill_and_restart();
    auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(WaitState(c.volume, "attached", 30s)) << fleet_->Volume(c.volume).dump() << "\n"
                                                      << manager_.Log();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 30s);
  }
  // No duplicates: one bdev, subsystem and controller per volume.
  EXPECT_EQ(Owned(sock4_).size(), 3u * 3u) << Snap(sock4_).dump(2);
  for (auto& c : cases) {
    ASSERT_FALSE(fleet_->Ctl({"delete", "volume", c.volume, "--force", "--wait", "60"}).is_null())
        << fleet_->Volume(c.volume).dump();
  }
  EXPECT_TRUE(Owned(sock4_).empty()) << Snap(sock4_).dump(2);
  EXPECT_TRUE(Images().empty());
}

TEST_F(VolumesTest, CephFailuresAreClearAndLeaveNothing) {
  // A pool that does not exist.
  ASSERT_FALSE(fleet_
                   ->Ctl({"create", "volume", "no-pool", "--cluster", "ceph-lab", "--pool",
                          "missing-pool", "--size", "16M"})
                   .is_null());
  ASSERT_TRUE(WaitState("no-pool", "error"));
  EXPECT_NE(fleet_->Volume("no-pool")["error"].get<std::string>().find("missing-pool"),
            std::string::npos)
      << fleet_->Volume("no-pool").dump();

  // A Ceph agent whose key is wrong.
  WriteFile(fleet_->Path("bad.keyring"),
            "[client.admin]\n\tkey = AQBbad0AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n");
  auto bad_key = fleet_->StartCephAgent(
      "ceph-badkey", {"--keyring", fleet_->Path("bad.keyring"), "--command-timeout-ms", "5000"});
  // An unreachable cluster: a monitor address nobody listens on.
  WriteFile(fleet_->Path("dead.conf"),
            "[global]\nmon_host = 127.0.0.1:" + std::to_string(FreePort()) + "\n");
  auto dead = fleet_->StartCephAgent(
      "ceph-dead", {"--ceph-conf", fleet_->Path("dead.conf"), "--command-timeout-ms", "3000"});
  ASSERT_TRUE(WaitFor(
      [&] {
        return fleet_->Get("/api/v1/agents/ceph-badkey")["state"] == "online" &&
               fleet_->Get("/api/v1/agents/ceph-dead")["state"] == "online";
      },
      20s));
  ASSERT_FALSE(fleet_
                   ->Ctl({"create", "volume", "bad-key", "--cluster", "ceph-badkey", "--pool",
                          kPool, "--size", "16M"})
                   .is_null());
  ASSERT_FALSE(fleet_
                   ->Ctl({"create", "volume", "dead", "--cluster", "ceph-dead", "--pool", kPool,
                          "--size", "16M"})
                   .is_null());
  ASSERT_TRUE(WaitState("bad-key", "error", 40s)) << fleet_->Volume("bad-key").dump();
  ASSERT_TRUE(WaitState("dead", "error", 40s)) << fleet_->Volume("dead").dump();
  std::string bad_err = fleet_->Volume("bad-key")["error"];
  std::string dead_err = fleet_->Volume("dead")["error"];
  EXPECT_TRUE(bad_err.find("ermission denied") != std::string::npos ||
              bad_err.find("auth") != std::string::npos)
      << bad_err;
  EXPECT_NE(dead_err.find("timed out"), std::string::npos) << dead_err;
  EXPECT_TRUE(Images().empty());

  // Attaching a volume that could not be created does nothing on the DPU.
  fleet_->Ctl({"attach", "dead", "--dpu", "dpu-a", "--pf", "0"});
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(Owned(sock4_).empty());
}

}  // namespace
}  // namespace dpustor::testing
