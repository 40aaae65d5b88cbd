// virtio-fs with real Linux guests: QEMU (TCG) boots Debian's kernel with the initramfs of
// scripts/vm, the guest mounts the share with `mount -t virtiofs` and runs
// scripts/vm/guest-test.sh, and the test checks the same files in the backing directory.
// Setups, one test each:
//   ReferenceVirtiofsdLocalDir  QEMU's own virtiofsd serving a directory. It proves the
//                               guest scripts and these checks: a failure here is not
//                               dpustor's, a failure only in the others is.
//   FsdLocalBackend             dpustor-fsd --transport vhost-user, backend local:DIR
//   FsdNfsBackend               dpustor-fsd, backend nfs:// of NFS-Ganesha exporting DIR
// Each runs two VMs in turn on one daemon: "files" creates, writes, reads, renames, links
// and deletes and leaves a known tree; the host checks it byte for byte and adds a file;
// after the first VM powered off, "second" attaches to the same daemon and socket, checks
// both and writes one more file, which the host checks too. (virtiofsd serves a single
// connection and exits with it, so it alone is started again for the second VM.)
// The program runs in private network + mount namespaces entered before main(): Ganesha's
// rpcbind needs its own port 111.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/process.h"
#include "common/rpc_client.h"
#include "harness/child_process.h"
#include "harness/lab.h"
#include "harness/nfs_lab.h"
#include "harness/qemu_vm.h"

namespace dpustor::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Before gtest starts a thread; the NFS setup fails with the error, if any.
std::string EnterNamespacesOnce() {
  std::string error;
  if (!EnterPrivateNamespaces(&error)) return error.empty() ? "not permitted" : error;
  return "";
}
const std::string namespace_error = EnterNamespacesOnce();

// One VM takes ~7 s on an idle machine and several times that on a loaded 2-core one.
constexpr auto kVmTimeout = 150s;
constexpr auto kDaemonStartTimeout = 30s;
constexpr char kTag[] = "dpustor-share";
constexpr char kVirtiofsd[] = "/usr/lib/qemu/virtiofsd";

// --- What the guest leaves behind (the header of scripts/vm/guest-test.sh) ---

std::string Seq(int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += std::to_string(i) + "\n";
  return s;
}

std::string BytePattern() {
  std::string s;
  for (int round = 0; round < 16; ++round)
    for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
  return s;
}

std::string BigFile() {
  std::string s = Seq(300000);
  const std::string patch = "PATCHED-IN-THE-MIDDLE";
  s.replace(1048570, patch.size(), patch);
  return s;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Byte-for-byte equality that reports sizes and the first difference, not 2 MB of text.
::testing::AssertionResult HasBytes(const std::string& path, const std::string& expected) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ::testing::AssertionFailure() << path << " missing";
  if (!S_ISREG(st.st_mode)) return ::testing::AssertionFailure() << path << " is not a file";
  std::string actual = Slurp(path);
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < actual.size() && at < expected.size() && actual[at] == expected[at]) ++at;
  return ::testing::AssertionFailure() << path << ": " << actual.size() << " bytes, want "
                                       << expected.size() << "; first difference at " << at;
}

std::set<std::string> Entries(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    names.insert(e.path().filename().string());
  return names;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// The host's view of what the first VM ("files") left under `t` (the share's vmtest/), next
// to `others` (entries added since) in `t` itself.
void ExpectFirstVmTree(const std::string& t, const std::set<std::string>& others = {}) {
  std::set<std::string> top = {"MANIFEST.md5", "a", "b"};
  top.insert(others.begin(), others.end());
  EXPECT_EQ(Entries(t), top);
  EXPECT_EQ(Entries(t + "/a"),
            (std::set<std::string>{"big", "empty", "hello.txt", "sym", "trunc"}));
  EXPECT_EQ(Entries(t + "/b"), (std::set<std::string>{"deep", "seq4k", "seq4k.link", "victim"}));
  EXPECT_TRUE(HasBytes(t + "/a/big", BigFile()));
  EXPECT_TRUE(HasBytes(t + "/a/empty", ""));
  EXPECT_TRUE(HasBytes(t + "/a/hello.txt", "hello from the virtio-fs guest\nappended line\n"));
  EXPECT_TRUE(HasBytes(t + "/a/trunc", Seq(1000).substr(0, 100) + std::string(4900, '\0')));
  EXPECT_TRUE(HasBytes(t + "/b/deep/er/nested.txt", "nested file\n"));
  EXPECT_TRUE(HasBytes(t + "/b/seq4k", Seq(1000) + "via link\n"));
  EXPECT_TRUE(HasBytes(t + "/b/victim", BytePattern()));

  struct stat original, link, victim;
  ASSERT_EQ(::stat((t + "/b/seq4k").c_str(), &original), 0);
  ASSERT_EQ(::stat((t + "/b/seq4k.link").c_str(), &link), 0);
  EXPECT_EQ(original.st_ino, link.st_ino) << "b/seq4k.link is not a hard link of b/seq4k";
  EXPECT_EQ(original.st_nlink, 2u);
  ASSERT_EQ(::stat((t + "/b/victim").c_str(), &victim), 0);
  EXPECT_EQ(victim.st_mode & 07777, 0640u);
  EXPECT_EQ(victim.st_nlink, 1u);
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::is_symlink(t + "/a/sym"));
  EXPECT_EQ(std::filesystem::read_symlink(t + "/a/sym", ec).string(), "../b/seq4k");

  for (const char* gone :
       {"a/small.txt", "a/seq4k", "a/bytes", "a/deep", "a/gone.txt", "c", "e", "b/victim.tmp"}) {
    EXPECT_FALSE(Exists(t + "/" + gone)) << gone << " should have been renamed or deleted";
  }

  // The guest's own checksums, verified by the host's md5sum.
  ASSERT_TRUE(Exists(t + "/MANIFEST.md5"));
  auto check = RunProcess({"sh", "-c", "cd \"$1\" && md5sum -c MANIFEST.md5", "sh", t});
  ASSERT_TRUE(check.ok()) << check.error().message;
  EXPECT_EQ(check->exit_code, 0) << check->out << check->err;
  EXPECT_EQ(check->out,
            "./a/big: OK\n./a/empty: OK\n./a/hello.txt: OK\n./a/trunc: OK\n"
            "./b/deep/er/nested.txt: OK\n./b/seq4k: OK\n./b/seq4k.link: OK\n./b/victim: OK\n");
}

// --- The daemon serving the share ---

// One setup: the daemon's command line, where its share lives on the host, and whether it
// serves more than one connection (dpustor-fsd must; virtiofsd does not).
struct ShareSetup {
  std::string name;
  std::unique_ptr<TempDir> dir;  // logs, socket, share
  std::unique_ptr<NfsLab> nfs;   // the NFS setup's server; stops after the daemon
  std::string share_dir;         // the backing directory as the host sees it
  std::string socket;
  std::string control_socket;  // dpustor-fsd only
  std::vector<std::string> daemon_argv;
  bool serves_many_connections = true;
  ChildProcess daemon;
  int daemon_starts = 0;

  std::string DaemonLog() const {
    return *dir / ("daemon-" + std::to_string(daemon_starts) + ".log");
  }

  bool StartDaemon(std::string* error) {
    std::error_code ec;
    std::filesystem::remove(socket, ec);
    ++daemon_starts;
    try {
      daemon = ChildProcess(daemon_argv, DaemonLog());
    } catch (const std::exception& e) {
      *error = e.what();
      return false;
    }
    bool up = WaitFor([&] { return !daemon.running() || IsListeningUnixSocket(socket); },
                      kDaemonStartTimeout);
    if (!daemon.running() || !up) {
      *error = JoinCommand(daemon_argv) + " did not listen on " + socket + ":\n" + daemon.Log();
      daemon.Stop();
      return false;
    }
    return true;
  }

  QemuVm::Outcome RunVm(const GuestImage& image, const std::string& test) {
    QemuVm::Options o;
    o.image = image;
    o.socket = socket;
    o.tag = kTag;
    o.test = test;
    return QemuVm::Run(o, *dir / (test + ".console.log"), kVmTimeout);
  }

  // fsd.stats over the control socket; null on failure.
  json Stats() const {
    auto client = rpc::RpcClient::Connect("unix:" + control_socket, 5s);
    if (!client.ok()) return nullptr;
    auto result = (*client)->Call("fsd.stats", json::object(), 10s);
    return result.ok() ? *result : json(nullptr);
  }
};

std::string Tail(const std::string& text, size_t lines = 30) {
  size_t at = text.size();
  for (size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n)
    at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

class VirtiofsVmTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    image_dir_ = new TempDir("virtiofs-vm-image");
    if (!BuildGuestImage(image_dir_->path(), &image_, &image_error_) && image_error_.empty())
      image_error_ = "make-initramfs.sh failed";
  }
  static void TearDownTestSuite() {
    delete image_dir_;
    image_dir_ = nullptr;
  }

  void SetUp() override { ASSERT_EQ(image_error_, "") << "guest image: " << image_error_; }

  // The whole scenario on `s`, whose daemon is not started yet.
  void RunTwoVms(ShareSetup& s) {
    std::string error;
    ASSERT_TRUE(s.StartDaemon(&error)) << error;
    pid_t daemon_pid = s.daemon.pid();

    auto vm1 = s.RunVm(image_, "files");
    std::cout << "[ " << s.name << " ] first VM: " << (vm1.passed ? "pass" : "FAIL") << " in "
              << vm1.elapsed.count() << " ms\n";
    ASSERT_TRUE(vm1.passed) << vm1.Describe() << "--- daemon log ---\n" << Tail(s.daemon.Log());
    {
      SCOPED_TRACE("host checks after the first VM");
      ExpectFirstVmTree(s.share_dir + "/vmtest");
    }
    if (HasFatalFailure()) return;

    if (s.serves_many_connections) {
      ASSERT_TRUE(s.daemon.running()) << "the daemon exited when the first VM powered off:\n"
                                      << Tail(s.daemon.Log());
      ASSERT_EQ(s.daemon.pid(), daemon_pid);
      ASSERT_TRUE(IsListeningUnixSocket(s.socket)) << s.socket << " no longer accepts VMs";
    } else {
      EXPECT_EQ(s.daemon.Wait(20s), 0) << "after the first VM:\n" << Tail(s.daemon.Log());
      ASSERT_TRUE(s.StartDaemon(&error)) << error;
    }

    // A file the second VM must see, written behind the daemon's back.
    std::filesystem::create_directories(s.share_dir + "/vmtest/host");
    WriteFile(s.share_dir + "/vmtest/host/from-host.txt", Seq(5000));

    auto vm2 = s.RunVm(image_, "second");
    std::cout << "[ " << s.name << " ] second VM: " << (vm2.passed ? "pass" : "FAIL") << " in "
              << vm2.elapsed.count() << " ms\n";
    ASSERT_TRUE(vm2.passed) << vm2.Describe() << "--- daemon log ---\n" << Tail(s.daemon.Log());
    EXPECT_TRUE(HasBytes(s.share_dir + "/vmtest/second/vm2.txt", Seq(20000)));
    {
      SCOPED_TRACE("host checks after the second VM");
      ExpectFirstVmTree(s.share_dir + "/vmtest", {"host", "second"});  // nothing of it changed
    }
    EXPECT_EQ(Entries(s.share_dir + "/vmtest/second"), std::set<std::string>{"vm2.txt"});
  }

  static GuestImage image_;
  static std::string image_error_;
  static TempDir* image_dir_;
};

GuestImage VirtiofsVmTest::image_;
std::string VirtiofsVmTest::image_error_;
TempDir* VirtiofsVmTest::image_dir_ = nullptr;

// A setup with its directory, share directory and socket paths.
std::unique_ptr<ShareSetup> NewSetup(const std::string& name) {
  auto s = std::make_unique<ShareSetup>();
  s->name = name;
  s->dir = std::make_unique<TempDir>("virtiofs-vm-" + name);
  s->socket = *s->dir / "vhost-user-fs.sock";
  s->control_socket = *s->dir / "fsd.sock";
  s->share_dir = *s->dir / "share";
  std::filesystem::create_directories(s->share_dir);
  return s;
}

std::vector<std::string> FsdArgv(const ShareSetup& s, const std::string& backend_url) {
  return {Bin("src/fs/fsd/dpustor-fsd"),
          "--transport",
          "vhost-user",
          "--socket",
          s.socket,
          "--tag",
          kTag,
          "--backend",
          backend_url,
          "--control-socket",
          s.control_socket};
}

// After both VMs: the requests went through dpustor-fsd's engine, and SIGTERM ends it
// cleanly.
void ExpectFsdServedAndStops(ShareSetup& s) {
  json stats = s.Stats();
  ASSERT_TRUE(stats.is_object()) << "fsd.stats failed:\n" << Tail(s.daemon.Log());
  const json ops = stats["shares"][0]["ops"];
  for (const char* op : {"LOOKUP", "CREATE", "WRITE", "READ", "RENAME", "LINK", "SYMLINK", "UNLINK",
                         "RMDIR", "MKDIR"}) {
    EXPECT_TRUE(ops.contains(op) && ops[op]["count"].get<int64_t>() > 0)
        << op << " never reached the engine: " << ops.dump();
  }
  EXPECT_EQ(s.daemon.Stop(15s), 0) << "dpustor-fsd on SIGTERM:\n" << Tail(s.daemon.Log());
}

TEST_F(VirtiofsVmTest, ReferenceVirtiofsdLocalDir) {
  ASSERT_TRUE(std::filesystem::exists(kVirtiofsd))
      << kVirtiofsd << " is missing (Debian 12: qemu-system-common)";
  auto s = NewSetup("virtiofsd");
  s->daemon_argv = {
      kVirtiofsd, "-f",        "--socket-path=" + s->socket, "-o", "source=" + s->share_dir,
      "-o",       "cache=auto"};
  s->serves_many_connections = false;
  RunTwoVms(*s);
  if (HasFatalFailure()) return;
  EXPECT_EQ(s->daemon.Wait(20s), 0) << "after the second VM:\n" << Tail(s->daemon.Log());
}

TEST_F(VirtiofsVmTest, FsdLocalBackend) {
  auto s = NewSetup("fsd-local");
  s->daemon_argv = FsdArgv(*s, "local:" + s->share_dir);
  RunTwoVms(*s);
  if (HasFatalFailure()) return;
  ExpectFsdServedAndStops(*s);
}

TEST_F(VirtiofsVmTest, FsdNfsBackend) {
  ASSERT_EQ(namespace_error, "") << "private namespaces for Ganesha's rpcbind";
  auto s = NewSetup("fsd-nfs");
  ASSERT_EQ(::chmod(s->share_dir.c_str(), 0777), 0);
  s->nfs = std::make_unique<NfsLab>(*s->dir / "nfs-lab");
  NfsLab::Options o;
  o.export_dir = s->share_dir;
  std::string error;
  ASSERT_TRUE(s->nfs->Start(o, 30s, &error)) << error;
  s->daemon_argv = FsdArgv(*s, s->nfs->Url(3));
  RunTwoVms(*s);
  if (HasFatalFailure()) return;
  ExpectFsdServedAndStops(*s);
}

}  // namespace
}  // namespace dpustor::testing
