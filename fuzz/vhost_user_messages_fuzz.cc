// Fuzzes the vhost-user back-end as a hostile front-end drives it: a Session fed a sequence
// of messages (features, memory tables, ring setup, kicks) with file descriptors attached,
// some of them through a socketpair and ReadMessage so the framing is fuzzed too. Guest RAM
// is a memfd whose content comes from the input, so once a ring starts its queue thread
// pops fuzzed descriptor chains and hands them to the FUSE engine (memory backend) or to a
// handler that completes them with odd byte counts, at once or later from another thread.
//
// Input: [config byte] then records; record op = byte % 8:
//   0-3 message handed to Session::Handle, 4 the same written to a socketpair and read back
//       with ReadMessage: [request][flags][size][payload][fd count][fd kinds...][extras]
//   5 poke guest RAM: [u32 offset][u16 length][bytes]
//   6 kick: [eventfd index] (signals the kick eventfd; waits a little for the queue thread)
//   7 flush: waits until every request handed to the handler has completed
// See the Message* functions below for the byte meanings.
//
// Invariants (abort on violation): replies only for GET_* requests or acks, well-formed;
// `close` only with a refusal; after Stop() nothing is in flight in the Session or the
// engine; every descriptor the run opened is closed again; a reply written with
// WriteMessage reads back unchanged.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "fs/backend/memory/memory_backend.h"
#include "fs/fuse/engine.h"
#include "fs/transport/engine_handler.h"
#include "fs/transport/vhost_user/message_io.h"
#include "fs/transport/vhost_user/protocol.h"
#include "fs/transport/vhost_user/session.h"

#include "fuzz_input.h"

namespace {

using namespace dpustor;
using namespace dpustor::fs;
using namespace dpustor::fs::vhost_user;
using Request = dpustor::fs::vhost_user::Request;  // not the FUSE engine's
using FuseRequest = dpustor::fs::Request;

constexpr size_t kRamSize = 2 << 20;     // the guest RAM memfd
constexpr size_t kSmallSize = 64 << 10;  // a second, smaller memfd
constexpr int kMaxRecords = 64;

// Memfds made once; their content is reset for every input.
int ram_fd = -1, small_fd = -1, empty_fd = -1;
uint8_t* ram = nullptr;

using Input = FuzzInput;

// Hands requests to `inner` from a thread of its own, each batch last first.
class AsyncHandler : public VirtioFsHandler {
 public:
  explicit AsyncHandler(VirtioFsHandler& inner) : inner_(inner), thread_([this] { Run(); }) {}
  ~AsyncHandler() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void Handle(uint32_t queue, std::span<const iovec> in, std::span<const iovec> out,
              Completion* done) override {
    std::lock_guard lock(mu_);
    held_.push_back({queue, in, out, done});
    cv_.notify_all();
  }
  void SessionEnded() override { inner_.SessionEnded(); }
  bool idle() {
    std::lock_guard lock(mu_);
    return held_.empty() && !busy_;
  }

 private:
  struct Held {
    uint32_t queue;
    std::span<const iovec> in, out;
    Completion* done;
  };
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !held_.empty(); });
      if (held_.empty()) return;  // stop_ and nothing left
      auto batch = std::move(held_);
      held_.clear();
      busy_ = true;
      lock.unlock();
      for (auto it = batch.rbegin(); it != batch.rend(); ++it)
        inner_.Handle(it->queue, it->in, it->out, it->done);
      lock.lock();
      busy_ = false;
    }
  }

  VirtioFsHandler& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Held> held_;
  bool busy_ = false;
  bool stop_ = false;
  std::thread thread_;
};

// Reads every readable byte, fills the writable ones, and reports a byte count that is
// right, zero, one too many or absurd, in turn.
class RawHandler : public VirtioFsHandler {
 public:
  void Handle(uint32_t, std::span<const iovec> in, std::span<const iovec> out,
              Completion* done) override {
    unsigned sum = 0;
    for (const iovec& v : in)
      for (size_t i = 0; i < v.iov_len; ++i) sum += static_cast<const uint8_t*>(v.iov_base)[i];
    size_t n = 0;
    for (const iovec& v : out) {
      std::memset(v.iov_base, 0xa5, v.iov_len);
      n += v.iov_len;
    }
    sink_.fetch_add(sum, std::memory_order_relaxed);
    static const size_t kExtra[] = {0, 0, 1, SIZE_MAX / 2};
    unsigned k = calls_.fetch_add(1, std::memory_order_relaxed) % 4;
    done->Complete(k == 1 ? 0 : n + kExtra[k]);
  }
  void SessionEnded() override {}

 private:
  std::atomic<unsigned> calls_{0};
  std::atomic<unsigned> sink_{0};
};

const Request kRequests[] = {
    Request::kGetFeatures,         Request::kSetFeatures,         Request::kSetOwner,
    Request::kResetOwner,          Request::kSetMemTable,         Request::kSetVringNum,
    Request::kSetVringAddr,        Request::kSetVringBase,        Request::kGetVringBase,
    Request::kSetVringKick,        Request::kSetVringCall,        Request::kSetVringErr,
    Request::kGetProtocolFeatures, Request::kSetProtocolFeatures, Request::kGetQueueNum,
    Request::kSetVringEnable,      Request::kResetDevice,         Request::kSetLogBase,
    Request::kSetBackendReqFd,     Request::kGetConfig,           Request::kAddMemReg,
    Request::kGetMaxMemSlots,
};

bool Is(uint32_t code, Request r) {
  return code == static_cast<uint32_t>(r);
}

bool ExpectsReply(uint32_t code) {
  return Is(code, Request::kGetFeatures) || Is(code, Request::kGetProtocolFeatures) ||
         Is(code, Request::kGetVringBase) || Is(code, Request::kGetQueueNum) ||
         Is(code, Request::kGetConfig) || Is(code, Request::kGetMaxMemSlots);
}

// The payload size a well-behaved front-end sends with `code`.
size_t NaturalSize(uint32_t code, const Input& in) {
  switch (static_cast<Request>(code)) {
    case Request::kSetFeatures:
    case Request::kSetProtocolFeatures:
    case Request::kSetVringKick:
    case Request::kSetVringCall:
    case Request::kSetVringErr:
    case Request::kSetVringNum:
    case Request::kSetVringBase:
    case Request::kGetVringBase:
    case Request::kSetVringEnable:
      return 8;
    case Request::kSetVringAddr:
      return sizeof(VringAddr);
    case Request::kSetMemTable:
      return 8 + sizeof(MemoryRegion) * std::min<uint32_t>(in.Peek32(), kMaxMemTableRegions);
    default:
      return 0;
  }
}

// The fds a well-behaved front-end attaches.
size_t NaturalFds(uint32_t code, const std::vector<uint8_t>& payload) {
  uint64_t u64 = 0;
  if (!payload.empty()) std::memcpy(&u64, payload.data(), std::min<size_t>(payload.size(), 8));
  if (Is(code, Request::kSetMemTable))
    return std::min<uint64_t>(u64 & 0xffffffff, kMaxMemTableRegions);
  if (Is(code, Request::kSetVringKick) || Is(code, Request::kSetVringCall) ||
      Is(code, Request::kSetVringErr))
    return (u64 & kVringNoFd) ? 0 : 1;
  return 0;
}

// Everything one input owns besides the Session.
struct Run {
  Session* session = nullptr;
  AsyncHandler* async = nullptr;
  UniqueFd eventfds[2];

  // A descriptor of the kind the input chose; -1 stays -1 (a bogus descriptor).
  int MakeFd(unsigned kind, bool for_socket) {
    switch (kind % 10) {
      case 0:
      case 1:
        return ::dup(ram_fd);
      case 2:
        return ::dup(small_fd);
      case 3:
        return ::dup(empty_fd);
      case 4:
        return ::dup(eventfds[0].get());
      case 5:
        return ::dup(eventfds[1].get());
      case 6:
        return ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      case 7:
        return ::open("/dev/null", O_RDWR | O_CLOEXEC);
      case 8: {  // a socket whose peer is gone: readable (EOF) forever, writes raise SIGPIPE
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
        ::close(sv[1]);
        return sv[0];
      }
      default:
        return for_socket ? ::dup(ram_fd) : -1;
    }
  }

  void CheckOutcome(uint32_t code, const Session::Outcome& out) {
    if (out.close && out.status.ok()) abort();
    if (!out.reply) return;
    const Message& r = *out.reply;
    if (r.header.request != code) abort();
    if ((r.header.flags & kVersionMask) != kVersion || !(r.header.flags & kFlagReply)) abort();
    if (r.header.size != r.payload.size() || r.payload.size() != 8 || !r.fds.empty()) abort();
    if (Is(code, Request::kGetQueueNum)) {
      uint64_t n;
      std::memcpy(&n, r.payload.data(), 8);
      if (n != 3 && n != 2) abort();
    }
  }

  // Applies one message; the front-end waiting for an answer gets one or is disconnected.
  Session::Outcome Handle(Message m) {
    const uint32_t code = m.header.request;
    const bool need_reply = m.header.flags & kFlagNeedReply;
    Session::Outcome out = session->Handle(std::move(m));
    CheckOutcome(code, out);
    if (ExpectsReply(code) && !out.reply && !out.close) abort();
    if (out.reply && !ExpectsReply(code)) {  // an ack: 0, or 1 for a refusal
      uint64_t v;
      std::memcpy(&v, out.reply->payload.data(), 8);
      if (!need_reply || v != (out.status.ok() ? 0u : 1u)) abort();
    }
    return out;
  }

  // The message bytes go through a socketpair in one or two writes (the fds with the first
  // or the second), the writer then shuts down, and ReadMessage takes what it finds.
  void ViaSocket(const Message& m, Input& in, unsigned flags) {
    std::vector<uint8_t> wire(sizeof(MessageHeader));
    MessageHeader h = m.header;
    if (flags & 0x10) h.size = in.U16() % (kMaxPayload + 16);  // lies about the size
    std::memcpy(wire.data(), &h, sizeof h);
    wire.insert(wire.end(), m.payload.begin(), m.payload.end());
    if (flags & 0x40) {  // trailing bytes: the next message, or garbage
      std::vector<uint8_t> more = in.Bytes(in.U8());
      wire.insert(wire.end(), more.begin(), more.end());
    }
    size_t cut = (flags & 0x20) ? 1 + in.U8() % wire.size() : wire.size();
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
    UniqueFd front(sv[0]), back(sv[1]);
    const bool fds_late = (flags & 0x80) && cut < wire.size();
    Send(front.get(), wire.data(), cut, fds_late ? nullptr : &m);
    if (cut < wire.size())
      Send(front.get(), wire.data() + cut, wire.size() - cut, fds_late ? &m : nullptr);
    ::shutdown(front.get(), SHUT_WR);
    for (int i = 0; i < 3; ++i) {
      auto read = ReadMessage(back.get());
      if (!read.ok()) return;
      if (read->payload.size() != read->header.size || read->fds.size() > kMaxFds) abort();
      Session::Outcome out = Handle(std::move(*read));
      if (out.reply) {  // back to the front-end: must arrive unchanged
        if (!WriteMessage(back.get(), *out.reply).ok()) abort();
        auto echo = ReadMessage(front.get());
        if (!echo.ok() || std::memcmp(&echo->header, &out.reply->header, sizeof h) != 0 ||
            echo->payload != out.reply->payload)
          abort();
      }
    }
  }

  static void Send(int fd, const uint8_t* p, size_t len, const Message* with_fds) {
    iovec iov{const_cast<uint8_t*>(p), len};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 16)];
    if (with_fds && !with_fds->fds.empty()) {
      size_t n = with_fds->fds.size();
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * n);
      for (size_t i = 0; i < n; ++i) {
        int v = with_fds->fds[i].get();
        std::memcpy(CMSG_DATA(c) + i * sizeof(int), &v, sizeof v);
      }
    }
    if (::sendmsg(fd, &msg, MSG_NOSIGNAL) != static_cast<ssize_t>(len)) abort();
  }

  // [request: < 0xf8 picks from kRequests, else a raw u32 follows][flags: bit 0 NEED_REPLY,
  // bits 1-2 version (0/1 good, 2 → 0, 3 → 3), bit 3 REPLY, socket only: bit 4 size lie
  // (u16), bit 5 split write (cut byte), bit 6 trailing bytes (u8 length + bytes), bit 7
  // fds with the second write][size: < 0xf0 the natural size, else a u16 follows][payload]
  // [fd count: < 0xc0 natural, else the low 4 bits][one kind byte per fd]
  void MessageRecord(Input& in, bool socket) {
    unsigned r = in.U8();
    uint32_t code =
        r < 0xf8 ? static_cast<uint32_t>(kRequests[r % std::size(kRequests)]) : in.U32();
    unsigned flags = in.U8();
    unsigned version = (flags >> 1) & 3;
    Message m;
    m.header.request = code;
    m.header.flags = (version == 2   ? 0
                      : version == 3 ? 3
                                     : kVersion) |
                     ((flags & 1) ? kFlagNeedReply : 0) | ((flags & 8) ? kFlagReply : 0);
    unsigned s = in.U8();
    size_t size = s < 0xf0 ? NaturalSize(code, in) : in.U16() % (kMaxPayload + 64);
    m.payload = in.Bytes(size);
    m.header.size = static_cast<uint32_t>(size);
    unsigned c = in.U8();
    size_t nfds = c < 0xc0 ? NaturalFds(code, m.payload) : (c & 0xf);
    for (size_t i = 0; i < nfds; ++i) m.fds.emplace_back(MakeFd(in.U8(), socket));
    if (socket) return ViaSocket(m, in, flags);
    if (m.payload.size() > kMaxPayload) return;  // ReadMessage never delivers these
    Handle(std::move(m));
  }

  bool AnyQueueRunning() const {
    const nlohmann::json status = session->status();
    for (const auto& q : status["queues"])
      if (q["started"].get<bool>() && q["enabled"].get<bool>() && !q["broken"].get<bool>())
        return true;
    return false;
  }

  // Signals a kick eventfd and gives a running queue thread a moment (at most ~1 ms: the
  // eventfd may belong to no running queue) to take it and serve the ring.
  void Kick(unsigned which) {
    int fd = eventfds[which & 1].get();
    uint64_t one = 1;
    if (::write(fd, &one, sizeof one) != sizeof one) abort();
    if (!AnyQueueRunning()) return;
    for (int i = 0; i < 20; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 0) == 0) break;
      Nap();
    }
    Nap();
  }

  // Waits (at most ~20 ms) until every request handed to the handler has completed.
  void Flush() {
    for (int i = 0; i < 400; ++i) {
      if (session->inflight() == 0 && (!async || async->idle())) return;
      Nap();
    }
  }

  static void Nap() {
    timespec ts{0, 50 * 1000};
    ::nanosleep(&ts, nullptr);
  }
};

size_t OpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  size_t n = 0;
  while (::readdir(d)) ++n;
  ::closedir(d);
  return n;
}

int MakeMemfd(const char* name, size_t size) {
  int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(size)) != 0) abort();
  return fd;
}

void ZeroMemfd(int fd, size_t size) {
  if (size &&
      ::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(size)) != 0)
    abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // refused messages and broken queues are logged
  ram_fd = MakeMemfd("guest-ram", kRamSize);
  small_fd = MakeMemfd("small", kSmallSize);
  empty_fd = MakeMemfd("empty", 0);
  void* p = ::mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
  if (p == MAP_FAILED) abort();
  ram = static_cast<uint8_t*>(p);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const size_t fds_before = OpenFds();
  ZeroMemfd(ram_fd, kRamSize);
  ZeroMemfd(small_fd, kSmallSize);
  Input in{data, size};
  // Config: bits 0-1 handler (engine, engine from another thread, raw, raw from another
  // thread), bit 2 two request queues, bits 3-4 largest queue size.
  const unsigned config = in.U8();
  static const uint32_t kMaxSizes[] = {1024, 16, 32768, 2};
  SessionOptions options;
  options.request_queues = (config & 4) ? 2 : 1;
  options.max_queue_size = kMaxSizes[(config >> 3) & 3];

  MemoryBackend backend;
  Engine engine(backend, EngineOptions{});
  EngineHandler engine_handler(engine);
  RawHandler raw_handler;
  VirtioFsHandler& direct = (config & 2) ? static_cast<VirtioFsHandler&>(raw_handler)
                                         : static_cast<VirtioFsHandler&>(engine_handler);
  std::optional<AsyncHandler> async;
  if (config & 1) async.emplace(direct);
  VirtioFsHandler& handler = async ? static_cast<VirtioFsHandler&>(*async) : direct;
  {
    Session session(handler, options);
    Run run;
    run.session = &session;
    run.async = async ? &*async : nullptr;
    for (UniqueFd& e : run.eventfds) e.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    for (int n = 0; n < kMaxRecords && in.left > 0; ++n) {
      unsigned op = in.U8() % 8;
      if (op <= 4) {
        run.MessageRecord(in, op == 4);
      } else if (op == 5) {
        size_t off = in.U32() % kRamSize;
        size_t len = std::min<size_t>({in.U16(), in.left, kRamSize - off});
        if (len) std::memcpy(ram + off, in.p, len);  // the guest writes while queues may run
        in.p += len;
        in.left -= len;
      } else if (op == 6) {
        run.Kick(in.U8());
      } else {
        run.Flush();
      }
    }
    session.Stop();
    if (session.inflight() != 0) abort();
  }
  async.reset();
  if (engine.inflight() != 0) abort();
  if (OpenFds() != fds_before) abort();
  return 0;
}
