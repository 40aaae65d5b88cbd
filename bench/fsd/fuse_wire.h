// Raw FUSE requests as the kernel writes them to /dev/fuse, encoded once in memory and
// replayed by the engine benchmark, plus the few reply fields the benchmark's setup reads
// (node ids, file handles). Layouts are <linux/fuse.h>'s.
#pragma once

#include <linux/fuse.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace dpustor::bench {

// One request: fuse_in_header, the opcode's argument struct, then names or write payload,
// in one contiguous buffer (what a read() of /dev/fuse returns).
class WireRequest {
 public:
  WireRequest() = default;
  WireRequest(uint32_t opcode, uint64_t nodeid) {
    fuse_in_header h{};
    h.opcode = opcode;
    h.nodeid = nodeid;
    h.uid = static_cast<uint32_t>(getuid());
    h.gid = static_cast<uint32_t>(getgid());
    h.pid = static_cast<uint32_t>(getpid());
    Append(&h, sizeof(h));
  }

  template <class T>
  WireRequest& Arg(const T& arg) {
    Append(&arg, sizeof(arg));
    return *this;
  }
  WireRequest& Name(std::string_view name) {
    Append(name.data(), name.size());
    buf_.push_back('\0');
    Fix();
    return *this;
  }
  WireRequest& Payload(size_t n, char fill) {
    buf_.insert(buf_.end(), n, fill);
    Fix();
    return *this;
  }

  // Each replay gets a fresh unique id, as the kernel would give it.
  void set_unique(uint64_t unique) { header()->unique = unique; }
  void set_nodeid(uint64_t nodeid) { header()->nodeid = nodeid; }
  // The argument struct right after the header, to change it between replays.
  template <class T>
  T* arg() {
    return reinterpret_cast<T*>(buf_.data() + sizeof(fuse_in_header));
  }
  uint32_t opcode() const { return header()->opcode; }
  void* data() { return buf_.data(); }
  size_t size() const { return buf_.size(); }

 private:
  fuse_in_header* header() { return reinterpret_cast<fuse_in_header*>(buf_.data()); }
  const fuse_in_header* header() const {
    return reinterpret_cast<const fuse_in_header*>(buf_.data());
  }
  void Append(const void* p, size_t n) {
    auto* c = static_cast<const char*>(p);
    buf_.insert(buf_.end(), c, c + n);
    Fix();
  }
  void Fix() { header()->len = static_cast<uint32_t>(buf_.size()); }

  std::vector<char> buf_;
};

// What Linux 6.x offers in FUSE_INIT (minus splice, which neither side uses here).
inline WireRequest InitRequest() {
  fuse_init_in in{};
  in.major = FUSE_KERNEL_VERSION;
  in.minor = FUSE_KERNEL_MINOR_VERSION;
  in.max_readahead = 128 * 1024;
  in.flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC | FUSE_EXPORT_SUPPORT |
             FUSE_BIG_WRITES | FUSE_DONT_MASK | FUSE_FLOCK_LOCKS | FUSE_AUTO_INVAL_DATA |
             FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_WRITEBACK_CACHE |
             FUSE_PARALLEL_DIROPS | FUSE_HANDLE_KILLPRIV | FUSE_POSIX_ACL | FUSE_ABORT_ERROR |
             FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
  return WireRequest(FUSE_INIT, 0).Arg(in);
}

inline WireRequest LookupRequest(uint64_t parent, std::string_view name) {
  return WireRequest(FUSE_LOOKUP, parent).Name(name);
}

inline WireRequest ForgetRequest(uint64_t nodeid, uint64_t nlookup) {
  fuse_forget_in in{};
  in.nlookup = nlookup;
  return WireRequest(FUSE_FORGET, nodeid).Arg(in);
}

inline WireRequest GetattrRequest(uint64_t nodeid) {
  fuse_getattr_in in{};
  return WireRequest(FUSE_GETATTR, nodeid).Arg(in);
}

inline WireRequest OpenRequest(uint32_t opcode, uint64_t nodeid, uint32_t flags) {
  fuse_open_in in{};
  in.flags = flags;
  return WireRequest(opcode, nodeid).Arg(in);
}

inline WireRequest ReleaseRequest(uint32_t opcode, uint64_t nodeid, uint64_t fh, uint32_t flags) {
  fuse_release_in in{};
  in.fh = fh;
  in.flags = flags;
  return WireRequest(opcode, nodeid).Arg(in);
}

// READ, READDIR, READDIRPLUS share fuse_read_in.
inline WireRequest ReadRequest(uint32_t opcode, uint64_t nodeid, uint64_t fh, uint64_t off,
                               uint32_t size, uint32_t flags) {
  fuse_read_in in{};
  in.fh = fh;
  in.offset = off;
  in.size = size;
  in.flags = flags;
  return WireRequest(opcode, nodeid).Arg(in);
}

inline WireRequest WriteRequest(uint64_t nodeid, uint64_t fh, uint64_t off, uint32_t size,
                                uint32_t flags) {
  fuse_write_in in{};
  in.fh = fh;
  in.offset = off;
  in.size = size;
  in.flags = flags;
  return WireRequest(FUSE_WRITE, nodeid).Arg(in).Payload(size, 'w');
}

inline WireRequest CreateRequest(uint64_t parent, std::string_view name, uint32_t mode,
                                 uint32_t flags) {
  fuse_create_in in{};
  in.flags = flags;
  in.mode = mode;
  in.umask = 022;
  return WireRequest(FUSE_CREATE, parent).Arg(in).Name(name);
}

inline WireRequest MkdirRequest(uint64_t parent, std::string_view name, uint32_t mode) {
  fuse_mkdir_in in{};
  in.mode = mode;
  in.umask = 022;
  return WireRequest(FUSE_MKDIR, parent).Arg(in).Name(name);
}

inline WireRequest UnlinkRequest(uint64_t parent, std::string_view name) {
  return WireRequest(FUSE_UNLINK, parent).Name(name);
}

// Reply fields, read from the reply bytes (fuse_out_header first).
inline int32_t ReplyErrno(const char* reply, size_t n) {
  if (n < sizeof(fuse_out_header)) return -EIO;
  fuse_out_header h;
  std::memcpy(&h, reply, sizeof(h));
  return h.error;
}

// LOOKUP, MKDIR, CREATE: the entry's node id.
inline uint64_t ReplyNodeId(const char* reply, size_t n) {
  if (n < sizeof(fuse_out_header) + sizeof(fuse_entry_out)) return 0;
  fuse_entry_out e;
  std::memcpy(&e, reply + sizeof(fuse_out_header), sizeof(e));
  return e.nodeid;
}

// OPEN, OPENDIR: the handle.
inline uint64_t ReplyOpenFh(const char* reply, size_t n) {
  if (n < sizeof(fuse_out_header) + sizeof(fuse_open_out)) return 0;
  fuse_open_out o;
  std::memcpy(&o, reply + sizeof(fuse_out_header), sizeof(o));
  return o.fh;
}

// CREATE: the handle after the entry.
inline uint64_t ReplyCreateFh(const char* reply, size_t n) {
  size_t at = sizeof(fuse_out_header) + sizeof(fuse_entry_out);
  if (n < at + sizeof(fuse_open_out)) return 0;
  fuse_open_out o;
  std::memcpy(&o, reply + at, sizeof(o));
  return o.fh;
}

// READDIR / READDIRPLUS: how many entries the reply holds.
inline int CountDirEntries(const char* reply, size_t n, bool plus) {
  size_t at = sizeof(fuse_out_header);
  int count = 0;
  while (at < n) {
    if (plus) at += sizeof(fuse_entry_out);
    if (at + FUSE_NAME_OFFSET > n) break;
    fuse_dirent d;
    std::memcpy(&d, reply + at, FUSE_NAME_OFFSET);
    at += FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + d.namelen);
    ++count;
  }
  return count;
}

}  // namespace dpustor::bench
