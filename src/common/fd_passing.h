// Receiving file descriptors over a Unix socket (SCM_RIGHTS), as fusermount3 and vhost-user
// front-ends send them. Every descriptor that arrives is owned by the caller at once, so
// none can leak whatever the message turns out to be.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

#include "common/unique_fd.h"

namespace dpustor {

// recvmsg() of up to `len` bytes into `buf` with room for `max_fds` descriptors (received
// close-on-exec, appended to `fds`); retries EINTR. Returns the byte count (0: the peer
// closed) or -1 with errno set. `*truncated` tells whether more descriptors were sent than
// there was room for (the kernel closed those).
ssize_t RecvWithFds(int sock, void* buf, size_t len, size_t max_fds, std::vector<UniqueFd>* fds,
                    bool* truncated);

}  // namespace dpustor
