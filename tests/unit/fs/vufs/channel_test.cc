// Channel against a plain Unix socket server in the test: what goes over the wire.
#include "fs/vufs/channel.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/json_rpc.h"

namespace dpustor::fs::vufs {
namespace {

namespace vu = dpustor::fs::vhost_user;

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vufs-channel-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/sock";
    listen_fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    ASSERT_EQ(bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(listen_fd_.get(), 1), 0);
    auto c = Channel::Connect(path_);
    ASSERT_TRUE(c.ok()) << c.error().message;
    client_ = std::move(*c);
    server_ = UniqueFd(accept(listen_fd_.get(), nullptr, nullptr));
    ASSERT_TRUE(server_.valid());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Sends raw bytes (and one fd, if given) from the server side.
  void ServerSend(const void* data, size_t len, int fd = -1) {
    iovec iov{const_cast<void*>(data), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (fd >= 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ASSERT_EQ(sendmsg(server_.get(), &msg, 0), static_cast<ssize_t>(len));
  }

  std::string dir_, path_;
  UniqueFd listen_fd_, server_;
  Channel client_;
};

TEST_F(ChannelTest, SendCarriesHeaderPayloadAndFd) {
  UniqueFd ev(eventfd(0, EFD_CLOEXEC));
  const uint64_t payload = 3;
  const int fds[] = {ev.get()};
  ASSERT_TRUE(client_
                  .Send(vu::Request::kSetVringKick, vu::kFlagNeedReply,
                        {reinterpret_cast<const uint8_t*>(&payload), sizeof payload}, fds)
                  .ok());
  vu::MessageHeader h{};
  uint64_t got = 0;
  iovec iov[2] = {{&h, sizeof h}, {&got, sizeof got}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ASSERT_EQ(recvmsg(server_.get(), &msg, MSG_WAITALL), 20);
  EXPECT_EQ(h.request, static_cast<uint32_t>(vu::Request::kSetVringKick));
  EXPECT_EQ(h.flags, vu::kVersion | vu::kFlagNeedReply);
  EXPECT_EQ(h.size, 8u);
  EXPECT_EQ(got, 3u);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(c, nullptr);
  int received;
  std::memcpy(&received, CMSG_DATA(c), sizeof received);
  // The received fd is the same eventfd.
  const uint64_t one = 1;
  ASSERT_EQ(write(received, &one, sizeof one), 8);
  uint64_t count = 0;
  ASSERT_EQ(read(ev.get(), &count, sizeof count), 8);
  EXPECT_EQ(count, 1u);
  close(received);
}

TEST_F(ChannelTest, ReceivesSplitMessagesAndFds) {
  UniqueFd ev(eventfd(0, EFD_CLOEXEC));
  struct {
    vu::MessageHeader h;
    uint64_t v;
  } __attribute__((packed))
  m{{static_cast<uint32_t>(vu::Request::kGetFeatures), vu::kVersion | vu::kFlagReply, 8}, 0x1234};
  // Header split across two writes, the fd with the first byte.
  ServerSend(&m, 5, ev.get());
  ServerSend(reinterpret_cast<char*>(&m) + 5, sizeof m - 5);
  auto r = client_.Receive(std::chrono::seconds(2));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->header.request, static_cast<uint32_t>(vu::Request::kGetFeatures));
  ASSERT_EQ(r->payload.size(), 8u);
  uint64_t v;
  std::memcpy(&v, r->payload.data(), 8);
  EXPECT_EQ(v, 0x1234u);
  ASSERT_EQ(r->fds.size(), 1u);
  EXPECT_TRUE(r->fds[0].valid());
}

TEST_F(ChannelTest, RefusesOversizedReplyTimesOutAndSeesClose) {
  auto none = client_.Receive(std::chrono::milliseconds(50));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, rpc::kTimeout);

  vu::MessageHeader big{1, vu::kVersion | vu::kFlagReply, 1 << 20};
  ServerSend(&big, sizeof big);
  auto r = client_.Receive(std::chrono::seconds(2));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("larger"), std::string::npos) << r.error().message;

  server_.Reset();
  auto closed = client_.Receive(std::chrono::seconds(2));
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().code, rpc::kConnectionClosed);
}

TEST(Channel, ConnectErrors) {
  EXPECT_FALSE(Channel::Connect("").ok());
  EXPECT_FALSE(Channel::Connect(std::string(200, 'x')).ok());
  auto missing = Channel::Connect("/nonexistent-dir/vufs.sock");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("connect"), std::string::npos);
  Channel unconnected;
  EXPECT_FALSE(unconnected.Send(vu::Request::kSetOwner, 0, {}).ok());
}

}  // namespace
}  // namespace dpustor::fs::vufs
