// Reading and writing vhost-user messages on a connected Unix stream socket. The header
// arrives with any SCM_RIGHTS descriptors; the payload follows. Everything the peer sends
// is checked before it is trusted: the version bits, the payload size (<= kMaxPayload) and
// the descriptor count (<= kMaxFds; a truncated control message closes what arrived).
// Threading: one reader and one writer per socket.
#pragma once

#include "common/status.h"
#include "fs/transport/vhost_user/session.h"

namespace dpustor::fs::vhost_user {

// The next message. Fails with rpc::kConnectionClosed when the peer closed the socket
// between messages, with rpc::kInvalidRequest for a malformed one (the connection is then
// out of step and must be closed).
Result<Message> ReadMessage(int fd);

// Writes header + payload (and the message's fds, if any). Retries short writes and EINTR.
Status WriteMessage(int fd, const Message& message);

}  // namespace dpustor::fs::vhost_user
