// CephCli's handling of what the tools can do wrong; the real tools run in the integration
// test. The stand-ins are small shell scripts written by the test.
#include "agent/ceph/ceph_cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/json_rpc.h"

namespace dpustor::agent::ceph {
namespace {

using namespace std::chrono_literals;

class CephCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ceph-cli-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Script(const std::string& name, const std::string& body) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(CephCliTest, PassesIdentityAndJsonFormat) {
  CephCliOptions o;
  o.ceph = Script("ceph", R"(printf '{"args":"%s"}' "$*")");
  o.conf = "/etc/x.conf";
  o.keyring = "/etc/x.keyring";
  o.user = "dpustor";
  auto r = CephCli(o).Ceph({"osd", "pool", "ls"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["args"],
            "--conf /etc/x.conf --keyring /etc/x.keyring --id dpustor --connect-timeout 20 osd "
            "pool ls --format json");
}

TEST_F(CephCliTest, NonZeroExitQuotesStderrWithoutLogNoise) {
  CephCliOptions o;
  o.rbd =
      Script("rbd",
             "echo \"2026-11-21T10:00:00.000+0000 7f00 -1 auth: unable to find a keyring\" >&2\n"
             "echo \"rbd: error opening pool 'nosuchpool': (2) No such file or directory\" >&2\n"
             "echo 'rbd: listing images failed: (2) No such file or directory' >&2\nexit 2");
  auto r = CephCli(o).Rbd({"ls", "-l", "-p", "nosuchpool"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kFailed);
  EXPECT_EQ(r.error().message,
            "'rbd ls -l -p nosuchpool' exited with status 2: rbd: error opening pool "
            "'nosuchpool': (2) No such file or directory; rbd: listing images failed: (2) No such "
            "file or directory");
}

TEST_F(CephCliTest, ExitStatusIsNamedWhenStderrDoesNot) {
  // What rbd 16.2 says, and how it exits, when the cluster refuses the key.
  CephCliOptions o;
  o.rbd = Script("rbd",
                 "echo '2026-11-21T17:04:19.676+0000 7f55 -1 monclient(hunting): "
                 "handle_auth_bad_method server allowed_methods [2] but i only support [2]' >&2\n"
                 "echo \"rbd: couldn't connect to the cluster!\" >&2\nexit 13");
  int status = 0;
  CliRun run;
  run.exit_code = &status;
  auto r = CephCli(o).Rbd({"info", "--pool", "p", "--image", "i"}, run);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(status, 13);
  EXPECT_EQ(r.error().message,
            "'rbd info --pool p --image i' exited with status 13 (Permission denied): rbd: "
            "couldn't connect to the cluster!");
}

TEST_F(CephCliTest, CommandsWithoutFormatOptionGetNone) {
  CephCliOptions o;
  o.rbd = Script("rbd", R"(echo "$*" >&2; echo 'Resizing image: 100% complete...done.'; exit 0)");
  CliRun run;
  run.json = false;
  auto r = CephCli(o).Rbd({"resize", "--size", "512B"}, run);
  ASSERT_TRUE(r.ok()) << r.error().message;  // stdout that is not JSON is ignored
  EXPECT_TRUE(r->is_null());
  EXPECT_EQ(CephCli(o).Command("rbd", {"rm"}, false), (std::vector<std::string>{o.rbd, "rm"}));
}

TEST_F(CephCliTest, TimeoutIsAnError) {
  CephCliOptions o;
  o.ceph = Script("ceph", "sleep 30");
  o.timeout = 300ms;
  auto start = std::chrono::steady_clock::now();
  auto r = CephCli(o).Ceph({"status"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kTimeout);
  EXPECT_EQ(r.error().message, "'ceph status' timed out");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(CephCliTest, NonJsonOutputIsAnError) {
  CephCliOptions o;
  o.ceph = Script("ceph", "echo HEALTH_OK");
  auto r = CephCli(o).Ceph({"health"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not JSON"), std::string::npos);
}

TEST_F(CephCliTest, MissingToolIsAnError) {
  CephCliOptions o;
  o.ceph = (dir_ / "no-such-ceph").string();
  auto r = CephCli(o).Ceph({"status"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot start"), std::string::npos);
}

TEST_F(CephCliTest, EmptyOutputIsNull) {
  CephCliOptions o;
  o.rbd = Script("rbd", "true");
  auto r = CephCli(o).Rbd({"resize"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_null());
}

}  // namespace
}  // namespace dpustor::agent::ceph
