#include "fs/transport/vhost_user/message_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/fd_passing.h"
#include "common/json_rpc.h"

namespace dpustor::fs::vhost_user {
namespace {

Error Malformed(std::string what) {
  return Error{rpc::kInvalidRequest, "vhost-user: " + std::move(what)};
}

Error Closed() {
  return Error{rpc::kConnectionClosed, "vhost-user: front-end closed the connection"};
}

// Reads exactly `len` bytes of a message already begun.
Status ReadFull(int fd, uint8_t* p, size_t len) {
  while (len > 0) {
    ssize_t n = ::read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Malformed(std::string("read: ") + std::strerror(errno));
    if (n == 0) return Malformed("connection closed inside a message");
    p += n;
    len -= static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Result<Message> ReadMessage(int fd) {
  Message m;
  bool truncated = false;
  // Every descriptor that arrived is ours before anything else is judged.
  ssize_t n = RecvWithFds(fd, &m.header, sizeof m.header, kMaxFds, &m.fds, &truncated);
  if (n < 0) {
    if (errno == ECONNRESET) return Closed();
    return Malformed(std::string("recvmsg: ") + std::strerror(errno));
  }
  if (n == 0) return Closed();
  if (truncated) return Malformed("more than 8 file descriptors in a message");
  if (static_cast<size_t>(n) < sizeof m.header) {
    Status rest = ReadFull(fd, reinterpret_cast<uint8_t*>(&m.header) + n,
                           sizeof m.header - static_cast<size_t>(n));
    if (!rest) return rest.error();
  }
  if ((m.header.flags & kVersionMask) != kVersion)
    return Malformed("unsupported protocol version " +
                     std::to_string(m.header.flags & kVersionMask));
  if (m.header.size > kMaxPayload)
    return Malformed("payload of " + std::to_string(m.header.size) + " bytes (most " +
                     std::to_string(kMaxPayload) + ")");
  m.payload.resize(m.header.size);
  if (m.header.size > 0) {
    Status body = ReadFull(fd, m.payload.data(), m.payload.size());
    if (!body) return body.error();
  }
  return m;
}

Status WriteMessage(int fd, const Message& message) {
  MessageHeader header = message.header;
  header.size = static_cast<uint32_t>(message.payload.size());
  iovec iov[2] = {{&header, sizeof header},
                  {const_cast<uint8_t*>(message.payload.data()), message.payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = message.payload.empty() ? 1 : 2;
  if (!message.fds.empty()) {
    if (message.fds.size() > kMaxFds) return Malformed("too many descriptors to send");
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * message.fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * message.fds.size());
    for (size_t i = 0; i < message.fds.size(); ++i) {
      int value = message.fds[i].get();
      std::memcpy(CMSG_DATA(c) + i * sizeof(int), &value, sizeof(int));
    }
  }
  size_t total = sizeof header + message.payload.size();
  size_t sent = 0;
  while (sent < total) {
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Error{rpc::kConnectionClosed, std::string("sendmsg: ") + std::strerror(errno)};
    sent += static_cast<size_t>(n);
    if (sent == total) break;
    // Short write: send the rest without descriptors.
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    size_t skip = static_cast<size_t>(n);
    while (msg.msg_iovlen > 0 && skip >= msg.msg_iov[0].iov_len) {
      skip -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    msg.msg_iov[0].iov_base = static_cast<uint8_t*>(msg.msg_iov[0].iov_base) + skip;
    msg.msg_iov[0].iov_len -= skip;
  }
  return {};
}

}  // namespace dpustor::fs::vhost_user
