// FuseMount: one kernel FUSE mount and its session fd (/dev/fuse), made directly with
// mount(2) when running as root, otherwise through fusermount3 (which hands the fd back
// over a socket). Libfuse is not used: the mount protocol is small and the rest of the
// session belongs to the engine. Owned by the /dev/fuse transport of one share.
// Thread-safety: Unmount/Abort may be called from any thread; the rest is set at creation.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"

namespace dpustor::fs::devfuse {

struct FuseMountOptions {
  std::string mount_dir;  // an existing directory
  std::string source;     // what /proc/mounts shows as the source: the share name
  uint32_t max_read = 1u << 20;
  bool allow_other = true;          // the kernel checks permissions (default_permissions)...
  bool default_permissions = true;  // ...so other users may use the mount safely
  bool read_only = false;
  bool use_fusermount = false;  // mount through fusermount3 even as root
};

class FuseMount {
 public:
  static Result<std::unique_ptr<FuseMount>> Mount(const FuseMountOptions& options);
  // Unmounts (lazily) if still mounted and closes the session fd.
  ~FuseMount();
  FuseMount(const FuseMount&) = delete;
  FuseMount& operator=(const FuseMount&) = delete;

  int session_fd() const { return session_fd_; }
  const std::string& mount_dir() const { return mount_dir_; }

  // Detaches the mount at once (MNT_DETACH / fusermount3 -u -z). The kernel ends the
  // session when the last open file on it is closed; reads on the session then fail with
  // ENODEV. Idempotent; an already vanished mount is not an error.
  Status Unmount();
  // Ends the session now, even with files still open (fusectl's abort file); false when
  // fusectl is not mounted or the connection is already gone.
  bool Abort();

 private:
  FuseMount() = default;
  int session_fd_ = -1;
  std::string mount_dir_;
  uint32_t connection_id_ = 0;  // the mount's device minor: /sys/fs/fuse/connections/N
  std::mutex mu_;               // guards mounted_
  bool mounted_ = false;
};

// The mount options string mount(2) gets for a session on `fd` (exposed for tests).
std::string KernelMountOptions(const FuseMountOptions& options, int fd, uint32_t uid, uint32_t gid);

// A path as /proc/self/mountinfo writes it, with \ooo escapes (space, tab, newline,
// backslash) decoded.
std::string UnescapeMountinfo(const std::string& s);

}  // namespace dpustor::fs::devfuse
