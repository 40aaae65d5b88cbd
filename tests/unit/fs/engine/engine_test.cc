// The FUSE engine against a recording backend: raw requests in, exact reply bytes out.
#include "fs/fuse/engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>

#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dpustor::fs {
namespace {

// Builds one raw request: header + argument structs + strings + payload.
class RawRequest {
 public:
  RawRequest(uint32_t opcode, uint64_t nodeid, uint64_t unique = 7) {
    fuse_in_header h{};
    h.opcode = opcode;
    h.nodeid = nodeid;
    h.unique = unique;
    h.uid = 1000;
    h.gid = 100;
    h.pid = 42;
    Add(h);
  }
  template <class T>
  RawRequest& Add(const T& v) {
    Append(&v, sizeof v);
    return *this;
  }
  RawRequest& Str(std::string_view s) {
    Append(s.data(), s.size());
    Append("", 1);
    return *this;
  }
  RawRequest& Bytes(std::string_view s) {
    Append(s.data(), s.size());
    return *this;
  }
  RawRequest& SetLen(uint32_t len) {
    std::memcpy(bytes_.data(), &len, 4);
    fixed_len_ = true;
    return *this;
  }
  std::vector<char>& bytes() { return bytes_; }

 private:
  void Append(const void* p, size_t n) {
    size_t at = bytes_.size();
    bytes_.resize(at + n);
    if (n) std::memcpy(bytes_.data() + at, p, n);
    Fix();
  }
  void Fix() {
    if (fixed_len_) return;
    uint32_t len = static_cast<uint32_t>(bytes_.size());
    std::memcpy(bytes_.data(), &len, 4);
  }
  std::vector<char> bytes_;
  bool fixed_len_ = false;
};

struct Done : Completion {
  void Complete(size_t n) override {
    std::lock_guard lock(mu);
    bytes = n;
    ++calls;
  }
  std::mutex mu;
  size_t bytes = 0;
  int calls = 0;
};

// Records what the engine asked; replies synchronously unless `hold` is set.
class FakeBackend : public Backend {
 public:
  Capabilities Init() override { return caps; }
  void Lookup(Request* r, uint64_t parent, std::string_view name) override {
    calls.push_back("lookup " + std::to_string(parent) + " " + std::string(name));
    last_caller = r->caller();
    if (hold) return held.push_back(r);
    Entry e;
    e.nodeid = 5;
    e.generation = 9;
    e.attr.st_ino = 55;
    e.attr.st_mode = S_IFREG | 0644;
    e.attr.st_size = 1234;
    e.entry_timeout = 1.5;
    r->ReplyEntry(e);
  }
  void Forget(uint64_t ino, uint64_t n) override {
    calls.push_back("forget " + std::to_string(ino) + " " + std::to_string(n));
  }
  void Read(Request* r, uint64_t, size_t size, uint64_t off, const FileInfo& fi) override {
    calls.push_back("read " + std::to_string(size) + " " + std::to_string(off) + " fh " +
                    std::to_string(fi.fh));
    std::string data(size, 'x');
    r->ReplyData({data.data(), data.size()});
  }
  void Write(Request* r, uint64_t, std::span<const iovec> data, uint64_t off,
             const FileInfo&) override {
    std::string got;
    for (const iovec& v : data) got.append(static_cast<const char*>(v.iov_base), v.iov_len);
    calls.push_back("write " + std::to_string(off) + " " + got);
    r->ReplyWrite(static_cast<uint32_t>(got.size()));
  }
  void Readdir(Request* r, uint64_t, size_t, uint64_t off, bool, const FileInfo&) override {
    for (uint64_t i = off; i < 100; ++i) {
      if (!r->AddDirEntry("entry" + std::to_string(i), 100 + i, DT_REG, i + 1)) break;
    }
    r->ReplyDir();
  }
  void Setlk(Request* r, uint64_t, const FileInfo&, const fuse_file_lock&, bool) override {
    held.push_back(r);  // a blocking lock: waits until the test ends it
  }
  void Flock(Request* r, uint64_t, const FileInfo&, int op) override {
    calls.push_back("flock " + std::to_string(op));
    r->ReplyOk();
  }
  void Mkdir(Request* r, uint64_t, std::string_view name, mode_t mode) override {
    calls.push_back("mkdir " + std::string(name) + " " + std::to_string(mode));
    r->ReplyError(EEXIST);
  }
  void Destroy() override { calls.push_back("destroy"); }

  Capabilities caps;
  bool hold = false;
  std::vector<Request*> held;
  std::vector<std::string> calls;
  Caller last_caller;
};

class EngineTest : public ::testing::Test {
 protected:
  // Runs one request with the given reply room; returns the reply bytes.
  std::string Run(RawRequest& req, size_t out_room = 1 << 16, Done* done = nullptr) {
    Done local;
    Done* d = done ? done : &local;
    out_.assign(out_room, '\xAA');
    iovec in{req.bytes().data(), req.bytes().size()};
    iovec out{out_.data(), out_.size()};
    engine_.Process({&in, 1}, {&out, 1}, d);
    return std::string(out_.data(), d->bytes);
  }
  fuse_init_out Init(uint32_t flags = 0xffffffff, uint32_t flags2 = 0xffffffff) {
    fuse_init_in in{};
    in.major = 7;
    in.minor = 38;
    in.max_readahead = 128 * 1024;
    in.flags = flags | FUSE_INIT_EXT;
    in.flags2 = flags2;
    RawRequest req(FUSE_INIT, 0, 1);
    req.Add(in);
    std::string reply = Run(req);
    fuse_init_out out{};
    EXPECT_EQ(reply.size(), sizeof(fuse_out_header) + sizeof out);
    std::memcpy(&out, reply.data() + sizeof(fuse_out_header), sizeof out);
    return out;
  }
  static int Error(const std::string& reply) {
    fuse_out_header h{};
    std::memcpy(&h, reply.data(), std::min(reply.size(), sizeof h));
    return -h.error;
  }

  FakeBackend backend_;
  EngineOptions options_;
  Engine engine_{backend_, options_};
  std::vector<char> out_;
};

TEST_F(EngineTest, RequestsBeforeInitGetEio) {
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("a");
  EXPECT_EQ(Error(Run(req)), EIO);
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(EngineTest, InitOffersOnlyWhatBothSidesSupport) {
  backend_.caps.posix_locks = false;
  backend_.caps.flock_locks = true;
  backend_.caps.writeback_cache = true;  // but the engine option is off
  backend_.caps.max_write = 128 * 1024;
  fuse_init_out out = Init(~uint32_t{FUSE_PARALLEL_DIROPS});
  EXPECT_EQ(out.major, 7u);
  EXPECT_EQ(out.max_pages, 256);
  EXPECT_EQ(out.max_write, 128u * 1024);
  EXPECT_TRUE(out.flags & FUSE_FLOCK_LOCKS);
  EXPECT_TRUE(out.flags & FUSE_MAX_PAGES);
  EXPECT_TRUE(out.flags & FUSE_DO_READDIRPLUS);
  EXPECT_FALSE(out.flags & FUSE_POSIX_LOCKS);
  EXPECT_FALSE(out.flags & FUSE_WRITEBACK_CACHE);
  EXPECT_FALSE(out.flags & FUSE_PARALLEL_DIROPS);  // the kernel did not offer it
  EXPECT_FALSE(out.flags & FUSE_ATOMIC_O_TRUNC);
  EXPECT_TRUE(engine_.initialized());
}

TEST_F(EngineTest, WritebackNeedsBackendAndOption) {
  FakeBackend b;
  b.caps.writeback_cache = true;
  EngineOptions o;
  o.writeback_cache = true;
  Engine engine(b, o);
  fuse_init_in in{};
  in.major = 7;
  in.minor = 31;
  in.flags = FUSE_WRITEBACK_CACHE;
  RawRequest req(FUSE_INIT, 0, 1);
  req.Add(in);
  std::vector<char> out(4096);
  iovec i{req.bytes().data(), req.bytes().size()}, o2{out.data(), out.size()};
  Done d;
  engine.Process({&i, 1}, {&o2, 1}, &d);
  fuse_init_out io{};
  std::memcpy(&io, out.data() + sizeof(fuse_out_header), sizeof io);
  EXPECT_EQ(io.flags, uint32_t{FUSE_WRITEBACK_CACHE});
}

TEST_F(EngineTest, OldOrNewerKernelsAreHandled) {
  fuse_init_in in{};
  in.major = 7;
  in.minor = 20;
  RawRequest old(FUSE_INIT, 0, 1);
  old.Add(in);
  EXPECT_EQ(Error(Run(old)), EPROTO);
  EXPECT_FALSE(engine_.initialized());
  in.major = 8;
  RawRequest newer(FUSE_INIT, 0, 2);
  newer.Add(in);
  std::string reply = Run(newer);
  ASSERT_EQ(Error(reply), 0);
  fuse_init_out out{};
  std::memcpy(&out, reply.data() + sizeof(fuse_out_header), sizeof out);
  EXPECT_EQ(out.major, 7u);  // the kernel retries with our major
  EXPECT_FALSE(engine_.initialized());
}

TEST_F(EngineTest, LookupEncodesEntryAndCarriesCaller) {
  Init();
  RawRequest req(FUSE_LOOKUP, 1, 77);
  req.Str("file");
  std::string reply = Run(req);
  ASSERT_EQ(reply.size(), sizeof(fuse_out_header) + sizeof(fuse_entry_out));
  fuse_out_header h;
  std::memcpy(&h, reply.data(), sizeof h);
  EXPECT_EQ(h.unique, 77u);
  EXPECT_EQ(h.len, reply.size());
  fuse_entry_out e;
  std::memcpy(&e, reply.data() + sizeof h, sizeof e);
  EXPECT_EQ(e.nodeid, 5u);
  EXPECT_EQ(e.generation, 9u);
  EXPECT_EQ(e.entry_valid, 1u);
  EXPECT_EQ(e.entry_valid_nsec, 500000000u);
  EXPECT_EQ(e.attr.ino, 55u);
  EXPECT_EQ(e.attr.size, 1234u);
  EXPECT_EQ(backend_.calls.back(), "lookup 1 file");
  EXPECT_EQ(backend_.last_caller.uid, 1000u);
  EXPECT_EQ(backend_.last_caller.gid, 100u);
}

TEST_F(EngineTest, HeaderAndArgumentsSplitAtEveryOffset) {
  Init();
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("split-name");
  const std::vector<char>& b = req.bytes();
  for (size_t cut = 1; cut < b.size(); ++cut) {
    std::vector<char> a(b.begin(), b.begin() + cut), c(b.begin() + cut, b.end());
    iovec in[2] = {{a.data(), a.size()}, {c.data(), c.size()}};
    std::vector<char> o1(100), o2(200);  // the reply is scattered too
    iovec out[2] = {{o1.data(), o1.size()}, {o2.data(), o2.size()}};
    Done d;
    engine_.Process({in, 2}, {out, 2}, &d);
    ASSERT_EQ(d.calls, 1);
    ASSERT_EQ(d.bytes, sizeof(fuse_out_header) + sizeof(fuse_entry_out)) << "cut " << cut;
    std::string joined(o1.begin(), o1.end());
    joined.append(o2.begin(), o2.end());
    fuse_entry_out e;
    std::memcpy(&e, joined.data() + sizeof(fuse_out_header), sizeof e);
    EXPECT_EQ(e.nodeid, 5u);
    EXPECT_EQ(backend_.calls.back(), "lookup 1 split-name");
  }
}

TEST_F(EngineTest, BadNamesNeverReachTheBackend) {
  Init();
  for (std::string bad : std::vector<std::string>{"..", ".", "a/b", std::string(256, 'n')}) {
    RawRequest req(FUSE_MKDIR, 1);
    fuse_mkdir_in in{0755, 022};
    req.Add(in).Str(bad);
    int err = Error(Run(req));
    EXPECT_EQ(err, bad.size() > 255 ? ENAMETOOLONG : EINVAL) << bad;
  }
  RawRequest unterminated(FUSE_UNLINK, 1);
  unterminated.Bytes("no-nul");
  EXPECT_EQ(Error(Run(unterminated)), EINVAL);
  EXPECT_TRUE(backend_.calls.empty());
}

TEST_F(EngineTest, MalformedRequestsGetErrors) {
  Init();
  RawRequest longer(FUSE_LOOKUP, 1);
  longer.Str("x").SetLen(4096);  // claims more bytes than it has
  EXPECT_EQ(Error(Run(longer)), EINVAL);
  RawRequest shorter(FUSE_READ, 1);  // fuse_read_in missing
  EXPECT_EQ(Error(Run(shorter)), EINVAL);
  RawRequest unknown(9999, 1);
  EXPECT_EQ(Error(Run(unknown)), ENOSYS);
  RawRequest syncfs(FUSE_SYNCFS, 1);
  syncfs.Add(fuse_syncfs_in{});
  EXPECT_EQ(Error(Run(syncfs)), ENOSYS);
  // Too short for a header: nothing to answer.
  std::vector<char> tiny(10);
  iovec in{tiny.data(), tiny.size()};
  std::vector<char> out(4096);
  iovec o{out.data(), out.size()};
  Done d;
  engine_.Process({&in, 1}, {&o, 1}, &d);
  EXPECT_EQ(d.calls, 1);
  EXPECT_EQ(d.bytes, 0u);
  // No room for even a reply header.
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("a");
  Done d2;
  Run(req, 8, &d2);
  EXPECT_EQ(d2.calls, 1);
  EXPECT_EQ(d2.bytes, 0u);
}

TEST_F(EngineTest, ReadIsClampedToTheReplyBuffers) {
  Init();
  RawRequest req(FUSE_READ, 5);
  fuse_read_in in{};
  in.fh = 3;
  in.offset = 4096;
  in.size = 1 << 20;  // more than the 1000-byte reply room
  req.Add(in);
  std::string reply = Run(req, 1000);
  EXPECT_EQ(reply.size(), 1000u);
  EXPECT_EQ(backend_.calls.back(), "read 984 4096 fh 3");
}

TEST_F(EngineTest, WritePayloadScatteredAndChecked) {
  Init();
  RawRequest req(FUSE_WRITE, 5);
  fuse_write_in in{};
  in.offset = 10;
  in.size = 11;
  req.Add(in).Bytes("hello world");
  auto& b = req.bytes();
  size_t cut = b.size() - 5;
  std::vector<char> a(b.begin(), b.begin() + cut), c(b.begin() + cut, b.end());
  iovec iv[2] = {{a.data(), a.size()}, {c.data(), c.size()}};
  std::vector<char> out(4096);
  iovec o{out.data(), out.size()};
  Done d;
  engine_.Process({iv, 2}, {&o, 1}, &d);
  ASSERT_EQ(d.bytes, sizeof(fuse_out_header) + sizeof(fuse_write_out));
  EXPECT_EQ(backend_.calls.back(), "write 10 hello world");

  RawRequest lying(FUSE_WRITE, 5);
  in.size = 100;  // more than the payload present
  lying.Add(in).Bytes("short");
  EXPECT_EQ(Error(Run(lying)), EINVAL);
  EXPECT_EQ(backend_.calls.back(), "write 10 hello world");
}

TEST_F(EngineTest, ReaddirEntriesAreAlignedAndBounded) {
  Init();
  RawRequest req(FUSE_READDIR, 1);
  fuse_read_in in{};
  in.size = 200;
  req.Add(in);
  std::string reply = Run(req);
  ASSERT_EQ(Error(reply), 0);
  size_t body = reply.size() - sizeof(fuse_out_header);
  EXPECT_LE(body, 200u);
  size_t off = sizeof(fuse_out_header);
  int n = 0;
  while (off < reply.size()) {
    fuse_dirent d;
    std::memcpy(&d, reply.data() + off, sizeof d);
    EXPECT_EQ(std::string(reply.data() + off + FUSE_NAME_OFFSET, d.namelen),
              "entry" + std::to_string(n));
    EXPECT_EQ(d.off, static_cast<uint64_t>(n + 1));
    off += FUSE_DIRENT_SIZE(&d);
    ++n;
  }
  EXPECT_EQ(off, reply.size());
  EXPECT_EQ(n, 6);  // 32 bytes per "entryN" record
}

TEST_F(EngineTest, AsyncRepliesOutOfOrderAndInterrupt) {
  Init();
  backend_.hold = true;
  std::vector<std::vector<char>> outs(3, std::vector<char>(4096));
  std::vector<RawRequest> reqs;
  Done done[3];
  for (int i = 0; i < 3; ++i) {
    reqs.emplace_back(FUSE_LOOKUP, 1, 100 + i);
    reqs.back().Str("n" + std::to_string(i));
  }
  for (int i = 0; i < 3; ++i) {
    iovec in{reqs[i].bytes().data(), reqs[i].bytes().size()};
    iovec out{outs[i].data(), outs[i].size()};
    engine_.Process({&in, 1}, {&out, 1}, &done[i]);
  }
  ASSERT_EQ(backend_.held.size(), 3u);
  EXPECT_EQ(engine_.inflight(), 3u);
  RawRequest intr(FUSE_INTERRUPT, 0, 200);
  intr.Add(fuse_interrupt_in{101});
  Done di;
  Run(intr, 4096, &di);
  EXPECT_EQ(di.bytes, 0u);  // INTERRUPT takes no reply
  EXPECT_FALSE(backend_.held[0]->interrupted());
  EXPECT_TRUE(backend_.held[1]->interrupted());
  // Complete from another thread, last first.
  std::thread t([&] {
    backend_.held[2]->ReplyError(ENOENT);
    backend_.held[1]->ReplyError(EINTR);
    backend_.held[0]->ReplyError(ENOENT);
  });
  t.join();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(done[i].calls, 1);
    fuse_out_header h;
    std::memcpy(&h, outs[i].data(), sizeof h);
    EXPECT_EQ(h.unique, static_cast<uint64_t>(100 + i));
    EXPECT_EQ(h.error, i == 1 ? -EINTR : -ENOENT);
  }
  EXPECT_EQ(engine_.inflight(), 0u);
}

TEST_F(EngineTest, ForgetsReachTheBackendWithoutReplies) {
  Init();
  RawRequest one(FUSE_FORGET, 8, 0);
  one.Add(fuse_forget_in{3});
  Done d;
  Run(one, 4096, &d);
  EXPECT_EQ(d.calls, 1);
  EXPECT_EQ(d.bytes, 0u);
  RawRequest batch(FUSE_BATCH_FORGET, 0, 0);
  batch.Add(fuse_batch_forget_in{2, 0}).Add(fuse_forget_one{10, 1}).Add(fuse_forget_one{11, 2});
  Run(batch);
  RawRequest lying(FUSE_BATCH_FORGET, 0, 0);
  lying.Add(fuse_batch_forget_in{1000000, 0}).Add(fuse_forget_one{12, 1});
  Run(lying);
  std::vector<std::string> want = {"forget 8 3", "forget 10 1", "forget 11 2"};
  EXPECT_EQ(backend_.calls, want);
}

TEST_F(EngineTest, FlockRequestsBecomeFlockCalls) {
  Init();
  RawRequest req(FUSE_SETLK, 5);
  fuse_lk_in in{};
  in.lk.type = F_WRLCK;
  in.lk_flags = FUSE_LK_FLOCK;
  req.Add(in);
  EXPECT_EQ(Error(Run(req)), 0);
  EXPECT_EQ(backend_.calls.back(), "flock " + std::to_string(LOCK_EX | LOCK_NB));
}

TEST_F(EngineTest, ReadOnlyRefusesChangesBeforeTheBackend) {
  FakeBackend b;
  EngineOptions o;
  o.read_only = true;
  Engine engine(b, o);
  auto run = [&](RawRequest& req) {
    std::vector<char> out(4096);
    iovec i{req.bytes().data(), req.bytes().size()}, ov{out.data(), out.size()};
    Done d;
    engine.Process({&i, 1}, {&ov, 1}, &d);
    return Error(std::string(out.data(), d.bytes));
  };
  fuse_init_in init{};
  init.major = 7;
  init.minor = 38;
  RawRequest ir(FUSE_INIT, 0, 1);
  ir.Add(init);
  ASSERT_EQ(run(ir), 0);
  RawRequest mk(FUSE_MKDIR, 1);
  mk.Add(fuse_mkdir_in{0755, 0}).Str("d");
  EXPECT_EQ(run(mk), EROFS);
  RawRequest open(FUSE_OPEN, 5);
  open.Add(fuse_open_in{O_RDWR, 0});
  EXPECT_EQ(run(open), EROFS);
  EXPECT_TRUE(b.calls.empty());
}

TEST_F(EngineTest, StatsCountOperationsAndErrors) {
  Init();
  RawRequest a(FUSE_LOOKUP, 1);
  a.Str("x");
  Run(a);
  RawRequest m(FUSE_MKDIR, 1);
  m.Add(fuse_mkdir_in{0755, 0}).Str("d");
  EXPECT_EQ(Error(Run(m)), EEXIST);
  nlohmann::json j = engine_.stats().ToJson();
  EXPECT_EQ(j["LOOKUP"]["count"], 1);
  EXPECT_EQ(j["LOOKUP"]["errors"], 0);
  EXPECT_EQ(j["MKDIR"]["errors"], 1);
  EXPECT_EQ(j["INIT"]["count"], 1);
}

TEST_F(EngineTest, DestroyEndsTheSession) {
  Init();
  RawRequest d(FUSE_DESTROY, 0);
  EXPECT_EQ(Error(Run(d)), 0);
  EXPECT_FALSE(engine_.initialized());
  EXPECT_EQ(backend_.calls.back(), "destroy");
}

}  // namespace
}  // namespace dpustor::fs
