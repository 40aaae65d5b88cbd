// Session (the vhost-user back-end state machine) driven message by message the way QEMU
// drives it, plus the hostile cases: every refusal leaves the state as it was. And the
// socket device: reconnects, one front-end at a time, stale sockets.
#include "fs/transport/vhost_user/session.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "fs/transport/vhost_user/message_io.h"
#include "fs/transport/vhost_user/vhost_user_device.h"
#include "test_driver.h"

namespace dpustor::fs::vhost_user {
namespace {

using namespace testing;  // NOLINT
using namespace std::chrono_literals;

// Answers each request with two bytes in its first writable buffer, at once or, when
// holding, once Release() is called.
class TestHandler : public VirtioFsHandler {
 public:
  void Handle(uint32_t queue, std::span<const iovec> in, std::span<const iovec> out,
              Completion* done) override {
    std::unique_lock lock(mu_);
    ++handled_;
    last_queue_ = queue;
    in_bytes_ = in.empty() ? 0 : in[0].iov_len;
    if (!out.empty() && out[0].iov_len >= 2) std::memcpy(out[0].iov_base, "ok", 2);
    size_t reply = out.empty() ? 0 : 2;
    cv_.notify_all();
    if (hold_) {
      held_.emplace_back(done, reply);
      return;
    }
    lock.unlock();
    done->Complete(reply);
  }
  void SessionEnded() override {
    std::lock_guard lock(mu_);
    ++ended_;
    cv_.notify_all();
  }
  void Hold(bool h) {
    std::lock_guard lock(mu_);
    hold_ = h;
  }
  void Release() {
    std::vector<std::pair<Completion*, size_t>> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& [done, bytes] : held) done->Complete(bytes);
  }
  bool WaitHandled(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return handled_ >= n; });
  }
  bool WaitEnded(int n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return ended_ >= n; });
  }
  int handled() {
    std::lock_guard lock(mu_);
    return handled_;
  }
  uint32_t last_queue() {
    std::lock_guard lock(mu_);
    return last_queue_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int handled_ = 0, ended_ = 0;
  uint32_t last_queue_ = 99;
  size_t in_bytes_ = 0;
  bool hold_ = false;
  std::vector<std::pair<Completion*, size_t>> held_;
};

template <class T>
std::vector<uint8_t> Bytes(const T& v) {
  std::vector<uint8_t> b(sizeof v);
  std::memcpy(b.data(), &v, sizeof v);
  return b;
}

Message Msg(Request r, std::vector<uint8_t> payload = {}, uint32_t flags = 0) {
  Message m;
  m.header = {static_cast<uint32_t>(r), kVersion | flags, static_cast<uint32_t>(payload.size())};
  m.payload = std::move(payload);
  return m;
}

uint64_t U64(const Message& m) {
  uint64_t v = 0;
  EXPECT_EQ(m.payload.size(), 8u);
  std::memcpy(&v, m.payload.data(), std::min<size_t>(8, m.payload.size()));
  return v;
}

UniqueFd EventFd() {
  return UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

// True when the eventfd was signalled (and clears it).
bool Signalled(int fd, std::chrono::milliseconds wait = 2s) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(wait.count())) != 1) return false;
  uint64_t n;
  return read(fd, &n, sizeof n) == sizeof n;
}

constexpr uint32_t kQueueSize = 8;
constexpr uint64_t kReqGpa = 256 * 1024;  // request buffers, away from the rings

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memfd_ = UniqueFd(MakeMemfd("guest", kRegionSize));
    MemoryRegionDesc region{kGpaA, kRegionSize, kUserA, 0};
    int fd = memfd_.get();
    auto mem = GuestMemory::Map({&region, 1}, {&fd, 1});
    ASSERT_TRUE(mem.ok());
    driver_mem_ = std::move(*mem);
    driver_ = std::make_unique<TestDriver>(*driver_mem_, kQueueSize);
    SessionOptions o;
    o.request_queues = 2;
    o.max_queue_size = 256;
    session_ = std::make_unique<Session>(handler_, o);
  }

  Session::Outcome Send(Message m) { return session_->Handle(std::move(m)); }
  void ExpectOk(Message m) {
    auto name = m.header.request;
    auto out = Send(std::move(m));
    EXPECT_TRUE(out.status.ok()) << name << ": " << out.status.error().message;
  }
  void ExpectRefused(Message m, const std::string& why) {
    auto name = m.header.request;
    auto out = Send(std::move(m));
    ASSERT_FALSE(out.status.ok()) << "request " << name << " accepted";
    EXPECT_NE(out.status.error().message.find(why), std::string::npos)
        << out.status.error().message;
  }
  Message MemTable() {
    MemoryTable t{};
    t.nregions = 1;
    t.regions[0] = {kGpaA, kRegionSize, kUserA, 0};
    std::vector<uint8_t> p(8 + sizeof(MemoryRegion));
    std::memcpy(p.data(), &t, p.size());
    Message m = Msg(Request::kSetMemTable, p);
    m.fds.emplace_back(dup(memfd_.get()));
    return m;
  }
  Message FdMsg(Request r, uint32_t index, const UniqueFd& fd) {
    Message m = Msg(r, Bytes(uint64_t{index}));
    m.fds.emplace_back(dup(fd.get()));
    return m;
  }
  Message Addr(uint32_t index) {
    VirtqueueConfig c = driver_->Config();
    VringAddr a{index, 0, c.desc_uaddr, c.used_uaddr, c.avail_uaddr, 0};
    return Msg(Request::kSetVringAddr, Bytes(a));
  }
  // QEMU's order: features, memory table, then per ring num, base, addr, kick, call.
  void BringUp(uint32_t index,
               uint64_t features = Bit(kFeatureVersion1) | Bit(kFeatureProtocolFeatures)) {
    ExpectOk(Msg(Request::kSetOwner));
    ExpectOk(Msg(Request::kSetProtocolFeatures, Bytes(Bit(kProtocolMq) | Bit(kProtocolReplyAck))));
    ExpectOk(Msg(Request::kSetFeatures, Bytes(features)));
    ExpectOk(MemTable());
    ExpectOk(Msg(Request::kSetVringNum, Bytes(VringState{index, kQueueSize})));
    ExpectOk(Msg(Request::kSetVringBase, Bytes(VringState{index, 0})));
    ExpectOk(Addr(index));
    ExpectOk(FdMsg(Request::kSetVringKick, index, kick_));
    ExpectOk(FdMsg(Request::kSetVringCall, index, call_));
  }
  // One readable + one writable descriptor per chain, heads 0, 2, 4...
  void Offer(uint16_t n) {
    for (uint16_t i = 0; i < n; ++i) {
      uint16_t head = static_cast<uint16_t>((offered_ * 2) % kQueueSize);
      driver_->SetDesc(head, kReqGpa + head * 4096ull, 64, kDescFNext, head + 1);
      driver_->SetDesc(head + 1, kReqGpa + head * 4096ull + 2048, 256, kDescFWrite);
      driver_->MakeAvail(head);
      ++offered_;
    }
    uint64_t one = 1;
    ASSERT_EQ(write(kick_.get(), &one, sizeof one), 8);
  }
  nlohmann::json Queue(uint32_t i) { return session_->status()["queues"][i]; }

  UniqueFd memfd_;
  std::unique_ptr<GuestMemory> driver_mem_;
  std::unique_ptr<TestDriver> driver_;
  TestHandler handler_;
  std::unique_ptr<Session> session_;
  UniqueFd kick_ = EventFd(), call_ = EventFd();
  uint16_t offered_ = 0;
};

TEST_F(SessionTest, Negotiation) {
  auto features = Send(Msg(Request::kGetFeatures));
  ASSERT_TRUE(features.reply);
  uint64_t offered = U64(*features.reply);
  EXPECT_EQ(features.reply->header.flags, kVersion | kFlagReply);
  for (int bit :
       {kFeatureVersion1, kFeatureIndirectDesc, kFeatureEventIdx, kFeatureProtocolFeatures})
    EXPECT_TRUE(offered & Bit(bit)) << bit;
  EXPECT_FALSE(offered & Bit(kFeatureLogAll));  // no migration logging

  auto protocol = Send(Msg(Request::kGetProtocolFeatures));
  ASSERT_TRUE(protocol.reply);
  EXPECT_TRUE(U64(*protocol.reply) & Bit(kProtocolMq));
  EXPECT_TRUE(U64(*protocol.reply) & Bit(kProtocolReplyAck));

  auto queues = Send(Msg(Request::kGetQueueNum));
  ASSERT_TRUE(queues.reply);
  EXPECT_EQ(U64(*queues.reply), 3u);  // hiprio + 2 request queues

  ExpectRefused(Msg(Request::kSetFeatures, Bytes(Bit(kFeatureLogAll))), "not offered");
  ExpectRefused(Msg(Request::kSetProtocolFeatures, Bytes(Bit(kProtocolLogShmfd))), "not offered");
}

TEST_F(SessionTest, RingServesChainsOnceEnabled) {
  BringUp(1);
  EXPECT_EQ(Queue(1)["started"], true);
  EXPECT_EQ(Queue(1)["enabled"], false);
  Offer(1);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(handler_.handled(), 0) << "a disabled ring was served";

  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  ASSERT_TRUE(handler_.WaitHandled(1));
  EXPECT_EQ(handler_.last_queue(), 1u);
  ASSERT_TRUE(Signalled(call_.get()));
  EXPECT_EQ(driver_->UsedIdx(), 1);
  EXPECT_EQ(driver_->UsedElem(0), std::make_pair(0u, 2u));
  EXPECT_EQ(std::memcmp(driver_->Host(kReqGpa + 2048, 2), "ok", 2), 0);

  Offer(3);
  ASSERT_TRUE(handler_.WaitHandled(4));
  for (int i = 0; i < 500 && driver_->UsedIdx() != 4; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(driver_->UsedIdx(), 4);
  EXPECT_EQ(Queue(1)["requests"], 4);

  auto base = Send(Msg(Request::kGetVringBase, Bytes(VringState{1, 0})));
  ASSERT_TRUE(base.status.ok());
  ASSERT_TRUE(base.reply);
  VringState st;
  std::memcpy(&st, base.reply->payload.data(), sizeof st);
  EXPECT_EQ(st.index, 1u);
  EXPECT_EQ(st.num, 4u);
  EXPECT_EQ(Queue(1)["started"], false);

  // A stopped ring ignores kicks until it is started again, from its base.
  Offer(1);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(handler_.handled(), 4);
  ExpectOk(Msg(Request::kSetVringBase, Bytes(VringState{1, 4})));
  ExpectOk(FdMsg(Request::kSetVringKick, 1, kick_));
  ASSERT_TRUE(handler_.WaitHandled(5));
}

TEST_F(SessionTest, WithoutProtocolFeaturesRingsStartEnabled) {
  BringUp(0, Bit(kFeatureVersion1));
  Offer(1);
  ASSERT_TRUE(handler_.WaitHandled(1));
  EXPECT_EQ(handler_.last_queue(), 0u);
}

TEST_F(SessionTest, EventIdxSuppressesInterruptsTheDriverDidNotAskFor) {
  BringUp(1, Bit(kFeatureVersion1) | Bit(kFeatureProtocolFeatures) | Bit(kFeatureEventIdx));
  driver_->SetUsedEvent(1);  // interrupt only once used idx passes 1
  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  Offer(1);
  ASSERT_TRUE(handler_.WaitHandled(1));
  EXPECT_TRUE(Signalled(call_.get()));  // the first is always signalled
  driver_->SetUsedEvent(5);
  Offer(1);
  ASSERT_TRUE(handler_.WaitHandled(2));
  EXPECT_FALSE(Signalled(call_.get(), 200ms));
  EXPECT_EQ(driver_->AvailEvent(), 2);  // asks for a kick at the next buffer
}

TEST_F(SessionTest, ReplyAckReportsEachOutcome) {
  ExpectOk(Msg(Request::kSetProtocolFeatures, Bytes(Bit(kProtocolReplyAck))));
  auto good = Send(Msg(Request::kSetVringNum, Bytes(VringState{1, 64}), kFlagNeedReply));
  ASSERT_TRUE(good.reply);
  EXPECT_EQ(U64(*good.reply), 0u);
  auto bad = Send(Msg(Request::kSetVringNum, Bytes(VringState{1, 100}), kFlagNeedReply));
  EXPECT_FALSE(bad.status.ok());
  ASSERT_TRUE(bad.reply);
  EXPECT_NE(U64(*bad.reply), 0u);
  EXPECT_FALSE(bad.close);
  // Without NEED_REPLY nothing is sent back.
  EXPECT_FALSE(Send(Msg(Request::kSetVringNum, Bytes(VringState{1, 64}))).reply);
  EXPECT_EQ(Queue(1)["size"], 64);  // the refused 100 did not stick
}

TEST_F(SessionTest, HostileMessagesChangeNothing) {
  ExpectOk(MemTable());
  ExpectOk(Msg(Request::kSetVringNum, Bytes(VringState{1, 8})));

  ExpectRefused(Msg(Request::kSetVringNum, Bytes(VringState{3, 8})), "does not exist");
  ExpectRefused(Msg(Request::kSetVringNum, Bytes(VringState{0xffffffff, 8})), "does not exist");
  ExpectRefused(Msg(Request::kSetVringNum, Bytes(VringState{1, 0})), "power of two");
  ExpectRefused(Msg(Request::kSetVringNum, Bytes(VringState{1, 512})), "power of two up to 256");
  ExpectRefused(Msg(Request::kSetVringNum, std::vector<uint8_t>(16)),
                "16-byte payload (expected 8)");
  ExpectRefused(Msg(Request::kSetVringNum, {1, 2, 3}), "3-byte payload");
  ExpectRefused(Msg(Request::kSetVringBase, Bytes(VringState{1, 70000})), "above 65535");
  ExpectRefused(Msg(Request::kSetVringEnable, Bytes(VringState{1, 2})), "SET_VRING_ENABLE");
  VringAddr logged{1, 1, 0, 0, 0, 0};
  ExpectRefused(Msg(Request::kSetVringAddr, Bytes(logged)), "dirty logging");
  ExpectRefused(Msg(Request::kSetLogBase, Bytes(uint64_t{0})), "unsupported request 6");
  ExpectRefused(Msg(static_cast<Request>(9999)), "unsupported request 9999");
  ExpectRefused(Msg(Request::kSetFeatures, {}), "0-byte payload");

  Message with_fd = Msg(Request::kSetVringNum, Bytes(VringState{1, 8}));
  with_fd.fds.emplace_back(dup(kick_.get()));
  ExpectRefused(std::move(with_fd), "carries file descriptors");

  Message kick_no_fd = Msg(Request::kSetVringKick, Bytes(uint64_t{1}));
  ExpectRefused(std::move(kick_no_fd), "descriptor count");
  Message polling = Msg(Request::kSetVringKick, Bytes(uint64_t{1} | kVringNoFd));
  ExpectRefused(std::move(polling), "polling mode");
  ExpectRefused(Msg(Request::kSetVringCall, Bytes(uint64_t{1} | (1ull << 9))), "unknown flag");
  // Only eventfds: a pipe whose reader is gone would raise SIGPIPE, /dev/null would spin.
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);
  ExpectRefused(FdMsg(Request::kSetVringCall, 1, write_end), "not an eventfd");
  ExpectRefused(FdMsg(Request::kSetVringKick, 1, read_end), "not an eventfd");
  UniqueFd devnull(open("/dev/null", O_RDWR | O_CLOEXEC));
  ExpectRefused(FdMsg(Request::kSetVringErr, 1, devnull), "not an eventfd");

  // Memory tables: counts, sizes, fds, overlaps.
  MemoryTable t{};
  t.nregions = 2;
  t.regions[0] = {0, kRegionSize, kUserA, 0};
  t.regions[1] = {kRegionSize / 2, kRegionSize, kUserB, 0};  // overlaps region 0
  std::vector<uint8_t> two(8 + 2 * sizeof(MemoryRegion));
  std::memcpy(two.data(), &t, two.size());
  Message overlap = Msg(Request::kSetMemTable, two);
  overlap.fds.emplace_back(dup(memfd_.get()));
  overlap.fds.emplace_back(dup(memfd_.get()));
  ExpectRefused(std::move(overlap), "overlaps");
  Message one_fd = Msg(Request::kSetMemTable, two);
  one_fd.fds.emplace_back(dup(memfd_.get()));
  ExpectRefused(std::move(one_fd), "1 descriptors for 2 regions");
  t.nregions = 9;
  std::vector<uint8_t> nine(8);
  std::memcpy(nine.data(), &t, 8);
  ExpectRefused(Msg(Request::kSetMemTable, nine), "9 regions");
  t.nregions = 1;
  t.regions[0] = {0, kRegionSize * 4, kUserA, 0};  // bigger than the memfd
  std::vector<uint8_t> big(8 + sizeof(MemoryRegion));
  std::memcpy(big.data(), &t, big.size());
  Message too_big = Msg(Request::kSetMemTable, big);
  too_big.fds.emplace_back(dup(memfd_.get()));
  EXPECT_FALSE(Send(std::move(too_big)).status.ok());

  // Rings outside guest memory cannot start.
  VringAddr outside{1, 0, kUserA + kRegionSize, kUserA, kUserA + 4096, 0};
  ExpectOk(Msg(Request::kSetVringAddr, Bytes(outside)));
  ExpectRefused(FdMsg(Request::kSetVringKick, 1, kick_), "queue 1");
  EXPECT_EQ(Queue(1)["started"], false);

  // After all that, the queue still comes up normally.
  ExpectOk(Addr(1));
  ExpectOk(FdMsg(Request::kSetVringKick, 1, kick_));
  ExpectOk(FdMsg(Request::kSetVringCall, 1, call_));
  EXPECT_EQ(Queue(1)["size"], 8);
  EXPECT_EQ(Queue(1)["started"], true);
}

TEST_F(SessionTest, RefusedQuestionClosesTheConnection) {
  auto out = Send(Msg(Request::kGetVringBase, Bytes(VringState{7, 0})));
  EXPECT_FALSE(out.status.ok());
  EXPECT_FALSE(out.reply);
  EXPECT_TRUE(out.close);  // QEMU waits for an answer we cannot give
}

TEST_F(SessionTest, MalformedRingStopsOnlyThatQueue) {
  UniqueFd err = EventFd();
  BringUp(1);
  ExpectOk(FdMsg(Request::kSetVringErr, 1, err));
  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  driver_->SetDesc(0, kReqGpa, 64, kDescFNext, 0);  // a loop
  driver_->MakeAvail(0);
  uint64_t one = 1;
  ASSERT_EQ(write(kick_.get(), &one, sizeof one), 8);
  EXPECT_TRUE(Signalled(err.get()));
  EXPECT_EQ(Queue(1)["broken"], true);
  EXPECT_EQ(handler_.handled(), 0);
  Session::Outcome base = Send(Msg(Request::kGetVringBase, Bytes(VringState{1, 0})));
  EXPECT_TRUE(base.status.ok());
}

TEST_F(SessionTest, StopWaitsForInflightRequests) {
  BringUp(1);
  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  handler_.Hold(true);
  Offer(4);
  ASSERT_TRUE(handler_.WaitHandled(4));
  EXPECT_EQ(session_->inflight(), 4u);
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    session_->Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(150ms);
  EXPECT_FALSE(stopped.load()) << "Stop returned with requests in flight";
  handler_.Release();
  stopper.join();
  EXPECT_EQ(session_->inflight(), 0u);
  EXPECT_EQ(driver_->UsedIdx(), 4);
}

TEST_F(SessionTest, DriverCannotQueueMoreThanTheRingHolds) {
  BringUp(1);
  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  handler_.Hold(true);
  Offer(4);
  Offer(4);  // 8 = the queue size: every slot in flight
  ASSERT_TRUE(handler_.WaitHandled(8));
  // More published before any came back: nothing more is taken until slots free up.
  Offer(4);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(handler_.handled(), 8);
  EXPECT_EQ(session_->inflight(), 8u);
  handler_.Hold(false);
  handler_.Release();
  ASSERT_TRUE(handler_.WaitHandled(12));
}

TEST_F(SessionTest, NewMemoryTableRestartsRunningRings) {
  BringUp(1);
  ExpectOk(Msg(Request::kSetVringEnable, Bytes(VringState{1, 1})));
  Offer(1);
  ASSERT_TRUE(handler_.WaitHandled(1));
  ExpectOk(MemTable());
  EXPECT_EQ(Queue(1)["started"], true);
  Offer(1);
  ASSERT_TRUE(handler_.WaitHandled(2));
}

TEST_F(SessionTest, ResetOwnerForgetsEverything) {
  BringUp(1);
  ExpectOk(Msg(Request::kResetOwner));
  EXPECT_EQ(Queue(1)["started"], false);
  EXPECT_EQ(Queue(1)["size"], 0);
  ExpectRefused(FdMsg(Request::kSetVringKick, 1, kick_), "before SET_MEM_TABLE");
}

// ---- the socket device ------------------------------------------------------------------

std::string SocketPath(const char* name) {
  return ::testing::TempDir() + "vu-" + std::to_string(getpid()) + "-" + name + ".sock";
}

UniqueFd Connect(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  return fd;
}

uint64_t AskFeatures(int fd) {
  EXPECT_TRUE(WriteMessage(fd, Msg(Request::kGetFeatures)).ok());
  auto reply = ReadMessage(fd);
  EXPECT_TRUE(reply.ok()) << (reply.ok() ? "" : reply.error().message);
  return reply.ok() ? U64(*reply) : 0;
}

TEST(VhostUserFsDeviceTest, FrontEndsComeAndGoOneAtATime) {
  TestHandler handler;
  VhostUserOptions o;
  o.socket_path = SocketPath("device");
  o.message_timeout = 300ms;
  VhostUserFsDevice device(handler, o);
  ASSERT_TRUE(device.Start().ok());
  EXPECT_TRUE(device.serving());

  UniqueFd first = Connect(o.socket_path);
  ASSERT_TRUE(first.valid());
  EXPECT_TRUE(AskFeatures(first.get()) & Bit(kFeatureVersion1));
  EXPECT_EQ(device.status()["connected"], true);

  // A second front-end is turned away while the first is attached.
  UniqueFd second = Connect(o.socket_path);
  ASSERT_TRUE(second.valid());
  (void)WriteMessage(second.get(), Msg(Request::kGetFeatures));  // may already be closed
  auto refused = ReadMessage(second.get());
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(AskFeatures(first.get()) & Bit(kFeatureVersion1));  // the first is unaffected

  first.Reset();
  ASSERT_TRUE(handler.WaitEnded(1));
  UniqueFd third = Connect(o.socket_path);
  ASSERT_TRUE(third.valid());
  EXPECT_TRUE(AskFeatures(third.get()) & Bit(kFeatureVersion1));
  EXPECT_EQ(device.status()["sessions"], 2);

  // Garbage framing ends the session; the device keeps listening.
  MessageHeader bad{1, 0x2, 0};  // version 2
  ASSERT_EQ(write(third.get(), &bad, sizeof bad), static_cast<ssize_t>(sizeof bad));
  ASSERT_TRUE(handler.WaitEnded(2));
  UniqueFd fourth = Connect(o.socket_path);
  ASSERT_TRUE(fourth.valid());
  EXPECT_TRUE(AskFeatures(fourth.get()) & Bit(kFeatureVersion1));

  // A front-end that stops halfway through a message is dropped, not waited for.
  fourth.Reset();
  ASSERT_TRUE(handler.WaitEnded(3));
  UniqueFd fifth = Connect(o.socket_path);
  ASSERT_TRUE(fifth.valid());
  MessageHeader partial{1, kVersion, 8};  // promises 8 payload bytes, sends none
  ASSERT_EQ(write(fifth.get(), &partial, sizeof partial), static_cast<ssize_t>(sizeof partial));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(handler.WaitEnded(4, 15s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);

  device.Stop();
  EXPECT_FALSE(device.serving());
  struct stat st;
  EXPECT_NE(lstat(o.socket_path.c_str(), &st), 0) << "socket left behind";
  EXPECT_FALSE(ReadMessage(fifth.get()).ok());  // disconnected
}

TEST(VhostUserFsDeviceTest, SocketPathChecks) {
  TestHandler handler;
  VhostUserOptions o;
  o.socket_path = SocketPath("checks");
  {
    std::ofstream(o.socket_path) << "not a socket";
    VhostUserFsDevice device(handler, o);
    Status s = device.Start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("not a socket"), std::string::npos);
    unlink(o.socket_path.c_str());
  }
  {
    // A stale socket (nobody listening) is replaced.
    UniqueFd stale(socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, o.socket_path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(bind(stale.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    stale.Reset();
    VhostUserFsDevice device(handler, o);
    ASSERT_TRUE(device.Start().ok());
    // A live one is not taken over.
    VhostUserFsDevice rival(handler, o);
    Status s = rival.Start();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("another process"), std::string::npos);
  }
  VhostUserOptions long_path;
  long_path.socket_path = "/" + std::string(200, 'x');
  VhostUserFsDevice device(handler, long_path);
  EXPECT_FALSE(device.Start().ok());
}

}  // namespace
}  // namespace dpustor::fs::vhost_user
