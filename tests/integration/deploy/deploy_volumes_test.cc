// An upgrade that never becomes ready rolls back, and the volumes the DPU serves come back
// on the old SNAP: a real single-node Ceph, the agent's VolumeReconciler (whose RBD bdevs the
// simulator opens through librbd), the deployer re-applying the last spec.apply.
#include <sstream>

#include <gtest/gtest.h>

#include "agent/dpu/deploy/deployer.h"
#include "agent/dpu/deploy/reapply.h"
#include "deploy_lab.h"
#include "harness/lab.h"
#include "snap/snap_client.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kPool = "deployvols";

class DeployVolumesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ceph_suite_.Start("dpustor-deploy-ceph", {kPool});
    if (ceph_suite_.ok())
      ceph_suite_.lab()->Rbd({"create", "--size", "64M", std::string(kPool) + "/vol1"});
  }
  static void TearDownTestSuite() { ceph_suite_.Stop(); }
  void SetUp() override { ASSERT_TRUE(ceph_suite_.ok()) << "no Ceph: " << ceph_suite_.error(); }

  // spec.apply params attaching vol1 as an NVMe namespace on PF 0, as client.admin.
  static json VolumeSpec() {
    std::string mon_host;
    std::istringstream conf(ReadFile(ceph_suite_.lab()->conf()));
    for (std::string line; std::getline(conf, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos && line.find("mon host") != std::string::npos)
        mon_host = line.substr(line.find_first_not_of(' ', eq + 1));
    }
    auto key = ceph_suite_.lab()->Ceph({"auth", "get-key", "client.admin"});
    return {{"generation", 1},
            {"clusters",
             {{"ceph-lab",
               {{"fsid", ceph_suite_.lab()->fsid()},
                {"mon_host", mon_host},
                {"user_id", "admin"},
                {"key", key.ok() ? key->out : ""}}}}},
            {"attachments",
             {{{"volume", "vol1"},
               {"cluster", "ceph-lab"},
               {"pool", kPool},
               {"image", "vol1"},
               {"protocol", "nvme"},
               {"pf_index", 0},
               {"nsid", 1}}}}};
  }

  static inline CephSuite ceph_suite_;
};

TEST_F(DeployVolumesTest, FailedUpgradeRollsBackAndTheVolumesAreServedAgain) {
  DeployLab lab("volumes");
  lab.StartKubelet();
  snap::SnapClient volume_snap(lab.socket(), 10s), share_snap(lab.socket(), 10s);
  agent::dpu::VolumeReconciler volumes(volume_snap, lab.Path("state"));
  agent::dpu::ShareReconciler shares(share_snap, {});
  json volume_spec;  // what the agent last received; none before the first deployment
  agent::dpu::deploy::DeployHooks hooks;
  hooks.reapply = [&] {
    return agent::dpu::deploy::ReapplyDesired(volumes, volume_spec, shares, nullptr);
  };
  agent::dpu::deploy::Deployer deployer(lab.Tools(), hooks);
  ASSERT_TRUE(deployer.Start().ok());
  auto settle = [&] {
    deployer.WaitIdle(90s);
    return deployer.Observed();
  };
  auto served = [&] {
    // SNAP holds the RBD bdev and a namespace on it in the volume's subsystem.
    json s = snap::SnapClient(lab.socket(), 5s).CollectStatus(false);
    for (const auto& sub : s["nvme_subsystems"])
      for (const auto& ns : sub["namespaces"])
        if (ns["bdev"] == "dpustor-vol1" && sub["nqn"] == "nqn.2024-11.io.dpustor:vol1")
          return true;
    return false;
  };

  ASSERT_TRUE(
      deployer.Apply({{"generation", 1}, {"deployment", Snap4Spec("4.6.0", "doca_snap:4.6.0", 20)}})
          .ok());
  ASSERT_EQ(settle()["state"], "ready") << deployer.Observed().dump(2);
  // The manager attaches a volume (spec.apply).
  volume_spec = VolumeSpec();
  auto applied = volumes.Apply(volume_spec);
  ASSERT_TRUE(applied.ok()) << applied.error().message;
  ASSERT_EQ((*applied)["attachments"][0]["state"], "attached") << applied->dump(2);
  ASSERT_TRUE(served());

  ASSERT_TRUE(deployer
                  .Apply({{"generation", 2},
                          {"deployment", Snap4Spec("4.8.0", "doca_snap:4.8.0-never-ready", 3)}})
                  .ok());
  json s = settle();
  ASSERT_EQ(s["state"], "rolled-back") << s.dump(2);
  EXPECT_NE(s["message"].get<std::string>().find("1 attachment(s) re-applied"), std::string::npos)
      << s["message"];
  EXPECT_EQ(lab.Containers()[0]["image"], "doca_snap:4.6.0");
  EXPECT_TRUE(served()) << snap::SnapClient(lab.socket(), 5s).CollectStatus(false).dump(2);
  auto observed = volumes.Observed();
  EXPECT_EQ(observed["attachments"][0]["state"], "attached") << observed.dump(2);
  deployer.Stop();
}

}  // namespace
}  // namespace dpustor::testing
