// Fuzzes the FUSE engine's request decoding and reply encoding: the input is split into
// device-readable and device-writable buffers of input-chosen sizes (as a hostile guest
// could lay out a descriptor chain) and processed after a valid FUSE_INIT. A backend
// answers every operation with plausible data, some of it asynchronously, so the encoders
// run too. Invariants: every request completes exactly once, and a reply never claims
// more bytes than the writable buffers hold or disagrees with its own header.
#include <linux/fuse.h>
#include <sys/uio.h>

#include <dirent.h>
#include <sys/statvfs.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "fs/fuse/engine.h"

namespace {

using namespace dpustor::fs;

Entry SomeEntry(uint64_t nodeid) {
  Entry e;
  e.nodeid = nodeid;
  e.attr.st_ino = nodeid;
  e.attr.st_mode = S_IFREG | 0644;
  e.attr.st_size = 4096;
  return e;
}

// Replies to everything; every third request is held and answered after Process returns.
class AnsweringBackend : public Backend {
 public:
  Capabilities Init() override {
    Capabilities c;
    c.posix_locks = c.flock_locks = c.writeback_cache = true;
    return c;
  }
  void Lookup(Request* r, uint64_t, std::string_view name) override {
    Maybe(r, [name](Request* q) { q->ReplyEntry(SomeEntry(name.size() + 2)); });
  }
  void Getattr(Request* r, uint64_t ino, const FileInfo*) override {
    Maybe(r, [ino](Request* q) { q->ReplyAttr(SomeEntry(ino).attr, 1.0); });
  }
  void Setattr(Request* r, uint64_t ino, const SetattrArgs&) override {
    r->ReplyAttr(SomeEntry(ino).attr, 0.5);
  }
  void Readlink(Request* r, uint64_t) override { r->ReplyReadlink("target/of/link"); }
  void Mknod(Request* r, uint64_t, std::string_view, mode_t, dev_t) override {
    r->ReplyEntry(SomeEntry(3));
  }
  void Mkdir(Request* r, uint64_t, std::string_view, mode_t) override { r->ReplyError(EEXIST); }
  void Symlink(Request* r, std::string_view, uint64_t, std::string_view) override {
    r->ReplyEntry(SomeEntry(4));
  }
  void Link(Request* r, uint64_t ino, uint64_t, std::string_view) override {
    r->ReplyEntry(SomeEntry(ino));
  }
  void Unlink(Request* r, uint64_t, std::string_view) override { r->ReplyOk(); }
  void Rmdir(Request* r, uint64_t, std::string_view) override { r->ReplyError(ENOTEMPTY); }
  void Rename(Request* r, uint64_t, std::string_view, uint64_t, std::string_view,
              uint32_t) override {
    r->ReplyOk();
  }
  void Open(Request* r, uint64_t, const FileInfo&) override { r->ReplyOpen({7, true}); }
  void Create(Request* r, uint64_t, std::string_view, mode_t, const FileInfo&) override {
    r->ReplyCreate(SomeEntry(9), {8});
  }
  void Read(Request* r, uint64_t, size_t size, uint64_t off, const FileInfo&) override {
    if (off & 1) {
      std::span<const iovec> bufs = r->DataBuffers(size);
      size_t n = 0;
      for (const iovec& v : bufs) std::memset(v.iov_base, 'r', v.iov_len), n += v.iov_len;
      return r->ReplyDataFilled(n);
    }
    std::vector<char> data(std::min<size_t>(size, 1 << 20), 'd');
    Maybe(r, [data](Request* q) { q->ReplyData(data); });
  }
  void Write(Request* r, uint64_t, std::span<const iovec> data, uint64_t,
             const FileInfo&) override {
    size_t n = 0;
    volatile char sink = 0;
    for (const iovec& v : data) {
      for (size_t i = 0; i < v.iov_len; ++i) sink = sink + static_cast<const char*>(v.iov_base)[i];
      n += v.iov_len;
    }
    r->ReplyWrite(static_cast<uint32_t>(n));
  }
  void Opendir(Request* r, uint64_t, const FileInfo&) override { r->ReplyOpen({1}); }
  void Readdir(Request* r, uint64_t, size_t, uint64_t off, bool plus, const FileInfo&) override {
    for (uint64_t i = off; i < off + 64; ++i) {
      std::string name = "e" + std::to_string(i);
      bool ok = plus ? r->AddDirEntryPlus(name, SomeEntry(i % 3 ? i + 2 : 0), i + 1)
                     : r->AddDirEntry(name, i + 2, DT_REG, i + 1);
      if (!ok) break;
    }
    r->ReplyDir();
  }
  void Statfs(Request* r, uint64_t) override {
    struct statvfs s = {};
    s.f_bsize = 4096;
    r->ReplyStatfs(s);
  }
  void Getxattr(Request* r, uint64_t, std::string_view, size_t size) override {
    if (size == 0) return r->ReplyXattrSize(5);
    if (size < 5) return r->ReplyError(ERANGE);
    r->ReplyData({"value", 5});
  }
  void Listxattr(Request* r, uint64_t, size_t size) override {
    if (size == 0) return r->ReplyXattrSize(8);
    r->ReplyData({"user.a\0", std::min<size_t>(size, 7)});
  }
  void Getlk(Request* r, uint64_t, const FileInfo&, const fuse_file_lock& lk) override {
    r->ReplyLock(lk);
  }
  void Setlk(Request* r, uint64_t, const FileInfo&, const fuse_file_lock&, bool) override {
    Maybe(r, [](Request* q) { q->ReplyError(q->interrupted() ? EINTR : 0); });
  }
  void Flock(Request* r, uint64_t, const FileInfo&, int) override { r->ReplyOk(); }
  void Lseek(Request* r, uint64_t, const FileInfo&, uint64_t off, int) override {
    r->ReplyLseek(off);
  }
  void CopyFileRange(Request* r, uint64_t, const FileInfo&, uint64_t, uint64_t, const FileInfo&,
                     uint64_t, size_t len, uint64_t) override {
    r->ReplyWrite(static_cast<uint32_t>(len));
  }

  // Answers later (after Process returned) every third time.
  template <class F>
  void Maybe(Request* r, F&& answer) {
    if (++n_ % 3 == 0) {
      held_.push_back([r, answer] { answer(r); });
    } else {
      answer(r);
    }
  }
  void RunHeld() {
    auto held = std::move(held_);
    held_.clear();
    for (auto it = held.rbegin(); it != held.rend(); ++it) (*it)();  // out of order
  }

 private:
  unsigned n_ = 0;
  std::vector<std::function<void()>> held_;
};

struct Checked : Completion {
  void Complete(size_t bytes) override {
    if (++calls != 1) abort();
    if (bytes > capacity) abort();
    if (bytes) {
      fuse_out_header h;
      std::vector<char> flat;
      for (const iovec& v : out) {
        const char* p = static_cast<const char*>(v.iov_base);
        flat.insert(flat.end(), p, p + v.iov_len);
      }
      std::memcpy(&h, flat.data(), sizeof h);
      if (h.len != bytes || h.error > 0 || h.error < -4095) abort();
      if (h.error != 0 && bytes != sizeof h) abort();
    }
  }
  int calls = 0;
  size_t capacity = 0;
  std::vector<iovec> out;
};

std::vector<char> InitRequest() {
  struct {
    fuse_in_header h;
    fuse_init_in in;
  } req = {};
  req.h.len = sizeof req;
  req.h.opcode = FUSE_INIT;
  req.h.unique = 1;
  req.in.major = 7;
  req.in.minor = 38;
  req.in.flags = 0xffffffff;
  req.in.flags2 = 0xffffffff;
  std::vector<char> v(sizeof req);
  std::memcpy(v.data(), &req, sizeof req);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the engine logs malformed requests
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  AnsweringBackend backend;
  Engine engine(backend, EngineOptions{});
  std::vector<char> init = InitRequest();
  std::vector<char> init_out(4096);
  iovec ii{init.data(), init.size()}, io{init_out.data(), init_out.size()};
  Checked init_done;
  init_done.capacity = init_out.size();
  init_done.out = {io};
  engine.Process({&ii, 1}, {&io, 1}, &init_done);

  // Layout: [n_in][n_out] then n_in + n_out sizes (2 bytes each), then the readable bytes.
  // The writable buffers are separate memory, as device-writable descriptors would be.
  if (size < 2) return 0;
  size_t n_in = data[0] % 5 + 1, n_out = data[1] % 5 + 1;
  size_t pos = 2;
  std::vector<size_t> sizes;
  for (size_t i = 0; i < n_in + n_out; ++i) {
    if (pos + 2 > size) return 0;
    sizes.push_back((data[pos] | (data[pos + 1] << 8)) % 8192);
    pos += 2;
  }
  std::vector<std::vector<char>> storage;
  std::vector<iovec> in, out;
  const char* body = reinterpret_cast<const char*>(data + pos);
  size_t left = size - pos;
  for (size_t i = 0; i < n_in; ++i) {
    size_t n = i + 1 == n_in ? left : std::min(sizes[i], left);
    storage.emplace_back(body, body + n);  // own copy: exact bounds for ASan
    in.push_back({storage.back().data(), n});
    body += n;
    left -= n;
  }
  Checked done;
  for (size_t i = 0; i < n_out; ++i) {
    storage.emplace_back(sizes[n_in + i]);
    out.push_back({storage.back().data(), storage.back().size()});
    done.capacity += storage.back().size();
  }
  done.out = out;
  engine.Process(in, out, &done);
  backend.RunHeld();
  if (done.calls != 1) abort();
  return 0;
}
