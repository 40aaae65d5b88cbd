// The FUSE engine: request decoding, FUSE_INIT negotiation, dispatch to the backend and
// reply encoding. Every length, offset and string in a request is checked against the
// bytes actually present: a request comes from a kernel we trust less than ourselves (a
// guest's, through a virtqueue).
#include "fs/fuse/engine.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "fs/fuse/fuse_request.h"
#include "fs/fuse/scatter.h"

namespace dpustor::fs {

namespace {

constexpr size_t kHeader = sizeof(fuse_out_header);
// Largest argument block (everything but a write payload) the engine gathers: an xattr
// value (64 KiB) plus its name, or two names / a symlink target.
constexpr size_t kMaxArgs = 64 * 1024 + 8 * 1024;
constexpr uint32_t kMinMinor = 27;  // Linux 4.20+; older kernels lack what we negotiate
constexpr size_t kNameMax = 255;
constexpr size_t kPathMax = 4096;

void SplitTimeout(double t, uint64_t* sec, uint32_t* nsec) {
  if (!(t > 0)) t = 0;
  if (t > 1e9) t = 1e9;
  double whole = std::floor(t);
  *sec = static_cast<uint64_t>(whole);
  *nsec = static_cast<uint32_t>(std::min((t - whole) * 1e9, 999999999.0));
}

void FillAttr(fuse_attr& a, const struct stat& st) {
  a.ino = st.st_ino;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a.atimensec = static_cast<uint32_t>(st.st_atim.tv_nsec);
  a.mtimensec = static_cast<uint32_t>(st.st_mtim.tv_nsec);
  a.ctimensec = static_cast<uint32_t>(st.st_ctim.tv_nsec);
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = static_cast<uint32_t>(st.st_rdev);
  a.blksize = static_cast<uint32_t>(st.st_blksize);
}

void FillEntry(fuse_entry_out& o, const Entry& e) {
  o = {};
  o.nodeid = e.nodeid;
  o.generation = e.generation;
  SplitTimeout(e.entry_timeout, &o.entry_valid, &o.entry_valid_nsec);
  SplitTimeout(e.attr_timeout, &o.attr_valid, &o.attr_valid_nsec);
  FillAttr(o.attr, e.attr);
}

fuse_open_out OpenOut(const OpenInfo& oi) {
  fuse_open_out o{};
  o.fh = oi.fh;
  if (oi.direct_io) o.open_flags |= FOPEN_DIRECT_IO;
  if (oi.keep_cache) o.open_flags |= FOPEN_KEEP_CACHE;
  if (oi.nonseekable) o.open_flags |= FOPEN_NONSEEKABLE;
  if (oi.cache_dir) o.open_flags |= FOPEN_CACHE_DIR;
  return o;
}

// Reads typed arguments and NUL-terminated strings from a contiguous argument block.
class ArgReader {
 public:
  ArgReader(const char* p, size_t n) : p_(p), left_(n) {}
  template <class T>
  bool Take(T* out, size_t size = sizeof(T)) {
    if (left_ < size) return false;
    *out = {};
    std::memcpy(out, p_, std::min(size, sizeof(T)));
    p_ += size;
    left_ -= size;
    return true;
  }
  // A string ending in NUL within the block; `max` bounds its length.
  bool TakeString(std::string_view* out, size_t max) {
    const void* nul = std::memchr(p_, '\0', left_);
    if (!nul) return false;
    size_t n = static_cast<size_t>(static_cast<const char*>(nul) - p_);
    if (n > max) return false;
    *out = {p_, n};
    p_ += n + 1;
    left_ -= n + 1;
    return true;
  }
  bool TakeBytes(std::span<const char>* out, size_t n) {
    if (left_ < n) return false;
    *out = {p_, n};
    p_ += n;
    left_ -= n;
    return true;
  }
  size_t left() const { return left_; }

 private:
  const char* p_;
  size_t left_;
};

// 0 if `name` may name a directory entry, else the errno to reply.
int CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return EINVAL;
  }
  return name.size() > kNameMax ? ENAMETOOLONG : 0;
}

bool Modifies(uint32_t opcode) {
  switch (opcode) {
    case FUSE_SETATTR:
    case FUSE_SYMLINK:
    case FUSE_MKNOD:
    case FUSE_MKDIR:
    case FUSE_UNLINK:
    case FUSE_RMDIR:
    case FUSE_RENAME:
    case FUSE_RENAME2:
    case FUSE_LINK:
    case FUSE_WRITE:
    case FUSE_SETXATTR:
    case FUSE_REMOVEXATTR:
    case FUSE_CREATE:
    case FUSE_FALLOCATE:
    case FUSE_COPY_FILE_RANGE:
      return true;
    default:
      return false;
  }
}

bool TakesNoReply(uint32_t opcode) {
  return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT ||
         opcode == FUSE_NOTIFY_REPLY;
}

}  // namespace

// Engine state shared with its requests.
struct EngineRep {
  EngineRep(Backend& b, EngineOptions o, OpStats& s) : backend(b), options(o), stats(s) {}

  Backend& backend;
  const EngineOptions options;
  OpStats& stats;
  std::atomic<bool> initialized{false};
  std::atomic<size_t> inflight{0};
  std::atomic<uint32_t> max_write{0};
  std::mutex init_mu;  // serialises INIT / DESTROY

  // Requests findable by `unique` for INTERRUPT, sharded to keep the lock cold.
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, FuseRequest*> requests;
  };
  std::array<Shard, 16> shards;

  Shard& ShardOf(uint64_t unique) { return shards[(unique >> 1) % shards.size()]; }
  void Track(FuseRequest* r) {
    Shard& s = ShardOf(r->unique());
    std::lock_guard lock(s.mu);
    s.requests[r->unique()] = r;
  }
  void Untrack(FuseRequest* r) {
    Shard& s = ShardOf(r->unique());
    std::lock_guard lock(s.mu);
    auto it = s.requests.find(r->unique());
    if (it != s.requests.end() && it->second == r) s.requests.erase(it);
  }
  // The target may finish concurrently; the shard lock keeps it alive while flagged.
  void Interrupt(uint64_t unique) {
    Shard& s = ShardOf(unique);
    std::lock_guard lock(s.mu);
    auto it = s.requests.find(unique);
    if (it != s.requests.end()) it->second->set_interrupted();
  }
};

struct Engine::Rep {
  Rep(Backend& b, EngineOptions o, OpStats& s) : e(b, o, s) {}
  EngineRep e;
};

// ---- FuseRequest ----------------------------------------------------------------------

FuseRequest::FuseRequest(EngineRep* engine, const fuse_in_header& in, std::span<const iovec> out,
                         Completion* done)
    : engine_(engine),
      caller_{in.uid, in.gid, in.pid},
      unique_(in.unique),
      opcode_(in.opcode),
      done_(done),
      start_(std::chrono::steady_clock::now()) {
  if (out.size() <= std::size(out_inline_)) {
    std::copy(out.begin(), out.end(), out_inline_);
    out_ = {out_inline_, out.size()};
  } else {
    out_heap_.assign(out.begin(), out.end());
    out_ = out_heap_;
  }
  out_capacity_ = TotalLength(out_);
  reply_limit_ = out_capacity_ > kHeader ? out_capacity_ - kHeader : 0;
}

bool FuseRequest::Claim() {
  if (!replied_.exchange(true)) return true;
  spdlog::error("fuse: backend replied twice to {} (unique {}); second reply ignored",
                OpcodeName(opcode_), unique_);
  return false;
}

size_t FuseRequest::Put(size_t off, const void* p, size_t n) {
  return ScatterAt(out_, off, p, n);
}

void FuseRequest::Finish(int err, size_t body_len) {
  if (err < 0) err = -err;
  if (err >= 4096) err = EIO;
  if (err != 0) body_len = 0;
  size_t len = kHeader + body_len;
  size_t reply_bytes = 0;
  if (out_capacity_ >= len) {
    fuse_out_header h{static_cast<uint32_t>(len), -err, unique_};
    Put(0, &h, sizeof h);
    reply_bytes = len;
  } else if (out_capacity_ >= kHeader) {  // cannot happen with checked sizes; stay safe
    fuse_out_header h{static_cast<uint32_t>(kHeader), -EIO, unique_};
    Put(0, &h, sizeof h);
    reply_bytes = kHeader;
    err = EIO;
  }
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
  engine_->stats.Record(opcode_, err != 0, static_cast<uint64_t>(ns));
  engine_->Untrack(this);
  engine_->inflight.fetch_sub(1, std::memory_order_relaxed);
  Completion* done = done_;
  delete this;
  done->Complete(reply_bytes);
}

void FuseRequest::FinishNoReply() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
  engine_->stats.Record(opcode_, false, static_cast<uint64_t>(ns));
  engine_->inflight.fetch_sub(1, std::memory_order_relaxed);
  Completion* done = done_;
  delete this;
  done->Complete(0);
}

void FuseRequest::ReplyError(int err) {
  if (Claim()) Finish(err, 0);
}

void FuseRequest::ReplyEntry(const Entry& e) {
  if (!Claim()) return;
  fuse_entry_out o;
  FillEntry(o, e);
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyCreate(const Entry& e, const OpenInfo& oi) {
  if (!Claim()) return;
  fuse_entry_out eo;
  FillEntry(eo, e);
  fuse_open_out oo = OpenOut(oi);
  if (reply_limit_ < sizeof eo + sizeof oo) return Finish(EIO, 0);
  Put(kHeader, &eo, sizeof eo);
  Put(kHeader + sizeof eo, &oo, sizeof oo);
  Finish(0, sizeof eo + sizeof oo);
}

void FuseRequest::ReplyAttr(const struct stat& st, double timeout) {
  if (!Claim()) return;
  fuse_attr_out o{};
  SplitTimeout(timeout, &o.attr_valid, &o.attr_valid_nsec);
  FillAttr(o.attr, st);
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyOpen(const OpenInfo& oi) {
  if (!Claim()) return;
  fuse_open_out o = OpenOut(oi);
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyWrite(uint32_t count) {
  if (!Claim()) return;
  fuse_write_out o{};
  o.size = count;
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyReadlink(std::string_view target) {
  if (!Claim()) return;
  if (target.size() > reply_limit_ || target.size() > kPathMax) return Finish(ENAMETOOLONG, 0);
  Put(kHeader, target.data(), target.size());
  Finish(0, target.size());
}

void FuseRequest::ReplyStatfs(const struct statvfs& st) {
  if (!Claim()) return;
  fuse_statfs_out o{};
  o.st.blocks = st.f_blocks;
  o.st.bfree = st.f_bfree;
  o.st.bavail = st.f_bavail;
  o.st.files = st.f_files;
  o.st.ffree = st.f_ffree;
  o.st.bsize = static_cast<uint32_t>(st.f_bsize);
  o.st.namelen = static_cast<uint32_t>(st.f_namemax);
  o.st.frsize = static_cast<uint32_t>(st.f_frsize);
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyXattrSize(uint32_t size) {
  if (!Claim()) return;
  fuse_getxattr_out o{};
  o.size = size;
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyLock(const struct fuse_file_lock& lk) {
  if (!Claim()) return;
  fuse_lk_out o{};
  o.lk = lk;
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyLseek(uint64_t offset) {
  if (!Claim()) return;
  fuse_lseek_out o{};
  o.offset = offset;
  if (reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyData(std::span<const char> data) {
  if (!Claim()) return;
  size_t n = std::min(data.size(), reply_limit_);
  Put(kHeader, data.data(), n);
  Finish(0, n);
}

std::span<const iovec> FuseRequest::DataBuffers(size_t max) {
  data_iov_.resize(out_.size());
  size_t used =
      SliceIovecs(out_, kHeader, std::min(max, reply_limit_), data_iov_.data(), data_iov_.size());
  return {data_iov_.data(), used};
}

void FuseRequest::ReplyDataFilled(size_t n) {
  if (Claim()) Finish(0, std::min(n, reply_limit_));
}

bool FuseRequest::AddDirEntry(std::string_view name, uint64_t ino, uint32_t type,
                              uint64_t next_offset) {
  if (name.empty() || name.size() > kNameMax) return false;
  size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name.size());
  if (dir_used_ + size > reply_limit_) return false;
  alignas(8) char buf[FUSE_NAME_OFFSET + kNameMax + 8] = {};
  auto* d = reinterpret_cast<fuse_dirent*>(buf);
  d->ino = ino;
  d->off = next_offset;
  d->namelen = static_cast<uint32_t>(name.size());
  d->type = type;
  std::memcpy(buf + FUSE_NAME_OFFSET, name.data(), name.size());
  Put(kHeader + dir_used_, buf, size);
  dir_used_ += size;
  return true;
}

bool FuseRequest::AddDirEntryPlus(std::string_view name, const Entry& e, uint64_t next_offset) {
  if (name.empty() || name.size() > kNameMax) return false;
  size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + name.size());
  if (dir_used_ + size > reply_limit_) return false;
  alignas(8) char buf[FUSE_NAME_OFFSET_DIRENTPLUS + kNameMax + 8] = {};
  auto* d = reinterpret_cast<fuse_direntplus*>(buf);
  // Node id 0: a name without a lookup (".", ".."); the kernel only lists it.
  if (e.nodeid != 0) FillEntry(d->entry_out, e);
  d->dirent.ino = e.attr.st_ino;
  d->dirent.off = next_offset;
  d->dirent.namelen = static_cast<uint32_t>(name.size());
  d->dirent.type = (e.attr.st_mode & S_IFMT) >> 12;
  std::memcpy(buf + FUSE_NAME_OFFSET_DIRENTPLUS, name.data(), name.size());
  Put(kHeader + dir_used_, buf, size);
  dir_used_ += size;
  return true;
}

void FuseRequest::ReplyDir() {
  if (Claim()) Finish(0, dir_used_);
}

// ---- Engine ---------------------------------------------------------------------------

Engine::Engine(Backend& backend, EngineOptions options)
    : rep_(std::make_unique<Rep>(backend, options, stats_)) {}

Engine::~Engine() = default;

size_t Engine::inflight() const {
  return rep_->e.inflight.load(std::memory_order_relaxed);
}
bool Engine::initialized() const {
  return rep_->e.initialized.load();
}

namespace {

void HandleInit(EngineRep& e, FuseRequest* r, ArgReader& args) {
  fuse_init_in in{};
  // Kernels before 7.36 send the first 16 bytes only.
  size_t size = std::min(args.left(), sizeof in);
  if (size < 16 || !args.Take(&in, size)) return r->ReplyError(EINVAL);
  std::lock_guard lock(e.init_mu);
  fuse_init_out out{};
  out.major = FUSE_KERNEL_VERSION;
  out.minor = FUSE_KERNEL_MINOR_VERSION;
  if (in.major > FUSE_KERNEL_VERSION) {  // the kernel retries with our major
    r->set_reply_limit(sizeof out);
    return r->ReplyData({reinterpret_cast<const char*>(&out), sizeof out});
  }
  if (in.major < FUSE_KERNEL_VERSION || in.minor < kMinMinor) {
    spdlog::error("fuse: kernel protocol {}.{} is too old (need 7.{})", in.major, in.minor,
                  kMinMinor);
    return r->ReplyError(EPROTO);
  }
  if (e.initialized.exchange(false)) e.backend.Destroy();  // a new session (guest reboot)
  Capabilities caps = e.backend.Init();

  uint64_t offered = in.flags;
  if (in.flags & FUSE_INIT_EXT) offered |= uint64_t{in.flags2} << 32;
  uint64_t want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ASYNC_DIO | FUSE_MAX_PAGES |
                  FUSE_AUTO_INVAL_DATA | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
  if (caps.posix_locks) want |= FUSE_POSIX_LOCKS;
  if (caps.flock_locks) want |= FUSE_FLOCK_LOCKS;
  if (caps.readdirplus) want |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
  if (caps.parallel_dirops) want |= FUSE_PARALLEL_DIROPS;
  if (caps.writeback_cache && e.options.writeback_cache) want |= FUSE_WRITEBACK_CACHE;
  if (caps.export_support) want |= FUSE_EXPORT_SUPPORT;
  if (caps.handle_killpriv) want |= FUSE_HANDLE_KILLPRIV;
  if (!caps.async_read) want &= ~uint64_t{FUSE_ASYNC_READ};
  uint64_t flags = want & offered;

  uint32_t max_pages = std::clamp<uint32_t>(e.options.max_pages, 1, 65535);
  uint32_t max_write = std::min<uint64_t>(uint64_t{max_pages} * 4096, caps.max_write);
  out.max_readahead = in.max_readahead;
  out.flags = static_cast<uint32_t>(flags);
  out.flags2 = static_cast<uint32_t>(flags >> 32);
  out.max_background = 64;
  out.congestion_threshold = 48;
  out.max_write = std::max<uint32_t>(max_write, 4096);
  out.time_gran = 1;
  out.max_pages = static_cast<uint16_t>(max_pages);
  e.max_write.store(out.max_write);
  e.initialized.store(true);
  spdlog::info("fuse: session initialised (kernel {}.{}, max_write {}, flags {:#x})", in.major,
               in.minor, out.max_write, flags);
  r->set_reply_limit(sizeof out);
  r->ReplyData({reinterpret_cast<const char*>(&out), sizeof out});
}

// Decodes the arguments of `r` and calls the backend. `args` holds everything after
// fuse_in_header except a write payload, which `r->payload()` already points to.
void Dispatch(EngineRep& e, FuseRequest* r, const fuse_in_header& h, ArgReader& args) {
  Backend& b = e.backend;
  const uint64_t ino = h.nodeid;
  std::string_view name, name2;
  switch (h.opcode) {
    case FUSE_LOOKUP: {
      if (!args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err == EINVAL ? ENOENT : err);
      return b.Lookup(r, ino, name);
    }
    case FUSE_FORGET: {
      fuse_forget_in in;
      if (args.Take(&in)) b.Forget(ino, in.nlookup);
      return r->FinishNoReply();
    }
    case FUSE_BATCH_FORGET: {
      fuse_batch_forget_in in;
      if (!args.Take(&in) || args.left() / sizeof(fuse_forget_one) < in.count) {
        spdlog::warn("fuse: BATCH_FORGET count exceeds its payload; ignored");
        return r->FinishNoReply();
      }
      for (uint32_t i = 0; i < in.count; ++i) {
        fuse_forget_one one;
        args.Take(&one);
        b.Forget(one.nodeid, one.nlookup);
      }
      return r->FinishNoReply();
    }
    case FUSE_GETATTR: {
      fuse_getattr_in in{};
      args.Take(&in);  // absent before 7.9: no file handle
      FileInfo fi;
      fi.fh = in.fh;
      return b.Getattr(r, ino, (in.getattr_flags & FUSE_GETATTR_FH) ? &fi : nullptr);
    }
    case FUSE_SETATTR: {
      fuse_setattr_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      SetattrArgs a;
      FileInfo fi;
      fi.fh = in.fh;
      fi.lock_owner = in.lock_owner;
      a.valid = in.valid;
      a.mode = in.mode;
      a.uid = in.uid;
      a.gid = in.gid;
      a.size = in.size;
      a.atime = {static_cast<time_t>(in.atime), static_cast<long>(in.atimensec % 1000000000)};
      a.mtime = {static_cast<time_t>(in.mtime), static_cast<long>(in.mtimensec % 1000000000)};
      a.ctime = {static_cast<time_t>(in.ctime), static_cast<long>(in.ctimensec % 1000000000)};
      if (in.valid & FATTR_FH) a.fi = &fi;
      return b.Setattr(r, ino, a);
    }
    case FUSE_READLINK:
      return b.Readlink(r, ino);
    case FUSE_SYMLINK: {
      if (!args.TakeString(&name, kPathMax) || !args.TakeString(&name2, kPathMax) ||
          name2.empty()) {
        return r->ReplyError(EINVAL);
      }
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Symlink(r, name2, ino, name);
    }
    case FUSE_MKNOD: {
      fuse_mknod_in in;
      if (!args.Take(&in) || !args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Mknod(r, ino, name, in.mode, in.rdev);
    }
    case FUSE_MKDIR: {
      fuse_mkdir_in in;
      if (!args.Take(&in) || !args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Mkdir(r, ino, name, in.mode);
    }
    case FUSE_UNLINK:
    case FUSE_RMDIR: {
      if (!args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return h.opcode == FUSE_UNLINK ? b.Unlink(r, ino, name) : b.Rmdir(r, ino, name);
    }
    case FUSE_RENAME:
    case FUSE_RENAME2: {
      uint64_t newdir = 0;
      uint32_t flags = 0;
      if (h.opcode == FUSE_RENAME) {
        fuse_rename_in in;
        if (!args.Take(&in)) return r->ReplyError(EINVAL);
        newdir = in.newdir;
      } else {
        fuse_rename2_in in;
        if (!args.Take(&in)) return r->ReplyError(EINVAL);
        newdir = in.newdir;
        flags = in.flags;
      }
      if (!args.TakeString(&name, kPathMax) || !args.TakeString(&name2, kPathMax)) {
        return r->ReplyError(EINVAL);
      }
      if (int err = CheckName(name) ? CheckName(name) : CheckName(name2)) {
        return r->ReplyError(err);
      }
      return b.Rename(r, ino, name, newdir, name2, flags);
    }
    case FUSE_LINK: {
      fuse_link_in in;
      if (!args.Take(&in) || !args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Link(r, in.oldnodeid, ino, name);
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      fuse_open_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.flags = in.flags;
      if (h.opcode == FUSE_OPENDIR) return b.Opendir(r, ino, fi);
      if (e.options.read_only && ((in.flags & O_ACCMODE) != O_RDONLY || (in.flags & O_TRUNC))) {
        return r->ReplyError(EROFS);
      }
      return b.Open(r, ino, fi);
    }
    case FUSE_CREATE: {
      fuse_create_in in;
      if (!args.Take(&in) || !args.TakeString(&name, kPathMax)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      FileInfo fi;
      fi.flags = in.flags;
      return b.Create(r, ino, name, in.mode, fi);
    }
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
      fuse_read_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      fi.flags = in.flags;
      fi.lock_owner = in.lock_owner;
      size_t size = std::min<size_t>(in.size, r->reply_room());
      r->set_reply_limit(size);
      if (h.opcode == FUSE_READ) return b.Read(r, ino, size, in.offset, fi);
      return b.Readdir(r, ino, size, in.offset, h.opcode == FUSE_READDIRPLUS, fi);
    }
    case FUSE_WRITE: {
      fuse_write_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      fi.flags = in.flags;
      fi.lock_owner = in.lock_owner;
      if (in.size > e.max_write.load(std::memory_order_relaxed) ||
          TotalLength(r->payload()) != in.size) {
        return r->ReplyError(EINVAL);
      }
      return b.Write(r, ino, r->payload(), in.offset, fi);
    }
    case FUSE_STATFS:
      return b.Statfs(r, ino);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR: {
      fuse_release_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      fi.flags = in.flags;
      fi.lock_owner = in.lock_owner;
      return h.opcode == FUSE_RELEASE ? b.Release(r, ino, fi) : b.Releasedir(r, ino, fi);
    }
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR: {
      fuse_fsync_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      bool datasync = in.fsync_flags & 1;
      return h.opcode == FUSE_FSYNC ? b.Fsync(r, ino, datasync, fi)
                                    : b.Fsyncdir(r, ino, datasync, fi);
    }
    case FUSE_FLUSH: {
      fuse_flush_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      fi.lock_owner = in.lock_owner;
      return b.Flush(r, ino, fi);
    }
    case FUSE_SETXATTR: {
      // Without FUSE_SETXATTR_EXT (not negotiated) the argument is the 8-byte compat form.
      struct {
        uint32_t size, flags;
      } in;
      std::span<const char> value;
      if (!args.Take(&in, FUSE_COMPAT_SETXATTR_IN_SIZE) || !args.TakeString(&name, kNameMax) ||
          name.empty() || !args.TakeBytes(&value, in.size)) {
        return r->ReplyError(EINVAL);
      }
      return b.Setxattr(r, ino, name, value, static_cast<int>(in.flags));
    }
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR: {
      fuse_getxattr_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      size_t size = std::min<size_t>(in.size, r->reply_room());
      if (in.size != 0) r->set_reply_limit(size);
      if (h.opcode == FUSE_LISTXATTR) return b.Listxattr(r, ino, in.size == 0 ? 0 : size);
      if (!args.TakeString(&name, kNameMax) || name.empty()) return r->ReplyError(EINVAL);
      return b.Getxattr(r, ino, name, in.size == 0 ? 0 : size);
    }
    case FUSE_REMOVEXATTR: {
      if (!args.TakeString(&name, kNameMax) || name.empty()) return r->ReplyError(EINVAL);
      return b.Removexattr(r, ino, name);
    }
    case FUSE_ACCESS: {
      fuse_access_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      return b.Access(r, ino, static_cast<int>(in.mask));
    }
    case FUSE_GETLK:
    case FUSE_SETLK:
    case FUSE_SETLKW: {
      fuse_lk_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      fi.lock_owner = in.owner;
      if (in.lk_flags & FUSE_LK_FLOCK) {
        if (h.opcode == FUSE_GETLK) return r->ReplyError(EINVAL);
        int op = in.lk.type == F_RDLCK ? LOCK_SH : in.lk.type == F_WRLCK ? LOCK_EX : LOCK_UN;
        if (h.opcode == FUSE_SETLK) op |= LOCK_NB;
        return b.Flock(r, ino, fi, op);
      }
      if (in.lk.type != F_RDLCK && in.lk.type != F_WRLCK && in.lk.type != F_UNLCK) {
        return r->ReplyError(EINVAL);
      }
      if (h.opcode == FUSE_GETLK) return b.Getlk(r, ino, fi, in.lk);
      return b.Setlk(r, ino, fi, in.lk, h.opcode == FUSE_SETLKW);
    }
    case FUSE_FALLOCATE: {
      fuse_fallocate_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      return b.Fallocate(r, ino, fi, static_cast<int>(in.mode), in.offset, in.length);
    }
    case FUSE_LSEEK: {
      fuse_lseek_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi;
      fi.fh = in.fh;
      return b.Lseek(r, ino, fi, in.offset, static_cast<int>(in.whence));
    }
    case FUSE_COPY_FILE_RANGE: {
      fuse_copy_file_range_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi_in, fi_out;
      fi_in.fh = in.fh_in;
      fi_out.fh = in.fh_out;
      return b.CopyFileRange(r, ino, fi_in, in.off_in, in.nodeid_out, fi_out, in.off_out, in.len,
                             in.flags);
    }
    case FUSE_INTERRUPT: {
      fuse_interrupt_in in;
      if (args.Take(&in)) e.Interrupt(in.unique);
      return r->FinishNoReply();
    }
    case FUSE_NOTIFY_REPLY:
      return r->FinishNoReply();
    case FUSE_DESTROY: {
      std::lock_guard lock(e.init_mu);
      if (e.initialized.exchange(false)) b.Destroy();
      return r->ReplyOk();
    }
    default:  // BMAP, IOCTL, POLL, SETUPMAPPING, REMOVEMAPPING, SYNCFS, TMPFILE, unknown
      return r->ReplyError(ENOSYS);
  }
}

}  // namespace

void Engine::Process(std::span<const iovec> in, std::span<const iovec> out, Completion* done) {
  EngineRep& e = rep_->e;
  fuse_in_header h;
  size_t in_len = TotalLength(in);
  if (in_len < sizeof h || GatherAt(in, 0, &h, sizeof h) != sizeof h) {
    done->Complete(0);  // no header, no unique: nothing can be answered
    return;
  }
  e.inflight.fetch_add(1, std::memory_order_relaxed);
  auto* r = new FuseRequest(&e, h, out, done);
  const bool no_reply = TakesNoReply(h.opcode);
  if (h.len < sizeof h || h.len > in_len) {
    spdlog::warn("fuse: request length {} does not match its {} bytes", h.len, in_len);
    return no_reply ? r->FinishNoReply() : r->ReplyError(EINVAL);
  }
  if (!no_reply) e.Track(r);  // findable by INTERRUPT

  // The arguments: contiguous in the first buffer (the common case: /dev/fuse, most
  // drivers), else gathered. A write payload is never gathered: it is referenced.
  size_t args_len = h.len - sizeof h;
  if (h.opcode == FUSE_WRITE && args_len >= sizeof(fuse_write_in)) {
    size_t payload_len = args_len - sizeof(fuse_write_in);
    r->payload().resize(in.size());
    size_t n = SliceIovecs(in, sizeof h + sizeof(fuse_write_in), payload_len, r->payload().data(),
                           in.size());
    r->payload().resize(n);
    args_len = sizeof(fuse_write_in);
  } else if (args_len > kMaxArgs && h.opcode != FUSE_BATCH_FORGET) {
    return r->ReplyError(h.opcode == FUSE_SETXATTR ? E2BIG : EINVAL);
  }
  const char* args = nullptr;
  if (in[0].iov_len >= sizeof h + args_len) {
    args = static_cast<const char*>(in[0].iov_base) + sizeof h;
  } else {
    r->scratch().resize(args_len);
    GatherAt(in, sizeof h, r->scratch().data(), args_len);
    args = r->scratch().data();
  }
  ArgReader reader(args, args_len);

  if (h.opcode == FUSE_INIT) return HandleInit(e, r, reader);
  if (!e.initialized.load(std::memory_order_acquire) && h.opcode != FUSE_INTERRUPT &&
      h.opcode != FUSE_FORGET && h.opcode != FUSE_BATCH_FORGET) {
    return no_reply ? r->FinishNoReply() : r->ReplyError(EIO);
  }
  if (e.options.read_only && Modifies(h.opcode)) return r->ReplyError(EROFS);
  Dispatch(e, r, h, reader);
}

}  // namespace dpustor::fs
