// ListenUnix: a listening Unix stream socket that appears at its path only once it accepts
// connections. Clients that wait for the path and connect at once (QEMU's -chardev socket,
// an agent, a test) would otherwise meet ECONNREFUSED between bind() and listen(): the
// socket is bound and set listening under a temporary name in the same directory and then
// renamed into place (atomic within one file system). A stale socket left by a dead process
// is replaced; a live one, or a path that is not a socket, is an error and left untouched.
// Tools that list sockets by their bound name (ss -xl, /proc/net/unix) show PATH.PID.tmp.
#pragma once

#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace dpustor {

// The listening descriptor (SOCK_CLOEXEC, blocking). Errors carry the reason only; callers
// name the socket in their own words.
Result<UniqueFd> ListenUnix(const std::string& path, int backlog);

// True when some process accepts connections at `path`.
bool UnixSocketAlive(const std::string& path);

}  // namespace dpustor
