#include "fs/vufs/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "common/fd_passing.h"
#include "common/json_rpc.h"

namespace dpustor::fs::vufs {
namespace {

namespace vu = dpustor::fs::vhost_user;

Error Sys(const std::string& what) {
  return Error{rpc::kFailed, what + ": " + std::strerror(errno)};
}

// Waits until `fd` is readable; kTimeout / kConnectionClosed otherwise.
Status WaitReadable(int fd, std::chrono::milliseconds timeout) {
  pollfd p{fd, POLLIN, 0};
  for (;;) {
    int n = poll(&p, 1, static_cast<int>(timeout.count()));
    if (n > 0) return Status::Ok();
    if (n == 0) return Error{rpc::kTimeout, "no reply from the vhost-user back-end in time"};
    if (errno != EINTR) return Sys("poll vhost-user socket");
  }
}

// Reads exactly `len` bytes (after the header) or fails.
Status ReadFull(int fd, uint8_t* p, size_t len, std::chrono::milliseconds timeout) {
  while (len > 0) {
    if (Status s = WaitReadable(fd, timeout); !s) return s;
    ssize_t n = recv(fd, p, len, 0);
    if (n == 0) return Error{rpc::kConnectionClosed, "vhost-user back-end closed the socket"};
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return Sys("recv vhost-user payload");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<Channel> Channel::Connect(const std::string& socket_path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
    return Error{rpc::kInvalidParams, "socket path '" + socket_path + "' empty or too long"};
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Sys("socket");
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return Sys("connect " + socket_path);
  return Channel(std::move(fd));
}

Status Channel::Send(vu::Request request, uint32_t flags, std::span<const uint8_t> payload,
                     std::span<const int> fds) {
  vu::MessageHeader h{static_cast<uint32_t>(request), (flags & ~vu::kVersionMask) | vu::kVersion,
                      static_cast<uint32_t>(payload.size())};
  return SendRaw(h, payload, fds);
}

Status Channel::SendRaw(const vu::MessageHeader& header, std::span<const uint8_t> payload,
                        std::span<const int> fds) {
  if (!fd_.valid()) return Error{rpc::kConnectionClosed, "vhost-user socket closed"};
  if (fds.size() > 253) return Error{rpc::kInvalidParams, "too many fds for one message"};
  iovec iov[2] = {{const_cast<vu::MessageHeader*>(&header), sizeof header},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  std::vector<uint8_t> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  size_t total = sizeof header + payload.size();
  ssize_t n;
  do n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return Sys("send vhost-user message");
  // The fds went with the first byte; send whatever the kernel did not take at once.
  size_t sent = static_cast<size_t>(n);
  while (sent < total) {
    const uint8_t* p;
    size_t len;
    if (sent < sizeof header) {
      p = reinterpret_cast<const uint8_t*>(&header) + sent;
      len = sizeof header - sent;
    } else {
      p = payload.data() + (sent - sizeof header);
      len = total - sent;
    }
    n = send(fd_.get(), p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Sys("send vhost-user message");
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<RawMessage> Channel::Receive(std::chrono::milliseconds timeout) {
  if (!fd_.valid()) return Error{rpc::kConnectionClosed, "vhost-user socket closed"};
  if (Status s = WaitReadable(fd_.get(), timeout); !s) return s.error();
  RawMessage m;
  bool truncated = false;
  ssize_t n = RecvWithFds(fd_.get(), &m.header, sizeof m.header, vu::kMaxFds, &m.fds, &truncated);
  if (n < 0) return Sys("recv vhost-user header");
  if (n == 0) return Error{rpc::kConnectionClosed, "vhost-user back-end closed the socket"};
  if (truncated) return Error{rpc::kFailed, "vhost-user reply with too many descriptors"};
  if (static_cast<size_t>(n) < sizeof m.header) {
    Status s = ReadFull(fd_.get(), reinterpret_cast<uint8_t*>(&m.header) + n,
                        sizeof m.header - static_cast<size_t>(n), timeout);
    if (!s) return s.error();
  }
  if (m.header.size > vu::kMaxPayload)
    return Error{rpc::kFailed, "vhost-user reply payload of " + std::to_string(m.header.size) +
                                   " bytes is larger than any valid reply"};
  m.payload.resize(m.header.size);
  if (Status s = ReadFull(fd_.get(), m.payload.data(), m.payload.size(), timeout); !s)
    return s.error();
  return m;
}

}  // namespace dpustor::fs::vufs
