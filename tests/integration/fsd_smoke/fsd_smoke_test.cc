// dpustor-fsd end to end: real FUSE mounts (as root, through /dev/fuse) of the memory and
// local backends, exercised with plain syscalls; the control socket; SIGTERM; bad input.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/rpc_client.h"
#include "harness/child_process.h"
#include "harness/fsd_process.h"
#include "harness/lab.h"

namespace dpustor::testing {
namespace {

using nlohmann::json;
constexpr auto kStartTimeout = std::chrono::seconds(20);

// Deterministic bytes that differ per file and per offset, so misplaced blocks show.
std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

bool WriteAll(const std::string& path, const std::string& data, size_t chunk = 1 << 20) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  for (size_t off = 0; off < data.size(); off += chunk) {
    size_t n = std::min(chunk, data.size() - off);
    if (::pwrite(fd, data.data() + off, n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) {
      ::close(fd);
      return false;
    }
  }
  return ::close(fd) == 0;
}

// Reads a whole file; the page cache is dropped first so the reads reach the daemon.
std::string ReadAll(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return "<open failed: " + std::string(std::strerror(errno)) + ">";
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  std::string out;
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.insert(name);
  }
  ::closedir(d);
  return names;
}

class FsdSmokeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount FUSE directly";
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "no /dev/fuse";
  }

  // Starts dpustor-fsd on DIR/mnt for `backend`; fails the test with the log otherwise.
  bool StartFsd(FsdProcess& fsd, const std::string& backend,
                std::vector<std::string> extra = {"--threads", "4"}) {
    FsdProcess::Options o;
    o.backend_url = backend;
    o.mount_dir = dir_ / "mnt";
    o.extra_args = std::move(extra);
    std::string error;
    bool ok = fsd.Start(o, dir_ / "fsd.log", kStartTimeout, &error);
    EXPECT_TRUE(ok) << error;
    return ok;
  }

  TempDir dir_{"fsd_smoke"};
};

TEST_F(FsdSmokeTest, MemoryFileOperationsStatsAndCleanStop) {
  FsdProcess fsd;
  ASSERT_TRUE(StartFsd(fsd, "memory:"));
  const std::string m = fsd.mount_dir();

  // Create, write, read, stat.
  ASSERT_TRUE(WriteAll(m + "/hello.txt", "hello, dpu\n"));
  struct stat st;
  ASSERT_EQ(::stat((m + "/hello.txt").c_str(), &st), 0) << std::strerror(errno);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(ReadAll(m + "/hello.txt"), "hello, dpu\n");

  // Directories, readdir, rename, unlink.
  ASSERT_EQ(::mkdir((m + "/dir").c_str(), 0755), 0) << std::strerror(errno);
  ASSERT_EQ(::stat((m + "/dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_TRUE(WriteAll(m + "/dir/a", "A"));
  ASSERT_TRUE(WriteAll(m + "/dir/b", "BB"));
  EXPECT_EQ(List(m + "/dir"), (std::set<std::string>{"a", "b"}));
  ASSERT_EQ(::rename((m + "/dir/a").c_str(), (m + "/dir/c").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(List(m + "/dir"), (std::set<std::string>{"b", "c"}));
  EXPECT_EQ(ReadAll(m + "/dir/c"), "A");
  ASSERT_EQ(::unlink((m + "/dir/b").c_str()), 0);
  ASSERT_EQ(::unlink((m + "/dir/c").c_str()), 0);
  EXPECT_NE(::stat((m + "/dir/c").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::rmdir((m + "/dir").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(List(m), (std::set<std::string>{"hello.txt"}));

  // 10 MiB with a pattern, written in 1 MiB requests and read back through the daemon.
  const std::string big = Pattern(10 << 20, 7);
  ASSERT_TRUE(WriteAll(m + "/big", big));
  ASSERT_EQ(::stat((m + "/big").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 10 << 20);
  EXPECT_TRUE(ReadAll(m + "/big") == big) << "10 MiB read back differs";

  // The control socket sees the share and what it served.
  json shares = fsd.Control("fsd.shares");
  ASSERT_TRUE(shares.is_array()) << shares.dump() << "\n" << fsd.Log();
  ASSERT_EQ(shares.size(), 1u);
  EXPECT_EQ(shares[0]["state"], "serving");
  EXPECT_EQ(shares[0]["initialized"], true);
  EXPECT_EQ(shares[0]["backend"], "memory:");
  EXPECT_EQ(shares[0]["mount"], std::filesystem::path(m).lexically_normal().string());
  EXPECT_EQ(shares[0]["name"], "mnt");
  EXPECT_EQ(shares[0]["threads"], 4);

  json stats = fsd.Control("fsd.stats", {{"name", "mnt"}});
  ASSERT_TRUE(stats.is_object()) << fsd.Log();
  const json& ops = stats["shares"][0]["ops"];
  for (const char* op : {"LOOKUP", "WRITE", "READ", "CREATE", "MKDIR", "RENAME", "UNLINK"}) {
    ASSERT_TRUE(ops.contains(op)) << op << " missing in " << ops.dump();
    EXPECT_GT(ops[op]["count"].get<uint64_t>(), 0u) << op;
    EXPECT_TRUE(ops[op].contains("buckets_us")) << op;
    EXPECT_TRUE(ops[op].contains("p99_us")) << op;
  }
  EXPECT_GE(ops["WRITE"]["count"].get<uint64_t>(), 10u);  // 10 MiB in <= 1 MiB writes
  EXPECT_GT(stats["totals"]["count"].get<uint64_t>(), 0u);
  json bad = fsd.Control("fsd.stats", {{"name", "nope"}});
  EXPECT_TRUE(bad.is_null());
  json version = fsd.Control("fsd.version");
  EXPECT_EQ(version["program"], "dpustor-fsd");

  EXPECT_EQ(fsd.Stop(), 0) << fsd.Log();
  EXPECT_FALSE(IsFuseMount(m));
}

TEST_F(FsdSmokeTest, LocalBackendStoresBytesInTheDirectory) {
  TempDir backing("fsd_smoke_backing");
  WriteFile(backing / "preexisting", "was here before");
  FsdProcess fsd;
  ASSERT_TRUE(StartFsd(fsd, "local:" + backing.path()));
  const std::string m = fsd.mount_dir();

  EXPECT_EQ(ReadAll(m + "/preexisting"), "was here before");
  const std::string data = Pattern((3 << 20) + 4097, 11);
  ASSERT_TRUE(WriteAll(m + "/written", data, 200000));
  ASSERT_EQ(::mkdir((m + "/sub").c_str(), 0700), 0) << std::strerror(errno);
  ASSERT_TRUE(WriteAll(m + "/sub/small", "xyz"));
  EXPECT_TRUE(ReadFile(backing / "written") == data) << "backing file differs";
  EXPECT_EQ(ReadFile(backing / "sub/small"), "xyz");
  struct stat st;
  ASSERT_EQ(::stat((backing / "sub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);

  EXPECT_EQ(fsd.Stop(), 0) << fsd.Log();
  EXPECT_FALSE(IsFuseMount(m));
  EXPECT_TRUE(ReadFile(backing / "written") == data);
}

TEST_F(FsdSmokeTest, ConcurrentThreadsManyFiles) {
  FsdProcess fsd;
  ASSERT_TRUE(StartFsd(fsd, "memory:", {"--threads", "4"}));
  const std::string m = fsd.mount_dir();
  constexpr int kThreads = 8, kFiles = 25;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int f = 0; f < kFiles; ++f) {
        std::string path = m + "/t" + std::to_string(t) + "_" + std::to_string(f);
        std::string data = Pattern(65536 + t * 1000 + f, t * 100 + f);
        if (!WriteAll(path, data, 16384) || ReadAll(path) != data) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(List(m).size(), static_cast<size_t>(kThreads * kFiles));
  for (const std::string& name : List(m)) EXPECT_EQ(::unlink((m + "/" + name).c_str()), 0);
  EXPECT_TRUE(List(m).empty());
  EXPECT_EQ(fsd.Stop(), 0) << fsd.Log();
}

TEST_F(FsdSmokeTest, ConfigFileServesTwoShares) {
  TempDir backing("fsd_smoke_backing");
  const std::string mem = dir_ / "mem", loc = dir_ / "loc", sock = dir_ / "fsd.sock";
  std::filesystem::create_directories(mem);
  std::filesystem::create_directories(loc);
  json config = {{"control_socket", sock},
                 {"shares",
                  {{{"name", "scratch"}, {"mount", mem}, {"backend", "memory:"}, {"threads", 2}},
                   {{"name", "data"},
                    {"transport", "fuse"},
                    {"mount", loc},
                    {"backend", "local:" + backing.path()},
                    {"read_only", false}}}}};
  WriteFile(dir_ / "fsd.json", config.dump(2));
  ChildProcess fsd({Bin("src/fs/fsd/dpustor-fsd"), "--config", dir_ / "fsd.json"},
                   dir_ / "fsd.log");
  ASSERT_TRUE(WaitFor([&] { return (IsFuseMount(mem) && IsFuseMount(loc)) || !fsd.running(); },
                      kStartTimeout))
      << fsd.Log();
  ASSERT_TRUE(fsd.running()) << fsd.Log();

  ASSERT_TRUE(WriteAll(mem + "/m", "in memory"));
  ASSERT_TRUE(WriteAll(loc + "/l", "on disk"));
  EXPECT_EQ(ReadAll(mem + "/m"), "in memory");
  EXPECT_EQ(ReadFile(backing / "l"), "on disk");
  EXPECT_FALSE(std::filesystem::exists(backing / "m"));

  auto client = rpc::RpcClient::Connect("unix:" + sock, std::chrono::seconds(5));
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto shares = (*client)->Call("fsd.shares", nullptr, std::chrono::seconds(5));
  ASSERT_TRUE(shares.ok()) << shares.error().message;
  ASSERT_EQ(shares->size(), 2u);
  EXPECT_EQ((*shares)[0]["name"], "scratch");
  EXPECT_EQ((*shares)[0]["threads"], 2);
  EXPECT_EQ((*shares)[1]["name"], "data");
  EXPECT_EQ((*shares)[1]["state"], "serving");
  client->reset();

  EXPECT_EQ(fsd.Stop(std::chrono::seconds(15)), 0) << fsd.Log();
  EXPECT_FALSE(IsFuseMount(mem));
  EXPECT_FALSE(IsFuseMount(loc));
  EXPECT_FALSE(std::filesystem::exists(sock));
}

// Bad input exits non-zero with a message and mounts nothing.
TEST_F(FsdSmokeTest, BadInputExitsWithMessageAndNoMount) {
  const std::string mnt = dir_ / "mnt";
  std::filesystem::create_directories(mnt);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"--mount", mnt, "--backend", "ftp://host/x"}, "unknown backend 'ftp'"},
      {{"--mount", mnt, "--backend", "local:relative/dir"}, "absolute"},
      {{"--mount", mnt, "--backend", "local:" + (dir_ / "does-not-exist")}, "does-not-exist"},
      {{"--mount", mnt, "--backend", "memory:", "--transport", "vhost-user"},
       "--socket is required"},
      {{"--socket", dir_ / "s.sock", "--backend", "memory:", "--transport", "vhost-user"},
       "tag: 1-36 bytes"},
      {{"--mount", dir_ / "no-such-mount", "--backend", "memory:"}, "no-such-mount"},
      {{"--mount", mnt, "--backend", "memory:", "--threads", "0"}, "threads"},
      {{"--config", dir_ / "missing.json"}, "cannot be read"},
  };
  int i = 0;
  for (const Case& c : cases) {
    std::vector<std::string> argv = {Bin("src/fs/fsd/dpustor-fsd")};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    std::string log = dir_ / ("bad" + std::to_string(i++) + ".log");
    ChildProcess fsd(argv, log);
    int status = fsd.Wait(std::chrono::seconds(20));
    std::string text = fsd.Log();
    EXPECT_GT(status, 0) << c.args[3] << ": " << text;
    EXPECT_NE(text.find(c.message), std::string::npos) << "expected '" << c.message << "' in:\n"
                                                       << text;
    EXPECT_FALSE(IsFuseMount(mnt)) << text;
  }
}

}  // namespace
}  // namespace dpustor::testing
