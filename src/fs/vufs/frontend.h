// Frontend: plays QEMU and the guest's virtio driver in front of a vhost-user-fs back-end
// (dpustor-fsd, virtiofsd), without a VM. Connect() negotiates features and sets the
// device up in QEMU's order; each queue is then a FrontendQueue: submit chains in guest
// memory, kick, wait for completions. Queue 0 is virtio-fs's high-priority queue, 1..N the
// request queues. Disconnect() stops every ring (GET_VRING_BASE) and closes the socket.
//
// Ownership: owns the socket, the guest memory, the rings and their eventfds.
// Threading: Connect/Disconnect/channel() from one controlling thread; each FrontendQueue
// has one owner thread of its own; GuestRam allocation is thread-safe. Every queue's owner
// must be done with it before Disconnect().
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/vufs/channel.h"
#include "fs/vufs/driver_ring.h"
#include "fs/vufs/guest_ram.h"

namespace dpustor::fs::vufs {

// The bytes of a wire struct, as a message payload.
template <class T>
std::span<const uint8_t> AsBytes(const T& v) {
  return {reinterpret_cast<const uint8_t*>(&v), sizeof v};
}

struct FrontendOptions {
  std::string socket_path;
  uint32_t request_queues = 1;
  uint32_t queue_size = 256;
  uint64_t memory_bytes = 256ull << 20;
  bool event_idx = true;  // negotiated when the back-end offers it
  bool indirect = false;  // negotiated when the back-end offers it
  std::chrono::milliseconds reply_timeout{5000};
};

class FrontendQueue {
 public:
  FrontendQueue(uint32_t index, std::unique_ptr<DriverRing> ring, UniqueFd kick, UniqueFd call,
                int socket_fd);

  // See DriverRing::Submit.
  Result<uint16_t> Submit(std::span<const Segment> readable, std::span<const Segment> writable) {
    return ring_->Submit(readable, writable);
  }
  // Writes the kick eventfd when the back-end asked to be notified.
  Status Kick();
  // A completion if one is there; never blocks.
  Result<std::optional<UsedElem>> Poll() { return ring_->PopUsed(); }
  // The next completion, sleeping on the call eventfd; kTimeout after `timeout`,
  // kConnectionClosed when the back-end hangs up meanwhile.
  Result<UsedElem> Wait(std::chrono::milliseconds timeout);

  uint32_t index() const { return index_; }
  DriverRing& ring() { return *ring_; }
  uint64_t kicks() const { return kicks_; }
  uint64_t sleeps() const { return sleeps_; }
  int kick_fd() const { return kick_.get(); }
  int call_fd() const { return call_.get(); }

 private:
  uint32_t index_;
  std::unique_ptr<DriverRing> ring_;
  UniqueFd kick_;
  UniqueFd call_;
  int socket_fd_;
  uint64_t kicks_ = 0;
  uint64_t sleeps_ = 0;
};

class Frontend {
 public:
  // Connects and sets the device up: GET_FEATURES, GET/SET_PROTOCOL_FEATURES, GET_QUEUE_NUM,
  // SET_OWNER, GET_FEATURES, then per ring SET_VRING_CALL, SET_FEATURES, SET_MEM_TABLE, per
  // ring SET_VRING_NUM/BASE/ADDR/KICK, then SET_VRING_ENABLE. With REPLY_ACK every setting
  // message asks for an ack, and a refusal fails Connect.
  static Result<std::unique_ptr<Frontend>> Connect(const FrontendOptions& options);
  ~Frontend();  // Disconnect(), errors ignored
  Frontend(const Frontend&) = delete;
  Frontend& operator=(const Frontend&) = delete;

  // GET_VRING_BASE on every ring (stops it in the back-end), then closes the socket.
  // Idempotent.
  Status Disconnect();

  uint32_t queue_count() const { return static_cast<uint32_t>(queues_.size()); }
  FrontendQueue& queue(uint32_t index) { return *queues_.at(index); }
  GuestRam& ram() { return *ram_; }
  const FrontendOptions& options() const { return options_; }
  uint64_t features() const { return features_; }  // negotiated
  uint64_t protocol_features() const { return protocol_features_; }
  uint64_t backend_queue_num() const { return backend_queue_num_; }  // 0 without MQ
  // Last indexes GET_VRING_BASE returned at Disconnect, per ring.
  const std::vector<uint32_t>& stopped_bases() const { return stopped_bases_; }

  // Raw access for tests (hostile messages after setup).
  Channel& channel() { return channel_; }

 private:
  Frontend(FrontendOptions options, Channel channel, std::unique_ptr<GuestRam> ram);
  Status Setup();
  // A setting message; with REPLY_ACK it asks for and checks the ack.
  Status Set(vhost_user::Request request, std::span<const uint8_t> payload,
             std::span<const int> fds = {});
  // A GET_* message; returns the reply payload after checking the reply header.
  Result<std::vector<uint8_t>> Get(vhost_user::Request request, std::span<const uint8_t> payload,
                                   uint32_t reply_size);
  Result<std::vector<uint8_t>> ReadReply(vhost_user::Request request, uint32_t reply_size);
  Result<uint64_t> GetU64(vhost_user::Request request);
  Status SetU64(vhost_user::Request request, uint64_t value, std::span<const int> fds = {});

  FrontendOptions options_;
  Channel channel_;
  std::unique_ptr<GuestRam> ram_;
  std::vector<std::unique_ptr<FrontendQueue>> queues_;
  uint64_t features_ = 0;
  uint64_t protocol_features_ = 0;
  uint64_t backend_queue_num_ = 0;
  bool reply_ack_ = false;
  std::vector<uint32_t> stopped_bases_;
};

}  // namespace dpustor::fs::vufs
