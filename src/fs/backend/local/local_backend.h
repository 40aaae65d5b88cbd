// The `local` backend: passthrough of a host directory (the shared root). Owned by the
// file-system data plane (one instance per dpustor-fsd export).
//
// Inodes are kept by file handle (name_to_handle_at, reopened with open_by_handle_at on an
// fd of the same file system), keyed by (st_dev, handle bytes), so a million looked-up files
// cost a million small handles, not a million descriptors. open_by_handle_at needs
// CAP_DAC_READ_SEARCH; without it, or on a file system without handles, a node keeps one
// O_PATH descriptor instead (keyed by (st_dev, st_ino)). The mode is chosen once at open
// and logged; a file system that refuses handles inside the root falls back per node.
//
// Confinement: every operation is an *at() call relative to the parent's descriptor with a
// single-component name, with O_NOFOLLOW / AT_SYMLINK_NOFOLLOW; symlinks are never resolved
// here (readlink returns the text, the client resolves it) and a symlink node cannot be
// opened for I/O (ELOOP). No path strings are built from names. A node that a host-side
// rename moved out of the root stays usable through its handle (as with virtiofsd), but no
// name looked up from the root can reach outside it.
//
// Callers: when the daemon runs as root, objects are created (and access() is checked)
// under the caller's fsuid/fsgid, switched per thread around the call; the host kernel then
// applies setgid-directory inheritance. Supplementary groups are the daemon's, not the
// caller's. Other permission checks are left to the client kernel (default_permissions).
// Non-root callers may only set or remove user.* xattrs and do not see trusted.* ones.
//
// Locks: POSIX locks are OFD locks on the open file (one owner per FUSE file handle, so
// processes sharing one open file, after fork, share its locks); flock() is flock() on it.
// A blocking request is retried without blocking on a waiter thread with a backoff and
// answered EINTR once the request is interrupted.
//
// URL: `local:/srv/share?cache=auto&writeback=on&xattr=on&handles=auto`
//   cache=none|auto|always  entry/attr timeouts 0 s / 1 s / 1 day; always also keeps the
//                           page cache across opens (only safe if nobody else writes)
//   writeback=on|off        allow the kernel's writeback cache (files open O_RDWR, the
//                           kernel computes O_APPEND offsets); default on
//   xattr=on|off            extended attributes (off: ENOSYS, the kernel stops asking)
//   handles=auto|off        off: always one O_PATH descriptor per node
//
// Threading: every method may run concurrently; node state is immutable after lookup except
// what the InodeTable guards, directory handles have their own mutex.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"
#include "fs/backend/backend_url.h"
#include "fs/fuse/backend.h"
#include "fs/fuse/handle_table.h"
#include "fs/fuse/inode_table.h"

namespace dpustor::fs {

struct LocalOptions {
  std::string root;           // the shared directory
  double timeout = 1.0;       // entry and attribute timeout, seconds
  bool keep_cache = false;    // OpenInfo::keep_cache on every open
  bool writeback = true;      // Capabilities::writeback_cache, and the open flags it needs
  bool xattr = true;          // extended attributes served
  bool allow_handles = true;  // false: never use file handles
};

class LocalBackend : public Backend {
 public:
  // Opens the root (which must be a directory) and picks the inode mode.
  static Result<std::unique_ptr<LocalBackend>> Make(const LocalOptions& options);
  ~LocalBackend() override;
  LocalBackend(const LocalBackend&) = delete;
  LocalBackend& operator=(const LocalBackend&) = delete;

  Capabilities Init() override;
  void Destroy() override;

  void Lookup(Request* r, uint64_t parent, std::string_view name) override;
  void Forget(uint64_t ino, uint64_t nlookup) override;
  void Getattr(Request* r, uint64_t ino, const FileInfo* fi) override;
  void Setattr(Request* r, uint64_t ino, const SetattrArgs& a) override;
  void Readlink(Request* r, uint64_t ino) override;
  void Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode, dev_t rdev) override;
  void Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode) override;
  void Symlink(Request* r, std::string_view target, uint64_t parent,
               std::string_view name) override;
  void Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname) override;
  void Unlink(Request* r, uint64_t parent, std::string_view name) override;
  void Rmdir(Request* r, uint64_t parent, std::string_view name) override;
  void Rename(Request* r, uint64_t parent, std::string_view name, uint64_t newparent,
              std::string_view newname, uint32_t flags) override;

  void Open(Request* r, uint64_t ino, const FileInfo& fi) override;
  void Create(Request* r, uint64_t parent, std::string_view name, mode_t mode,
              const FileInfo& fi) override;
  void Read(Request* r, uint64_t ino, size_t size, uint64_t off, const FileInfo& fi) override;
  void Write(Request* r, uint64_t ino, std::span<const iovec> data, uint64_t off,
             const FileInfo& fi) override;
  void Flush(Request* r, uint64_t ino, const FileInfo& fi) override;
  void Release(Request* r, uint64_t ino, const FileInfo& fi) override;
  void Fsync(Request* r, uint64_t ino, bool datasync, const FileInfo& fi) override;

  void Opendir(Request* r, uint64_t ino, const FileInfo& fi) override;
  void Readdir(Request* r, uint64_t ino, size_t size, uint64_t off, bool plus,
               const FileInfo& fi) override;
  void Releasedir(Request* r, uint64_t ino, const FileInfo& fi) override;
  void Fsyncdir(Request* r, uint64_t ino, bool datasync, const FileInfo& fi) override;

  void Statfs(Request* r, uint64_t ino) override;
  void Setxattr(Request* r, uint64_t ino, std::string_view name, std::span<const char> value,
                int flags) override;
  void Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size) override;
  void Listxattr(Request* r, uint64_t ino, size_t size) override;
  void Removexattr(Request* r, uint64_t ino, std::string_view name) override;
  void Access(Request* r, uint64_t ino, int mask) override;

  void Getlk(Request* r, uint64_t ino, const FileInfo& fi,
             const struct fuse_file_lock& lk) override;
  void Setlk(Request* r, uint64_t ino, const FileInfo& fi, const struct fuse_file_lock& lk,
             bool sleep) override;
  void Flock(Request* r, uint64_t ino, const FileInfo& fi, int op) override;

  void Fallocate(Request* r, uint64_t ino, const FileInfo& fi, int mode, uint64_t off,
                 uint64_t len) override;
  void Lseek(Request* r, uint64_t ino, const FileInfo& fi, uint64_t off, int whence) override;
  void CopyFileRange(Request* r, uint64_t ino_in, const FileInfo& fi_in, uint64_t off_in,
                     uint64_t ino_out, const FileInfo& fi_out, uint64_t off_out, size_t len,
                     uint64_t flags) override;

  // True when nodes are kept as file handles (no descriptor per node).
  bool uses_handles() const { return use_handles_; }
  // Node ids the kernel currently holds (root included).
  size_t known_nodes() const;

 private:
  struct Node;
  struct OpenFile;   // an open file: its descriptor, closed by the last holder
  struct DirHandle;  // an open directory
  struct NodeKeyHash;
  struct NodeFd;
  class LockWaiter;
  using NodePtr = std::shared_ptr<Node>;
  using Table = InodeTable<Node, NodeKeyHash>;

  LocalBackend(const LocalOptions& options, int root_fd, bool use_handles);

  // A descriptor for the node (O_PATH): its own in fd mode, reopened by handle otherwise.
  int PathFd(const Node& node, NodeFd* out);
  // Looks `name` up under `dir_fd` and takes a lookup on the node.
  int LookupAt(int dir_fd, const char* name, Entry* e);
  // Takes a lookup on the node `opath_fd` (an O_PATH descriptor, consumed) refers to.
  int EntryOf(int opath_fd, Entry* e);
  int MountFd(dev_t dev);
  // Keeps a descriptor of `fd`'s file system for open_by_handle_at; false if it cannot.
  bool RememberMount(dev_t dev, int fd, bool is_dir);
  // Runs `make(parent_fd)` under the caller's credentials, then replies the new entry.
  template <class MakeFn>
  void MakeNode(Request* r, uint64_t parent, std::string_view name, MakeFn&& make);
  int OpenFlags(uint32_t flags) const;

  const LocalOptions options_;
  const bool use_handles_;
  const bool as_root_;  // switch fsuid/fsgid to the caller for creations
  std::unique_ptr<Table> table_;
  HandleTable<OpenFile> files_;  // FUSE fh of open files (checked: the guest may lie)
  HandleTable<DirHandle> dirs_;  // FUSE fh of open directories
  std::mutex mounts_mu_;
  std::unordered_map<dev_t, int> mount_fds_;  // a descriptor on each file system seen
  std::unique_ptr<LockWaiter> waiter_;
};

// Opens the local backend the URL describes (scheme "local", url.path the shared root).
Result<std::unique_ptr<Backend>> OpenLocalBackend(const BackendUrl& url);

}  // namespace dpustor::fs
