// SNAP deployment end to end on a scratch DPU (deploy_lab.h): the deployer drives stand-in
// mlxconfig, crictl and kubelet, and the kubelet runs the real dpustor-snap-sim as the SNAP
// container. Checked through the files on the scratch root, the stand-ins' state, SNAP's own
// RPC socket and the deployer's reported phases.
#include <sys/stat.h>

#include <filesystem>
#include <mutex>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "agent/dpu/deploy/deployer.h"
#include "agent/dpu/deploy/reapply.h"
#include "agent/dpu/share_reconciler.h"
#include "deploy_lab.h"
#include "harness/lab.h"
#include "snap/snap_client.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using agent::dpu::deploy::Deployer;
using agent::dpu::deploy::DeployHooks;

constexpr const char* kImage46 = "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0";
constexpr const char* kImage47 = "nvcr.io/nvidia/doca/doca_snap:4.7.0-doca2.11.0";
constexpr const char* kImageBad = "nvcr.io/nvidia/doca/doca_snap:4.8.0-never-ready";

// One deployer on a lab, recording every phase it reports.
class DeployerRun {
 public:
  explicit DeployerRun(const DeployLab& lab, DeployHooks hooks = {}) {
    auto record = hooks.on_phase;
    hooks.on_phase = [this, record](const json& detail) {
      std::lock_guard lock(mu_);
      events_.push_back(detail);
      if (record) record(detail);
    };
    deployer_ = std::make_unique<Deployer>(lab.Tools(), hooks);
    ::dpustor::Status s = deployer_->Start();
    EXPECT_TRUE(s.ok()) << s.error().message;
  }
  json Apply(std::int64_t generation, const json& deployment) {
    auto r = deployer_->Apply({{"generation", generation}, {"deployment", deployment}});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *r : json(nullptr);
  }
  // Waits until generation `g` ends in a state other than deploying/removing.
  json Settle(std::int64_t g, std::chrono::milliseconds timeout = 60s) {
    deployer_->WaitIdle(timeout);
    json s;
    WaitFor(
        [&] {
          s = deployer_->Observed();
          return s.is_object() && s["generation"] == g && s["state"] != "deploying" &&
                 s["state"] != "removing";
        },
        timeout);
    return s;
  }
  json Status() const { return deployer_->Observed(); }
  std::vector<std::string> Phases(const std::string& state = "deploying") {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& e : events_)
      if (state.empty() || e["state"] == state) out.push_back(e["phase"]);
    return out;
  }
  json Events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  void ClearEvents() {
    std::lock_guard lock(mu_);
    events_ = json::array();
  }
  Deployer& deployer() { return *deployer_; }

 private:
  std::mutex mu_;
  json events_ = json::array();
  std::unique_ptr<Deployer> deployer_;
};

struct FileId {
  ino_t inode = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const FileId&) const = default;
};
FileId Id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec};
}

const std::vector<std::string> kSnap4Phases = {"preflight", "firmware", "hugepages", "manifest",
                                               "container", "rpc",      "reapply"};

TEST(DeployTest, FreshDeployReachesReadyAndTheSameSpecIsANoOp) {
  DeployLab lab("fresh");
  lab.StartKubelet();
  DeployerRun run(lab);
  json accepted = run.Apply(1, Snap4Spec("4.6.0", kImage46));
  EXPECT_EQ(accepted, json({{"accepted", true}, {"generation", 1}}));
  json s = run.Settle(1);
  ASSERT_EQ(s["state"], "ready") << s.dump(2) << "\n" << lab.kubelet().Log();
  EXPECT_EQ(s["phase"], "ready");
  EXPECT_EQ(s["version"], "4.6.0");
  EXPECT_EQ(s["running"]["image"], kImage46);
  EXPECT_EQ(s["snap_version"]["simulator"], true);
  // Every phase reported, in order, then ready.
  EXPECT_EQ(run.Phases(), kSnap4Phases);
  EXPECT_EQ(run.Phases("ready"), std::vector<std::string>{"ready"});
  EXPECT_EQ(run.Events().back()["deployment"], "snap-bf3");

  // What the deployer left on the DPU: the manifest (the kubelet runs its image), the init
  // file, the hugepages; SNAP answers on its socket.
  YAML::Node pod = YAML::LoadFile(lab.manifest());
  EXPECT_EQ(pod["spec"]["containers"][0]["image"].as<std::string>(), kImage46);
  EXPECT_EQ(pod["metadata"]["annotations"]["dpustor.io/generation"].as<std::string>(), "1");
  EXPECT_EQ(ReadFile(lab.init_conf()), "bdev_null_create Null0 64 512\n");
  EXPECT_EQ(lab.NrHugepages(), 512);
  EXPECT_EQ(lab.SnapVersion()["simulator"], true);
  int pid = lab.SnapPid();
  ASSERT_GT(pid, 0);

  // The same spec again, under the same and under a newer generation: nothing rewritten,
  // nothing restarted.
  FileId manifest = Id(lab.manifest()), conf = Id(lab.init_conf());
  run.ClearEvents();
  run.Apply(1, Snap4Spec("4.6.0", kImage46));
  ASSERT_TRUE(run.deployer().WaitIdle(10s));
  run.Apply(2, Snap4Spec("4.6.0", kImage46));
  s = run.Settle(2);
  EXPECT_EQ(s["state"], "ready");
  EXPECT_NE(s["message"].get<std::string>().find("nothing to do"), std::string::npos);
  EXPECT_EQ(run.Phases(), std::vector<std::string>{});  // no phase ran
  EXPECT_EQ(Id(lab.manifest()), manifest);
  EXPECT_EQ(Id(lab.init_conf()), conf);
  EXPECT_EQ(lab.SnapPid(), pid);
  EXPECT_EQ(lab.Containers().size(), 1u);
}

TEST(DeployTest, UpgradeSucceeds) {
  DeployLab lab("upgrade");
  lab.StartKubelet();
  DeployerRun run(lab);
  run.Apply(1, Snap4Spec("4.6.0", kImage46));
  ASSERT_EQ(run.Settle(1)["state"], "ready");
  int old_pid = lab.SnapPid();

  run.Apply(2, Snap4Spec("4.7.0", kImage47));
  json s = run.Settle(2);
  ASSERT_EQ(s["state"], "ready") << s.dump(2);
  EXPECT_EQ(s["version"], "4.7.0");
  EXPECT_EQ(s["running"], json({{"version", "4.7.0"}, {"image", kImage47}, {"generation", 2}}));
  EXPECT_EQ(s["previous"], json({{"version", "4.6.0"}, {"image", kImage46}}));
  // The new SNAP runs (another process, the new image) and answers.
  EXPECT_NE(lab.SnapPid(), old_pid);
  EXPECT_GT(lab.SnapPid(), 0);
  EXPECT_EQ(lab.Containers()[0]["image"], kImage47);
  EXPECT_EQ(lab.SnapVersion()["simulator"], true);
  EXPECT_EQ(YAML::LoadFile(lab.manifest())["spec"]["containers"][0]["image"].as<std::string>(),
            kImage47);

  // Another CPU mask with the same image: ready only once the restarted SNAP runs it.
  int pid = lab.SnapPid();
  json spec = Snap4Spec("4.7.0", kImage47);
  spec["cpu_mask"] = "0xff";
  run.Apply(3, spec);
  s = run.Settle(3);
  ASSERT_EQ(s["state"], "ready") << s.dump(2);
  EXPECT_NE(lab.SnapPid(), pid);
  EXPECT_GT(lab.SnapPid(), 0);
  EXPECT_EQ(lab.SnapVersion()["simulator"], true);
}

// An upgrade whose SNAP never answers rolls back: the old manifest is back, the old SNAP
// serves again, and the DPU's shares are re-applied to it.
TEST(DeployTest, UpgradeThatNeverBecomesReadyRollsBack) {
  DeployLab lab("rollback");
  lab.StartKubelet({"--virtio-fs"});
  // The agent's share reconciler on SNAP's socket, with the last share set it received.
  snap::SnapClient share_snap(lab.socket(), 5s);
  agent::dpu::ShareReconciler shares(share_snap, {});
  json share_set = {{"generation", 1},
                    {"shares",
                     {{{"name", "docs"},
                       {"backend", "nfs://nfs1.example/export/docs"},
                       {"tag", "docs"},
                       {"data_plane", "snap"}}}}};
  DeployHooks hooks;
  snap::SnapClient volume_snap(lab.socket(), 5s);
  agent::dpu::VolumeReconciler volumes(volume_snap, lab.Path("state"));
  hooks.reapply = [&] {
    return agent::dpu::deploy::ReapplyDesired(volumes, nullptr, shares, share_set);
  };
  DeployerRun run(lab, hooks);
  run.Apply(1, Snap4Spec("4.6.0", kImage46));
  ASSERT_EQ(run.Settle(1)["state"], "ready") << lab.kubelet().Log();
  auto devices = [&] {
    std::vector<std::string> names;
    json d = lab.SnapCall("virtio_fs_get_devices");
    for (const auto& dev : d.is_array() ? d : json::array()) names.push_back(dev["dev_name"]);
    return names;
  };
  // The share was made by the reapply phase of the first deployment.
  ASSERT_EQ(devices(), std::vector<std::string>{"dpustor-docs"});
  std::string old_manifest = ReadFile(lab.manifest());
  int old_pid = lab.SnapPid();

  run.ClearEvents();
  run.Apply(2, Snap4Spec("4.8.0", kImageBad, /*ready_timeout_s=*/3));
  json s = run.Settle(2, 60s);
  ASSERT_EQ(s["state"], "rolled-back") << s.dump(2);
  std::string message = s["message"];
  EXPECT_NE(message.find("upgrade to 4.8.0"), std::string::npos) << message;
  EXPECT_NE(message.find("spdk_get_version"), std::string::npos) << message;
  EXPECT_NE(message.find("4.6.0 serves again"), std::string::npos) << message;
  EXPECT_EQ(s["running"]["version"], "4.6.0");
  // Phases: up to rpc (which timed out), then rollback.
  EXPECT_EQ(run.Phases(), (std::vector<std::string>{"preflight", "firmware", "hugepages",
                                                    "manifest", "container", "rpc", "rollback"}));
  // The old manifest is back byte for byte; a new old-image SNAP runs and serves the share.
  EXPECT_EQ(ReadFile(lab.manifest()), old_manifest);
  EXPECT_EQ(lab.Containers()[0]["image"], kImage46);
  EXPECT_NE(lab.SnapPid(), old_pid);
  EXPECT_EQ(lab.SnapVersion()["simulator"], true);
  EXPECT_EQ(devices(), std::vector<std::string>{"dpustor-docs"});
  EXPECT_NE(message.find("1 share(s) re-applied"), std::string::npos) << message;

  // The same failed request again changes nothing; the good spec again is a no-op.
  FileId manifest = Id(lab.manifest());
  run.Apply(2, Snap4Spec("4.8.0", kImageBad, 3));
  ASSERT_TRUE(run.deployer().WaitIdle(10s));
  run.Apply(3, Snap4Spec("4.6.0", kImage46));
  EXPECT_EQ(run.Settle(3)["state"], "ready");
  EXPECT_EQ(Id(lab.manifest()), manifest);
}

TEST(DeployTest, FirmwareChangeNeedsAPowerCycle) {
  DeployLab lab("firmware");
  lab.StartKubelet();
  DeployerRun run(lab);
  json spec = Snap4Spec("4.6.0", kImage46);
  spec["firmware"]["VIRTIO_BLK_EMULATION_ENABLE"] = "1";
  run.Apply(1, spec);
  json s = run.Settle(1);
  ASSERT_EQ(s["state"], "power-cycle-required") << s.dump(2);
  EXPECT_EQ(s["phase"], "firmware");
  EXPECT_NE(s["message"].get<std::string>().find("VIRTIO_BLK_EMULATION_ENABLE=1"),
            std::string::npos);
  // Set for next boot, not pretended current; nothing else was done.
  json mlx = lab.Mlx()["params"]["VIRTIO_BLK_EMULATION_ENABLE"];
  EXPECT_EQ(mlx["next"], "True(1)");
  EXPECT_EQ(mlx["current"], "False(0)");
  EXPECT_FALSE(std::filesystem::exists(lab.manifest()));
  EXPECT_EQ(lab.NrHugepages(), 0);

  // Applied again before the power cycle: the change is still pending.
  run.Apply(1, spec);
  s = run.Settle(1);
  EXPECT_EQ(s["state"], "power-cycle-required");
  EXPECT_NE(s["message"].get<std::string>().find("pending"), std::string::npos) << s["message"];

  // After the power cycle the same request proceeds to ready.
  lab.PowerCycle();
  run.Apply(1, spec);
  ASSERT_TRUE(WaitFor([&] { return run.Status()["state"] == "ready"; }, 60s))
      << run.Status().dump(2);
  EXPECT_GT(lab.SnapPid(), 0);
}

TEST(DeployTest, TooManyHugepagesAreRefusedAndNothingChanges) {
  DeployLab lab("hugepages", /*mem_total_kb=*/15995124);  // a 16 GB BlueField-2 class card
  lab.StartKubelet();
  DeployerRun run(lab);
  json spec = Snap4Spec("4.6.0", kImage46);
  spec["hugepages_2m"] = 6000;
  spec["memory_limit"] = "4Gi";
  json mlx_before = lab.Mlx();
  run.Apply(1, spec);
  json s = run.Settle(1);
  ASSERT_EQ(s["state"], "refused") << s.dump(2);
  EXPECT_EQ(s["phase"], "preflight");
  std::string message = s["message"];
  EXPECT_NE(message.find("6000 hugepages of 2 MiB (12000 MiB)"), std::string::npos) << message;
  EXPECT_NE(message.find("15620 MiB (MemTotal)"), std::string::npos) << message;
  EXPECT_NE(message.find("starve the Arm OS"), std::string::npos) << message;
  // Nothing changed: no manifest, no init file, hugepages and firmware untouched.
  EXPECT_FALSE(std::filesystem::exists(lab.manifest()));
  EXPECT_FALSE(std::filesystem::exists(lab.init_conf()));
  EXPECT_EQ(lab.NrHugepages(), 0);
  EXPECT_EQ(lab.Mlx(), mlx_before);
  EXPECT_EQ(lab.SnapPid(), -1);
}

// A fresh deployment whose container never starts fails and leaves nothing behind.
TEST(DeployTest, FreshDeployThatNeverStartsLeavesNothing) {
  DeployLab lab("never-starts");
  WriteFile(lab.init_conf(), "# the operator's own\n");
  lab.StartKubelet();
  DeployerRun run(lab);
  run.Apply(1, Snap4Spec("4.6.0", "nvcr.io/nvidia/doca/doca_snap:4.6.0-never-starts", 2));
  json s = run.Settle(1);
  ASSERT_EQ(s["state"], "failed") << s.dump(2);
  EXPECT_EQ(s["phase"], "container");
  EXPECT_NE(s["message"].get<std::string>().find("was not running in time"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(lab.manifest()));
  EXPECT_EQ(ReadFile(lab.init_conf()), "# the operator's own\n");
  EXPECT_EQ(lab.NrHugepages(), 0);
}

// Removal deletes what the deployer wrote, restores what it overwrote and nr_hugepages.
TEST(DeployTest, RemovalTakesBackOnlyWhatTheDeployerWrote) {
  DeployLab lab("removal");
  WriteFile(lab.nr_hugepages_path(), "64\n");
  WriteFile(lab.init_conf(), "# the operator's own\n");
  WriteFile(lab.Path("root/etc/kubelet.d/other.yaml"), "kind: Pod\n");
  lab.StartKubelet();
  DeployerRun run(lab);
  run.Apply(1, Snap4Spec("4.6.0", kImage46));
  ASSERT_EQ(run.Settle(1)["state"], "ready");
  EXPECT_EQ(lab.NrHugepages(), 512);
  run.Apply(2, nullptr);
  json s = run.Settle(2);
  ASSERT_EQ(s["state"], "removed") << s.dump(2);
  EXPECT_FALSE(std::filesystem::exists(lab.manifest()));
  EXPECT_EQ(ReadFile(lab.init_conf()), "# the operator's own\n");
  EXPECT_TRUE(std::filesystem::exists(lab.Path("root/etc/kubelet.d/other.yaml")));
  EXPECT_EQ(lab.NrHugepages(), 64);
  EXPECT_TRUE(WaitFor([&] { return lab.SnapPid() == -1; }, 10s));
  EXPECT_TRUE(lab.SnapVersion().is_null());
  // Removing again is a no-op.
  run.Apply(2, nullptr);
  ASSERT_TRUE(run.deployer().WaitIdle(10s));
  EXPECT_EQ(run.Status()["state"], "removed");
}

// SNAP 3.x: the init file and `systemctl restart mlnx_snap`, then SNAP's socket.
TEST(DeployTest, Snap3ServiceDeploy) {
  DeployLab lab("snap3", 16ull << 20, "BlueField2");
  DeployerRun run(lab);
  json spec = {{"name", "snap-bf2"},
               {"flavour", "snap3"},
               {"version", "3.8.0"},
               {"hugepages_2m", 256},
               {"memory_limit", "1Gi"},
               {"memory_request", "1Gi"},
               {"rpc_init", {"emulation_managers_list"}},
               {"ready_timeout_s", 20}};
  run.Apply(1, spec);
  json s = run.Settle(1);
  ASSERT_EQ(s["state"], "ready") << s.dump(2);
  EXPECT_EQ(run.Phases(), (std::vector<std::string>{"preflight", "firmware", "hugepages", "config",
                                                    "service", "rpc", "reapply"}));
  EXPECT_EQ(ReadFile(lab.Path("root/etc/mlnx_snap/snap_rpc_init.conf")),
            "emulation_managers_list\n");
  json service = json::parse(ReadFile(lab.Path("systemctl.json")));
  EXPECT_EQ(service["init_conf"], "emulation_managers_list\n");  // read at start
  EXPECT_EQ(service["starts"], 1);
  snap::SnapClient client(lab.socket(), 2s);
  auto dialect = client.Probe();
  ASSERT_TRUE(dialect.ok());
  EXPECT_EQ(*dialect, snap::Dialect::kSnap3);
  EXPECT_FALSE(std::filesystem::exists(lab.manifest()));
}

}  // namespace
}  // namespace dpustor::testing

namespace dpustor::testing {
namespace {

// A newer generation supersedes one still waiting for its container.
TEST(DeployTest, NewerGenerationSupersedesAWaitingOne) {
  DeployLab lab("supersede");
  lab.StartKubelet();
  DeployerRun run(lab);
  run.Apply(1, Snap4Spec("4.6.0", "nvcr.io/nvidia/doca/doca_snap:4.6.0-never-starts", 120));
  ASSERT_TRUE(WaitFor([&] { return run.Status()["phase"] == "container"; }, 20s));
  auto started = std::chrono::steady_clock::now();
  run.Apply(2, Snap4Spec("4.7.0", kImage47));
  json s = run.Settle(2, 30s);
  ASSERT_EQ(s["state"], "ready") << s.dump(2);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 20s);  // not after generation 1's 120 s
  EXPECT_EQ(lab.Containers()[0]["image"], kImage47);
}

// A state file that cannot be read is an error naming it, not a crash or a guess.
TEST(DeployTest, UnreadableStateFileIsReported) {
  DeployLab lab("corrupt");
  std::filesystem::create_directories(lab.Path("state/deploy"));
  WriteFile(lab.Path("state/deploy/state.json"), "{\"generation\": ");
  Deployer deployer(lab.Tools(), {});
  ::dpustor::Status s = deployer.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("state.json"), std::string::npos) << s.error().message;
  WriteFile(lab.Path("state/deploy/state.json"), "{\"generation\": 1}");
  s = deployer.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("state.json"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace dpustor::testing
