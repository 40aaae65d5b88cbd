// File shares end to end on real processes: the manager, a DPU agent, a SNAP simulator and
// dpustor-fsd (vhost-user shares on its control socket), driven with the real dpustorctl.
// Checked through the manager, dpustor-fsd's own control socket and the simulator's state.
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "common/process.h"
#include "common/rpc_client.h"
#include "harness/fleet.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

class SharesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<TempDir>("dpustor-shares");
    fleet_ = std::make_unique<Fleet>(dir_->path(), nullptr);
    manager_ = fleet_->StartManager();
  }
  void TearDown() override {
    dpu_ = {};
    fsd_ = {};
    sim_ = {};
    manager_ = {};
    fleet_.reset();
    dir_.reset();
  }

  // dpustor-fsd with only a control socket: shares come through fsd.share_create.
  bool StartFsd() {
    fsd_socket_ = fleet_->Path("fsd.sock");
    fsd_ = ChildProcess({Bin("src/fs/fsd/dpustor-fsd"), "--control-socket", fsd_socket_},
                        fleet_->Path("fsd.log"));
    return WaitFor([&] { return !Fsd("fsd.version").is_null() || !fsd_.running(); }, 10s) &&
           fsd_.running();
  }
  json Fsd(const std::string& method, const json& params = nullptr) {
    auto c = rpc::RpcClient::Connect("unix:" + fsd_socket_, 2s);
    if (!c.ok()) return nullptr;
    auto r = (*c)->Call(method, params, 10s);
    return r.ok() ? *r : json();
  }
  void StartDpu(std::vector<std::string> sim_extra, bool with_fsd) {
    sim_socket_ = fleet_->Path("snap.sock");
    sim_ = fleet_->StartSim("snap4", sim_socket_, sim_extra);
    std::vector<std::string> extra;
    if (with_fsd) extra = {"--fsd-socket", fsd_socket_, "--fsd-vhost-dir", fleet_->Path("vhost")};
    std::filesystem::create_directories(fleet_->Path("vhost"));
    dpu_ = fleet_->StartDpuAgent("dpu-a", "host-a", sim_socket_, extra);
    ASSERT_TRUE(WaitFor([&] { return fleet_->Dpu("dpu-a")["state"] == "online"; }, 20s));
  }
  json Share(const std::string& name) { return fleet_->Get("/api/v1/shares/" + name); }
  json Shares() { return fleet_->Ctl({"get", "shares"}); }
  // dpustorctl's exit status and error text for a command that must fail.
  std::pair<int, std::string> CtlFails(std::vector<std::string> args) {
    args.insert(args.begin(), {Bin("src/cli/dpustorctl"), "--server", fleet_->server()});
    ProcessOptions o;
    o.timeout = 30s;
    auto r = RunProcess(args, o);
    if (!r.ok()) return {-1, r.error().message};
    return {r->exit_code, r->err};
  }
  static bool IsSocket(const std::string& path) {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
  }

  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<Fleet> fleet_;
  ChildProcess manager_, sim_, fsd_, dpu_;
  std::string fsd_socket_, sim_socket_;
};

TEST_F(SharesTest, FsdShareIsCreatedReadyAndDeleted) {
  ASSERT_TRUE(StartFsd()) << fsd_.Log();
  json version = Fsd("fsd.version");
  auto transports = version.value("transports", json::array());
  if (std::find(transports.begin(), transports.end(), "vhost-user") == transports.end())
    GTEST_SKIP() << "dpustor-fsd without vhost-user: " << version.dump();
  StartDpu({}, /*with_fsd=*/true);
  std::filesystem::create_directories(fleet_->Path("data"));
  std::string backend = "local:" + fleet_->Path("data");

  json created = fleet_->Ctl({"create", "share", "docs", "--dpu", "dpu-a", "--backend", backend,
                              "--tag", "docs", "--squash", "root", "--wait", "30"});
  ASSERT_FALSE(created.is_null()) << Share("docs").dump() << "\n" << dpu_.Log();
  json s = Share("docs");
  EXPECT_EQ(s["state"], "ready");
  EXPECT_EQ(s["observed_plane"], "fsd");  // the simulator has no virtio-fs
  json list = Shares();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["name"], "docs");

  // dpustor-fsd holds it as asked, on its vhost-user socket.
  json held = Fsd("fsd.shares");
  ASSERT_EQ(held.size(), 1u) << held.dump();
  EXPECT_EQ(held[0]["name"], "dpustor-docs");
  EXPECT_EQ(held[0]["transport"], "vhost-user");
  EXPECT_EQ(held[0]["tag"], "docs");
  EXPECT_EQ(held[0]["squash"], "root");
  EXPECT_EQ(held[0]["state"], "serving");
  EXPECT_TRUE(IsSocket(fleet_->Path("vhost/docs.sock")));
  // Counters come back from fsd.stats through the DPU's reports.
  EXPECT_TRUE(WaitFor([&] { return Share("docs")["counters"].is_object(); }, 10s))
      << Share("docs").dump();
  EXPECT_EQ(Share("docs")["counters"]["requests"], 0);

  // The same create again changes nothing; reusing the tag on the DPU is refused.
  EXPECT_FALSE(fleet_
                   ->Ctl({"create", "share", "docs", "--dpu", "dpu-a", "--backend", backend,
                          "--tag", "docs", "--squash", "root"})
                   .is_null());
  auto [rc, err] = CtlFails(
      {"create", "share", "other", "--dpu", "dpu-a", "--backend", "memory:", "--tag", "docs"});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("tag 'docs' is already used on dpu-a by share 'docs'"), std::string::npos)
      << err;

  EXPECT_FALSE(fleet_->Ctl({"delete", "share", "docs", "--wait", "30"}).is_null());
  EXPECT_TRUE(Share("docs").is_null());  // 404
  EXPECT_TRUE(Fsd("fsd.shares").empty()) << Fsd("fsd.shares").dump();
  EXPECT_FALSE(std::filesystem::exists(fleet_->Path("vhost/docs.sock")));
  EXPECT_TRUE(Shares().empty());
}

TEST_F(SharesTest, SnapVirtioFsShareOnBlueField3Simulator) {
  StartDpu({"--virtio-fs"}, /*with_fsd=*/false);
  json created =
      fleet_->Ctl({"create", "share", "home", "--dpu", "dpu-a", "--backend",
                   "nfs://nfs1.example/export/home?version=3", "--tag", "home", "--wait", "30"});
  ASSERT_FALSE(created.is_null()) << Share("home").dump() << "\n" << dpu_.Log();
  json s = Share("home");
  EXPECT_EQ(s["state"], "ready");
  EXPECT_EQ(s["observed_plane"], "snap");

  // The simulator holds the NFS fsdev and a started device on VIRTIO_FS pf 0.
  json fsdevs = fleet_->SnapCall(sim_socket_, "fsdev_get_fsdevs", nullptr);
  ASSERT_EQ(fsdevs.size(), 1u) << fsdevs.dump();
  EXPECT_EQ(fsdevs[0]["name"], "dpustor-home");
  EXPECT_EQ(fsdevs[0]["server"], "nfs1.example");
  EXPECT_EQ(fsdevs[0]["exportname"], "/export/home");
  json devices = fleet_->SnapCall(sim_socket_, "virtio_fs_get_devices", nullptr);
  ASSERT_EQ(devices.size(), 1u) << devices.dump();
  EXPECT_EQ(devices[0]["dev_name"], "dpustor-home");
  EXPECT_EQ(devices[0]["tag"], "home");
  EXPECT_EQ(devices[0]["state"], "started");
  json functions = fleet_->SnapCall(sim_socket_, "emulation_function_list", nullptr);
  std::string pf0_vuid;
  for (const auto& f : functions)
    if (f["emulation_type"] == "VIRTIO_FS" && f["pf_index"] == 0) pf0_vuid = f["vuid"];
  EXPECT_EQ(devices[0]["vuid"], pf0_vuid);

  // A share SNAP cannot serve (read-only) is refused when SNAP is asked for explicitly.
  auto [rc, err] =
      CtlFails({"create", "share", "ro", "--dpu", "dpu-a", "--backend", "nfs://nfs1.example/ro",
                "--tag", "ro", "--read-only", "--data-plane", "snap"});
  EXPECT_EQ(rc, 1);
  EXPECT_NE(err.find("no read-only or squash option"), std::string::npos) << err;

  EXPECT_FALSE(fleet_->Ctl({"delete", "share", "home", "--wait", "30"}).is_null());
  EXPECT_TRUE(fleet_->SnapCall(sim_socket_, "virtio_fs_get_devices", nullptr).empty());
  EXPECT_TRUE(fleet_->SnapCall(sim_socket_, "fsdev_get_fsdevs", nullptr).empty());
  EXPECT_TRUE(Shares().empty());
}

TEST_F(SharesTest, BadInputIsRefusedAndCreatesNothing) {
  StartDpu({}, /*with_fsd=*/false);
  auto [rc1, err1] =
      CtlFails({"create", "share", "s1", "--dpu", "nope", "--backend", "memory:", "--tag", "t1"});
  EXPECT_EQ(rc1, 1);
  EXPECT_NE(err1.find("no DPU named 'nope'"), std::string::npos) << err1;
  EXPECT_NE(err1.find("HTTP 404"), std::string::npos) << err1;

  auto [rc2, err2] = CtlFails(
      {"create", "share", "s1", "--dpu", "dpu-a", "--backend", "ftp://x/y", "--tag", "t1"});
  EXPECT_EQ(rc2, 1);
  EXPECT_NE(err2.find("'backend'"), std::string::npos) << err2;
  EXPECT_NE(err2.find("HTTP 400"), std::string::npos) << err2;

  auto [rc3, err3] = CtlFails({"create", "share", "s1", "--dpu", "dpu-a", "--backend",
                               "nfs://host/x?version=4", "--tag", "t1"});
  EXPECT_EQ(rc3, 1);
  EXPECT_NE(err3.find("NFSv3"), std::string::npos) << err3;

  auto [rc4, err4] = CtlFails({"create", "share", "s1", "--dpu", "dpu-a", "--backend", "memory:"});
  EXPECT_EQ(rc4, 2);
  EXPECT_NE(err4.find("--tag"), std::string::npos) << err4;

  // No DPU-side means: the share is recorded but fails with a reason, and deletes cleanly.
  ASSERT_FALSE(
      fleet_
          ->Ctl({"create", "share", "s2", "--dpu", "dpu-a", "--backend", "memory:", "--tag", "t2"})
          .is_null());
  EXPECT_TRUE(WaitFor([&] { return Share("s2")["state"] == "failed"; }, 20s)) << Share("s2").dump();
  EXPECT_NE(Share("s2")["error"].get<std::string>().find("--fsd-socket"), std::string::npos);
  auto [rc5, err5] =
      CtlFails({"create", "share", "s3", "--dpu", "dpu-a", "--backend", "memory:", "--tag", "t2"});
  EXPECT_EQ(rc5, 1);
  EXPECT_NE(err5.find("HTTP 409"), std::string::npos) << err5;
  EXPECT_FALSE(fleet_->Ctl({"delete", "share", "s2", "--wait", "30"}).is_null());
  EXPECT_TRUE(Shares().empty());
  EXPECT_TRUE(Share("s1").is_null());  // 404: nothing was created
}

}  // namespace
}  // namespace dpustor::testing
