// The `memory` backend: a POSIX file system held in RAM, for engine benchmarks and tests.
// Owned by the file-system data plane (one instance per dpustor-fsd export).
//
// What it keeps: directories (children by name plus stable readdir cookies: every entry gets
// a per-directory sequence number when it is inserted, so a readdir resumed after concurrent
// unlinks neither repeats nor skips surviving entries), regular files as a sparse map of
// 64 KiB chunks (a 5 GiB file with one written block costs one chunk), symlinks, device
// nodes, fifos and sockets (mknod), hard links, user/trusted/security xattrs.
// Not kept: POSIX and flock locks (Capabilities say so, the kernel then locks locally),
// atime on read (as with noatime). Permission checks on ordinary operations are the kernel's
// (mount with default_permissions); Access() answers from the mode bits with a root bypass.
// O_APPEND is ignored on write: the kernel computes the append offset itself (it refreshes
// the size first), which stays correct with the writeback cache on.
//
// URL: `memory:` with optional query `timeout=<seconds>` (entry and attribute cache time the
// kernel is given, default 1.0).
//
// Threading: every method may run concurrently. `tree_mu_` (shared) guards the namespace
// (directory children, parent links, nlink); each node's own mutex guards its attributes,
// data and xattrs. Lock order: tree_mu_, then node mutexes, then the InodeTable's mutex.
// Replies are sent after the locks are released.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <unordered_set>

#include "common/status.h"
#include "fs/backend/backend_url.h"
#include "fs/fuse/backend.h"
#include "fs/fuse/handle_table.h"
#include "fs/fuse/inode_table.h"

namespace dpustor::fs {

struct MemoryOptions {
  double timeout = 1.0;  // entry and attribute timeout handed to the kernel, seconds
};

class MemoryBackend : public Backend {
 public:
  explicit MemoryBackend(MemoryOptions options = {});
  ~MemoryBackend() override;
  MemoryBackend(const MemoryBackend&) = delete;
  MemoryBackend& operator=(const MemoryBackend&) = delete;

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
  void Fsyncdir(Request* r, uint64_t ino, bool datasync, const FileInfo& fi) override;

  void Statfs(Request* r, uint64_t ino) override;
  void Setxattr(Request* r, uint64_t ino, std::string_view name, std::span<const char> value,
                int flags) override;
  void Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size) override;
  void Listxattr(Request* r, uint64_t ino, size_t size) override;
  void Removexattr(Request* r, uint64_t ino, std::string_view name) override;
  void Access(Request* r, uint64_t ino, int mask) override;

  void Fallocate(Request* r, uint64_t ino, const FileInfo& fi, int mode, uint64_t off,
                 uint64_t len) override;
  void Lseek(Request* r, uint64_t ino, const FileInfo& fi, uint64_t off, int whence) override;
  void CopyFileRange(Request* r, uint64_t ino_in, const FileInfo& fi_in, uint64_t off_in,
                     uint64_t ino_out, const FileInfo& fi_out, uint64_t off_out, size_t len,
                     uint64_t flags) override;

  // Node ids the kernel currently holds (root included).
  size_t known_nodes() const;

 private:
  struct Node;
  struct OpenFile;
  struct Usage;
  using NodePtr = std::shared_ptr<Node>;

  NodePtr Find(uint64_t nodeid) const;
  NodePtr FindDir(Request* r, uint64_t nodeid) const;  // replies the error when null
  Entry AcquireEntry(const NodePtr& node);
  NodePtr NewNode(mode_t mode, const Caller& caller, const Node& parent);
  // Inserts `child` as `name` under `parent` (tree_mu_ taken here); 0 or an errno.
  int Insert(Node& parent, std::string_view name, const NodePtr& child);
  void ReplyNewEntry(Request* r, uint64_t parent, std::string_view name, NodePtr child);
  NodePtr FileOf(const FileInfo& fi) const;
  bool IsAncestorOrSelf(const Node* ancestor, const Node* node) const;  // tree_mu_ held

  const MemoryOptions options_;
  mutable std::shared_mutex tree_mu_;
  using Table = InodeTable<Node, std::hash<const Node*>>;  // explicit hash: Node is incomplete here
  std::unique_ptr<Table> table_;
  std::atomic<uint64_t> next_ino_{2};
  std::shared_ptr<Usage> usage_;  // shared with every node: nodes outlive their directory
  // Open files, freed at destruction when a session ended without releasing them.
  HandleTable<OpenFile> open_files_;  // FUSE fh of open files (checked: the guest may lie)
  uint64_t NewOpenFile(NodePtr node);
};

// Opens the memory backend the URL describes (scheme "memory").
Result<std::unique_ptr<Backend>> OpenMemoryBackend(const BackendUrl& url);

}  // namespace dpustor::fs
