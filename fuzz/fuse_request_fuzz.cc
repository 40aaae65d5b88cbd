// Fuzzes the FUSE engine's request decoding and reply encoding. After a valid FUSE_INIT,
// the input is a sequence of up to 8 requests; each chooses how its bytes are spread over
// device-readable buffers and how large its device-writable buffers are (as a hostile
// guest could lay out a descriptor chain), and how the backend behaves: answer at once
// with plausible data, answer later (out of order, EINTR when interrupted), or misuse the
// Request (wrong reply kind, oversized data, a second reply).
//
// Input record: [mode byte][2-byte sizes: n_in readable, n_out writable][2-byte body
// length][body]. Mode: bits 0-1 n_in - 1, bits 2-3 n_out - 1, bits 4-5 backend behaviour.
//
// Invariants (abort on violation): every request completes exactly once; a reply never
// claims more bytes than its writable buffers hold; its header agrees with the bytes
// completed, carries the request's unique and a valid errno; an error reply has no body.
#include <linux/fuse.h>
#include <sys/statvfs.h>
#include <sys/uio.h>

#include <dirent.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "fuzz_input.h"

#include "fs/fuse/engine.h"

namespace {

using namespace dpustor::fs;

enum class Behaviour { kNow, kNow2, kLater, kMisuse };

Entry SomeEntry(uint64_t nodeid) {
  Entry e;
  e.nodeid = nodeid;
  e.attr.st_ino = nodeid;
  e.attr.st_mode = S_IFREG | 0644;
  e.attr.st_size = 4096;
  e.attr.st_mtim.tv_nsec = 123;
  e.entry_timeout = 0.25;
  return e;
}

class AnsweringBackend : public Backend {
 public:
  Behaviour behaviour = Behaviour::kNow;

  Capabilities Init() override {
    Capabilities c;
    c.posix_locks = c.flock_locks = c.writeback_cache = c.export_support = true;
    return c;
  }
  void Lookup(Request* r, uint64_t, std::string_view name) override {
    Respond(r, [n = name.size()](Request* q) { q->ReplyEntry(SomeEntry(n + 2)); });
  }
  void Getattr(Request* r, uint64_t ino, const FileInfo*) override {
    Respond(r, [ino](Request* q) { q->ReplyAttr(SomeEntry(ino).attr, 1.0); });
  }
  void Setattr(Request* r, uint64_t ino, const SetattrArgs&) override {
    Respond(r, [ino](Request* q) { q->ReplyAttr(SomeEntry(ino).attr, 0.5); });
  }
  void Readlink(Request* r, uint64_t) override {
    Respond(r, [](Request* q) { q->ReplyReadlink("target/of/link"); });
  }
  void Mknod(Request* r, uint64_t, std::string_view, mode_t, dev_t) override {
    Respond(r, [](Request* q) { q->ReplyEntry(SomeEntry(3)); });
  }
  void Mkdir(Request* r, uint64_t, std::string_view, mode_t) override {
    Respond(r, [](Request* q) { q->ReplyError(EEXIST); });
  }
  void Symlink(Request* r, std::string_view, uint64_t, std::string_view) override {
    Respond(r, [](Request* q) { q->ReplyEntry(SomeEntry(4)); });
  }
  void Link(Request* r, uint64_t ino, uint64_t, std::string_view) override {
    Respond(r, [ino](Request* q) { q->ReplyEntry(SomeEntry(ino)); });
  }
  void Unlink(Request* r, uint64_t, std::string_view) override { Respond(r, Ok); }
  void Rmdir(Request* r, uint64_t, std::string_view) override {
    Respond(r, [](Request* q) { q->ReplyError(ENOTEMPTY); });
  }
  void Rename(Request* r, uint64_t, std::string_view, uint64_t, std::string_view,
              uint32_t) override {
    Respond(r, Ok);
  }
  void Open(Request* r, uint64_t, const FileInfo&) override {
    Respond(r, [](Request* q) { q->ReplyOpen({7, true, false, true, false}); });
  }
  void Create(Request* r, uint64_t, std::string_view, mode_t, const FileInfo&) override {
    Respond(r, [](Request* q) { q->ReplyCreate(SomeEntry(9), {8}); });
  }
  void Read(Request* r, uint64_t, size_t size, uint64_t off, const FileInfo&) override {
    Respond(r, [size, off](Request* q) {
      if (off & 1) {  // zero-copy into the reply buffers
        size_t n = 0;
        for (const iovec& v : q->DataBuffers(size)) {
          std::memset(v.iov_base, 'r', v.iov_len);
          n += v.iov_len;
        }
        return q->ReplyDataFilled(n);
      }
      std::vector<char> data(size, 'd');
      q->ReplyData(data);
    });
  }
  void Write(Request* r, uint64_t, std::span<const iovec> data, uint64_t,
             const FileInfo&) override {
    size_t n = 0;
    unsigned sum = 0;
    for (const iovec& v : data) {  // touch every payload byte: ASan checks the bounds
      for (size_t i = 0; i < v.iov_len; ++i)
        sum += static_cast<const unsigned char*>(v.iov_base)[i];
      n += v.iov_len;
    }
    sink_ += sum;
    Respond(r, [n](Request* q) { q->ReplyWrite(static_cast<uint32_t>(n)); });
  }
  void Flush(Request* r, uint64_t, const FileInfo&) override { Respond(r, Ok); }
  void Fsync(Request* r, uint64_t, bool, const FileInfo&) override { Respond(r, Ok); }
  void Opendir(Request* r, uint64_t, const FileInfo&) override {
    Respond(r, [](Request* q) { q->ReplyOpen({1, false, false, false, true}); });
  }
  void Readdir(Request* r, uint64_t, size_t, uint64_t off, bool plus, const FileInfo&) override {
    Respond(r, [off, plus](Request* q) {
      for (uint64_t i = off; i < off + 64; ++i) {
        std::string name = i % 17 == 5 ? "bad/name" : "e" + std::to_string(i);
        bool ok = plus && i % 5 ? q->AddDirEntryPlus(name, SomeEntry(i % 3 ? i + 2 : 0), i + 1)
                                : q->AddDirEntry(name, i + 2, DT_REG, i + 1);
        if (!ok) break;
      }
      q->ReplyDir();
    });
  }
  void Statfs(Request* r, uint64_t) override {
    Respond(r, [](Request* q) {
      struct statvfs s = {};
      s.f_bsize = 4096;
      s.f_namemax = 255;
      q->ReplyStatfs(s);
    });
  }
  void Setxattr(Request* r, uint64_t, std::string_view, std::span<const char> value, int) override {
    sink_ += value.empty() ? 0 : static_cast<unsigned char>(value.back());
    Respond(r, Ok);
  }
  void Getxattr(Request* r, uint64_t, std::string_view, size_t size) override {
    Respond(r, [size](Request* q) {
      if (size == 0) return q->ReplyXattrSize(5);
      q->ReplyData({"value", 5});  // ERANGE from the engine when size < 5
    });
  }
  void Listxattr(Request* r, uint64_t, size_t size) override {
    Respond(r, [size](Request* q) {
      if (size == 0) return q->ReplyXattrSize(14);
      q->ReplyData({"user.a\0user.b\0", 14});
    });
  }
  void Removexattr(Request* r, uint64_t, std::string_view) override { Respond(r, Ok); }
  void Access(Request* r, uint64_t, int) override { Respond(r, Ok); }
  void Getlk(Request* r, uint64_t, const FileInfo&, const fuse_file_lock& lk) override {
    Respond(r, [lk](Request* q) { q->ReplyLock(lk); });
  }
  void Setlk(Request* r, uint64_t, const FileInfo&, const fuse_file_lock&, bool) override {
    Respond(r, Ok);
  }
  void Flock(Request* r, uint64_t, const FileInfo&, int) override { Respond(r, Ok); }
  void Fallocate(Request* r, uint64_t, const FileInfo&, int, uint64_t, uint64_t) override {
    Respond(r, Ok);
  }
  void Lseek(Request* r, uint64_t, const FileInfo&, uint64_t off, int) override {
    Respond(r, [off](Request* q) { q->ReplyLseek(off); });
  }
  void CopyFileRange(Request* r, uint64_t, const FileInfo&, uint64_t, uint64_t, const FileInfo&,
                     uint64_t, size_t len, uint64_t) override {
    Respond(r, [len](Request* q) { q->ReplyWrite(static_cast<uint32_t>(len)); });
  }

  // Answers the held requests, last first; an interrupted one gets EINTR.
  void RunHeld() {
    auto held = std::move(held_);
    held_.clear();
    for (auto it = held.rbegin(); it != held.rend(); ++it) (*it)();
  }
  unsigned sink() const { return sink_; }

 private:
  static void Ok(Request* q) { q->ReplyOk(); }

  template <class F>
  void Respond(Request* r, F&& answer) {
    switch (behaviour) {
      case Behaviour::kLater:
        held_.push_back([r, answer] {
          if (r->interrupted()) return r->ReplyError(EINTR);
          answer(r);
        });
        return;
      case Behaviour::kMisuse:
        Misuse(r);  // whatever it was, the engine must answer something well-formed
        Misuse(r);  // a second reply: ignored
        return;
      default:
        answer(r);
    }
  }

  // Every reply call, in turn, whatever the operation.
  void Misuse(Request* r) {
    static const int kErrors[] = {0, -5, 5000, INT_MIN, EINTR, 4095};
    switch (misuse_++ % 16) {
      case 0:
        return r->ReplyError(kErrors[(misuse_ / 16) % 6]);
      case 1:
        return r->ReplyEntry(SomeEntry(0));
      case 2:
        return r->ReplyCreate(SomeEntry(3), {});
      case 3:
        return r->ReplyAttr(SomeEntry(3).attr, -1.0);
      case 4:
        return r->ReplyOpen({});
      case 5:
        return r->ReplyWrite(UINT32_MAX);
      case 6:
        return r->ReplyReadlink(std::string(5000, 'l'));
      case 7:
        return r->ReplyStatfs({});
      case 8:
        return r->ReplyXattrSize(7);
      case 9:
        return r->ReplyLock({});
      case 10:
        return r->ReplyLseek(1);
      case 11: {
        std::vector<char> big(70000, 'b');
        return r->ReplyData(big);
      }
      case 12: {
        size_t n = 0;
        for (const iovec& v : r->DataBuffers(SIZE_MAX)) n += v.iov_len;
        return r->ReplyDataFilled(n + (misuse_ & 1));
      }
      case 13:
        r->AddDirEntry(std::string(300, 'x'), 1, DT_REG, 1);
        r->AddDirEntry("", 1, DT_REG, 1);
        r->AddDirEntryPlus("p", SomeEntry(9), 2);
        return r->ReplyDir();
      case 14:
        while (r->AddDirEntry("fill", 1, DT_DIR, 1)) {
        }
        return r->ReplyDir();
      default:
        return r->ReplyData({});
    }
  }

  unsigned misuse_ = 0;
  unsigned sink_ = 0;
  std::vector<std::function<void()>> held_;
};

// One request's buffers and its completion record.
struct Slot : Completion {
  void Complete(size_t bytes) override {
    if (++calls != 1) abort();
    if (bytes > capacity) abort();
    if (bytes == 0) return;
    std::vector<char> flat;
    for (const iovec& v : out) {
      const char* p = static_cast<const char*>(v.iov_base);
      flat.insert(flat.end(), p, p + v.iov_len);
    }
    fuse_out_header h;
    std::memcpy(&h, flat.data(), sizeof h);
    if (h.len != bytes || h.error > 0 || h.error <= -4096) abort();
    if (h.error != 0 && bytes != sizeof h) abort();
    if (has_unique && h.unique != unique) abort();
  }
  std::vector<std::vector<char>> storage;
  std::vector<iovec> in, out;
  size_t capacity = 0;
  int calls = 0;
  bool has_unique = false;
  uint64_t unique = 0;
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

using Input = FuzzInput;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // the engine logs malformed requests
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  AnsweringBackend backend;
  EngineOptions options;
  options.writeback_cache = size & 1;
  Engine engine(backend, options);
  std::deque<Slot> slots;  // stable addresses: held requests outlive the loop iteration

  std::vector<char> init = InitRequest();
  Slot& first = slots.emplace_back();
  first.storage.emplace_back(4096);
  first.in = {{init.data(), init.size()}};
  first.out = {{first.storage[0].data(), 4096}};
  first.capacity = 4096;
  engine.Process(first.in, first.out, &first);
  if (first.calls != 1 || !engine.initialized()) abort();

  Input input{data, size};
  for (int n = 0; n < 8 && input.left > 0; ++n) {
    unsigned mode = input.U8();
    size_t n_in = (mode & 3) + 1, n_out = ((mode >> 2) & 3) + 1;
    backend.behaviour = static_cast<Behaviour>((mode >> 4) & 3);
    Slot& s = slots.emplace_back();
    std::vector<size_t> in_sizes, out_sizes;
    for (size_t i = 0; i < n_in; ++i) in_sizes.push_back(input.U16() % 8192);
    for (size_t i = 0; i < n_out; ++i) out_sizes.push_back(input.U16() % 8192);
    size_t body_len = std::min<size_t>(input.U16(), input.left);
    const char* body = reinterpret_cast<const char*>(input.p);
    input.p += body_len;
    input.left -= body_len;
    for (size_t i = 0; i < n_in; ++i) {  // own allocations: exact bounds for ASan
      size_t len = i + 1 == n_in ? body_len : std::min(in_sizes[i], body_len);
      s.storage.emplace_back(body, body + len);
      s.in.push_back({s.storage.back().data(), len});
      body += len;
      body_len -= len;
    }
    for (size_t i = 0; i < n_out; ++i) {
      s.storage.emplace_back(out_sizes[i]);
      s.out.push_back({s.storage.back().data(), out_sizes[i]});
      s.capacity += out_sizes[i];
    }
    std::vector<char> head;
    for (const iovec& v : s.in) {
      const char* p = static_cast<const char*>(v.iov_base);
      head.insert(head.end(), p, p + v.iov_len);
    }
    if (head.size() >= sizeof(fuse_in_header)) {
      fuse_in_header h;
      std::memcpy(&h, head.data(), sizeof h);
      s.has_unique = true;
      s.unique = h.unique;
    }
    engine.Process(s.in, s.out, &s);
  }
  backend.RunHeld();
  for (const Slot& s : slots) {
    if (s.calls != 1) abort();
  }
  if (engine.inflight() != 0) abort();
  return static_cast<int>(backend.sink() & 0);
}
