#include "fs/transport/vhost_user/session.h"

#include <unistd.h>

#include <cstring>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"
#include "fs/transport/vhost_user/guest_memory.h"
#include "fs/transport/vhost_user/queue_runner.h"

namespace dpustor::fs::vhost_user {
namespace {

constexpr uint64_t kOfferedFeatures = Bit(kFeatureVersion1) | Bit(kFeatureIndirectDesc) |
                                      Bit(kFeatureEventIdx) | Bit(kFeatureProtocolFeatures);
constexpr uint64_t kOfferedProtocolFeatures =
    Bit(kProtocolMq) | Bit(kProtocolReplyAck) | Bit(kProtocolResetDevice);

Error Refused(std::string what) {
  return Error{rpc::kInvalidParams, "vhost-user: " + std::move(what)};
}

// Requests whose answer is the reply itself (no separate REPLY_ACK).
bool HasReply(Request r) {
  switch (r) {
    case Request::kGetFeatures:
    case Request::kGetProtocolFeatures:
    case Request::kGetVringBase:
    case Request::kGetQueueNum:
    case Request::kGetConfig:
    case Request::kGetMaxMemSlots:
      return true;
    default:
      return false;
  }
}

// Kick, call and error descriptors must be eventfds: we poll, read and write them, and
// anything else (a pipe whose reader is gone, /dev/null, a file) would raise SIGPIPE, spin
// a queue thread or block it.
bool IsEventFd(int fd) {
  char link[64];
  std::string path = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(path.c_str(), link, sizeof link - 1);
  return n > 0 && std::string_view(link, static_cast<size_t>(n)) == "anon_inode:[eventfd]";
}

template <class T>
Message ReplyWith(uint32_t request, const T& value) {
  Message m;
  m.header = {request, kVersion | kFlagReply, sizeof(T)};
  m.payload.resize(sizeof(T));
  std::memcpy(m.payload.data(), &value, sizeof(T));
  return m;
}

}  // namespace

// One virtqueue's configuration as the front-end set it, and its runner once started.
struct Vring {
  uint32_t num = 0;
  bool addr_set = false;
  VringAddr addr{};
  uint16_t base = 0;
  UniqueFd kick, call, err;
  bool enabled = false;
  std::unique_ptr<QueueRunner> runner;
};

struct Session::Rep {
  Rep(VirtioFsHandler& h, SessionOptions o)
      : handler(h), options(o), vrings(1 + o.request_queues) {}

  VirtioFsHandler& handler;
  const SessionOptions options;
  uint64_t features = 0;
  uint64_t protocol_features = 0;
  std::unique_ptr<GuestMemory> memory;
  std::vector<Vring> vrings;
  // Guards the runner pointers for status()/inflight() callers on other threads; the
  // session thread takes it only to publish or retire a runner, never while waiting.
  mutable std::mutex mu;

  bool Negotiated(int bit) const { return features & Bit(bit); }

  Status CheckIndex(uint32_t index) const {
    if (index >= vrings.size())
      return Refused("queue " + std::to_string(index) + " does not exist (the device has " +
                     std::to_string(vrings.size()) + ")");
    return {};
  }

  // Stops queue i if it runs; its last available index becomes the ring's base.
  void StopRing(uint32_t i) {
    std::unique_ptr<QueueRunner> runner;
    {
      std::lock_guard lock(mu);
      runner = std::move(vrings[i].runner);
    }
    if (runner) vrings[i].base = runner->Stop();
  }

  void StopAll() {
    for (uint32_t i = 0; i < vrings.size(); ++i) StopRing(i);
  }

  // Starts queue i once everything it needs has arrived.
  Status StartRing(uint32_t i) {
    Vring& v = vrings[i];
    if (!memory) return Refused("queue " + std::to_string(i) + " started before SET_MEM_TABLE");
    if (v.num == 0) return Refused("queue " + std::to_string(i) + " started before SET_VRING_NUM");
    if (!v.addr_set)
      return Refused("queue " + std::to_string(i) + " started before SET_VRING_ADDR");
    VirtqueueConfig config;
    config.size = v.num;
    config.desc_uaddr = v.addr.desc_user_addr;
    config.avail_uaddr = v.addr.avail_user_addr;
    config.used_uaddr = v.addr.used_user_addr;
    config.event_idx = Negotiated(kFeatureEventIdx);
    config.indirect = Negotiated(kFeatureIndirectDesc);
    config.last_avail_idx = v.base;
    // Without VHOST_USER_F_PROTOCOL_FEATURES a ring is enabled as soon as it starts.
    bool enabled = Negotiated(kFeatureProtocolFeatures) ? v.enabled : true;
    auto runner = QueueRunner::Start(i, *memory, config, handler, v.kick.get(), v.call.get(),
                                     v.err.get(), enabled);
    if (!runner.ok()) return Refused("queue " + std::to_string(i) + ": " + runner.error().message);
    std::lock_guard lock(mu);
    v.runner = std::move(*runner);
    return {};
  }

  void Reset() {
    StopAll();
    features = 0;
    protocol_features = 0;
    memory.reset();
    for (Vring& v : vrings) v = Vring{};
  }

  Status SetMemTable(const Message& m);
  Status Apply(Message& m, std::optional<Message>* reply);
};

Status Session::Rep::SetMemTable(const Message& m) {
  if (m.payload.size() < 8) return Refused("SET_MEM_TABLE without a region count");
  MemoryTable table{};
  std::memcpy(&table, m.payload.data(), 8);
  if (table.nregions == 0 || table.nregions > kMaxMemTableRegions)
    return Refused("SET_MEM_TABLE with " + std::to_string(table.nregions) + " regions (1-8)");
  if (m.payload.size() != 8 + table.nregions * sizeof(MemoryRegion))
    return Refused("SET_MEM_TABLE payload does not match its region count");
  if (m.fds.size() != table.nregions)
    return Refused("SET_MEM_TABLE with " + std::to_string(m.fds.size()) + " descriptors for " +
                   std::to_string(table.nregions) + " regions");
  std::memcpy(&table, m.payload.data(), m.payload.size());
  std::vector<MemoryRegionDesc> regions;
  std::vector<int> fds;
  for (uint32_t i = 0; i < table.nregions; ++i) {
    const MemoryRegion& r = table.regions[i];
    regions.push_back({r.guest_phys_addr, r.memory_size, r.userspace_addr, r.mmap_offset});
    fds.push_back(m.fds[i].get());
  }
  auto mapped = GuestMemory::Map(regions, fds);
  if (!mapped.ok()) return mapped.error();
  // Rings point into the old mapping: stop them, swap, restart those that ran.
  std::vector<uint32_t> running;
  for (uint32_t i = 0; i < vrings.size(); ++i)
    if (vrings[i].runner) running.push_back(i);
  StopAll();
  memory = std::move(*mapped);
  for (uint32_t i : running) {
    if (Status s = StartRing(i); !s) spdlog::warn("{}", s.error().message);
  }
  return {};
}

Status Session::Rep::Apply(Message& m, std::optional<Message>* reply) {
  const uint32_t code = m.header.request;
  const auto want_payload = [&](size_t n) -> Status {
    if (m.payload.size() != n)
      return Refused(RequestName(code) + " with a " + std::to_string(m.payload.size()) +
                     "-byte payload (expected " + std::to_string(n) + ")");
    return {};
  };
  const bool takes_fds = code == static_cast<uint32_t>(Request::kSetMemTable) ||
                         code == static_cast<uint32_t>(Request::kSetVringKick) ||
                         code == static_cast<uint32_t>(Request::kSetVringCall) ||
                         code == static_cast<uint32_t>(Request::kSetVringErr);
  if (!takes_fds && !m.fds.empty()) return Refused(RequestName(code) + " carries file descriptors");
  uint64_t u64 = 0;
  VringState state{};

  switch (static_cast<Request>(code)) {
    case Request::kGetFeatures:
      *reply = ReplyWith(code, kOfferedFeatures);
      return {};
    case Request::kSetFeatures:
      if (Status s = want_payload(8); !s) return s;
      std::memcpy(&u64, m.payload.data(), 8);
      if (u64 & ~kOfferedFeatures) return Refused("SET_FEATURES with bits that were not offered");
      features = u64;
      return {};
    case Request::kSetOwner:
      return {};
    case Request::kResetOwner:
    case Request::kResetDevice:
      Reset();
      return {};
    case Request::kGetProtocolFeatures:
      *reply = ReplyWith(code, kOfferedProtocolFeatures);
      return {};
    case Request::kSetProtocolFeatures:
      if (Status s = want_payload(8); !s) return s;
      std::memcpy(&u64, m.payload.data(), 8);
      if (u64 & ~kOfferedProtocolFeatures)
        return Refused("SET_PROTOCOL_FEATURES with bits that were not offered");
      protocol_features = u64;
      return {};
    case Request::kGetQueueNum:
      *reply = ReplyWith(code, static_cast<uint64_t>(vrings.size()));
      return {};
    case Request::kSetMemTable:
      return SetMemTable(m);
    default:
      break;
  }

  // Per-ring requests.
  uint32_t index = 0;
  switch (static_cast<Request>(code)) {
    case Request::kSetVringNum:
    case Request::kSetVringBase:
    case Request::kGetVringBase:
    case Request::kSetVringEnable:
      if (Status s = want_payload(sizeof state); !s) return s;
      std::memcpy(&state, m.payload.data(), sizeof state);
      index = state.index;
      break;
    case Request::kSetVringAddr:
      if (Status s = want_payload(sizeof(VringAddr)); !s) return s;
      std::memcpy(&index, m.payload.data(), sizeof index);
      break;
    case Request::kSetVringKick:
    case Request::kSetVringCall:
    case Request::kSetVringErr:
      if (Status s = want_payload(8); !s) return s;
      std::memcpy(&u64, m.payload.data(), 8);
      if (u64 & ~(kVringIndexMask | kVringNoFd))
        return Refused(RequestName(code) + " with unknown flag bits");
      index = static_cast<uint32_t>(u64 & kVringIndexMask);
      if ((u64 & kVringNoFd) ? !m.fds.empty() : m.fds.size() != 1)
        return Refused(RequestName(code) + ": descriptor count does not match");
      if (!m.fds.empty() && !IsEventFd(m.fds[0].get()))
        return Refused(RequestName(code) + ": the descriptor is not an eventfd");
      break;
    default:
      return Refused("unsupported request " + std::to_string(code));
  }
  if (Status s = CheckIndex(index); !s) return s;
  Vring& v = vrings[index];
  const std::string q = "queue " + std::to_string(index);

  switch (static_cast<Request>(code)) {
    case Request::kSetVringNum:
      if (v.runner) return Refused(q + ": SET_VRING_NUM while running");
      if (state.num == 0 || state.num > options.max_queue_size || (state.num & (state.num - 1)))
        return Refused(q + ": size " + std::to_string(state.num) + " is not a power of two up to " +
                       std::to_string(options.max_queue_size));
      v.num = state.num;
      return {};
    case Request::kSetVringBase:
      if (v.runner) return Refused(q + ": SET_VRING_BASE while running");
      if (state.num > 0xffff) return Refused(q + ": base index above 65535");
      v.base = static_cast<uint16_t>(state.num);
      return {};
    case Request::kGetVringBase:
      StopRing(index);
      v.kick.Reset();  // the ring is stopped until the next SET_VRING_KICK
      *reply = ReplyWith(code, VringState{index, v.base});
      return {};
    case Request::kSetVringEnable:
      if (state.num > 1) return Refused(q + ": SET_VRING_ENABLE with " + std::to_string(state.num));
      v.enabled = state.num == 1;
      if (v.runner) v.runner->SetEnabled(v.enabled);
      return {};
    case Request::kSetVringAddr: {
      if (v.runner) return Refused(q + ": SET_VRING_ADDR while running");
      VringAddr addr;
      std::memcpy(&addr, m.payload.data(), sizeof addr);
      if (addr.flags != 0) return Refused(q + ": dirty logging is not supported");
      v.addr = addr;
      v.addr_set = true;
      return {};
    }
    case Request::kSetVringKick: {
      if (m.fds.empty()) return Refused(q + ": polling mode (no kick descriptor) is not supported");
      // A new kick fd for a running ring: restart it on the new fd.
      StopRing(index);
      v.kick = UniqueFd(m.fds[0].Release());
      if (Status s = StartRing(index); !s) {
        v.kick.Reset();
        return s;
      }
      return {};
    }
    case Request::kSetVringCall: {
      UniqueFd call = m.fds.empty() ? UniqueFd() : UniqueFd(m.fds[0].Release());
      if (v.runner) v.runner->SetCallFd(call.get());
      v.call = std::move(call);  // the old one closes after the runner let go of it
      return {};
    }
    case Request::kSetVringErr: {
      UniqueFd err = m.fds.empty() ? UniqueFd() : UniqueFd(m.fds[0].Release());
      if (v.runner) v.runner->SetErrFd(err.get());
      v.err = std::move(err);
      return {};
    }
    default:
      return Refused("unsupported request " + std::to_string(code));
  }
}

Session::Session(VirtioFsHandler& handler, SessionOptions options)
    : rep_(std::make_unique<Rep>(handler, options)) {}

Session::~Session() {
  Stop();
}

Session::Outcome Session::Handle(Message msg) {
  Outcome out;
  // Read before Apply: SET_PROTOCOL_FEATURES itself is acked under the old features.
  const bool acks = rep_->protocol_features & Bit(kProtocolReplyAck);
  out.status = rep_->Apply(msg, &out.reply);
  const bool has_reply = HasReply(static_cast<Request>(msg.header.request));
  if (!out.status.ok()) {
    out.reply.reset();
    // The front-end waits for an answer we cannot give: only closing unblocks it.
    out.close = has_reply;
  }
  if (acks && (msg.header.flags & kFlagNeedReply) && !has_reply)
    out.reply = ReplyWith(msg.header.request, uint64_t{out.status.ok() ? 0u : 1u});
  return out;
}

void Session::Stop() {
  rep_->StopAll();
}

size_t Session::inflight() const {
  std::lock_guard lock(rep_->mu);
  size_t n = 0;
  for (const Vring& v : rep_->vrings)
    if (v.runner) n += v.runner->inflight();
  return n;
}

nlohmann::json Session::status() const {
  std::lock_guard lock(rep_->mu);
  nlohmann::json queues = nlohmann::json::array();
  for (uint32_t i = 0; i < rep_->vrings.size(); ++i) {
    const Vring& v = rep_->vrings[i];
    if (v.runner) {
      queues.push_back(v.runner->status());
    } else {
      queues.push_back({{"index", i},
                        {"enabled", v.enabled},
                        {"started", false},
                        {"size", v.num},
                        {"requests", 0},
                        {"inflight", 0},
                        {"broken", false}});
    }
  }
  return {{"queues", std::move(queues)}};
}

}  // namespace dpustor::fs::vhost_user
