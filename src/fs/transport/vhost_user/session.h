// Session: the back-end state of one connected vhost-user front-end (one VM's virtio-fs
// device): negotiated features, the guest memory table, and the virtqueues with one thread
// each. It turns front-end messages into state changes and replies, and hands every chain
// the driver makes available to the VirtioFsHandler. Knows no socket: the device reads
// messages (message_io.h) and passes them in, which is also how the fuzzer drives it.
//
// Every message is hostile: sizes, indexes, addresses, fds and ordering are checked; a bad
// message is refused with an error and changes nothing. A queue whose ring turns out to be
// malformed is stopped (its error eventfd is signalled), the other queues go on.
//
// Threading: Handle/Stop from one thread (the device's connection thread). Queue threads
// call the handler; completions may come from any thread. status()/inflight() from any.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/transport/vhost_user/protocol.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs::vhost_user {

// One message as read from the socket (or built by a test / the fuzzer).
struct Message {
  MessageHeader header{};
  std::vector<uint8_t> payload;  // header.size bytes
  std::vector<UniqueFd> fds;     // SCM_RIGHTS descriptors, in order
};

struct SessionOptions {
  uint32_t request_queues = 1;  // the device has 1 + request_queues queues
  uint32_t max_queue_size = 1024;
};

class Session {
 public:
  Session(VirtioFsHandler& handler, SessionOptions options);
  ~Session();  // Stop()
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // What Handle did: `status` is an error when the message was refused (nothing changed);
  // `reply`, when set, goes back to the front-end (a GET_* answer, or with REPLY_ACK
  // negotiated and NEED_REPLY set, the ack: 0, or 1 for a refused message).
  struct Outcome {
    Status status;
    std::optional<Message> reply;
    bool close = false;  // refused a request the front-end waits on: disconnect
  };
  // Applies one message.
  Outcome Handle(Message msg);

  // Stops every queue thread and waits until every request handed to the handler has
  // completed. Memory stays mapped until the Session is destroyed. Idempotent.
  void Stop();

  size_t inflight() const;
  // {queues: [{index, enabled, started, size, requests, broken}], features, protocol_features}
  nlohmann::json status() const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

}  // namespace dpustor::fs::vhost_user
