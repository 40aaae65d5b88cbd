// The file-system surface the FUSE engine serves: one table of operations, as in libfuse's
// lowlevel API, but asynchronous (see request.h). A backend knows one storage system; it
// never knows which transport (the kernel's /dev/fuse, vhost-user, a DPU queue) delivered
// the request.
//
// Threading: the engine calls every method concurrently from the transport's threads; a
// backend is thread-safe. Node ids are the backend's (see inode_table.h); node id 1
// (FUSE_ROOT_ID) is the root and is never forgotten. Names are single path components,
// never empty, never containing '/', never "." or ".." (the engine refuses those).
// Every default implementation replies ENOSYS, which the kernel remembers for several
// operations and stops sending.
#pragma once

#include <linux/fuse.h>
#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string_view>

#include "fs/fuse/request.h"

namespace dpustor::fs {

// What the backend can do; the engine negotiates FUSE_INIT from it.
struct Capabilities {
  bool posix_locks = false;      // getlk/setlk/setlkw implemented
  bool flock_locks = false;      // flock (setlk with FUSE_LK_FLOCK) implemented
  bool writeback_cache = false;  // safe to let the kernel cache writes
  bool readdirplus = true;
  bool parallel_dirops = true;
  bool async_read = true;
  bool export_support = false;  // lookups of "." and ".." by node id work (NFS re-export)
  bool handle_killpriv = false;
  bool atomic_o_trunc = true;    // open() honours O_TRUNC (else the kernel truncates by SETATTR)
  uint32_t max_write = 1 << 20;  // largest write payload the backend accepts
};

// An open file as the kernel passes it back: FileInfo::fh is the OpenInfo::fh replied.
struct FileInfo {
  uint64_t fh = 0;
  uint32_t flags = 0;  // open flags (O_ACCMODE, O_APPEND, O_DIRECT...)
  uint64_t lock_owner = 0;
};

// Setattr arguments: `valid` is the FATTR_* mask of fields to change.
struct SetattrArgs {
  uint32_t valid = 0;
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  uint64_t size = 0;
  struct timespec atime = {};  // FATTR_ATIME_NOW / FATTR_MTIME_NOW mean "now"
  struct timespec mtime = {};
  struct timespec ctime = {};
  const FileInfo* fi = nullptr;  // set when FATTR_FH: the change came through an open file
};

class Backend {
 public:
  virtual ~Backend() = default;

  // Called once per FUSE_INIT, before any other operation of that session.
  virtual Capabilities Init();
  // The session ended (FUSE_DESTROY or the transport went away): drop every lookup count.
  virtual void Destroy() {}

  // Reply: Entry, or ENOENT (optionally with a negative Entry via ReplyEntry nodeid 0).
  virtual void Lookup(Request* r, uint64_t parent, std::string_view name);
  // No reply. Drops `nlookup` from the node's lookup count.
  virtual void Forget(uint64_t ino, uint64_t nlookup);
  // Reply: Attr. `fi` is set when the kernel asked through an open file.
  virtual void Getattr(Request* r, uint64_t ino, const FileInfo* fi);
  // Reply: Attr (the attributes after the change).
  virtual void Setattr(Request* r, uint64_t ino, const SetattrArgs& a);
  // Reply: Readlink.
  virtual void Readlink(Request* r, uint64_t ino);
  // Reply: Entry. `mode` already has the umask applied by the kernel unless DONT_MASK.
  virtual void Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode, dev_t rdev);
  virtual void Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode);
  virtual void Symlink(Request* r, std::string_view target, uint64_t parent, std::string_view name);
  virtual void Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname);
  // Reply: Ok.
  virtual void Unlink(Request* r, uint64_t parent, std::string_view name);
  virtual void Rmdir(Request* r, uint64_t parent, std::string_view name);
  // Reply: Ok. `flags`: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (EINVAL if unsupported).
  virtual void Rename(Request* r, uint64_t parent, std::string_view name, uint64_t newparent,
                      std::string_view newname, uint32_t flags);

  // Reply: Open. `fi.flags` holds the open flags.
  virtual void Open(Request* r, uint64_t ino, const FileInfo& fi);
  // Reply: Create (the entry and the open file). `mode` has the umask applied.
  virtual void Create(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                      const FileInfo& fi);
  // Reply: Data / DataFilled (short at end of file), or an error.
  virtual void Read(Request* r, uint64_t ino, size_t size, uint64_t off, const FileInfo& fi);
  // Reply: Write(bytes written). `data` stays valid until the reply.
  virtual void Write(Request* r, uint64_t ino, std::span<const iovec> data, uint64_t off,
                     const FileInfo& fi);
  // Reply: Ok.
  virtual void Flush(Request* r, uint64_t ino, const FileInfo& fi);
  virtual void Release(Request* r, uint64_t ino, const FileInfo& fi);
  virtual void Fsync(Request* r, uint64_t ino, bool datasync, const FileInfo& fi);

  // Reply: Open.
  virtual void Opendir(Request* r, uint64_t ino, const FileInfo& fi);
  // Reply: AddDirEntry[Plus]... then Dir. `off` is 0 or a cookie the backend gave earlier.
  virtual void Readdir(Request* r, uint64_t ino, size_t size, uint64_t off, bool plus,
                       const FileInfo& fi);
  // Reply: Ok.
  virtual void Releasedir(Request* r, uint64_t ino, const FileInfo& fi);
  virtual void Fsyncdir(Request* r, uint64_t ino, bool datasync, const FileInfo& fi);

  // Reply: Statfs.
  virtual void Statfs(Request* r, uint64_t ino);
  // Reply: Ok. `flags`: XATTR_CREATE / XATTR_REPLACE.
  virtual void Setxattr(Request* r, uint64_t ino, std::string_view name,
                        std::span<const char> value, int flags);
  // Reply: XattrSize when size == 0, else Data (ERANGE if it does not fit).
  virtual void Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size);
  virtual void Listxattr(Request* r, uint64_t ino, size_t size);
  // Reply: Ok.
  virtual void Removexattr(Request* r, uint64_t ino, std::string_view name);
  // Reply: Ok or EACCES. `mask`: R_OK | W_OK | X_OK or F_OK.
  virtual void Access(Request* r, uint64_t ino, int mask);

  // Reply: Lock (F_UNLCK type if the range is free).
  virtual void Getlk(Request* r, uint64_t ino, const FileInfo& fi, const struct fuse_file_lock& lk);
  // Reply: Ok, EAGAIN if it conflicts and !sleep; with sleep wait (EINTR when interrupted).
  virtual void Setlk(Request* r, uint64_t ino, const FileInfo& fi, const struct fuse_file_lock& lk,
                     bool sleep);
  // Reply: Ok / EWOULDBLOCK. `op`: LOCK_SH, LOCK_EX, LOCK_UN, maybe | LOCK_NB.
  virtual void Flock(Request* r, uint64_t ino, const FileInfo& fi, int op);

  // Reply: Ok.
  virtual void Fallocate(Request* r, uint64_t ino, const FileInfo& fi, int mode, uint64_t off,
                         uint64_t len);
  // Reply: Lseek. `whence`: SEEK_DATA or SEEK_HOLE (others are answered by the kernel).
  virtual void Lseek(Request* r, uint64_t ino, const FileInfo& fi, uint64_t off, int whence);
  // Reply: Write(bytes copied).
  virtual void CopyFileRange(Request* r, uint64_t ino_in, const FileInfo& fi_in, uint64_t off_in,
                             uint64_t ino_out, const FileInfo& fi_out, uint64_t off_out, size_t len,
                             uint64_t flags);

 protected:
  static void Nosys(Request* r);
};

}  // namespace dpustor::fs
