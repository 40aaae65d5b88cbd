// The FUSE engine: request decoding, FUSE_INIT negotiation, dispatch to the backend and
// reply encoding. Every length, offset and string in a request is checked against the
// bytes actually present: a request comes from a kernel we trust less than ourselves (a
// guest's, through a virtqueue).
//
// Decisions a reader may look for:
// - fuse_in_header.len may be smaller than the readable bytes (a virtqueue descriptor can
//   be larger than the request it carries, as virtiofsd also accepts); the bytes past it
//   are ignored. A len larger than what is present is EINVAL.
// - INTERRUPT for a unique that is not in flight is ignored: the request either finished
//   already or has not arrived (the kernel resends interrupts it still cares about).
// - FORGET / BATCH_FORGET / INTERRUPT before INIT are dropped (no backend session yet).
#include "fs/fuse/engine.h"

#include <fcntl.h>
#include <sys/file.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "fs/fuse/fuse_request.h"
#include "fs/fuse/scatter.h"

namespace dpustor::fs {

namespace {

constexpr size_t kHeader = sizeof(fuse_out_header);
// Largest argument block (everything but a write payload) the engine gathers: an xattr
// value (64 KiB) plus its name, or two names / a symlink target.
constexpr size_t kMaxArgs = 64 * 1024 + 8 * 1024;
constexpr uint32_t kMinMinor = 27;       // Linux 4.20+; older kernels lack what we negotiate
constexpr size_t kNameMax = 255;         // NAME_MAX, also XATTR_NAME_MAX
constexpr size_t kSymlinkMax = 4095;     // PATH_MAX without its NUL
constexpr size_t kXattrSizeMax = 65536;  // XATTR_SIZE_MAX
constexpr size_t kPoolShards = 8;
constexpr size_t kPoolKeep = 256;  // free requests kept per shard

constexpr uint64_t Bit(uint32_t opcode) {
  return uint64_t{1} << opcode;
}

// Operations whose success reply carries no body.
constexpr uint64_t kOkOps =
    Bit(FUSE_UNLINK) | Bit(FUSE_RMDIR) | Bit(FUSE_RENAME) | Bit(FUSE_RENAME2) | Bit(FUSE_FLUSH) |
    Bit(FUSE_RELEASE) | Bit(FUSE_RELEASEDIR) | Bit(FUSE_FSYNC) | Bit(FUSE_FSYNCDIR) |
    Bit(FUSE_SETXATTR) | Bit(FUSE_REMOVEXATTR) | Bit(FUSE_ACCESS) | Bit(FUSE_SETLK) |
    Bit(FUSE_SETLKW) | Bit(FUSE_FALLOCATE) | Bit(FUSE_DESTROY);
// Operations answered with raw bytes (an empty answer is valid: end of file, empty value).
constexpr uint64_t kDataOps =
    Bit(FUSE_READ) | Bit(FUSE_GETXATTR) | Bit(FUSE_LISTXATTR) | Bit(FUSE_INIT);
constexpr uint64_t kXattrOps = Bit(FUSE_GETXATTR) | Bit(FUSE_LISTXATTR);
constexpr uint64_t kEntryOps =
    Bit(FUSE_LOOKUP) | Bit(FUSE_MKNOD) | Bit(FUSE_MKDIR) | Bit(FUSE_SYMLINK) | Bit(FUSE_LINK);

bool Is(uint64_t mask, uint32_t opcode) {
  return opcode < 64 && ((mask >> opcode) & 1);
}

void SplitTimeout(double t, uint64_t* sec, uint32_t* nsec) {
  if (!(t > 0)) t = 0;  // also NaN
  if (t > 1e12) t = 1e12;
  double whole = std::floor(t);
  *sec = static_cast<uint64_t>(whole);
  *nsec = static_cast<uint32_t>(std::min((t - whole) * 1e9, 999999999.0));
}

uint32_t Nsec(long ns) {
  return ns < 0 || ns > 999999999 ? 0 : static_cast<uint32_t>(ns);
}

void FillAttr(fuse_attr& a, const struct stat& st) {
  a.ino = st.st_ino;
  a.size = static_cast<uint64_t>(st.st_size);
  a.blocks = static_cast<uint64_t>(st.st_blocks);
  a.atime = static_cast<uint64_t>(st.st_atim.tv_sec);
  a.mtime = static_cast<uint64_t>(st.st_mtim.tv_sec);
  a.ctime = static_cast<uint64_t>(st.st_ctim.tv_sec);
  a.atimensec = Nsec(st.st_atim.tv_nsec);
  a.mtimensec = Nsec(st.st_mtim.tv_nsec);
  a.ctimensec = Nsec(st.st_ctim.tv_nsec);
  a.mode = st.st_mode;
  a.nlink = static_cast<uint32_t>(st.st_nlink);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.rdev = static_cast<uint32_t>(st.st_rdev);  // the kernel's 32-bit encoding (major < 4096)
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

// A name the kernel accepts in a directory listing (fuse_parse_dirfile refuses the whole
// reply otherwise).
bool ListableName(std::string_view name) {
  return !name.empty() && name.size() <= kNameMax &&
         name.find_first_of(std::string_view("/\0", 2)) == std::string_view::npos;
}

// Reads typed arguments and NUL-terminated strings from a contiguous argument block.
class ArgReader {
 public:
  ArgReader(const char* p, size_t n) : p_(p), left_(n) {}
  // Takes exactly `size` bytes (<= sizeof(T); the rest of *out is zeroed).
  template <class T>
  bool Take(T* out, size_t size = sizeof(T)) {
    if (left_ < size || size > sizeof(T)) return false;
    *out = {};
    if (size) std::memcpy(out, p_, size);
    p_ += size;
    left_ -= size;
    return true;
  }
  // A string ending in NUL within the block; `max` bounds its length.
  bool TakeString(std::string_view* out, size_t max) {
    const void* nul = left_ ? std::memchr(p_, '\0', left_) : nullptr;
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
    case FUSE_TMPFILE:
      return true;
    default:
      return false;
  }
}

bool TakesNoReply(uint32_t opcode) {
  return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT ||
         opcode == FUSE_NOTIFY_REPLY;
}

// Which of the engine's pools the calling thread uses.
size_t PoolIndex() {
  thread_local const size_t index = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return index % kPoolShards;
}

}  // namespace

// Engine state shared with its requests.
struct EngineRep {
  EngineRep(Backend& b, EngineOptions o, OpStats& s) : backend(b), options(o), stats(s) {}
  ~EngineRep() {
    for (Pool& p : pools) {
      for (FuseRequest* r : p.free) delete r;
    }
  }

  Backend& backend;
  const EngineOptions options;
  OpStats& stats;
  std::atomic<bool> initialized{false};
  std::atomic<size_t> inflight{0};
  std::atomic<uint32_t> max_write{0};
  std::atomic<bool> export_support{false};
  std::mutex init_mu;  // serialises INIT / DESTROY

  // Misuse and hostile-input warnings: the first of each kind is a warning, the rest are
  // debug messages (a guest must not be able to flood the log).
  enum Warning : uint32_t { kBadLength, kBadArgs, kDoubleReply, kWrongReply, kBadDirName };
  std::atomic<uint32_t> warned{0};
  template <class... Args>
  void Warn(Warning w, spdlog::format_string_t<Args...> fmt, Args&&... args) {
    uint32_t bit = 1u << w;
    bool first = !(warned.fetch_or(bit, std::memory_order_relaxed) & bit);
    spdlog::log(first ? spdlog::level::warn : spdlog::level::debug, fmt,
                std::forward<Args>(args)...);
  }

  // Free FuseRequests, sharded by the taking thread to keep the locks cold.
  struct Pool {
    std::mutex mu;
    std::vector<FuseRequest*> free;
  };
  std::array<Pool, kPoolShards> pools;
  FuseRequest* Take() {
    size_t index = PoolIndex();
    Pool& p = pools[index];
    {
      std::lock_guard lock(p.mu);
      if (!p.free.empty()) {
        FuseRequest* r = p.free.back();
        p.free.pop_back();
        return r;
      }
    }
    auto* r = new FuseRequest(this);
    r->pool = index;
    return r;
  }
  void Give(FuseRequest* r) {
    Pool& p = pools[r->pool];
    {
      std::lock_guard lock(p.mu);
      if (p.free.size() < kPoolKeep) return p.free.push_back(r);
    }
    delete r;
  }

  // Requests findable by `unique` for INTERRUPT: intrusive lists, no allocation. The
  // kernel steps uniques by 2, hence the shift.
  struct Shard {
    std::mutex mu;
    FuseRequest* head = nullptr;
  };
  std::array<Shard, 16> shards;
  Shard& ShardOf(uint64_t unique) { return shards[(unique >> 1) % shards.size()]; }
  void Track(FuseRequest* r) {
    Shard& s = ShardOf(r->unique());
    std::lock_guard lock(s.mu);
    r->prev = nullptr;
    r->next = s.head;
    if (s.head) s.head->prev = r;
    s.head = r;
    r->tracked = true;
  }
  void Untrack(FuseRequest* r) {
    if (!r->tracked) return;  // only the request's own threads change `tracked`
    Shard& s = ShardOf(r->unique());
    std::lock_guard lock(s.mu);
    if (r->prev) r->prev->next = r->next;
    if (r->next) r->next->prev = r->prev;
    if (s.head == r) s.head = r->next;
    r->prev = r->next = nullptr;
    r->tracked = false;
  }
  // Interrupts are rare; a walk of one shard is cheaper than a map on every request.
  void Interrupt(uint64_t unique) {
    Shard& s = ShardOf(unique);
    std::lock_guard lock(s.mu);
    for (FuseRequest* r = s.head; r; r = r->next) {
      if (r->unique() == unique) r->set_interrupted();
    }
  }
};

struct Engine::Rep {
  Rep(Backend& b, EngineOptions o, OpStats& s) : e(b, o, s) {}
  EngineRep e;
};

// ---- FuseRequest ----------------------------------------------------------------------

void FuseRequest::Start(const fuse_in_header& in, std::span<const iovec> out, Completion* done,
                        std::chrono::steady_clock::time_point start) {
  refs_.store(2, std::memory_order_relaxed);
  interrupted_.store(false, std::memory_order_relaxed);
  replied_.store(false, std::memory_order_relaxed);
  caller_ = {in.uid, in.gid, in.pid};
  unique_ = in.unique;
  opcode_ = in.opcode;
  size_query_ = false;
  dir_refused_ = false;
  done_ = done;
  start_ = start;
  dir_used_ = 0;
  prev = next = nullptr;
  tracked = false;
  payload_ = payload_inline_;
  payload_count_ = 0;
  if (out.size() <= kInlineIov) {
    std::copy(out.begin(), out.end(), out_inline_);
    out_ = {out_inline_, out.size()};
  } else {
    out_heap_.assign(out.begin(), out.end());
    out_ = out_heap_;
  }
  out_capacity_ = TotalLength(out_);
  reply_limit_ = reply_room();
}

void FuseRequest::Unref() {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Drop buffers a hostile request made large; keep ordinary ones for the next request.
  if (out_heap_.capacity() > 64) std::vector<iovec>().swap(out_heap_);
  if (data_heap_.capacity() > 64) std::vector<iovec>().swap(data_heap_);
  if (payload_heap_.capacity() > 256) std::vector<iovec>().swap(payload_heap_);
  if (scratch_heap_.capacity() > kMaxArgs) std::vector<char>().swap(scratch_heap_);
  engine_->Give(this);
}

char* FuseRequest::Scratch(size_t n) {
  if (n <= kInlineScratch) return scratch_inline_;
  scratch_heap_.resize(n);
  return scratch_heap_.data();
}

iovec* FuseRequest::PayloadSlots(size_t max) {
  if (max <= kInlineIov) return payload_ = payload_inline_;
  payload_heap_.resize(max);
  return payload_ = payload_heap_.data();
}

bool FuseRequest::Claim() {
  if (!replied_.exchange(true, std::memory_order_acq_rel)) return true;
  engine_->Warn(EngineRep::kDoubleReply,
                "fuse: backend replied twice to {} (unique {}); second reply ignored",
                OpcodeName(opcode_), unique_);
  return false;
}

bool FuseRequest::Allowed(Kind kind) {
  bool ok = false;
  switch (kind) {
    case Kind::kOk:
      ok = Is(kOkOps, opcode_) || opcode_ == FUSE_READDIR || opcode_ == FUSE_READDIRPLUS ||
           (Is(kDataOps, opcode_) && opcode_ != FUSE_INIT && !size_query_);
      break;
    case Kind::kEntry:
      ok = Is(kEntryOps, opcode_);
      break;
    case Kind::kCreate:
      ok = opcode_ == FUSE_CREATE;
      break;
    case Kind::kAttr:
      ok = opcode_ == FUSE_GETATTR || opcode_ == FUSE_SETATTR;
      break;
    case Kind::kOpen:
      ok = opcode_ == FUSE_OPEN || opcode_ == FUSE_OPENDIR;
      break;
    case Kind::kWrite:
      ok = opcode_ == FUSE_WRITE || opcode_ == FUSE_COPY_FILE_RANGE;
      break;
    case Kind::kReadlink:
      ok = opcode_ == FUSE_READLINK;
      break;
    case Kind::kStatfs:
      ok = opcode_ == FUSE_STATFS;
      break;
    case Kind::kXattrSize:
      ok = Is(kXattrOps, opcode_) && size_query_;
      break;
    case Kind::kLock:
      ok = opcode_ == FUSE_GETLK;
      break;
    case Kind::kLseek:
      ok = opcode_ == FUSE_LSEEK;
      break;
    case Kind::kData:
      ok = Is(kDataOps, opcode_) && !size_query_;
      break;
    case Kind::kDir:  // a plain entry in a READDIRPLUS reply is encoded without a lookup
      ok = opcode_ == FUSE_READDIR || opcode_ == FUSE_READDIRPLUS;
      break;
    case Kind::kDirPlus:
      ok = opcode_ == FUSE_READDIRPLUS;
      break;
  }
  if (!ok) {
    engine_->Warn(EngineRep::kWrongReply,
                  "fuse: backend answered {} (unique {}) with the wrong kind of reply ({}); "
                  "sending EIO",
                  OpcodeName(opcode_), unique_, static_cast<int>(kind));
  }
  return ok;
}

void FuseRequest::Put(size_t off, const void* p, size_t n) {
  ScatterAt(out_, off, p, n);
}

void FuseRequest::Finish(int err, size_t body_len) {
  if (err < 0) err = err == INT_MIN ? EIO : -err;  // both sign conventions are accepted
  if (err >= 4096) err = EIO;
  if (err != 0) body_len = 0;
  size_t len = kHeader + body_len;
  size_t reply_bytes = 0;
  if (out_capacity_ >= len) {
    fuse_out_header h{static_cast<uint32_t>(len), -err, unique_};
    Put(0, &h, sizeof h);
    reply_bytes = len;
  } else if (out_capacity_ >= kHeader) {  // bodies are checked against the room first
    fuse_out_header h{static_cast<uint32_t>(kHeader), -EIO, unique_};
    Put(0, &h, sizeof h);
    reply_bytes = kHeader;
    err = EIO;
  }
  engine_->Untrack(this);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
  engine_->stats.Record(opcode_, err != 0, static_cast<uint64_t>(ns));
  engine_->inflight.fetch_sub(1, std::memory_order_relaxed);
  done_->Complete(reply_bytes);
  Unref();
}

void FuseRequest::FinishNoReply() {
  replied_.store(true, std::memory_order_relaxed);
  engine_->Untrack(this);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
                .count();
  engine_->stats.Record(opcode_, false, static_cast<uint64_t>(ns));
  engine_->inflight.fetch_sub(1, std::memory_order_relaxed);
  done_->Complete(0);
  Unref();
}

void FuseRequest::ReplyError(int err) {
  if (!Claim()) return;
  if (err == 0 && !Allowed(Kind::kOk)) err = EIO;
  Finish(err, 0);
}

void FuseRequest::ReplyEntry(const Entry& e) {
  if (!Claim()) return;
  if (!Allowed(Kind::kEntry) || reply_limit_ < sizeof(fuse_entry_out)) return Finish(EIO, 0);
  fuse_entry_out o;
  FillEntry(o, e);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyCreate(const Entry& e, const OpenInfo& oi) {
  if (!Claim()) return;
  fuse_entry_out eo;
  fuse_open_out oo = OpenOut(oi);
  if (!Allowed(Kind::kCreate) || reply_limit_ < sizeof eo + sizeof oo) return Finish(EIO, 0);
  FillEntry(eo, e);
  Put(kHeader, &eo, sizeof eo);
  Put(kHeader + sizeof eo, &oo, sizeof oo);
  Finish(0, sizeof eo + sizeof oo);
}

void FuseRequest::ReplyAttr(const struct stat& st, double timeout) {
  if (!Claim()) return;
  fuse_attr_out o{};
  if (!Allowed(Kind::kAttr) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  SplitTimeout(timeout, &o.attr_valid, &o.attr_valid_nsec);
  FillAttr(o.attr, st);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyOpen(const OpenInfo& oi) {
  if (!Claim()) return;
  fuse_open_out o = OpenOut(oi);
  if (!Allowed(Kind::kOpen) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyWrite(uint32_t count) {
  if (!Claim()) return;
  fuse_write_out o{};
  if (!Allowed(Kind::kWrite) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  o.size = count;
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyReadlink(std::string_view target) {
  if (!Claim()) return;
  if (!Allowed(Kind::kReadlink)) return Finish(EIO, 0);
  // The kernel reads at most PAGE_SIZE - 1 bytes of target.
  if (target.size() > reply_limit_ || target.size() > kSymlinkMax) return Finish(ENAMETOOLONG, 0);
  Put(kHeader, target.data(), target.size());
  Finish(0, target.size());
}

void FuseRequest::ReplyStatfs(const struct statvfs& st) {
  if (!Claim()) return;
  fuse_statfs_out o{};
  if (!Allowed(Kind::kStatfs) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  o.st.blocks = st.f_blocks;
  o.st.bfree = st.f_bfree;
  o.st.bavail = st.f_bavail;
  o.st.files = st.f_files;
  o.st.ffree = st.f_ffree;
  o.st.bsize = static_cast<uint32_t>(st.f_bsize);
  o.st.namelen = static_cast<uint32_t>(st.f_namemax);
  o.st.frsize = static_cast<uint32_t>(st.f_frsize);
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyXattrSize(uint32_t size) {
  if (!Claim()) return;
  fuse_getxattr_out o{};
  if (!Allowed(Kind::kXattrSize) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  o.size = size;
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyLock(const struct fuse_file_lock& lk) {
  if (!Claim()) return;
  fuse_lk_out o{};
  if (!Allowed(Kind::kLock) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  o.lk = lk;
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyLseek(uint64_t offset) {
  if (!Claim()) return;
  fuse_lseek_out o{};
  if (!Allowed(Kind::kLseek) || reply_limit_ < sizeof o) return Finish(EIO, 0);
  o.offset = offset;
  Put(kHeader, &o, sizeof o);
  Finish(0, sizeof o);
}

void FuseRequest::ReplyData(std::span<const char> data) {
  if (!Claim()) return;
  if (!Allowed(Kind::kData)) return Finish(EIO, 0);
  if (data.size() > reply_limit_) {
    // More than the kernel asked for: for xattrs that is "does not fit"; for a read
    // it is a backend bug, and a truncated read would look like end of file.
    if (Is(kXattrOps, opcode_)) return Finish(ERANGE, 0);
    engine_->Warn(EngineRep::kWrongReply, "fuse: backend read reply of {} bytes exceeds {}",
                  data.size(), reply_limit_);
    return Finish(EIO, 0);
  }
  if (!data.empty()) Put(kHeader, data.data(), data.size());
  Finish(0, data.size());
}

std::span<const iovec> FuseRequest::DataBuffers(size_t max) {
  if (replied_.load(std::memory_order_relaxed) || !Is(kDataOps, opcode_) || size_query_ ||
      opcode_ == FUSE_INIT) {
    return {};
  }
  iovec* slots = data_inline_;
  if (out_.size() > kInlineIov) {
    data_heap_.resize(out_.size());
    slots = data_heap_.data();
  }
  size_t used = SliceIovecs(out_, kHeader, std::min(max, reply_limit_), slots, out_.size());
  return {slots, used};
}

void FuseRequest::ReplyDataFilled(size_t n) {
  if (!Claim()) return;
  if (!Allowed(Kind::kData)) return Finish(EIO, 0);
  if (n > reply_limit_) {
    engine_->Warn(EngineRep::kWrongReply, "fuse: backend filled {} bytes of {} (unique {})", n,
                  reply_limit_, unique_);
    return Finish(EIO, 0);
  }
  Finish(0, n);
}

bool FuseRequest::AddDirEntry(std::string_view name, uint64_t ino, uint32_t type,
                              uint64_t next_offset) {
  if (replied_.load(std::memory_order_relaxed)) return false;
  if (!Allowed(Kind::kDir)) {
    dir_refused_ = true;
    return false;
  }
  if (!ListableName(name)) {
    // Skipped, as if listed: the kernel would refuse the whole reply for it.
    engine_->Warn(EngineRep::kBadDirName, "fuse: directory entry with an invalid name skipped");
    return true;
  }
  if (opcode_ == FUSE_READDIRPLUS) {  // a listing-only entry: no attributes, no lookup
    Entry e;
    e.nodeid = 0;
    e.attr.st_ino = ino;
    e.attr.st_mode = (type & 017) << 12;
    return AddDirEntryPlus(name, e, next_offset);
  }
  size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + name.size());
  if (dir_used_ + size > reply_limit_) return false;
  alignas(8) char buf[FUSE_NAME_OFFSET + kNameMax + 8] = {};
  fuse_dirent d{};
  d.ino = ino;
  d.off = next_offset;
  d.namelen = static_cast<uint32_t>(name.size());
  d.type = type;
  std::memcpy(buf, &d, FUSE_NAME_OFFSET);
  std::memcpy(buf + FUSE_NAME_OFFSET, name.data(), name.size());
  Put(kHeader + dir_used_, buf, size);
  dir_used_ += size;
  return true;
}

bool FuseRequest::AddDirEntryPlus(std::string_view name, const Entry& e, uint64_t next_offset) {
  if (replied_.load(std::memory_order_relaxed)) return false;
  if (!Allowed(Kind::kDirPlus)) {
    // In a plain READDIR the lookup would be lost: refuse, and the reply becomes EIO.
    dir_refused_ = true;
    return false;
  }
  // An invalid name is refused ("does not fit") rather than skipped: skipping would count
  // a lookup the kernel never receives.
  if (!ListableName(name)) {
    engine_->Warn(EngineRep::kBadDirName, "fuse: directory entry with an invalid name refused");
    return false;
  }
  size_t size = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + name.size());
  if (dir_used_ + size > reply_limit_) return false;
  alignas(8) char buf[FUSE_NAME_OFFSET_DIRENTPLUS + kNameMax + 8] = {};
  fuse_direntplus d{};
  // Node id 0: a name without a lookup (".", ".."); the kernel only lists it.
  if (e.nodeid != 0) FillEntry(d.entry_out, e);
  d.dirent.ino = e.attr.st_ino;
  d.dirent.off = next_offset;
  d.dirent.namelen = static_cast<uint32_t>(name.size());
  d.dirent.type = (e.attr.st_mode & S_IFMT) >> 12;
  std::memcpy(buf, &d, FUSE_NAME_OFFSET_DIRENTPLUS);
  std::memcpy(buf + FUSE_NAME_OFFSET_DIRENTPLUS, name.data(), name.size());
  Put(kHeader + dir_used_, buf, size);
  dir_used_ += size;
  return true;
}

void FuseRequest::ReplyDir() {
  if (!Claim()) return;
  if (dir_refused_ || !Allowed(Kind::kDir)) return Finish(EIO, 0);
  Finish(0, dir_used_);
}

// ---- Engine ---------------------------------------------------------------------------

Engine::Engine(Backend& backend, EngineOptions options)
    : rep_(std::make_unique<Rep>(backend, options, stats_)) {}

Engine::~Engine() = default;

size_t Engine::inflight() const {
  return rep_->e.inflight.load(std::memory_order_relaxed);
}
void Engine::EndSession() {
  EngineRep& e = rep_->e;
  std::lock_guard lock(e.init_mu);
  if (e.initialized.exchange(false)) {
    e.backend.Destroy();
    spdlog::info("fuse: session ended by the transport");
  }
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
  fuse_init_out out{};
  if (r->reply_room() < sizeof out) return r->ReplyError(EINVAL);
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
  std::lock_guard lock(e.init_mu);
  if (e.initialized.exchange(false)) e.backend.Destroy();  // a new session (guest reboot)
  Capabilities caps = e.backend.Init();

  uint64_t offered = in.flags;
  if (in.flags & FUSE_INIT_EXT) offered |= uint64_t{in.flags2} << 32;
  // AUTO_INVAL_DATA: backends are shared (NFS, a host directory), so the kernel drops
  // cached pages when it sees mtime or size change. CACHE_SYMLINKS: a symlink's target
  // never changes. Not offered: SETXATTR_EXT and SECURITY_CTX (argument layouts we do not
  // decode), DONT_MASK and POSIX_ACL (the kernel applies umask and ACLs itself).
  uint64_t want = FUSE_BIG_WRITES | FUSE_ASYNC_DIO | FUSE_MAX_PAGES | FUSE_AUTO_INVAL_DATA |
                  FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
  if (caps.async_read) want |= FUSE_ASYNC_READ;
  if (caps.atomic_o_trunc) want |= FUSE_ATOMIC_O_TRUNC;
  if (caps.posix_locks) want |= FUSE_POSIX_LOCKS;
  if (caps.flock_locks) want |= FUSE_FLOCK_LOCKS;
  if (caps.readdirplus) want |= FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO;
  if (caps.parallel_dirops) want |= FUSE_PARALLEL_DIROPS;
  if (caps.writeback_cache && e.options.writeback_cache && !e.options.read_only) {
    want |= FUSE_WRITEBACK_CACHE;
  }
  if (caps.export_support) want |= FUSE_EXPORT_SUPPORT;
  if (caps.handle_killpriv) want |= FUSE_HANDLE_KILLPRIV;
  uint64_t flags = want & offered;

  uint32_t max_pages = std::clamp<uint32_t>(e.options.max_pages, 1, 65535);
  uint64_t max_write = std::min<uint64_t>(uint64_t{max_pages} * 4096, caps.max_write);
  out.max_readahead = in.max_readahead;
  out.flags = static_cast<uint32_t>(flags);
  out.flags2 = static_cast<uint32_t>(flags >> 32);
  out.max_background = 64;
  out.congestion_threshold = 48;
  out.max_write = static_cast<uint32_t>(std::max<uint64_t>(max_write, 4096));  // kernel minimum
  out.time_gran = 1;
  out.max_pages = static_cast<uint16_t>(max_pages);
  e.max_write.store(out.max_write);
  e.export_support.store((flags & FUSE_EXPORT_SUPPORT) != 0);
  e.initialized.store(true, std::memory_order_release);
  spdlog::info("fuse: session initialised (kernel {}.{}, max_write {}, flags {:#x})", in.major,
               in.minor, out.max_write, flags);
  r->set_reply_limit(sizeof out);
  r->ReplyData({reinterpret_cast<const char*>(&out), sizeof out});
}

// 0 if `name` may name a directory entry, else the errno to reply.
int CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return EINVAL;
  }
  return name.size() > kNameMax ? ENAMETOOLONG : 0;
}

// Xattr names: non-empty, at most XATTR_NAME_MAX.
int CheckXattrName(std::string_view name) {
  if (name.empty()) return EINVAL;
  return name.size() > kNameMax ? ERANGE : 0;
}

FileInfo FileOf(uint64_t fh, uint32_t flags = 0, uint64_t lock_owner = 0) {
  FileInfo fi;
  fi.fh = fh;
  fi.flags = flags;
  fi.lock_owner = lock_owner;
  return fi;
}

timespec Time(uint64_t sec, uint32_t nsec) {
  return {static_cast<time_t>(sec), static_cast<long>(nsec % 1000000000)};
}

// Decodes the arguments of `r` and calls the backend. `args` holds everything after
// fuse_in_header except a write payload, which `r->payload()` already points to.
void Dispatch(EngineRep& e, FuseRequest* r, const fuse_in_header& h, ArgReader& args) {
  Backend& b = e.backend;
  const uint64_t ino = h.nodeid;
  std::string_view name, name2;
  switch (h.opcode) {
    case FUSE_LOOKUP: {
      if (!args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      // With EXPORT_SUPPORT the kernel looks up "." and ".." by node id (NFS re-export).
      bool export_name =
          (name == "." || name == "..") && e.export_support.load(std::memory_order_relaxed);
      if (int err = export_name ? 0 : CheckName(name)) {
        return r->ReplyError(err == EINVAL ? ENOENT : err);  // such a name never exists
      }
      return b.Lookup(r, ino, name);
    }
    case FUSE_FORGET: {
      fuse_forget_in in;
      if (args.Take(&in)) b.Forget(ino, in.nlookup);
      return r->FinishNoReply();
    }
    case FUSE_GETATTR: {
      fuse_getattr_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi = FileOf(in.fh);
      return b.Getattr(r, ino, (in.getattr_flags & FUSE_GETATTR_FH) ? &fi : nullptr);
    }
    case FUSE_SETATTR: {
      fuse_setattr_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi = FileOf(in.fh, 0, in.lock_owner);
      SetattrArgs a;
      a.valid = in.valid;
      a.mode = in.mode;
      a.uid = in.uid;
      a.gid = in.gid;
      a.size = in.size;
      a.atime = Time(in.atime, in.atimensec);
      a.mtime = Time(in.mtime, in.mtimensec);
      a.ctime = Time(in.ctime, in.ctimensec);
      if (in.valid & FATTR_FH) a.fi = &fi;
      return b.Setattr(r, ino, a);
    }
    case FUSE_READLINK:
      return b.Readlink(r, ino);
    case FUSE_SYMLINK: {
      // The entry name first, then the target.
      if (!args.TakeString(&name, PATH_MAX) || !args.TakeString(&name2, PATH_MAX)) {
        return r->ReplyError(EINVAL);
      }
      if (int err = CheckName(name)) return r->ReplyError(err);
      if (name2.empty()) return r->ReplyError(ENOENT);  // as symlink(2) says
      if (name2.size() > kSymlinkMax) return r->ReplyError(ENAMETOOLONG);
      return b.Symlink(r, name2, ino, name);
    }
    case FUSE_MKNOD: {
      fuse_mknod_in in;
      if (!args.Take(&in) || !args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Mknod(r, ino, name, in.mode, in.rdev);
    }
    case FUSE_MKDIR: {
      fuse_mkdir_in in;
      if (!args.Take(&in) || !args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Mkdir(r, ino, name, in.mode);
    }
    case FUSE_UNLINK:
    case FUSE_RMDIR: {
      if (!args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
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
      if (!args.TakeString(&name, PATH_MAX) || !args.TakeString(&name2, PATH_MAX)) {
        return r->ReplyError(EINVAL);
      }
      if (int err = CheckName(name)) return r->ReplyError(err);
      if (int err = CheckName(name2)) return r->ReplyError(err);
      return b.Rename(r, ino, name, newdir, name2, flags);
    }
    case FUSE_LINK: {
      fuse_link_in in;
      if (!args.Take(&in) || !args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Link(r, in.oldnodeid, ino, name);
    }
    case FUSE_OPEN:
    case FUSE_OPENDIR: {
      fuse_open_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi = FileOf(0, in.flags);
      if (h.opcode == FUSE_OPENDIR) return b.Opendir(r, ino, fi);
      if (e.options.read_only && ((in.flags & O_ACCMODE) != O_RDONLY || (in.flags & O_TRUNC))) {
        return r->ReplyError(EROFS);
      }
      return b.Open(r, ino, fi);
    }
    case FUSE_CREATE: {
      fuse_create_in in;
      if (!args.Take(&in) || !args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      if (int err = CheckName(name)) return r->ReplyError(err);
      return b.Create(r, ino, name, in.mode, FileOf(0, in.flags));
    }
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
      fuse_read_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi = FileOf(in.fh, in.flags, in.lock_owner);
      // Never more than the out buffers hold: a larger read would overflow them.
      size_t size = std::min<size_t>(in.size, r->reply_room());
      r->set_reply_limit(size);
      if (h.opcode == FUSE_READ) return b.Read(r, ino, size, in.offset, fi);
      return b.Readdir(r, ino, size, in.offset, h.opcode == FUSE_READDIRPLUS, fi);
    }
    case FUSE_WRITE: {
      fuse_write_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      if (in.size > e.max_write.load(std::memory_order_relaxed) ||
          TotalLength(r->payload()) != in.size) {
        e.Warn(EngineRep::kBadArgs, "fuse: WRITE of {} bytes carries {} (max_write {})", in.size,
               TotalLength(r->payload()), e.max_write.load(std::memory_order_relaxed));
        return r->ReplyError(EINVAL);
      }
      return b.Write(r, ino, r->payload(), in.offset, FileOf(in.fh, in.flags, in.lock_owner));
    }
    case FUSE_STATFS:
      return b.Statfs(r, ino);
    case FUSE_RELEASE:
    case FUSE_RELEASEDIR: {
      fuse_release_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      FileInfo fi = FileOf(in.fh, in.flags, in.lock_owner);
      return h.opcode == FUSE_RELEASE ? b.Release(r, ino, fi) : b.Releasedir(r, ino, fi);
    }
    case FUSE_FSYNC:
    case FUSE_FSYNCDIR: {
      fuse_fsync_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      bool datasync = in.fsync_flags & 1;
      return h.opcode == FUSE_FSYNC ? b.Fsync(r, ino, datasync, FileOf(in.fh))
                                    : b.Fsyncdir(r, ino, datasync, FileOf(in.fh));
    }
    case FUSE_FLUSH: {
      fuse_flush_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      return b.Flush(r, ino, FileOf(in.fh, 0, in.lock_owner));
    }
    case FUSE_SETXATTR: {
      // Without FUSE_SETXATTR_EXT (never negotiated) the argument is the 8-byte compat form.
      fuse_setxattr_in in;
      std::span<const char> value;
      if (!args.Take(&in, FUSE_COMPAT_SETXATTR_IN_SIZE) || !args.TakeString(&name, PATH_MAX)) {
        return r->ReplyError(EINVAL);
      }
      if (int err = CheckXattrName(name)) return r->ReplyError(err);
      if (in.size > kXattrSizeMax) return r->ReplyError(E2BIG);
      if (!args.TakeBytes(&value, in.size)) return r->ReplyError(EINVAL);
      return b.Setxattr(r, ino, name, value, static_cast<int>(in.flags));
    }
    case FUSE_GETXATTR:
    case FUSE_LISTXATTR: {
      fuse_getxattr_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      if (h.opcode == FUSE_GETXATTR) {
        if (!args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
        if (int err = CheckXattrName(name)) return r->ReplyError(err);
      }
      size_t size = 0;
      if (in.size == 0) {
        r->set_size_query();
      } else {
        size = std::min<size_t>(in.size, r->reply_room());
        if (size == 0) return r->ReplyError(ERANGE);  // no room for even one byte
        r->set_reply_limit(size);
      }
      if (h.opcode == FUSE_LISTXATTR) return b.Listxattr(r, ino, size);
      return b.Getxattr(r, ino, name, size);
    }
    case FUSE_REMOVEXATTR: {
      if (!args.TakeString(&name, PATH_MAX)) return r->ReplyError(EINVAL);
      if (int err = CheckXattrName(name)) return r->ReplyError(err);
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
      FileInfo fi = FileOf(in.fh, 0, in.owner);
      if (in.lk.type != F_RDLCK && in.lk.type != F_WRLCK && in.lk.type != F_UNLCK) {
        return r->ReplyError(EINVAL);
      }
      if (in.lk_flags & FUSE_LK_FLOCK) {
        if (h.opcode == FUSE_GETLK) return r->ReplyError(EINVAL);
        int op = in.lk.type == F_RDLCK ? LOCK_SH : in.lk.type == F_WRLCK ? LOCK_EX : LOCK_UN;
        if (h.opcode == FUSE_SETLK) op |= LOCK_NB;
        return b.Flock(r, ino, fi, op);
      }
      if (h.opcode == FUSE_GETLK) return b.Getlk(r, ino, fi, in.lk);
      return b.Setlk(r, ino, fi, in.lk, h.opcode == FUSE_SETLKW);
    }
    case FUSE_FALLOCATE: {
      fuse_fallocate_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      return b.Fallocate(r, ino, FileOf(in.fh), static_cast<int>(in.mode), in.offset, in.length);
    }
    case FUSE_LSEEK: {
      fuse_lseek_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      return b.Lseek(r, ino, FileOf(in.fh), in.offset, static_cast<int>(in.whence));
    }
    case FUSE_COPY_FILE_RANGE: {
      fuse_copy_file_range_in in;
      if (!args.Take(&in)) return r->ReplyError(EINVAL);
      return b.CopyFileRange(r, ino, FileOf(in.fh_in), in.off_in, in.nodeid_out, FileOf(in.fh_out),
                             in.off_out, static_cast<size_t>(in.len), in.flags);
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

// BATCH_FORGET straight from the buffers (it may be large; nothing is gathered).
void BatchForget(EngineRep& e, std::span<const iovec> in, size_t args_len) {
  IovReader reader(in, sizeof(fuse_in_header));
  fuse_batch_forget_in head;
  if (args_len < sizeof head || reader.Read(&head, sizeof head) != sizeof head ||
      (args_len - sizeof head) / sizeof(fuse_forget_one) < head.count) {
    e.Warn(EngineRep::kBadArgs, "fuse: BATCH_FORGET count exceeds its payload; ignored");
    return;
  }
  for (uint32_t i = 0; i < head.count; ++i) {
    fuse_forget_one one;
    reader.Read(&one, sizeof one);
    e.backend.Forget(one.nodeid, one.nlookup);
  }
}

// Everything of Process after the request object exists; every path replies exactly once.
void Serve(EngineRep& e, FuseRequest* r, const fuse_in_header& h, std::span<const iovec> in,
           size_t in_len) {
  const bool no_reply = TakesNoReply(h.opcode);
  if (h.len < sizeof h || h.len > in_len) {
    e.Warn(EngineRep::kBadLength, "fuse: {} request length {} does not match its {} bytes",
           OpcodeName(h.opcode), h.len, in_len);
    return no_reply ? r->FinishNoReply() : r->ReplyError(EINVAL);
  }
  if (h.opcode != FUSE_INIT && !e.initialized.load(std::memory_order_acquire)) {
    return no_reply ? r->FinishNoReply() : r->ReplyError(EIO);
  }
  size_t args_len = h.len - sizeof h;
  if (h.opcode == FUSE_BATCH_FORGET) {
    BatchForget(e, in, args_len);
    return r->FinishNoReply();
  }
  if (!no_reply) e.Track(r);  // findable by INTERRUPT
  if (e.options.read_only && Modifies(h.opcode)) return r->ReplyError(EROFS);

  // A write payload is never gathered: the backend gets iovecs into the transport's
  // buffers.
  if (h.opcode == FUSE_WRITE && args_len >= sizeof(fuse_write_in)) {
    size_t payload_len = args_len - sizeof(fuse_write_in);
    iovec* slots = r->PayloadSlots(in.size());
    r->set_payload_count(
        SliceIovecs(in, sizeof h + sizeof(fuse_write_in), payload_len, slots, in.size()));
    args_len = sizeof(fuse_write_in);
  } else if (args_len > kMaxArgs) {
    e.Warn(EngineRep::kBadArgs, "fuse: {} arguments of {} bytes refused", OpcodeName(h.opcode),
           args_len);
    if (no_reply) return r->FinishNoReply();
    return r->ReplyError(h.opcode == FUSE_SETXATTR ? E2BIG : EINVAL);
  }
  // The arguments: in place when the first buffer holds them (the common case: /dev/fuse,
  // most drivers), else gathered into the request's scratch.
  const char* args;
  if (in[0].iov_len >= sizeof h + args_len) {
    args = static_cast<const char*>(in[0].iov_base) + sizeof h;
  } else {
    char* scratch = r->Scratch(args_len);
    GatherAt(in, sizeof h, scratch, args_len);
    args = scratch;
  }
  ArgReader reader(args, args_len);
  if (h.opcode == FUSE_INIT) return HandleInit(e, r, reader);
  Dispatch(e, r, h, reader);
}

}  // namespace

void Engine::Process(std::span<const iovec> in, std::span<const iovec> out, Completion* done) {
  const auto start = std::chrono::steady_clock::now();
  EngineRep& e = rep_->e;
  fuse_in_header h;
  const size_t in_len = TotalLength(in);
  if (in_len < sizeof h) {
    done->Complete(0);  // no header, no unique: nothing can be answered
    return;
  }
  if (in[0].iov_len >= sizeof h) {
    std::memcpy(&h, in[0].iov_base, sizeof h);
  } else {
    GatherAt(in, 0, &h, sizeof h);
  }
  switch (e.options.squash) {
    case Squash::kNone:
      break;
    case Squash::kRoot:
      if (h.uid == 0) h.uid = e.options.anon_uid;
      if (h.gid == 0) h.gid = e.options.anon_gid;
      break;
    case Squash::kAll:
      h.uid = e.options.anon_uid;
      h.gid = e.options.anon_gid;
      break;
  }
  e.inflight.fetch_add(1, std::memory_order_relaxed);
  FuseRequest* r = e.Take();
  r->Start(h, out, done, start);
  Serve(e, r, h, in, in_len);
  r->Unref();  // the dispatch's reference; the reply holds the other
}

}  // namespace dpustor::fs
