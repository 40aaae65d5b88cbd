#include "common/unix_listener.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace dpustor {
namespace {

namespace stdfs = std::filesystem;

class UnixListenerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dpustor-listen-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { stdfs::remove_all(dir_); }

  // Connects once; true when accepted into the backlog.
  static bool Connects(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }

  std::size_t Entries() const {
    return static_cast<std::size_t>(std::distance(stdfs::directory_iterator(dir_), {}));
  }

  stdfs::path dir_;
};

TEST_F(UnixListenerTest, ListensAtThePathAndLeavesNoTemporaryName) {
  std::string path = dir_ / "s.sock";
  auto fd = ListenUnix(path, 4);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  EXPECT_TRUE(Connects(path));
  EXPECT_TRUE(UnixSocketAlive(path));
  EXPECT_EQ(Entries(), 1u);
  // getsockname() still names where it was bound; the path is what clients use.
  EXPECT_TRUE(stdfs::is_socket(path));
}

TEST_F(UnixListenerTest, PathNeverSeenBeforeItListens) {
  // A client that connects the instant the path exists is never refused.
  // (With bind and listen on the path itself, a refusal came within a few hundred tries.)
  for (int i = 0; i < 2000; ++i) {
    std::string path = dir_ / ("race-" + std::to_string(i));
    std::atomic<bool> refused{false};
    std::thread client([&] {
      while (::access(path.c_str(), F_OK) != 0) std::this_thread::yield();
      if (!Connects(path)) refused = true;
    });
    auto fd = ListenUnix(path, 4);
    client.join();
    ASSERT_TRUE(fd.ok()) << fd.error().message;
    ASSERT_FALSE(refused) << "connection refused on try " << i;
  }
}

TEST_F(UnixListenerTest, ReplacesAStaleSocketNotALiveOneNorAFile) {
  std::string path = dir_ / "s.sock";
  { auto stale = ListenUnix(path, 4); }  // closed: the file stays behind, nobody listens
  ASSERT_TRUE(stdfs::is_socket(path));
  EXPECT_FALSE(UnixSocketAlive(path));
  auto live = ListenUnix(path, 4);
  ASSERT_TRUE(live.ok()) << live.error().message;

  auto second = ListenUnix(path, 4);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().message, "another process is serving it");
  EXPECT_TRUE(Connects(path));  // the live one keeps its path
  EXPECT_EQ(Entries(), 1u);

  std::string file = dir_ / "plain";
  std::ofstream(file) << "data";
  auto on_file = ListenUnix(file, 4);
  ASSERT_FALSE(on_file.ok());
  EXPECT_EQ(on_file.error().message, "exists and is not a socket");
  std::ifstream in(file);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "data");
}

TEST_F(UnixListenerTest, LongPaths) {
  // Fits sun_path but leaves no room for the temporary suffix: bound directly.
  std::string near = dir_ / std::string(99 - dir_.string().size(), 'n');
  ASSERT_EQ(near.size(), 100u);
  auto fd = ListenUnix(near, 4);
  ASSERT_TRUE(fd.ok()) << fd.error().message;
  EXPECT_TRUE(Connects(near));

  std::string too_long = dir_ / std::string(120, 'x');
  auto refused = ListenUnix(too_long, 4);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "path empty or longer than 107");
  EXPECT_FALSE(ListenUnix("", 4).ok());
}

TEST_F(UnixListenerTest, MissingDirectoryIsAClearError) {
  auto fd = ListenUnix((dir_ / "no" / "s.sock").string(), 4);
  ASSERT_FALSE(fd.ok());
  EXPECT_EQ(fd.error().message, "bind: No such file or directory");
}

}  // namespace
}  // namespace dpustor
