#include "fs/vufs/frontend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/json_rpc.h"

namespace dpustor::fs::vufs {
namespace {

namespace vu = dpustor::fs::vhost_user;
using vu::Bit;
using vu::Request;

Error Failed(std::string what) {
  return Error{rpc::kFailed, std::move(what)};
}

}  // namespace

// ---- FrontendQueue ----

FrontendQueue::FrontendQueue(uint32_t index, std::unique_ptr<DriverRing> ring, UniqueFd kick,
                             UniqueFd call, int socket_fd)
    : index_(index),
      ring_(std::move(ring)),
      kick_(std::move(kick)),
      call_(std::move(call)),
      socket_fd_(socket_fd) {}

Status FrontendQueue::Kick() {
  if (!ring_->NeedsKick()) return Status::Ok();
  const uint64_t one = 1;
  ssize_t n;
  do n = write(kick_.get(), &one, sizeof one);
  while (n < 0 && errno == EINTR);
  if (n != sizeof one) return Failed(std::string("kick queue: ") + std::strerror(errno));
  ++kicks_;
  return Status::Ok();
}

Result<UsedElem> FrontendQueue::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto used = ring_->PopUsed();
    if (!used) return used.error();
    if (*used) return **used;
    if (!ring_->EnableInterrupts()) continue;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Error{rpc::kTimeout, "queue " + std::to_string(index_) + ": no completion in time (" +
                                      std::to_string(ring_->in_flight()) + " in flight)"};
    ++sleeps_;
    pollfd p[2] = {{call_.get(), POLLIN, 0}, {socket_fd_, POLLRDHUP, 0}};
    int n = poll(p, socket_fd_ >= 0 ? 2 : 1, static_cast<int>(left.count()) + 1);
    if (n < 0 && errno != EINTR)
      return Failed(std::string("poll call eventfd: ") + std::strerror(errno));
    if (n > 0 && (p[0].revents & POLLIN)) {
      uint64_t count;
      (void)!read(call_.get(), &count, sizeof count);
    }
    if (n > 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
      // Take what was completed before the hang-up, then report it.
      auto last = ring_->PopUsed();
      if (last && *last) return **last;
      return Error{rpc::kConnectionClosed, "vhost-user back-end hung up"};
    }
    ring_->DisableInterrupts();
  }
}

// ---- Frontend ----

Frontend::Frontend(FrontendOptions options, Channel channel, std::unique_ptr<GuestRam> ram)
    : options_(std::move(options)), channel_(std::move(channel)), ram_(std::move(ram)) {}

Frontend::~Frontend() {
  (void)Disconnect();
}

Result<std::unique_ptr<Frontend>> Frontend::Connect(const FrontendOptions& options) {
  if (options.request_queues == 0 || options.request_queues > 255)
    return Error{rpc::kInvalidParams, "request_queues must be 1..255"};
  auto ram = GuestRam::Create(options.memory_bytes);
  if (!ram) return ram.error();
  auto channel = Channel::Connect(options.socket_path);
  if (!channel) return channel.error();
  std::unique_ptr<Frontend> f(new Frontend(options, std::move(*channel), std::move(*ram)));
  if (Status s = f->Setup(); !s)
    return Error{s.error().code, "vhost-user setup: " + s.error().message};
  return f;
}

Result<std::vector<uint8_t>> Frontend::ReadReply(Request request, uint32_t reply_size) {
  auto reply = channel_.Receive(options_.reply_timeout);
  if (!reply) return Error{reply.error().code, RequestName(request) + ": " + reply.error().message};
  const auto& h = reply->header;
  if (h.request != static_cast<uint32_t>(request) || !(h.flags & vu::kFlagReply) ||
      h.size != reply_size)
    return Failed(RequestName(request) + ": malformed reply (request " + std::to_string(h.request) +
                  ", flags " + std::to_string(h.flags) + ", size " + std::to_string(h.size) + ")");
  return std::move(reply->payload);
}

Result<std::vector<uint8_t>> Frontend::Get(Request request, std::span<const uint8_t> payload,
                                           uint32_t reply_size) {
  if (Status s = channel_.Send(request, 0, payload); !s)
    return Error{s.error().code, RequestName(request) + ": " + s.error().message};
  return ReadReply(request, reply_size);
}

Result<uint64_t> Frontend::GetU64(Request request) {
  auto reply = Get(request, {}, sizeof(uint64_t));
  if (!reply) return reply.error();
  uint64_t v;
  std::memcpy(&v, reply->data(), sizeof v);
  return v;
}

Status Frontend::Set(Request request, std::span<const uint8_t> payload, std::span<const int> fds) {
  if (Status s = channel_.Send(request, reply_ack_ ? vu::kFlagNeedReply : 0, payload, fds); !s)
    return Error{s.error().code, RequestName(request) + ": " + s.error().message};
  if (!reply_ack_) return Status::Ok();
  auto ack = ReadReply(request, sizeof(uint64_t));
  if (!ack) return ack.error();
  uint64_t v;
  std::memcpy(&v, ack->data(), sizeof v);
  if (v != 0)
    return Failed(RequestName(request) + ": refused by the back-end (ack " + std::to_string(v) +
                  ")");
  return Status::Ok();
}

Status Frontend::SetU64(Request request, uint64_t value, std::span<const int> fds) {
  return Set(request, AsBytes(value), fds);
}

Status Frontend::Setup() {
  const uint64_t kWanted = Bit(vu::kFeatureVersion1) |
                           (options_.event_idx ? Bit(vu::kFeatureEventIdx) : 0) |
                           (options_.indirect ? Bit(vu::kFeatureIndirectDesc) : 0);
  // vhost_user_backend_init: features, protocol features, queue count.
  auto offered = GetU64(Request::kGetFeatures);
  if (!offered) return offered.error();
  if (!(*offered & Bit(vu::kFeatureVersion1)))
    return Failed("back-end does not offer VIRTIO_F_VERSION_1 (features " +
                  std::to_string(*offered) + ")");
  const bool protocol = *offered & Bit(vu::kFeatureProtocolFeatures);
  if (protocol) {
    auto p = GetU64(Request::kGetProtocolFeatures);
    if (!p) return p.error();
    protocol_features_ = *p & (Bit(vu::kProtocolMq) | Bit(vu::kProtocolReplyAck));
    if (Status s = SetU64(Request::kSetProtocolFeatures, protocol_features_); !s) return s;
    reply_ack_ = protocol_features_ & Bit(vu::kProtocolReplyAck);
  }
  const uint32_t nqueues = 1 + options_.request_queues;
  if (protocol_features_ & Bit(vu::kProtocolMq)) {
    auto n = GetU64(Request::kGetQueueNum);
    if (!n) return n.error();
    backend_queue_num_ = *n;
    if (*n < nqueues)
      return Error{rpc::kInvalidParams,
                   "back-end offers " + std::to_string(*n) + " queues (1 high-priority + " +
                       std::to_string(*n ? *n - 1 : 0) + " request queues); asked for 1 + " +
                       std::to_string(options_.request_queues)};
  }
  // vhost_dev_init: owner, features again.
  if (Status s = Set(Request::kSetOwner, {}); !s) return s;
  auto again = GetU64(Request::kGetFeatures);
  if (!again) return again.error();
  features_ = (*again & kWanted) | (protocol ? Bit(vu::kFeatureProtocolFeatures) : 0);

  // The rings and their eventfds.
  for (uint32_t i = 0; i < nqueues; ++i) {
    DriverRingOptions ro;
    ro.size = options_.queue_size;
    ro.event_idx = features_ & Bit(vu::kFeatureEventIdx);
    ro.indirect = features_ & Bit(vu::kFeatureIndirectDesc);
    auto ring = DriverRing::Create(*ram_, ro);
    if (!ring) return ring.error();
    UniqueFd kick(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    UniqueFd call(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!kick.valid() || !call.valid())
      return Failed(std::string("eventfd: ") + std::strerror(errno));
    queues_.push_back(std::make_unique<FrontendQueue>(i, std::move(*ring), std::move(kick),
                                                      std::move(call), channel_.fd()));
  }
  // Guest notifiers come first (QEMU's set_guest_notifiers), then vhost_dev_start.
  for (auto& q : queues_) {
    const int fd = q->call_fd();
    if (Status s = SetU64(Request::kSetVringCall, q->index(), {&fd, 1}); !s) return s;
  }
  if (Status s = SetU64(Request::kSetFeatures, features_); !s) return s;
  vu::MemoryTable table{};
  table.nregions = 1;
  table.regions[0] = {0, ram_->size(), ram_->user_addr(0), 0};
  const int mem_fd = ram_->fd();
  if (Status s = Set(Request::kSetMemTable,
                     {reinterpret_cast<const uint8_t*>(&table), 8 + sizeof(vu::MemoryRegion)},
                     {&mem_fd, 1});
      !s)
    return s;
  for (auto& q : queues_) {
    const uint32_t i = q->index();
    DriverRing& r = q->ring();
    if (Status s = Set(Request::kSetVringNum, AsBytes(vu::VringState{i, r.size()})); !s) return s;
    if (Status s = Set(Request::kSetVringBase, AsBytes(vu::VringState{i, r.avail_idx()})); !s)
      return s;
    vu::VringAddr addr{i,
                       0,
                       ram_->user_addr(r.desc_gpa()),
                       ram_->user_addr(r.used_gpa()),
                       ram_->user_addr(r.avail_gpa()),
                       0};
    if (Status s = Set(Request::kSetVringAddr, AsBytes(addr)); !s) return s;
    const int fd = q->kick_fd();
    if (Status s = SetU64(Request::kSetVringKick, i, {&fd, 1}); !s) return s;
  }
  // With F_PROTOCOL_FEATURES rings start disabled.
  if (protocol) {
    for (auto& q : queues_)
      if (Status s = Set(Request::kSetVringEnable, AsBytes(vu::VringState{q->index(), 1})); !s)
        return s;
  }
  return Status::Ok();
}

Status Frontend::Disconnect() {
  if (!channel_.connected()) return Status::Ok();
  Status result;
  stopped_bases_.clear();
  for (auto& q : queues_) {
    auto reply =
        Get(Request::kGetVringBase, AsBytes(vu::VringState{q->index(), 0}), sizeof(vu::VringState));
    if (!reply) {
      result = reply.error();
      break;
    }
    vu::VringState st;
    std::memcpy(&st, reply->data(), sizeof st);
    if (st.index != q->index()) {
      result = Failed("GET_VRING_BASE: reply for ring " + std::to_string(st.index) +
                      ", asked for " + std::to_string(q->index()));
      break;
    }
    stopped_bases_.push_back(st.num);
  }
  channel_.Close();
  return result;
}

}  // namespace dpustor::fs::vufs
