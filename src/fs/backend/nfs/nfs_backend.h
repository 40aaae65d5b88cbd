// The `nfs` backend: serves FUSE from an NFSv3 server (NFS-Ganesha over a local dir or
// CephFS, kernel nfsd over JuiceFS...) through libnfs' raw asynchronous NFSv3 RPCs. Owned by
// the file-system data plane (one instance per dpustor-fsd export).
//
// Nodes are NFS file handles: the InodeTable is keyed by the handle bytes, so a handle seen
// again (another lookup, a hard link, readdirplus) maps to the same node id; st_ino is the
// fileid. Every RPC carries the FUSE caller's uid/gid as AUTH_SYS, so the server applies its
// own permission checks and ownership (no fixed root identity).
//
// Data path: READ3/WRITE3 split at the server's rtmax/wtmax (FSINFO). Writes are UNSTABLE
// and COMMITted on flush (close), fsync and release, as the kernel NFS client does for
// close-to-open consistency; a COMMIT whose verifier differs from a write's (the server
// restarted and lost unstable data) fails with EIO rather than claiming durability. The
// kernel's writeback cache stays off: other NFS clients change files behind our back, and
// with writeback the kernel would trust its cached size and mtime over the server's.
//
// Directories: READDIRPLUS3 with large batches (64 KiB) cached per open directory handle;
// the kernel's successive small readdir calls are served from the batch, so listing N
// entries costs about N/batch RPCs, not N^2/batch. Offsets handed to the kernel are
// positions in the listing; each position remembers its NFS cookie so seekdir works.
//
// Open-then-unlinked files: NFSv3 servers keep no open state, so REMOVE of a file still
// open here would make its handle stale. As the kernel NFS client does, such a file is
// renamed to a hidden ".dpustor-silly-*" name in its directory (also when a rename would
// replace it) and removed after its last release; readdir leaves those names out.
//
// Not served, on purpose: extended attributes (NFSv3 has none; ENOSYS so the kernel stops
// asking and applications see EOPNOTSUPP), POSIX and flock locks (NLM is not used: the
// kernel keeps locks local to this client), fallocate (EOPNOTSUPP), SEEK_DATA/HOLE and
// copy_file_range (ENOSYS: the kernel falls back to generic llseek and read/write),
// RENAME_NOREPLACE/EXCHANGE (EINVAL). NFSv4 (version=4) is refused: libnfs 4.0's NFSv4 is
// marked "not yet functional" by its authors (opens ignore write access, creates ignore the
// mode), and a backend that silently loses modes is worse than one that says no.
//
// URL: nfs://host/export?version=3&nfsport=N&mountport=N&connections=4&timeout=30
//   nfsport / mountport  explicit ports (no portmapper); default: ask the portmapper
//   connections          TCP connections, each with its own loop thread (default 4)
//   timeout              seconds an RPC may go unanswered before EIO + reconnect (default 30)
//   attr_timeout         seconds the kernel may cache entries and attributes (default 1)
//
// Threading: every method may run on any thread; RPCs run on the connections' loop threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "fs/backend/backend_url.h"
#include "fs/fuse/backend.h"
#include "fs/fuse/inode_table.h"

namespace dpustor::fs {

namespace nfs {
class Connection;
}

struct NfsOptions {
  std::string server;
  std::string export_path;
  int nfs_port = 0;    // 0: portmapper
  int mount_port = 0;  // 0: portmapper
  int connections = 4;
  std::chrono::milliseconds timeout{30000};
  double attr_timeout = 1.0;
};

// Checks and decodes an nfs:// URL; refuses unknown options and version=4 with the reason.
Result<NfsOptions> ParseNfsOptions(const BackendUrl& url);

class NfsBackend : public Backend {
 public:
  // Mounts the export (MOUNT3), asks FSINFO and opens the connections.
  static Result<std::unique_ptr<NfsBackend>> Make(const NfsOptions& options);
  ~NfsBackend() override;
  NfsBackend(const NfsBackend&) = delete;
  NfsBackend& operator=(const NfsBackend&) = delete;

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

  void Fallocate(Request* r, uint64_t ino, const FileInfo& fi, int mode, uint64_t off,
                 uint64_t len) override;
  void Lseek(Request* r, uint64_t ino, const FileInfo& fi, uint64_t off, int whence) override;
  void CopyFileRange(Request* r, uint64_t ino_in, const FileInfo& fi_in, uint64_t off_in,
                     uint64_t ino_out, const FileInfo& fi_out, uint64_t off_out, size_t len,
                     uint64_t flags) override;

  // Observability for tests and stats.
  uint64_t readdirplus_rpcs() const { return readdirplus_rpcs_.load(); }
  uint64_t rpcs_sent() const;
  size_t known_nodes() const;
  uint32_t max_read() const { return rtmax_; }
  uint32_t max_write() const { return wtmax_; }

 private:
  struct Node;
  struct OpenFile;
  struct DirHandle;
  class Ops;
  using NodePtr = std::shared_ptr<Node>;
  using Table = InodeTable<Node, std::hash<std::string>>;  // keyed by NFS handle bytes

  NfsBackend(const NfsOptions& options, std::string root_fh);

  nfs::Connection& NextConnection();
  nfs::Connection& ConnectionFor(uint64_t key);

  const NfsOptions options_;
  std::unique_ptr<Table> table_;
  std::vector<std::unique_ptr<nfs::Connection>> connections_;
  std::atomic<uint64_t> next_connection_{0};
  uint32_t rtmax_ = 1 << 20;
  uint32_t wtmax_ = 1 << 20;
  uint32_t name_max_ = 255;
  std::atomic<uint64_t> readdirplus_rpcs_{0};

  // Files open here, by handle bytes, for "silly rename": unlinking (or renaming over) a
  // file that is still open renames it to a hidden name in its directory instead, and the
  // last release removes that name, so the open file keeps working as POSIX promises.
  struct Silly {
    std::string dir_fh;
    std::string name;
  };
  struct OpenState {
    uint64_t opens = 0;
    std::vector<Silly> hidden;  // names to REMOVE after the last release
  };
  std::mutex open_mu_;
  std::unordered_map<std::string, OpenState> open_;  // only entries with opens > 0
  std::atomic<uint64_t> open_count_{0};              // sum of opens: 0 keeps unlink one REMOVE RPC
  std::atomic<uint64_t> silly_counter_{0};

  std::mutex handles_mu_;
  uint64_t next_handle_ = 1;
  std::unordered_map<uint64_t, std::shared_ptr<OpenFile>> files_;
  std::unordered_map<uint64_t, std::shared_ptr<DirHandle>> dirs_;
};

// Opens the nfs backend the URL describes (scheme "nfs").
Result<std::unique_ptr<Backend>> OpenNfsBackend(const BackendUrl& url);

}  // namespace dpustor::fs
