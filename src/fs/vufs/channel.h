// Channel: the front-end's end of a vhost-user socket. Sends messages (12-byte header,
// payload, file descriptors as SCM_RIGHTS) and reads the back-end's replies. Send() builds
// a well-formed message; SendRaw() sends whatever header and bytes it is given (the size
// field may lie), which is how tests play a hostile front-end.
//
// Ownership: owns the socket; received fds are owned by the RawMessage.
// Threading: not thread-safe; one owner (the Frontend's controlling thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/transport/vhost_user/protocol.h"

namespace dpustor::fs::vufs {

struct RawMessage {
  vhost_user::MessageHeader header{};
  std::vector<uint8_t> payload;
  std::vector<UniqueFd> fds;
};

class Channel {
 public:
  Channel() = default;
  static Result<Channel> Connect(const std::string& socket_path);

  // header {request, flags | version 1, payload.size()}.
  Status Send(vhost_user::Request request, uint32_t flags, std::span<const uint8_t> payload,
              std::span<const int> fds = {});
  Status SendRaw(const vhost_user::MessageHeader& header, std::span<const uint8_t> payload,
                 std::span<const int> fds = {});
  // One message; kTimeout when none arrives in time, kConnectionClosed on EOF. Payloads
  // larger than vhost_user::kMaxPayload are refused.
  Result<RawMessage> Receive(std::chrono::milliseconds timeout);

  int fd() const { return fd_.get(); }
  bool connected() const { return fd_.valid(); }
  void Close() { fd_.Reset(); }

 private:
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace dpustor::fs::vufs
