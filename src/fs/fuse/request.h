// One FUSE request as a backend sees it: who asked, and the reply calls. The engine owns it.
//
// A backend must end every Request it receives with exactly one Reply* call, from any
// thread, at any later time (requests complete out of order). After the Reply* call the
// Request and every span it handed out (names, write payload, data buffers) are gone.
// Which Reply* call is valid is written beside each operation in backend.h; a wrong one
// is answered to the kernel as EIO, never as a malformed reply. A second Reply* made
// before the operation call returns is logged and ignored; one made later touches a
// Request that no longer exists.
#pragma once

#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace dpustor::fs {

// The caller, as the kernel (or the guest kernel) reports it.
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t pid = 0;
};

// What a lookup-like operation returns: the new node and how long the kernel may cache it.
struct Entry {
  uint64_t nodeid = 0;  // 0 = negative entry (cached "does not exist") when replying ENOENT
  uint64_t generation = 0;
  struct stat attr = {};
  double attr_timeout = 1.0;
  double entry_timeout = 1.0;
};

// An open file or directory as the backend chose to describe it.
struct OpenInfo {
  uint64_t fh = 0;  // backend's own handle, passed back in FileInfo::fh
  bool direct_io = false;
  bool keep_cache = false;
  bool nonseekable = false;
  bool cache_dir = false;  // opendir only: the kernel may cache readdir results
};

class Request {
 public:
  virtual ~Request() = default;

  virtual const Caller& caller() const = 0;
  virtual uint64_t unique() const = 0;
  // True once the kernel sent INTERRUPT for this request. A backend that can abandon the
  // work (a blocking lock wait, say) replies EINTR; otherwise it just completes.
  virtual bool interrupted() const = 0;

  // errno > 0: the operation failed. errno == 0: success with an empty reply.
  virtual void ReplyError(int err) = 0;
  void ReplyOk() { ReplyError(0); }

  virtual void ReplyEntry(const Entry& e) = 0;  // lookup mknod mkdir symlink link
  virtual void ReplyCreate(const Entry& e, const OpenInfo& oi) = 0;   // create
  virtual void ReplyAttr(const struct stat& st, double timeout) = 0;  // getattr setattr
  virtual void ReplyOpen(const OpenInfo& oi) = 0;                     // open opendir
  virtual void ReplyWrite(uint32_t count) = 0;                        // write copy_file_range
  virtual void ReplyReadlink(std::string_view target) = 0;            // readlink
  virtual void ReplyStatfs(const struct statvfs& st) = 0;             // statfs
  virtual void ReplyXattrSize(uint32_t size) = 0;  // getxattr/listxattr when asked size was 0
  virtual void ReplyLock(const struct fuse_file_lock& lk) = 0;  // getlk
  virtual void ReplyLseek(uint64_t offset) = 0;                 // lseek

  // read, getxattr, listxattr: copy these bytes into the reply.
  virtual void ReplyData(std::span<const char> data) = 0;
  // read without a copy: buffers of the transport (guest memory, the /dev/fuse reply
  // buffer) with room for up to `max` bytes; fill a prefix of them and ReplyDataFilled(n).
  virtual std::span<const iovec> DataBuffers(size_t max) = 0;
  virtual void ReplyDataFilled(size_t n) = 0;

  // readdir / readdirplus: append entries, then ReplyDir(). Add* returns false when the
  // next entry does not fit in the size the kernel asked for; that entry was not added.
  // A name the kernel would refuse (empty, over 255 bytes, with '/' or NUL) is skipped by
  // AddDirEntry (returns true) and refused by AddDirEntryPlus (returns false). In a
  // readdirplus reply AddDirEntry adds a listing-only entry (no attributes, no lookup).
  // `next_offset` is the cookie the kernel passes back to continue after this entry.
  virtual bool AddDirEntry(std::string_view name, uint64_t ino, uint32_t type,
                           uint64_t next_offset) = 0;
  // readdirplus: `e.nodeid` counts as a lookup (the kernel will FORGET it) only if the
  // entry was added; pass nodeid 0 for "." and "..".
  virtual bool AddDirEntryPlus(std::string_view name, const Entry& e, uint64_t next_offset) = 0;
  virtual void ReplyDir() = 0;
};

}  // namespace dpustor::fs
