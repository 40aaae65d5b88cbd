// The control plane end to end on real processes: a single-node Ceph, the manager, two DPU
// agents on two SNAP simulators (one per dialect) and the Ceph agent. Everything is checked
// through the manager's REST API and dpustorctl, as an operator would see it.
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "common/rpc_client.h"
#include "harness/fleet.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kHeartbeat = 3000ms;

std::uint64_t MemTotalBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  in >> key >> kb;
  return kb * 1024;
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ceph_suite_.Start("dpustor-cp"); }
  static void TearDownTestSuite() { ceph_suite_.Stop(); }

  void SetUp() override {
    ASSERT_TRUE(ceph_suite_.ok()) << "no Ceph: " << ceph_suite_.error();
    SetUpFleet();
  }
  void TearDown() override {
    // Agents first, so the manager does not log their loss at shutdown.
    dpu_a_ = {};
    dpu_b_ = {};
    ceph_agent_ = {};
    manager_ = {};
    sim4_ = {};
    sim3_ = {};
  }

  void SetUpFleet() {
    fleet_ = std::make_unique<Fleet>(ceph_suite_.dir().path(), ceph_suite_.lab());
  }
  std::string Path(const std::string& name) { return fleet_->Path(name); }
  std::string server() const { return fleet_->server(); }
  void StartManager() {
    manager_ = fleet_->StartManager({"--heartbeat-timeout-ms", std::to_string(kHeartbeat.count())});
    ASSERT_TRUE(manager_.running()) << manager_.Log();
  }
  json Dpu(const std::string& name) { return fleet_->Dpu(name); }
  json Ctl(std::vector<std::string> args) { return fleet_->Ctl(std::move(args)); }
  json SnapCall(const std::string& socket, const std::string& method, const json& params) {
    std::string error;
    json r = fleet_->SnapCall(socket, method, params, &error);
    EXPECT_TRUE(error.empty()) << method << ": " << error;
    return r;
  }

  static inline CephSuite ceph_suite_;
  std::unique_ptr<Fleet> fleet_;
  ChildProcess manager_, sim4_, sim3_, dpu_a_, dpu_b_, ceph_agent_;
};

TEST_F(ControlPlaneTest, FleetStatusEndToEnd) {
  std::string sock4 = Path("snap4.sock"), sock3 = Path("snap3.sock");
  StartManager();
  sim4_ = fleet_->StartSim("snap4", sock4);
  sim3_ = fleet_->StartSim("snap3", sock3);
  dpu_a_ = fleet_->StartDpuAgent("dpu-a", "host-a", sock4);
  dpu_b_ = fleet_->StartDpuAgent("dpu-b", "host-b", sock3);
  ceph_agent_ = fleet_->StartCephAgent("ceph-lab");

  // Both DPUs appear online with this machine's real figures and their SNAP dialect.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Dpu("dpu-a")["snap"]["reachable"] == true &&
               Dpu("dpu-b")["snap"]["reachable"] == true && Dpu("dpu-a")["cpu_percent"].is_number();
      },
      20s))
      << Dpu("dpu-a").dump(2) << "\n"
      << dpu_a_.Log();
  json a = Dpu("dpu-a"), b = Dpu("dpu-b");
  EXPECT_EQ(a["state"], "online");
  EXPECT_EQ(a["host"], "host-a");
  EXPECT_EQ(a["snap"]["dialect"], "snap4");
  EXPECT_EQ(b["snap"]["dialect"], "snap3");
  EXPECT_EQ(a["snap"]["simulator"], true);
  EXPECT_EQ(a["cores"], static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_EQ(a["memory_total_bytes"], MemTotalBytes());
  EXPECT_EQ(a["emulation_functions"], 2 + 2 * 2 + 2 + 2 * 2)  // NVMe and virtio-blk PFs + VFs
      << a["status"]["snap"]["emulation_functions"].dump();
  json hosts = GetJson(server(), "/api/v1/hosts");
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0]["name"], "host-a");
  EXPECT_EQ(hosts[0]["dpus"], json({"dpu-a"}));

  // The cluster appears with its real fsid, health and daemons.
  json cluster;
  ASSERT_TRUE(WaitFor(
      [&] {
        cluster = GetJson(server(), "/api/v1/clusters/ceph-lab");
        return cluster.is_object() && cluster["health"].is_string();
      },
      30s))
      << ceph_agent_.Log();
  EXPECT_EQ(cluster["state"], "online");
  EXPECT_EQ(cluster["fsid"], ceph_suite_.lab()->fsid());
  EXPECT_EQ(cluster["osds"], 1);
  EXPECT_EQ(cluster["osds_up"], 1);
  EXPECT_EQ(cluster["mons_in_quorum"], 1);
  EXPECT_TRUE(cluster["total_bytes"].is_number());
  EXPECT_TRUE(cluster["ceph_version"].get<std::string>().starts_with("16.2")) << cluster.dump();

  // A pool and an image made with the real CLI show up with the right size.
  ASSERT_EQ(ceph_suite_.lab()->Ceph({"osd", "pool", "create", "cp-pool", "8"})->exit_code, 0);
  ASSERT_EQ(ceph_suite_.lab()->Rbd({"pool", "init", "cp-pool"})->exit_code, 0);
  ASSERT_EQ(ceph_suite_.lab()->Rbd({"create", "cp-pool/vol1", "--size", "96M"})->exit_code, 0);
  json images;
  ASSERT_TRUE(WaitFor(
      [&] {
        images = Ctl({"get", "images", "--pool", "cp-pool"});
        return images.is_array() && images.size() == 1;
      },
      20s))
      << images.dump() << ceph_agent_.Log();
  EXPECT_EQ(images[0]["name"], "vol1");
  EXPECT_EQ(images[0]["cluster"], "ceph-lab");
  EXPECT_EQ(images[0]["size_bytes"], 96ull << 20);
  json pools = Ctl({"get", "pools", "--cluster", "ceph-lab"});
  auto pool = std::find_if(pools.begin(), pools.end(),
                           [](const json& p) { return p["name"] == "cp-pool"; });
  ASSERT_NE(pool, pools.end()) << pools.dump();
  EXPECT_EQ((*pool)["pg_num"], 8);
  EXPECT_EQ((*pool)["applications"], json({"rbd"}));

  // SNAP objects made by raw JSON-RPC on the simulators appear under their DPU.
  SnapCall(sock4, "bdev_null_create",
           {{"name", "Null0"}, {"num_blocks", 2048}, {"block_size", 512}});
  SnapCall(sock4, "nvme_subsystem_create",
           {{"nqn", "nqn.2022-10.io.nvda.nvme:0"},
            {"serial_number", "SN0"},
            {"model_number", "M"},
            {"nn", 32},
            {"mnan", 32}});
  SnapCall(sock4, "nvme_namespace_create",
           {{"nqn", "nqn.2022-10.io.nvda.nvme:0"},
            {"bdev_type", "spdk"},
            {"bdev_name", "Null0"},
            {"nsid", 1},
            {"uuid", "263826ad-19a3-4feb-bc25-4bc81ee7749e"}});
  SnapCall(sock4, "nvme_controller_create",
           {{"nqn", "nqn.2022-10.io.nvda.nvme:0"},
            {"ctrl", "NVMeCtrl1"},
            {"pf_id", 0},
            {"suspended", true}});
  SnapCall(sock3, "bdev_null_create",
           {{"name", "Null1"}, {"num_blocks", 4096}, {"block_size", 512}});
  SnapCall(
      sock3, "controller_virtio_blk_create",
      {{"emulation_manager", "mlx5_0"}, {"pf_id", 0}, {"bdev_type", "spdk"}, {"bdev", "Null1"}});
  ASSERT_TRUE(WaitFor(
      [&] {
        json a2 = Dpu("dpu-a"), b2 = Dpu("dpu-b");
        return a2["nvme_subsystems"] == 1 && a2["controllers"] == 1 && a2["bdevs"] == 1 &&
               b2["controllers"] == 1 && b2["bdevs"] == 1;
      },
      10s))
      << Dpu("dpu-a")["status"]["snap"].dump(2) << Dpu("dpu-b")["status"]["snap"].dump(2);
  json subsystems = Dpu("dpu-a")["status"]["snap"]["nvme_subsystems"];
  EXPECT_EQ(subsystems[0]["nqn"], "nqn.2022-10.io.nvda.nvme:0");
  EXPECT_EQ(subsystems[0]["namespaces"][0]["bdev"], "Null0");

  // dpustorctl shows the same through the same API.
  json ctl_dpus = Ctl({"get", "dpus"});
  ASSERT_EQ(ctl_dpus.size(), 2u);
  EXPECT_EQ(ctl_dpus[0]["name"], "dpu-a");
  EXPECT_EQ(Ctl({"describe", "dpu", "dpu-b"})["snap"]["dialect"], "snap3");
  auto table = RunProcess({Bin("src/cli/dpustorctl"), "--server", server(), "get", "dpus"});
  ASSERT_TRUE(table.ok());
  EXPECT_TRUE(table->out.starts_with("NAME")) << table->out;
  EXPECT_NE(table->out.find("dpu-b"), std::string::npos);

  // A killed DPU agent turns unreachable within the heartbeat timeout.
  auto killed_at = std::chrono::steady_clock::now();
  dpu_b_.Kill();
  ASSERT_TRUE(WaitFor([&] { return Dpu("dpu-b")["state"] == "unreachable"; }, kHeartbeat));
  auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LE(took, kHeartbeat);
  EXPECT_EQ(Dpu("dpu-a")["state"], "online");
  // The event reaches the store through its background writer, a moment after the state.
  json events;
  EXPECT_TRUE(WaitFor(
      [&] {
        events = GetJson(server(), "/api/v1/events?subject=dpu/dpu-b");
        return !events.empty() && events.back()["type"] == "agent.unreachable";
      },
      2s))
      << events.dump();

  // SNAP going away is reported as such; the agent itself stays online.
  sim4_.Stop();
  ASSERT_TRUE(WaitFor([&] { return Dpu("dpu-a")["snap"]["reachable"] == false; }, 5s))
      << Dpu("dpu-a")["snap"].dump();
  EXPECT_EQ(Dpu("dpu-a")["state"], "online");
  EXPECT_NE(Dpu("dpu-a")["snap"]["error"].get<std::string>().find("snap4.sock"), std::string::npos)
      << Dpu("dpu-a")["snap"].dump();

  // A restarted manager still knows everything and the live agents come back by themselves.
  manager_.Stop();
  StartManager();
  json after = GetJson(server(), "/api/v1/dpus");
  ASSERT_EQ(after.size(), 2u) << after.dump();
  EXPECT_EQ(after[1]["name"], "dpu-b");
  EXPECT_EQ(after[1]["host"], "host-b");  // the last status survived the restart
  EXPECT_TRUE(GetJson(server(), "/api/v1/clusters/ceph-lab").is_object());
  ASSERT_TRUE(WaitFor(
      [&] {
        return Dpu("dpu-a")["state"] == "online" &&
               GetJson(server(), "/api/v1/clusters/ceph-lab")["state"] == "online";
      },
      20s))
      << dpu_a_.Log();
  EXPECT_EQ(Dpu("dpu-b")["state"], "unreachable");
  // Reports flow again after re-registration.
  auto before = Dpu("dpu-a")["last_report_ms"].get<std::int64_t>();
  EXPECT_TRUE(
      WaitFor([&] { return Dpu("dpu-a")["last_report_ms"].get<std::int64_t>() > before; }, 5s));
}

TEST_F(ControlPlaneTest, BadTokenIsRefusedAndNothingRegistered) {
  // This manager takes its options from a config file instead of flags.
  WriteFile(Path("manager.conf"), "listen = \"" + fleet_->agent_address() + "\"\nhttp = \"" +
                                      server().substr(7) + "\"\ndb = \"" + Path("manager2.db") +
                                      "\"\ntoken-file = \"" + Path("token") + "\"\n");
  manager_ = ChildProcess({Bin("src/manager/dpustor-manager"), "--config", Path("manager.conf")},
                          Path("manager2.log"));
  ASSERT_TRUE(WaitFor([&] { return !GetJson(server(), "/healthz").is_null(); }, 10s))
      << manager_.Log();
  WriteFile(Path("bad-token"), "not-the-token\n");
  std::string sock = Path("snap4-bad.sock");
  sim4_ = fleet_->StartSim("snap4", sock);
  dpu_a_ = ChildProcess({Bin("src/agent/dpu/dpustor-dpu-agent"), "--manager",
                         fleet_->agent_address(), "--name", "intruder", "--snap-socket", sock,
                         "--token-file", Path("bad-token"), "--state-dir", Path("state-intruder")},
                        Path("agent-intruder.log"));
  EXPECT_TRUE(WaitFor(
      [&] { return dpu_a_.Log().find("enrollment token not accepted") != std::string::npos; }, 10s))
      << dpu_a_.Log();
  EXPECT_TRUE(GetJson(server(), "/api/v1/agents/intruder").is_null());
  EXPECT_TRUE(dpu_a_.running());  // it keeps retrying, it does not crash
}

}  // namespace
}  // namespace dpustor::testing
