// CephOps against stand-in `rbd` and `ceph` scripts that replay output captured from a real
// Ceph 16.2 lab cluster (fixtures/) and record every invocation, so the tests see exactly
// which commands ran, in which order, and that a refused request ran none. The real tools
// run in tests/integration/ceph_ops.
#include "agent/ceph/rbd_methods.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "common/json_rpc.h"
#include "fixtures.h"

namespace dpustor::agent::ceph {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// The key in fixtures/ceph_auth_get.json (the captured one was replaced by this fake).
constexpr const char* kFixtureKey = "AQBGQUtFS0VZZm9ydW5pdHRlc3RzMDEyMzQ1Ng==";

// A command prefix (after the tool's name and the agent's identity options) and what the
// stand-in does on its 1st, 2nd, ... call (the last answer repeats): "ok" exits 0 silently,
// a .json path is printed, a .txt path (first line the exit status, then stderr) fails.
struct Rule {
  std::string prefix;
  std::vector<std::string> answers;
};

class RbdMethodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rbd-methods-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Stub("rbd", {});
    Stub("ceph", {});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // (Re)writes the stand-in for `tool`; an unexpected command fails with status 99.
  void Stub(const std::string& tool, const std::vector<Rule>& rules) {
    std::ostringstream s;
    s << "#!/bin/sh\n"
      << "[ \"$1\" = --connect-timeout ] && shift 2\n"
      << "echo \"" << tool << " $*\" >> '" << Log() << "'\n"
      << "serve() {\n"
      << "  case \"$1\" in\n"
      << "    ok) exit 0 ;;\n"
      << "    *.json) cat \"$1\"; exit 0 ;;\n"
      << "    *.txt) tail -n +2 \"$1\" >&2; exit \"$(head -n 1 \"$1\")\" ;;\n"
      << "  esac\n"
      << "}\n"
      << "answer() {\n"
      << "  c='" << dir_.string() << "/count." << tool << ".'$1; shift\n"
      << "  n=$(cat \"$c\" 2>/dev/null || echo 0); echo $((n + 1)) > \"$c\"\n"
      << "  i=$((n + 1)); [ $i -gt $# ] && i=$#\n"
      << "  eval \"a=\\${$i}\"; serve \"$a\"\n"
      << "}\n"
      << "case \"$*\" in\n";
    for (std::size_t i = 0; i < rules.size(); ++i) {
      s << "  \"" << rules[i].prefix << "\"*) answer " << i;
      for (const auto& a : rules[i].answers) s << " '" << a << "'";
      s << " ;;\n";
    }
    s << "esac\necho \"stand-in: unexpected command: $*\" >&2\nexit 99\n";
    auto path = (dir_ / tool).string();
    std::ofstream(path) << s.str();
    ::chmod(path.c_str(), 0755);
  }

  // A file of the test's own (for answers that no captured fixture has).
  std::string Write(const std::string& name, const std::string& text) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::string Log() const { return (dir_ / "calls.log").string(); }

  std::vector<std::string> Calls() const {
    std::vector<std::string> calls;
    std::ifstream in(Log());
    for (std::string line; std::getline(in, line);) calls.push_back(line);
    return calls;
  }

  CephOps Ops() { return CephOps(Cli()); }
  std::shared_ptr<const CephCli> Cli() {
    CephCliOptions o;
    o.ceph = (dir_ / "ceph").string();
    o.rbd = (dir_ / "rbd").string();
    o.timeout = 10s;
    return std::make_shared<CephCli>(o);
  }

  // Expects `method` to fail with kInvalidParams naming `field` and to run no command.
  void ExpectRefused(const std::string& method, const json& params, const std::string& field) {
    auto r = Ops().Call(method, params);
    ASSERT_FALSE(r.ok()) << method << " " << params.dump();
    EXPECT_EQ(r.error().code, rpc::kInvalidParams) << r.error().message;
    EXPECT_NE(r.error().message.find("'" + field + "'"), std::string::npos)
        << params.dump() << " -> " << r.error().message;
    EXPECT_TRUE(Calls().empty()) << params.dump() << " ran " << Calls().front();
  }

  std::filesystem::path dir_;
};

const std::string kImg = "--pool volumes --image vol1";

// ---- names and sizes ----

TEST(NameProblemTest, AcceptsTheDocumentedAlphabet) {
  EXPECT_EQ(NameProblem("a"), "");
  EXPECT_EQ(NameProblem("vol-1.snap_2"), "");
  EXPECT_EQ(NameProblem("dpustor.dpu-a"), "");
  EXPECT_EQ(NameProblem("0abc"), "");
  EXPECT_EQ(NameProblem(std::string(100, 'x')), "");
}

TEST(NameProblemTest, RefusesEverythingElse) {
  EXPECT_EQ(NameProblem(""), "must not be empty");
  EXPECT_EQ(NameProblem(std::string(101, 'x')), "must be at most 100 characters, not 101");
  EXPECT_EQ(NameProblem("-rf"), "must not start with '-' or '.'");
  EXPECT_EQ(NameProblem(".hidden"), "must not start with '-' or '.'");
  EXPECT_EQ(NameProblem("pool/image"), "may hold only A-Z a-z 0-9 . _ -, not '/'");
  EXPECT_EQ(NameProblem("image@snap"), "may hold only A-Z a-z 0-9 . _ -, not '@'");
  EXPECT_EQ(NameProblem("a b"), "may hold only A-Z a-z 0-9 . _ -, not byte 0x20");
  EXPECT_EQ(NameProblem("a\nb"), "may hold only A-Z a-z 0-9 . _ -, not byte 0x0a");
  EXPECT_EQ(NameProblem("caf\xc3\xa9"), "may hold only A-Z a-z 0-9 . _ -, not byte 0xc3");
  EXPECT_EQ(NameProblem("a'b"), "may hold only A-Z a-z 0-9 . _ -, not '''");
}

TEST_F(RbdMethodsTest, BadNamesRunNothing) {
  for (const char* bad : {"", "-x", ".x", "a/b", "a b", "a;b", "$(reboot)"}) {
    ExpectRefused("rbd.create", {{"pool", bad}, {"image", "i"}, {"size_bytes", 512}}, "pool");
    ExpectRefused("rbd.create", {{"pool", "p"}, {"image", bad}, {"size_bytes", 512}}, "image");
    ExpectRefused("rbd.resize", {{"pool", "p"}, {"image", bad}, {"size_bytes", 512}}, "image");
    ExpectRefused("rbd.snapshot", {{"pool", "p"}, {"image", "i"}, {"snapshot", bad}}, "snapshot");
    ExpectRefused("rbd.delete", {{"pool", bad}, {"image", "i"}}, "pool");
    ExpectRefused("rbd.info", {{"pool", "p"}, {"image", bad}}, "image");
    ExpectRefused("ceph.client_key", {{"client", bad}, {"pools", {"p"}}}, "client");
    ExpectRefused("ceph.client_key", {{"client", "c"}, {"pools", {"p", bad}}}, "pools[1]");
  }
  ExpectRefused("rbd.info", {{"pool", "p"}, {"image", std::string(101, 'i')}}, "image");
  ExpectRefused("rbd.info", {{"pool", 7}, {"image", "i"}}, "pool");
  ExpectRefused("rbd.info", {{"image", "i"}}, "pool");
  ExpectRefused("rbd.delete", {{"pool", "p"}}, "image");
  ExpectRefused("rbd.snapshot", {{"pool", "p"}, {"image", "i"}}, "snapshot");
}

TEST_F(RbdMethodsTest, BadSizesRunNothing) {
  for (json bad : {json(0), json(511), json(513), json(1000000), json(-512), json("1024"),
                   json(1.5), json(nullptr), json(std::uint64_t{1} << 63)}) {
    ExpectRefused("rbd.create", {{"pool", "p"}, {"image", "i"}, {"size_bytes", bad}}, "size_bytes");
    ExpectRefused("rbd.resize", {{"pool", "p"}, {"image", "i"}, {"size_bytes", bad}}, "size_bytes");
  }
  ExpectRefused("rbd.create", {{"pool", "p"}, {"image", "i"}}, "size_bytes");
  auto r = Ops().Call("rbd.create", {{"pool", "p"}, {"image", "i"}, {"size_bytes", 1000}});
  EXPECT_EQ(r.error().message,
            "invalid params: 'size_bytes': must be a positive multiple of 512, not 1000");
}

TEST_F(RbdMethodsTest, OtherBadParamsRunNothing) {
  ExpectRefused("rbd.create", {{"pool", "p"}, {"image", "i"}, {"size_bytes", 512}, {"sise", 1}},
                "sise");
  ExpectRefused("rbd.resize",
                {{"pool", "p"}, {"image", "i"}, {"size_bytes", 512}, {"allow_shrink", "yes"}},
                "allow_shrink");
  ExpectRefused("ceph.client_key", {{"client", "c"}, {"pools", json::array()}}, "pools");
  ExpectRefused("ceph.client_key", {{"client", "c"}, {"pools", "p"}}, "pools");
  ExpectRefused("ceph.client_key", {{"client", "c"}, {"pools", {"p", 3}}}, "pools[1]");
  ExpectRefused("ceph.client_key", {{"client", "c"}}, "pools");
  ExpectRefused("ceph.client_key", {{"client", "client.c"}, {"pools", {"p"}}}, "client");
  ExpectRefused("ceph.cluster_info", {{"verbose", true}}, "verbose");

  auto r = Ops().Call("rbd.info", json::array({"p", "i"}));
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  r = Ops().Call("rbd.frobnicate", json::object());
  EXPECT_EQ(r.error().code, rpc::kMethodNotFound);
  EXPECT_TRUE(Calls().empty());
}

// ---- rbd.create ----

TEST_F(RbdMethodsTest, CreateMissingImageCreatesItInExactBytes) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_missing_image.txt")}}, {"create ", {"ok"}}});
  auto r = Ops().Call("rbd.create",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(
      *r,
      (json{
          {"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}, {"created", true}}));
  EXPECT_EQ(Calls(),
            (std::vector<std::string>{"rbd info " + kImg + " --format json",
                                      "rbd create " + kImg + " --size 1073741824B --no-progress"}));
}

TEST_F(RbdMethodsTest, CreateExistingOfTheSameSizeSucceedsWithoutCreating) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}}});
  auto r = Ops().Call("rbd.create",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["created"], false);
  EXPECT_EQ((*r)["size_bytes"], 1073741824);
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, CreateExistingOfAnotherSizeNamesBothSizes) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}}});
  auto r = Ops().Call("rbd.create",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 2147483648}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
  EXPECT_EQ(r.error().message,
            "image 'volumes/vol1' already exists with size 1073741824 bytes, not the requested "
            "2147483648 bytes");
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, CreateInMissingPoolNamesThePool) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_missing_pool.txt")}}});
  auto r =
      Ops().Call("rbd.create", {{"pool", "nosuchpool"}, {"image", "vol1"}, {"size_bytes", 4096}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, CreateThatLosesARaceJudgesTheWinner) {
  // Missing at `rbd info`, created by someone else before `rbd create`.
  Stub("rbd",
       {{"info ", {FixturePath("rbd_info_missing_image.txt"), FixturePath("rbd_info_vol1.json")}},
        {"create ", {FixturePath("rbd_create_exists.txt")}}});
  auto r = Ops().Call("rbd.create",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["created"], false);
  EXPECT_EQ(Calls().size(), 3u);
}

TEST_F(RbdMethodsTest, CreateFailureQuotesRbd) {
  Stub("rbd",
       {{"info ", {FixturePath("rbd_info_missing_image.txt")}},
        {"create ", {Write("einval.txt", "22\nrbd: create error: (22) Invalid argument\n")}}});
  auto r = Ops().Call("rbd.create", {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 512}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kFailed);
  EXPECT_NE(r.error().message.find("rbd: create error: (22) Invalid argument"), std::string::npos)
      << r.error().message;
}

// ---- rbd.resize ----

TEST_F(RbdMethodsTest, ResizeGrows) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}}, {"resize ", {"ok"}}});
  auto r = Ops().Call("rbd.resize",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 2147483648}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"size_bytes", 2147483648}, {"changed", true}}));
  EXPECT_EQ(Calls().back(), "rbd resize " + kImg + " --size 2147483648B --no-progress");
}

TEST_F(RbdMethodsTest, ResizeToTheSameSizeChangesNothing) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}}});
  auto r = Ops().Call("rbd.resize",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"size_bytes", 1073741824}, {"changed", false}}));
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, ShrinkNeedsAllowShrink) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}}, {"resize ", {"ok"}}});
  auto r =
      Ops().Call("rbd.resize", {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1048576}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  EXPECT_EQ(r.error().message,
            "invalid params: 'size_bytes': 1048576 is smaller than the current size of image "
            "'volumes/vol1' (1073741824 bytes); shrinking needs allow_shrink");
  EXPECT_EQ(Calls().size(), 1u);  // only rbd info

  r = Ops().Call(
      "rbd.resize",
      {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1048576}, {"allow_shrink", true}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["changed"], true);
  EXPECT_EQ(Calls().back(), "rbd resize " + kImg + " --size 1048576B --no-progress --allow-shrink");
}

TEST_F(RbdMethodsTest, ResizeOfMissingImageIsNotFound) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_missing_image.txt")}}});
  auto r =
      Ops().Call("rbd.resize", {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1048576}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "image 'volumes/vol1' does not exist");
}

// ---- rbd.snapshot ----

TEST_F(RbdMethodsTest, SnapshotIsTakenOnce) {
  Stub("rbd", {{"snap ls ", {FixturePath("rbd_snap_ls_vol1.json")}}, {"snap create ", {"ok"}}});
  auto r = Ops().Call("rbd.snapshot",
                      {{"pool", "volumes"}, {"image", "vol1"}, {"snapshot", "nightly-2"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"created", true}}));
  EXPECT_EQ(Calls().back(), "rbd snap create " + kImg + " --snap nightly-2 --no-progress");

  r = Ops().Call("rbd.snapshot",
                 {{"pool", "volumes"}, {"image", "vol1"}, {"snapshot", "nightly-1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"created", false}}));
  EXPECT_EQ(Calls().size(), 3u);  // ls, create, ls
}

TEST_F(RbdMethodsTest, SnapshotCreatedMeanwhileIsFine) {
  Stub("rbd", {{"snap ls ", {FixturePath("rbd_snap_ls_vol1.json")}},
               {"snap create ", {FixturePath("rbd_snap_create_exists.txt")}}});
  auto r =
      Ops().Call("rbd.snapshot", {{"pool", "volumes"}, {"image", "vol1"}, {"snapshot", "new"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"created", false}}));
}

TEST_F(RbdMethodsTest, SnapshotOfMissingImageOrPoolIsNotFound) {
  Stub("rbd",
       {{"snap ls ",
         {FixturePath("rbd_info_missing_image.txt"), FixturePath("rbd_info_missing_pool.txt")}}});
  auto r = Ops().Call("rbd.snapshot", {{"pool", "volumes"}, {"image", "vol1"}, {"snapshot", "s"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "image 'volumes/vol1' does not exist");
  r = Ops().Call("rbd.snapshot", {{"pool", "nosuchpool"}, {"image", "vol1"}, {"snapshot", "s"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
}

// ---- rbd.delete ----

TEST_F(RbdMethodsTest, DeleteRemovesSnapshotsThenTheImage) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"status ", {FixturePath("rbd_status_idle.json")}},
               {"snap ls ", {FixturePath("rbd_snap_ls_vol1.json")}},
               {"snap purge ", {"ok"}},
               {"rm ", {"ok"}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"deleted", true}}));
  EXPECT_EQ(Calls(),
            (std::vector<std::string>{
                "rbd info " + kImg + " --format json", "rbd status " + kImg + " --format json",
                "rbd snap ls " + kImg + " --format json",
                "rbd snap purge " + kImg + " --no-progress", "rbd rm " + kImg + " --no-progress"}));
}

TEST_F(RbdMethodsTest, DeleteWithoutSnapshotsSkipsThePurge) {
  auto info = Fixture("rbd_info_vol1.json");
  info["snapshot_count"] = 0;
  Stub("rbd", {{"info ", {Write("info.json", info.dump())}},
               {"status ", {FixturePath("rbd_status_idle.json")}},
               {"rm ", {"ok"}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(Calls().size(), 3u);
}

TEST_F(RbdMethodsTest, DeleteOfMissingImageSucceedsWithDeletedFalse) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_missing_image.txt")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"deleted", false}}));
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, DeleteInMissingPoolIsNotFound) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_missing_pool.txt")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "nosuchpool"}, {"image", "vol1"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
}

TEST_F(RbdMethodsTest, DeleteOfAnOpenImageIsBusyAndTouchesNothing) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"status ", {FixturePath("rbd_status_watched.json")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kBusy);
  EXPECT_EQ(r.error().message,
            "image 'volumes/vol1' is still open by 1 client (watcher 127.0.0.1:0/68852444); "
            "detach it first");
  EXPECT_EQ(Calls().size(), 2u);  // no snap purge, no rm
}

TEST_F(RbdMethodsTest, DeleteWithProtectedSnapshotsIsBusyAndTouchesNothing) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"status ", {FixturePath("rbd_status_idle.json")}},
               {"snap ls ", {FixturePath("rbd_snap_ls_protected.json")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kBusy);
  EXPECT_NE(r.error().message.find("has protected snapshots (p1)"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(Calls().size(), 3u);
}

TEST_F(RbdMethodsTest, DeleteRacingANewWatcherIsBusy) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"status ", {FixturePath("rbd_status_idle.json")}},
               {"snap ls ", {Write("none.json", "[]")}},
               {"rm ", {FixturePath("rbd_rm_watchers.txt")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kBusy);
  EXPECT_NE(r.error().message.find("is still open by a client; detach it first"), std::string::npos)
      << r.error().message;
}

TEST_F(RbdMethodsTest, DeleteRacingANewSnapshotFailsWithRbdsReason) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"status ", {FixturePath("rbd_status_idle.json")}},
               {"snap ls ", {FixturePath("rbd_snap_ls_vol1.json")}},
               {"snap purge ", {"ok"}},
               {"rm ", {FixturePath("rbd_rm_has_snapshots.txt")}}});
  auto r = Ops().Call("rbd.delete", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kFailed);
  EXPECT_EQ(r.error().message,
            "'rbd rm --pool volumes --image vol1 --no-progress' exited with status 39 (Directory "
            "not empty): rbd: image has snapshots - these must be deleted with 'rbd snap purge' "
            "before the image can be removed.");
}

// ---- rbd.info ----

TEST_F(RbdMethodsTest, InfoGivesSizeAndSnapshots) {
  Stub("rbd", {{"info ", {FixturePath("rbd_info_vol1.json")}},
               {"snap ls ", {FixturePath("rbd_snap_ls_vol1.json")}}});
  auto r = Ops().Call("rbd.info", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"pool", "volumes"},
                      {"image", "vol1"},
                      {"size_bytes", 1073741824},
                      {"snapshots", {"before-upgrade", "nightly-1"}}}));
}

TEST_F(RbdMethodsTest, InfoOfMissingImageIsNotFound) {
  Stub("rbd",
       {{"info ",
         {FixturePath("rbd_info_missing_image.txt"), FixturePath("rbd_info_missing_pool.txt")}}});
  auto r = Ops().Call("rbd.info", {{"pool", "volumes"}, {"image", "nosuchimage"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "image 'volumes/nosuchimage' does not exist");
  r = Ops().Call("rbd.info", {{"pool", "nosuchpool"}, {"image", "vol1"}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nosuchpool' does not exist");
}

TEST_F(RbdMethodsTest, UnexpectedOutputIsAnErrorNotACrash) {
  Stub("rbd", {{"info ", {Write("odd.json", R"({"name":"vol1","size":"big"})")}}});
  auto r = Ops().Call("rbd.info", {{"pool", "volumes"}, {"image", "vol1"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kFailed);
  EXPECT_EQ(r.error().message, "'rbd info' of 'volumes/vol1' printed no size");
}

// ---- ceph.client_key ----

TEST_F(RbdMethodsTest, ClientKeyCreatesTheUserWithExactlyThesePools) {
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}},
                {"auth get client.", {FixturePath("ceph_auth_get_missing.txt")}},
                {"auth get-or-create ", {FixturePath("ceph_auth_get.json")}}});
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  auto r = Ops().Call("ceph.client_key",
                      {{"client", "dpustor.dpu-a"}, {"pools", {"volumes", "rbdtest", "volumes"}}});
  std::string logged = ::testing::internal::GetCapturedStdout();
  logged += ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"user_id", "dpustor.dpu-a"}, {"key", kFixtureKey}}));
  EXPECT_NE(logged.find("client.dpustor.dpu-a created (pools rbdtest, volumes)"), std::string::npos)
      << logged;
  EXPECT_EQ(logged.find(kFixtureKey), std::string::npos) << "the key was logged";
  EXPECT_EQ(Calls(), (std::vector<std::string>{
                         "ceph osd pool ls --format json",
                         "ceph auth get client.dpustor.dpu-a --format json",
                         "ceph auth get-or-create client.dpustor.dpu-a mon profile rbd osd "
                         "profile rbd pool=rbdtest, profile rbd pool=volumes --format json"}));
}

TEST_F(RbdMethodsTest, ClientKeyOfAnUpToDateUserChangesNothing) {
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}},
                {"auth get client.", {FixturePath("ceph_auth_get.json")}}});
  auto r = Ops().Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"volumes"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["key"], kFixtureKey);
  EXPECT_EQ(Calls().size(), 2u);
}

TEST_F(RbdMethodsTest, ClientKeyUpdatesCapsAndKeepsTheKey) {
  auto entry = Fixture("ceph_auth_get.json");
  entry[0]["caps"]["mgr"] = "allow *";  // any difference at all makes the caps be rewritten
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}},
                {"auth get client.", {Write("other.json", entry.dump())}},
                {"auth caps ", {"ok"}}});
  auto r = Ops().Call("ceph.client_key",
                      {{"client", "dpustor.dpu-a"}, {"pools", {"volumes", "rbdtest"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"user_id", "dpustor.dpu-a"}, {"key", kFixtureKey}}));
  EXPECT_EQ(Calls().back(),
            "ceph auth caps client.dpustor.dpu-a mon profile rbd osd profile rbd pool=rbdtest, "
            "profile rbd pool=volumes --format json");
}

TEST_F(RbdMethodsTest, ClientKeyForAMissingPoolIsNotFound) {
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}}});
  auto r =
      Ops().Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"volumes", "nope"}}});
  EXPECT_EQ(r.error().code, rpc::kNotFound);
  EXPECT_EQ(r.error().message, "pool 'nope' does not exist");
  EXPECT_EQ(Calls().size(), 1u);
}

TEST_F(RbdMethodsTest, ClientKeyCreatedMeanwhileWithOtherCapsIsUpdated) {
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}},
                {"auth get client.",
                 {FixturePath("ceph_auth_get_missing.txt"), FixturePath("ceph_auth_get.json")}},
                {"auth get-or-create ", {FixturePath("ceph_auth_get_or_create_mismatch.txt")}},
                {"auth caps ", {"ok"}}});
  auto r = Ops().Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"rbdtest"}}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["key"], kFixtureKey);
  EXPECT_EQ(Calls().size(), 5u);
}

TEST_F(RbdMethodsTest, KeyNeverAppearsInErrors) {
  // A failing command that echoes the key (and a cut-off piece of it) on stderr.
  std::string key = kFixtureKey;
  auto leak = Write("leak.txt", "13\nError EACCES: key " + key + " for client.dpustor.dpu-a; " +
                                    key.substr(0, 30) + "\n");
  Stub("ceph", {{"osd pool ls", {FixturePath("ceph_osd_pool_ls.json")}},
                {"auth get client.", {FixturePath("ceph_auth_get.json")}},
                {"auth caps ", {leak}}});
  auto r = Ops().Call("ceph.client_key", {{"client", "dpustor.dpu-a"}, {"pools", {"rbdtest"}}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kFailed);
  EXPECT_EQ(r.error().message.find(key.substr(2, 20)), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("Error EACCES: key <key> for client.dpustor.dpu-a; <key>"),
            std::string::npos)
      << r.error().message;
}

TEST(ScrubKeysTest, ScrubsKeysAndPiecesOfKeysOnly) {
  EXPECT_EQ(ScrubKeys("key = AQBmYWtlLWtleS1vbmUtZm9yLXRlc3RzLTAwMQ==\n"), "key = <key>\n");
  EXPECT_EQ(ScrubKeys("cut AQBmYWtlLWtleS1vbmUtZm9y..."), "cut <key>...");
  EXPECT_EQ(ScrubKeys("pool 'AQUARIUM' and client.dpustor.dpu-a"),
            "pool 'AQUARIUM' and client.dpustor.dpu-a");
  EXPECT_EQ(
      ScrubKeys(
          "key=AQBmYWtlLWtleS1vbmUtZm9yLXRlc3RzLTAwMQ==,AQBmYWtlLWtleS10d28tZm9yLXRlc3RzLTAwMg"
          "== AQ"),
      "key=<key>,<key> AQ");
  EXPECT_EQ(ScrubKeys(""), "");
}

// ---- ceph.cluster_info ----

TEST_F(RbdMethodsTest, ClusterInfoFromTheMonmap) {
  Stub("ceph", {{"mon dump", {FixturePath("ceph_mon_dump.json")}}});
  auto r = Ops().Call("ceph.cluster_info", json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, (json{{"fsid", "cb32b732-b4b1-4f4d-8ce7-72b71903fe96"},
                      {"mon_host", "[v2:127.0.0.1:21856,v1:127.0.0.1:21857]"}}));
  EXPECT_EQ(Calls(), std::vector<std::string>{"ceph mon dump --format json"});
  r = Ops().Call("ceph.cluster_info", nullptr);  // no params at all is fine too
  ASSERT_TRUE(r.ok()) << r.error().message;
}

TEST_F(RbdMethodsTest, ClusterInfoAsksCephFsidWhenTheMonmapHasNone) {
  auto dump = Fixture("ceph_mon_dump.json");
  dump.erase("fsid");
  Stub("ceph", {{"mon dump", {Write("dump.json", dump.dump())}},
                {"fsid", {FixturePath("ceph_fsid.json")}}});
  auto r = Ops().Call("ceph.cluster_info", json::object());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["fsid"], "cb32b732-b4b1-4f4d-8ce7-72b71903fe96");
}

TEST(MonHostTest, SeveralMonsInRankOrder) {
  // The captured single-mon dump, grown to three monitors listed out of rank order.
  auto dump = Fixture("ceph_mon_dump.json");
  auto mon = dump["mons"][0];
  dump["mons"] = json::array();
  for (int rank : {2, 0, 1}) {
    auto m = mon;
    m["rank"] = rank;
    m["name"] = std::string(1, static_cast<char>('a' + rank));
    std::string ip = "10.0.0." + std::to_string(rank + 1);
    m["public_addrs"]["addrvec"][0]["addr"] = ip + ":3300";
    m["public_addrs"]["addrvec"][1]["addr"] = ip + ":6789";
    dump["mons"].push_back(m);
  }
  auto r = MonHostFromMonDump(dump);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r,
            "[v2:10.0.0.1:3300,v1:10.0.0.1:6789],[v2:10.0.0.2:3300,v1:10.0.0.2:6789],"
            "[v2:10.0.0.3:3300,v1:10.0.0.3:6789]");
}

TEST(MonHostTest, LegacyAddressesAndNonsense) {
  json legacy = {{"mons", {{{"rank", 0}, {"name", "a"}, {"public_addr", "10.0.0.1:6789/0"}}}}};
  EXPECT_EQ(*MonHostFromMonDump(legacy), "[v1:10.0.0.1:6789]");
  EXPECT_FALSE(MonHostFromMonDump(json::object()).ok());
  EXPECT_FALSE(MonHostFromMonDump(json{{"mons", json::array()}}).ok());
  EXPECT_FALSE(MonHostFromMonDump(json{{"mons", {{{"rank", 0}}}}}).ok());
}

// ---- concurrency and registration ----

TEST_F(RbdMethodsTest, MutationsOfOneImageDoNotOverlap) {
  // Every command takes 150 ms and logs its start and end; two concurrent creates of the
  // same image must run one after the other, and only the first one creates.
  auto path = (dir_ / "rbd").string();
  std::ofstream(path) << "#!/bin/sh\n"
                      << "echo \"start $1\" >> '" << Log() << "'\nsleep 0.15\n"
                      << "echo \"end $1\" >> '" << Log() << "'\n"
                      << "if [ \"$1\" = info ]; then\n"
                      << "  if [ -e '" << (dir_ / "created").string() << "' ]; then cat '"
                      << FixturePath("rbd_info_vol1.json") << "'; exit 0; fi\n"
                      << "  tail -n +2 '" << FixturePath("rbd_info_missing_image.txt")
                      << "' >&2; exit 2\n"
                      << "fi\n"
                      << "touch '" << (dir_ / "created").string() << "'\n";
  ::chmod(path.c_str(), 0755);
  auto ops = Ops();
  json params = {{"pool", "volumes"}, {"image", "vol1"}, {"size_bytes", 1073741824}};
  auto a = std::async(std::launch::async, [&] { return ops.Call("rbd.create", params); });
  auto b = std::async(std::launch::async, [&] { return ops.Call("rbd.create", params); });
  auto ra = a.get(), rb = b.get();
  ASSERT_TRUE(ra.ok()) << ra.error().message;
  ASSERT_TRUE(rb.ok()) << rb.error().message;
  EXPECT_NE((*ra)["created"], (*rb)["created"]);  // exactly one created it
  auto calls = Calls();
  ASSERT_EQ(calls.size(), 6u);  // info, create, info
  for (std::size_t i = 0; i < calls.size(); i += 2) {
    EXPECT_EQ(calls[i].substr(0, 6), "start ") << i;
    EXPECT_EQ(calls[i + 1], "end " + calls[i].substr(6)) << i;
  }
}

TEST_F(RbdMethodsTest, RegisteredMethodsRunOffTheCallersThread) {
  boost::asio::io_context ioc;
  auto session = AgentSession::Create(ioc, AgentIdentity{"c", "ceph", "0", {}, "t"},
                                      SessionOptions{}, [] { return json::object(); });
  RegisterCephMethods(session->methods(), Cli());
  for (const auto& m : CephOps::Methods()) EXPECT_TRUE(session->methods().Contains(m.name));

  // Bad params are answered at once, on this thread.
  std::optional<Result<json>> bad;
  session->methods().Dispatch(*session, "rbd.create", {{"pool", "-x"}},
                              [&](Result<json> r) { bad = std::move(r); });
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->error().code, rpc::kInvalidParams);

  // Good ones run on the registration's threads and answer from there.
  Stub("ceph", {{"mon dump", {FixturePath("ceph_mon_dump.json")}}});
  std::promise<std::pair<Result<json>, std::thread::id>> done;
  session->methods().Dispatch(*session, "ceph.cluster_info", json::object(), [&](Result<json> r) {
    done.set_value({std::move(r), std::this_thread::get_id()});
  });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  auto [r, thread] = f.get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ((*r)["mon_host"], "[v2:127.0.0.1:21856,v1:127.0.0.1:21857]");
  EXPECT_NE(thread, std::this_thread::get_id());
}

}  // namespace
}  // namespace dpustor::agent::ceph
