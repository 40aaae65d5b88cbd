// SNAP deployment end to end on real processes: the manager, the DPU agent with its deployer,
// driven with the real dpustorctl. The DPU's world is a scratch root: /sys and /proc files
// the agent reads, and the stand-ins for the DPU's kubelet (it runs dpustor-snap-sim as the
// SNAP container), crictl and mlxconfig from tests/integration/deploy/standins.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/process.h"
#include "harness/fleet.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kMst = "/dev/mst/mt41692_pciconf0";
constexpr const char* kImage = "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0";
constexpr const char* kImage2 = "nvcr.io/nvidia/doca/doca_snap:4.7.0-doca2.11.0";
constexpr const char* kNeverReady = "nvcr.io/nvidia/doca/doca_snap:4.8.0-never-ready";

std::string Standin(const std::string& name) {
  return std::string(DPUSTOR_SOURCE_DIR) + "/tests/integration/deploy/standins/" + name;
}

class DeploymentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(Standin("kubelet.py")))
      GTEST_SKIP() << "the deployer's stand-ins are not there";
    dir_ = std::make_unique<TempDir>("dpustor-deploy");
    fleet_ = std::make_unique<Fleet>(dir_->path(), nullptr);
    manager_ = fleet_->StartManager();
    // A 16 GiB BlueField-3 without hugepages.
    WriteFile(NrHugepages(), "0\n");
    fs::create_directories(Path("proc"));
    WriteFile(Path("proc/meminfo"),
              "MemTotal:       16777216 kB\nMemFree:        14000000 kB\n"
              "MemAvailable:   15000000 kB\nHugePages_Total:       0\nHugePages_Free:        0\n"
              "Hugepagesize:       2048 kB\n");
    json params = json::object();
    for (const char* key : {"NVME_EMULATION_ENABLE", "VIRTIO_BLK_EMULATION_ENABLE"})
      params[key] = {{"default", "False(0)"}, {"current", "True(1)"}, {"next", "True(1)"}};
    params["NVME_EMULATION_NUM_PF"] = {{"default", "0"}, {"current", "2"}, {"next", "2"}};
    params["VIRTIO_FS_EMULATION_ENABLE"] = {
        {"default", "False(0)"}, {"current", "False(0)"}, {"next", "False(0)"}};
    WriteFile(Path("mlxconfig.json"), json{{"device", kMst},
                                           {"device_type", "BlueField3"},
                                           {"name", "900-9D3B6-00CV-AA0"},
                                           {"description", "BlueField-3 DPU"},
                                           {"params", params}}
                                          .dump(2));
    fs::create_directories(Path("bin"));
    fs::create_directories(Path("kubelet-logs"));
    Wrapper("crictl", "crictl.py", {"--state", Path("kubelet-state.json")});
    Wrapper("mlxconfig", "mlxconfig.py", {"--state", Path("mlxconfig.json")});
    Wrapper("kubelet", "kubelet.py", {});
  }
  void TearDown() override {
    dpu_ = {};
    kubelet_ = {};
    manager_ = {};
    fleet_.reset();
    dir_.reset();
  }

  std::string Path(const std::string& name) const { return dir_->path() + "/" + name; }
  std::string NrHugepages() const {
    std::string p = Path("sys/kernel/mm/hugepages/hugepages-2048kB");
    fs::create_directories(p);
    return p + "/nr_hugepages";
  }
  std::string ManifestPath() const { return Path("root/etc/kubelet.d/doca_snap.yaml"); }
  std::string SnapSocket() const { return Path("run/spdk.sock"); }

  // An executable in bin/ that runs a stand-in with fixed leading arguments.
  void Wrapper(const std::string& name, const std::string& script,
               const std::vector<std::string>& args) {
    std::string text = "#!/bin/sh\nexec python3 '" + Standin(script) + "'";
    for (const auto& a : args) text += " '" + a + "'";
    text += " \"$@\"\n";
    WriteFile(Path("bin/" + name), text);
    fs::permissions(Path("bin/" + name), fs::perms::owner_all);
  }

  // The kubelet stand-in: it notices the manifest every `poll` seconds.
  void StartKubelet(const std::string& poll = "0.2") {
    fs::create_directories(Path("root/etc/kubelet.d"));
    fs::create_directories(Path("run"));
    kubelet_ = ChildProcess(
        {"python3", Standin("kubelet.py"), "--manifest-dir", Path("root/etc/kubelet.d"), "--state",
         Path("kubelet-state.json"), "--sim", Bin("src/sim/dpustor-snap-sim"), "--log-dir",
         Path("kubelet-logs"), "--poll", poll},
        Path("kubelet.log"));
  }
  void StartDpu() {
    dpu_ = fleet_->StartDpuAgent(
        "dpu-a", "host-a", SnapSocket(),
        {"--deploy-root", Path("root"), "--crictl", Path("bin/crictl"), "--kubelet",
         Path("bin/kubelet"), "--mlxconfig", Path("bin/mlxconfig"), "--mst-device", kMst,
         "--sys-root", Path("sys"), "--proc-root", Path("proc")});
    ASSERT_TRUE(WaitFor([&] { return fleet_->Dpu("dpu-a")["state"] == "online"; }, 20s))
        << dpu_.Log();
  }
  void StartAll() {
    StartKubelet();
    StartDpu();
  }

  json Deployment(const std::string& name = "snap") {
    return fleet_->Get("/api/v1/deployments/" + name);
  }
  // The DPU's own account of its deployment, from its latest report.
  json AgentSection() { return fleet_->Dpu("dpu-a")["status"]["deployment"]; }
  json Containers() {
    auto doc = json::parse(ReadFile(Path("kubelet-state.json")), nullptr, false);
    return doc.is_object() ? doc["containers"] : json::array();
  }
  // dpustorctl's exit status, stdout and stderr.
  struct Run {
    int code;
    std::string out, err;
  };
  Run Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {Bin("src/cli/dpustorctl"), "--server", fleet_->server()});
    ProcessOptions o;
    o.timeout = 180s;
    auto r = RunProcess(args, o);
    if (!r.ok()) return {-1, "", r.error().message};
    return {r->exit_code, r->out, r->err};
  }
  Run Deploy(const std::string& image, std::vector<std::string> extra = {}) {
    std::string version = image == kImage2 ? "4.7.0" : image == kNeverReady ? "4.8.0" : "4.6.0";
    std::vector<std::string> args = {"deploy", "snap",    "snap", "--dpu",  "dpu-a", "--version",
                                     version,  "--image", image,  "--wait", "90"};
    if (std::find(extra.begin(), extra.end(), "--hugepages") == extra.end())
      args.insert(args.end(), {"--hugepages", "512"});
    args.insert(args.end(), extra.begin(), extra.end());
    return Ctl(args);
  }
  std::string Logs() {
    return "\n--- agent\n" + dpu_.Log() + "\n--- kubelet\n" + kubelet_.Log() + "\n--- manager\n" +
           manager_.Log();
  }
  std::vector<std::string> EventTypes(const std::string& subject) {
    std::vector<std::string> out;
    for (const auto& e : fleet_->Get("/api/v1/events?limit=1000&subject=" + subject))
      out.push_back(e["type"].get<std::string>() + ":" +
                    (e["detail"].is_object() ? e["detail"].value("phase", "") : ""));
    return out;
  }
  static bool Has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Fleet> fleet_;
  ChildProcess manager_, kubelet_, dpu_;
};

TEST_F(DeploymentsTest, DeployNoOpUpgradeRollbackAndDelete) {
  StartAll();
  // Fresh deploy to ready, every phase visible.
  Run r = Deploy(kImage);
  ASSERT_EQ(r.code, 0) << r.err << Deployment().dump(2) << Logs();
  json d = Deployment();
  EXPECT_EQ(d["state"], "ready");
  EXPECT_EQ(d["dpus"][0]["state"], "ready");
  EXPECT_EQ(d["dpus"][0]["version"], "4.6.0");
  std::int64_t gen = d["generation"];
  EXPECT_EQ(d["dpus"][0]["generation"], gen);
  EXPECT_EQ(ReadFile(NrHugepages()).substr(0, 3), "512");
  ASSERT_TRUE(fs::exists(ManifestPath()));
  ASSERT_EQ(Containers().size(), 1u);
  EXPECT_EQ(Containers()[0]["image"], kImage);
  std::string container = Containers()[0]["id"];
  EXPECT_FALSE(fleet_->SnapCall(SnapSocket(), "spdk_get_version", nullptr).is_null());
  // The events are recorded just after the state changes: wait for the last one.
  ASSERT_TRUE(WaitFor(
      [&] {
        return Has(EventTypes("deployment/snap"), "deployment.ready:ready") &&
               Has(EventTypes("dpu/dpu-a"), "deployment.ready:ready");
      },
      5s))
      << json(EventTypes("deployment/snap")).dump();
  auto types = EventTypes("deployment/snap");
  for (const char* phase : {"preflight", "firmware", "hugepages", "manifest", "container", "rpc"})
    EXPECT_TRUE(Has(types, std::string("deployment.phase:") + phase) ||
                Has(types, std::string("deployment.deploying:") + phase))
        << phase << " not in " << json(types).dump();
  Run events = Ctl({"get", "events", "--subject", "deployment/snap"});
  EXPECT_NE(events.out.find("deployment.ready"), std::string::npos) << events.out;
  Run table = Ctl({"get", "deployments"});
  EXPECT_NE(table.out.find("dpu-a=ready"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("dpu/dpu-a"), std::string::npos) << table.out;

  // The same spec again: a no-op, on the manager and on the DPU.
  r = Deploy(kImage);
  ASSERT_EQ(r.code, 0) << r.err;
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(Deployment()["generation"], gen);
  EXPECT_EQ(AgentSection()["generation"], gen);
  ASSERT_EQ(Containers().size(), 1u);
  EXPECT_EQ(Containers()[0]["id"], container);  // not restarted

  // Upgrade.
  r = Deploy(kImage2);
  ASSERT_EQ(r.code, 0) << r.err << Deployment().dump(2) << Logs();
  d = Deployment();
  EXPECT_EQ(d["state"], "ready");
  EXPECT_EQ(d["version"], "4.7.0");
  EXPECT_EQ(d["dpus"][0]["version"], "4.7.0");
  EXPECT_GT(d["generation"].get<std::int64_t>(), gen);
  ASSERT_EQ(Containers().size(), 1u);
  EXPECT_EQ(Containers()[0]["image"], kImage2);

  // An upgrade that never becomes ready rolls back; the previous SNAP serves again.
  r = Deploy(kNeverReady, {"--ready-timeout", "4"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("is rolled-back"), std::string::npos) << r.err;
  d = Deployment();
  EXPECT_EQ(d["state"], "rolled-back") << d.dump(2);
  // What serves now is the previous SNAP (as the DPU's next report says).
  EXPECT_TRUE(WaitFor(
      [&] {
        json running = Deployment()["dpus"][0]["running"];
        return running.is_object() && running.value("version", "") == "4.7.0";
      },
      10s))
      << Deployment().dump(2);
  EXPECT_FALSE(d["dpus"][0]["message"].get<std::string>().empty());
  ASSERT_TRUE(
      WaitFor([&] { return Containers().size() == 1 && Containers()[0]["image"] == kImage2; }, 30s))
      << Containers().dump();
  EXPECT_TRUE(WaitFor(
      [&] { return !fleet_->SnapCall(SnapSocket(), "spdk_get_version", nullptr).is_null(); }, 30s));
  std::string rolled_back = "deployment.rolled-back:" + d["dpus"][0]["phase"].get<std::string>();
  EXPECT_TRUE(WaitFor([&] { return Has(EventTypes("deployment/snap"), rolled_back); }, 5s))
      << json(EventTypes("deployment/snap")).dump();
  Run described = Ctl({"describe", "deployment", "snap"});
  EXPECT_EQ(described.code, 0);
  EXPECT_NE(described.out.find("rolled-back"), std::string::npos) << described.out;

  // Delete: SNAP goes, nr_hugepages is what it was.
  r = Ctl({"delete", "deployment", "snap", "--wait", "60"});
  ASSERT_EQ(r.code, 0) << r.err << Deployment().dump(2) << Logs();
  EXPECT_TRUE(Deployment().is_null());
  EXPECT_FALSE(fs::exists(ManifestPath()));
  EXPECT_EQ(ReadFile(NrHugepages()).substr(0, 1), "0");
  EXPECT_TRUE(WaitFor([&] { return Containers().empty(); }, 20s));
  EXPECT_TRUE(
      WaitFor([&] { return Has(EventTypes("deployment/snap"), "deployment.deleted:"); }, 5s));
}

TEST_F(DeploymentsTest, FirmwareChangeNeedsAPowerCycle) {
  StartAll();
  Run r = Deploy(kImage, {"--firmware", "VIRTIO_FS_EMULATION_ENABLE=1"});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("is power-cycle-required"), std::string::npos) << r.err;
  json d = Deployment();
  EXPECT_EQ(d["state"], "power-cycle-required") << d.dump(2);
  EXPECT_NE(d["dpus"][0]["message"].get<std::string>().find("VIRTIO_FS_EMULATION_ENABLE"),
            std::string::npos)
      << d.dump(2);
  json mlx = json::parse(ReadFile(Path("mlxconfig.json")));
  EXPECT_EQ(mlx["params"]["VIRTIO_FS_EMULATION_ENABLE"]["next"], "True(1)");
  EXPECT_EQ(mlx["params"]["VIRTIO_FS_EMULATION_ENABLE"]["current"], "False(0)");
  EXPECT_FALSE(fs::exists(ManifestPath()));  // stopped before SNAP was touched

  // The power cycle: next-boot values become current, the agent starts again, and the
  // manager re-sends the deployment to it, which now goes through.
  dpu_.Kill();
  for (auto& [key, p] : mlx["params"].items()) p["current"] = p["next"];
  WriteFile(Path("mlxconfig.json"), mlx.dump(2));
  StartDpu();
  EXPECT_TRUE(WaitFor([&] { return Deployment()["state"] == "ready"; }, 90s))
      << Deployment().dump(2) << Logs();
}

TEST_F(DeploymentsTest, TooManyHugepagesAreRefusedAndNothingChanges) {
  StartAll();
  std::string mlx_before = ReadFile(Path("mlxconfig.json"));
  Run r = Deploy(kImage, {"--hugepages", "8192"});  // 16 GiB on a 16 GiB DPU
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("is refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("8192 hugepages"), std::string::npos) << r.err;
  json d = Deployment();
  EXPECT_EQ(d["state"], "refused");
  EXPECT_EQ(d["dpus"][0]["phase"], "preflight");
  EXPECT_EQ(ReadFile(NrHugepages()).substr(0, 1), "0");
  EXPECT_FALSE(fs::exists(ManifestPath()));
  EXPECT_EQ(ReadFile(Path("mlxconfig.json")), mlx_before);
  EXPECT_TRUE(Containers().empty());
  EXPECT_TRUE(
      WaitFor([&] { return Has(EventTypes("dpu/dpu-a"), "deployment.refused:preflight"); }, 5s));
}

TEST_F(DeploymentsTest, AgentKilledMidDeployResumes) {
  StartKubelet("3");  // a slow kubelet: the agent waits in `container` for a few seconds
  StartDpu();
  Run r = Ctl({"deploy", "snap", "snap", "--dpu", "dpu-a", "--version", "4.6.0", "--image", kImage,
               "--hugepages", "256"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        json s = AgentSection();
        return s.is_object() && s["state"] == "deploying" &&
               (s["phase"] == "container" || s["phase"] == "manifest");
      },
      30s))
      << Deployment().dump(2) << Logs();
  std::int64_t gen = Deployment()["generation"];
  dpu_.Kill();
  EXPECT_NE(Deployment()["state"], "ready");
  StartDpu();
  r = Ctl({"deploy", "snap", "snap", "--dpu", "dpu-a", "--version", "4.6.0", "--image", kImage,
           "--hugepages", "256", "--wait", "90"});
  ASSERT_EQ(r.code, 0) << r.err << Deployment().dump(2) << Logs();
  json d = Deployment();
  EXPECT_EQ(d["dpus"][0]["state"], "ready");
  EXPECT_EQ(d["generation"], gen);  // the same request, resumed, not a new one
  EXPECT_EQ(d["dpus"][0]["generation"], gen);
  EXPECT_EQ(Containers().size(), 1u);
  EXPECT_EQ(ReadFile(NrHugepages()).substr(0, 3), "256");
}

TEST_F(DeploymentsTest, GroupsAndBadInput) {
  StartAll();
  // Usage errors: exit 2, nothing sent.
  EXPECT_EQ(Ctl({"deploy", "snap", "x", "--version", "1", "--image", kImage}).code, 2);
  EXPECT_EQ(Ctl({"deploy", "snap", "x", "--dpu", "dpu-a", "--image", kImage}).code, 2);
  Run bad = Ctl({"deploy", "snap", "x", "--dpu", "dpu-a", "--version", "1", "--image", kImage,
                 "--firmware", "NOEQUALS"});
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("is not KEY=VALUE"), std::string::npos) << bad.err;
  EXPECT_EQ(Ctl({"deploy", "helm", "x", "--dpu", "dpu-a"}).code, 2);
  EXPECT_EQ(Ctl({"create", "group", "g"}).code, 2);
  // Refused by the manager: exit 1 with the field named.
  bad = Ctl({"deploy", "snap", "x", "--dpu", "dpu-a", "--version", "1", "--image", kImage,
             "--cpu-mask", "0x0"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("'cpu_mask': selects no core (HTTP 400)"), std::string::npos) << bad.err;
  bad = Ctl({"deploy", "snap", "x", "--group", "nope", "--version", "1", "--image", kImage});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("no DPU group named 'nope' (HTTP 404)"), std::string::npos) << bad.err;
  EXPECT_TRUE(fleet_->Get("/api/v1/deployments").empty());

  // A group deployment reaches its one registered DPU; another deployment cannot take it.
  ASSERT_EQ(Ctl({"create", "group", "rack1", "--dpus", "dpu-a,dpu-b"}).code, 0);
  Run groups = Ctl({"get", "groups"});
  EXPECT_NE(groups.out.find("dpu-a,dpu-b"), std::string::npos) << groups.out;
  Run r = Ctl({"deploy", "snap", "fleet", "--group", "rack1", "--version", "4.6.0", "--image",
               kImage, "--hugepages", "128"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(WaitFor([&] { return Deployment("fleet")["dpus"][0]["state"] == "ready"; }, 90s))
      << Deployment("fleet").dump(2) << Logs();
  EXPECT_EQ(Deployment("fleet")["dpus"][1]["state"], "pending");  // dpu-b never registered
  bad = Ctl({"deploy", "snap", "other", "--dpu", "dpu-a", "--version", "1", "--image", kImage});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("already targeted by deployment 'fleet' (group/rack1) (HTTP 409)"),
            std::string::npos)
      << bad.err;
  bad = Ctl({"delete", "group", "rack1"});
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.err.find("HTTP 409"), std::string::npos) << bad.err;
  // dpu-a leaves the group: the manager tells it to remove SNAP.
  ASSERT_EQ(Ctl({"create", "group", "rack1", "--dpus", "dpu-b"}).code, 0);
  EXPECT_TRUE(WaitFor([&] { return !fs::exists(ManifestPath()); }, 60s)) << Logs();
  EXPECT_TRUE(WaitFor([&] { return AgentSection().value("state", "") == "removed"; }, 30s))
      << AgentSection().dump(2);
  EXPECT_EQ(Ctl({"delete", "deployment", "fleet", "--wait", "30"}).code, 0);
  EXPECT_EQ(Ctl({"delete", "group", "rack1"}).code, 0);
  EXPECT_TRUE(fleet_->Get("/api/v1/groups").empty());
}

}  // namespace
}  // namespace dpustor::testing
