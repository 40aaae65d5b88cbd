// The FUSE engine against a recording backend: raw requests in, exact reply bytes out.
#include "fs/fuse/engine.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/xattr.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "raw_request.h"

namespace dpustor::fs {
namespace {

using testing::Decode;
using testing::Done;
using testing::InBuffers;
using testing::OutBuffers;
using testing::RawRequest;
using testing::Reply;

struct stat SomeStat(uint64_t ino, mode_t mode) {
  struct stat st = {};
  st.st_ino = ino;
  st.st_mode = mode;
  st.st_nlink = 2;
  st.st_uid = 1000;
  st.st_gid = 100;
  st.st_size = 1234;
  st.st_blocks = 8;
  st.st_blksize = 65536;
  st.st_atim = {111, 1};
  st.st_mtim = {222, 2};
  st.st_ctim = {333, 3};
  return st;
}

Entry SomeEntry(uint64_t nodeid, mode_t mode = S_IFREG | 0644) {
  Entry e;
  e.nodeid = nodeid;
  e.generation = 9;
  e.attr = SomeStat(nodeid + 50, mode);
  e.entry_timeout = 1.5;
  e.attr_timeout = 2.25;
  return e;
}

// Records every call as text; answers with canned replies, or lets a test answer (hook)
// or hold the request (hold) to answer it later.
class FakeBackend : public Backend {
 public:
  Capabilities Init() override {
    Log("init");
    return caps;
  }
  void Destroy() override { Log("destroy"); }
  void Lookup(Request* r, uint64_t parent, std::string_view name) override {
    {
      std::lock_guard lock(mu);
      last_caller = r->caller();
    }
    Answer(r, "lookup " + N(parent) + " " + S(name),
           [](Request* q) { q->ReplyEntry(SomeEntry(5)); });
  }
  void Forget(uint64_t ino, uint64_t n) override { Log("forget " + N(ino) + " " + N(n)); }
  void Getattr(Request* r, uint64_t ino, const FileInfo* fi) override {
    Answer(r, "getattr " + N(ino) + (fi ? " fh " + N(fi->fh) : ""),
           [ino](Request* q) { q->ReplyAttr(SomeStat(ino, S_IFREG | 0600), 0.75); });
  }
  void Setattr(Request* r, uint64_t ino, const SetattrArgs& a) override {
    Answer(r,
           "setattr " + N(ino) + " valid " + N(a.valid) + " mode " + N(a.mode) + " uid " +
               N(a.uid) + " gid " + N(a.gid) + " size " + N(a.size) + " atime " +
               N(a.atime.tv_sec) + "." + N(a.atime.tv_nsec) + " mtime " + N(a.mtime.tv_sec) + "." +
               N(a.mtime.tv_nsec) + (a.fi ? " fh " + N(a.fi->fh) : ""),
           [ino](Request* q) { q->ReplyAttr(SomeStat(ino, S_IFREG | 0600), 1); });
  }
  void Readlink(Request* r, uint64_t ino) override {
    Answer(r, "readlink " + N(ino), [](Request* q) { q->ReplyReadlink("../target"); });
  }
  void Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode, dev_t rdev) override {
    Answer(r, "mknod " + N(parent) + " " + S(name) + " " + N(mode) + " " + N(rdev),
           [](Request* q) { q->ReplyEntry(SomeEntry(6, S_IFIFO | 0644)); });
  }
  void Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode) override {
    Answer(r, "mkdir " + N(parent) + " " + S(name) + " " + N(mode),
           [](Request* q) { q->ReplyError(EEXIST); });
  }
  void Symlink(Request* r, std::string_view target, uint64_t parent,
               std::string_view name) override {
    Answer(r, "symlink " + S(target) + " " + N(parent) + " " + S(name),
           [](Request* q) { q->ReplyEntry(SomeEntry(7, S_IFLNK | 0777)); });
  }
  void Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname) override {
    Answer(r, "link " + N(ino) + " " + N(newparent) + " " + S(newname),
           [](Request* q) { q->ReplyEntry(SomeEntry(8)); });
  }
  void Unlink(Request* r, uint64_t parent, std::string_view name) override {
    Answer(r, "unlink " + N(parent) + " " + S(name), Ok);
  }
  void Rmdir(Request* r, uint64_t parent, std::string_view name) override {
    Answer(r, "rmdir " + N(parent) + " " + S(name), Ok);
  }
  void Rename(Request* r, uint64_t parent, std::string_view name, uint64_t newparent,
              std::string_view newname, uint32_t flags) override {
    Answer(r,
           "rename " + N(parent) + " " + S(name) + " " + N(newparent) + " " + S(newname) + " " +
               N(flags),
           Ok);
  }
  void Open(Request* r, uint64_t ino, const FileInfo& fi) override {
    Answer(r, "open " + N(ino) + " flags " + N(fi.flags), [](Request* q) {
      OpenInfo oi;
      oi.fh = 77;
      oi.direct_io = true;
      oi.nonseekable = true;
      q->ReplyOpen(oi);
    });
  }
  void Create(Request* r, uint64_t parent, std::string_view name, mode_t mode,
              const FileInfo& fi) override {
    Answer(r, "create " + N(parent) + " " + S(name) + " " + N(mode) + " flags " + N(fi.flags),
           [](Request* q) {
             OpenInfo oi;
             oi.fh = 78;
             oi.keep_cache = true;
             q->ReplyCreate(SomeEntry(10), oi);
           });
  }
  void Read(Request* r, uint64_t ino, size_t size, uint64_t off, const FileInfo& fi) override {
    Answer(r,
           "read " + N(ino) + " " + N(size) + " " + N(off) + " fh " + N(fi.fh) + " owner " +
               N(fi.lock_owner),
           [size](Request* q) {
             std::string data(size, 'x');
             q->ReplyData({data.data(), data.size()});
           });
  }
  void Write(Request* r, uint64_t ino, std::span<const iovec> data, uint64_t off,
             const FileInfo& fi) override {
    std::string got;
    for (const iovec& v : data) got.append(static_cast<const char*>(v.iov_base), v.iov_len);
    Answer(r, "write " + N(ino) + " " + N(off) + " fh " + N(fi.fh) + " " + got,
           [n = got.size()](Request* q) { q->ReplyWrite(static_cast<uint32_t>(n)); });
  }
  void Flush(Request* r, uint64_t ino, const FileInfo& fi) override {
    Answer(r, "flush " + N(ino) + " fh " + N(fi.fh) + " owner " + N(fi.lock_owner), Ok);
  }
  void Release(Request* r, uint64_t ino, const FileInfo& fi) override {
    Answer(r, "release " + N(ino) + " fh " + N(fi.fh) + " flags " + N(fi.flags), Ok);
  }
  void Fsync(Request* r, uint64_t ino, bool datasync, const FileInfo& fi) override {
    Answer(r, "fsync " + N(ino) + " " + N(datasync) + " fh " + N(fi.fh), Ok);
  }
  void Opendir(Request* r, uint64_t ino, const FileInfo&) override {
    Answer(r, "opendir " + N(ino), [](Request* q) {
      OpenInfo oi;
      oi.fh = 90;
      oi.cache_dir = true;
      q->ReplyOpen(oi);
    });
  }
  void Readdir(Request* r, uint64_t ino, size_t size, uint64_t off, bool plus,
               const FileInfo& fi) override {
    Answer(r,
           std::string(plus ? "readdirplus " : "readdir ") + N(ino) + " " + N(size) + " " + N(off) +
               " fh " + N(fi.fh),
           [off, plus](Request* q) {
             for (uint64_t i = off; i < 100; ++i) {
               std::string name = "entry" + std::to_string(i);
               bool added = plus ? q->AddDirEntryPlus(name, SomeEntry(i % 2 ? 200 + i : 0), i + 1)
                                 : q->AddDirEntry(name, 100 + i, DT_REG, i + 1);
               if (!added) break;
             }
             q->ReplyDir();
           });
  }
  void Releasedir(Request* r, uint64_t ino, const FileInfo& fi) override {
    Answer(r, "releasedir " + N(ino) + " fh " + N(fi.fh), Ok);
  }
  void Fsyncdir(Request* r, uint64_t ino, bool datasync, const FileInfo&) override {
    Answer(r, "fsyncdir " + N(ino) + " " + N(datasync), Ok);
  }
  void Statfs(Request* r, uint64_t ino) override {
    Answer(r, "statfs " + N(ino), [](Request* q) {
      struct statvfs s = {};
      s.f_bsize = 4096;
      s.f_frsize = 4096;
      s.f_blocks = 1000;
      s.f_bfree = 500;
      s.f_bavail = 400;
      s.f_files = 300;
      s.f_ffree = 200;
      s.f_namemax = 255;
      q->ReplyStatfs(s);
    });
  }
  void Setxattr(Request* r, uint64_t ino, std::string_view name, std::span<const char> value,
                int flags) override {
    Answer(r,
           "setxattr " + N(ino) + " " + S(name) + " " + std::string(value.data(), value.size()) +
               " " + N(flags),
           Ok);
  }
  void Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size) override {
    Answer(r, "getxattr " + N(ino) + " " + S(name) + " " + N(size), [size](Request* q) {
      if (size == 0) return q->ReplyXattrSize(5);
      q->ReplyData({"value", 5});
    });
  }
  void Listxattr(Request* r, uint64_t ino, size_t size) override {
    Answer(r, "listxattr " + N(ino) + " " + N(size), [size](Request* q) {
      if (size == 0) return q->ReplyXattrSize(14);
      q->ReplyData({"user.a\0user.b\0", 14});
    });
  }
  void Removexattr(Request* r, uint64_t ino, std::string_view name) override {
    Answer(r, "removexattr " + N(ino) + " " + S(name), Ok);
  }
  void Access(Request* r, uint64_t ino, int mask) override {
    Answer(r, "access " + N(ino) + " " + N(mask), Ok);
  }
  void Getlk(Request* r, uint64_t ino, const FileInfo& fi, const fuse_file_lock& lk) override {
    Answer(r, "getlk " + N(ino) + " owner " + N(fi.lock_owner) + " " + Lk(lk), [](Request* q) {
      fuse_file_lock held{0, 99, F_WRLCK, 4321};
      q->ReplyLock(held);
    });
  }
  void Setlk(Request* r, uint64_t ino, const FileInfo& fi, const fuse_file_lock& lk,
             bool sleep) override {
    Answer(r,
           "setlk " + N(ino) + " owner " + N(fi.lock_owner) + " " + Lk(lk) + " sleep " + N(sleep),
           Ok);
  }
  void Flock(Request* r, uint64_t ino, const FileInfo& fi, int op) override {
    Answer(r, "flock " + N(ino) + " fh " + N(fi.fh) + " " + N(op), Ok);
  }
  void Fallocate(Request* r, uint64_t ino, const FileInfo& fi, int mode, uint64_t off,
                 uint64_t len) override {
    Answer(r,
           "fallocate " + N(ino) + " fh " + N(fi.fh) + " " + N(mode) + " " + N(off) + " " + N(len),
           Ok);
  }
  void Lseek(Request* r, uint64_t ino, const FileInfo& fi, uint64_t off, int whence) override {
    Answer(r, "lseek " + N(ino) + " fh " + N(fi.fh) + " " + N(off) + " " + N(whence),
           [off](Request* q) { q->ReplyLseek(off + 100); });
  }
  void CopyFileRange(Request* r, uint64_t ino_in, const FileInfo& fi_in, uint64_t off_in,
                     uint64_t ino_out, const FileInfo& fi_out, uint64_t off_out, size_t len,
                     uint64_t flags) override {
    Answer(r,
           "copy " + N(ino_in) + " fh " + N(fi_in.fh) + " " + N(off_in) + " -> " + N(ino_out) +
               " fh " + N(fi_out.fh) + " " + N(off_out) + " len " + N(len) + " " + N(flags),
           [len](Request* q) { q->ReplyWrite(static_cast<uint32_t>(len / 2)); });
  }

  std::vector<std::string> Calls() {
    std::lock_guard lock(mu);
    return calls;
  }
  std::string Last() {
    std::lock_guard lock(mu);
    return calls.empty() ? "" : calls.back();
  }

  Capabilities caps;
  bool hold = false;                   // keep requests in `held`, answer nothing
  std::function<bool(Request*)> hook;  // answers instead of the canned reply when true
  std::vector<Request*> held;
  Caller last_caller;
  std::mutex mu;
  std::vector<std::string> calls;

 private:
  static std::string N(uint64_t v) { return std::to_string(v); }
  static std::string S(std::string_view s) { return std::string(s); }
  static std::string Lk(const fuse_file_lock& lk) {
    return N(lk.start) + "-" + N(lk.end) + " type " + N(lk.type) + " pid " + N(lk.pid);
  }
  static void Ok(Request* q) { q->ReplyOk(); }
  void Log(std::string s) {
    std::lock_guard lock(mu);
    calls.push_back(std::move(s));
  }
  template <class F>
  void Answer(Request* r, std::string call, F&& canned) {
    Log(std::move(call));
    if (hold) {
      std::lock_guard lock(mu);
      held.push_back(r);
      return;
    }
    if (hook && hook(r)) return;
    canned(r);
  }
};

fuse_init_in InitIn(uint32_t minor = 38, uint32_t flags = 0xffffffff,
                    uint32_t flags2 = 0xffffffff) {
  fuse_init_in in{};
  in.major = 7;
  in.minor = minor;
  in.max_readahead = 128 * 1024;
  in.flags = flags;
  in.flags2 = flags2;
  return in;
}

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() { Rebuild(); }
  void Rebuild() {
    engine_.reset();
    engine_ = std::make_unique<Engine>(backend_, options_);
  }
  Engine& engine() { return *engine_; }

  // Runs one request (optionally cut into several readable buffers) into out buffers of
  // the given sizes and decodes the reply.
  Reply Run(RawRequest& req, std::vector<size_t> out_sizes = {1 << 16},
            std::vector<size_t> cuts = {}) {
    InBuffers in(req.bytes(), cuts);
    OutBuffers out(out_sizes);
    Done done;
    engine().Process(in.iov(), out.iov(), &done);
    return Decode(out.Joined(done.bytes), done.bytes, done.calls);
  }
  fuse_init_out Init(fuse_init_in in = InitIn()) {
    RawRequest req(FUSE_INIT, 0, 1);
    req.Add(in);
    Reply r = Run(req);
    EXPECT_EQ(r.error(), 0);
    EXPECT_EQ(r.body.size(), sizeof(fuse_init_out));
    return r.As<fuse_init_out>();
  }

  FakeBackend backend_;
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
};

// ---- INIT -----------------------------------------------------------------------------

TEST_F(EngineTest, RequestsBeforeInitGetEio) {
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("a");
  Reply r = Run(req);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.error(), EIO);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  EXPECT_EQ(r.header.unique, 7u);
  // Forgets before INIT are dropped without reaching the backend.
  RawRequest forget(FUSE_FORGET, 8, 0);
  forget.Add(fuse_forget_in{3});
  EXPECT_EQ(Run(forget).bytes, 0u);
  EXPECT_TRUE(backend_.Calls().empty());
}

TEST_F(EngineTest, InitOffersOnlyWhatBothSidesSupport) {
  backend_.caps.posix_locks = false;
  backend_.caps.flock_locks = true;
  backend_.caps.writeback_cache = true;  // but the engine option is off
  backend_.caps.max_write = 128 * 1024;
  fuse_init_out out = Init(InitIn(38, ~uint32_t{FUSE_PARALLEL_DIROPS}));
  EXPECT_EQ(out.major, 7u);
  EXPECT_EQ(out.minor, uint32_t{FUSE_KERNEL_MINOR_VERSION});
  EXPECT_EQ(out.max_pages, 256);
  EXPECT_EQ(out.max_write, 128u * 1024);
  EXPECT_EQ(out.max_readahead, 128u * 1024);
  EXPECT_EQ(out.time_gran, 1u);
  uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_FLOCK_LOCKS |
                  FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_MAX_PAGES |
                  FUSE_AUTO_INVAL_DATA | FUSE_CACHE_SYMLINKS | FUSE_INIT_EXT;
  EXPECT_EQ(out.flags, want);
  EXPECT_EQ(out.flags2, 0u);  // SECURITY_CTX and friends are never accepted
  EXPECT_TRUE(engine().initialized());
  EXPECT_EQ(backend_.Calls(), std::vector<std::string>{"init"});
}

TEST_F(EngineTest, InitFlagsFollowCapabilities) {
  backend_.caps.posix_locks = true;
  backend_.caps.flock_locks = false;
  backend_.caps.readdirplus = false;
  backend_.caps.parallel_dirops = true;
  backend_.caps.async_read = false;
  backend_.caps.export_support = true;
  backend_.caps.handle_killpriv = true;
  backend_.caps.atomic_o_trunc = false;
  backend_.caps.writeback_cache = true;
  options_.writeback_cache = true;
  options_.max_pages = 32;
  Rebuild();
  fuse_init_out out = Init();
  EXPECT_EQ(out.max_pages, 32);
  EXPECT_EQ(out.max_write, 32u * 4096);
  EXPECT_TRUE(out.flags & FUSE_POSIX_LOCKS);
  EXPECT_FALSE(out.flags & FUSE_FLOCK_LOCKS);
  EXPECT_FALSE(out.flags & FUSE_DO_READDIRPLUS);
  EXPECT_FALSE(out.flags & FUSE_READDIRPLUS_AUTO);
  EXPECT_TRUE(out.flags & FUSE_PARALLEL_DIROPS);
  EXPECT_FALSE(out.flags & FUSE_ASYNC_READ);
  EXPECT_TRUE(out.flags & FUSE_EXPORT_SUPPORT);
  EXPECT_TRUE(out.flags & FUSE_HANDLE_KILLPRIV);
  EXPECT_FALSE(out.flags & FUSE_ATOMIC_O_TRUNC);
  EXPECT_TRUE(out.flags & FUSE_WRITEBACK_CACHE);
  EXPECT_FALSE(out.flags & FUSE_SETXATTR_EXT);
}

TEST_F(EngineTest, WritebackNeedsBackendOptionAndWritableShare) {
  backend_.caps.writeback_cache = true;
  options_.writeback_cache = true;
  options_.read_only = true;
  Rebuild();
  EXPECT_FALSE(Init().flags & FUSE_WRITEBACK_CACHE);
}

TEST_F(EngineTest, OldKernelWithoutInitExtNegotiates) {
  // Linux 5.4 (7.31) sends the 16-byte fuse_init_in and knows no flags2.
  RawRequest req(FUSE_INIT, 0, 1);
  fuse_init_in in = InitIn(31, FUSE_WRITEBACK_CACHE | FUSE_ASYNC_READ | FUSE_MAX_PAGES, 0);
  req.AddPrefix(in, 16);
  Reply r = Run(req);
  ASSERT_EQ(r.error(), 0);
  fuse_init_out out = r.As<fuse_init_out>();
  EXPECT_EQ(out.flags, uint32_t{FUSE_ASYNC_READ | FUSE_MAX_PAGES});
  EXPECT_EQ(out.max_pages, 256);
  EXPECT_TRUE(engine().initialized());
}

TEST_F(EngineTest, OldOrNewerKernelsAreHandled) {
  RawRequest old(FUSE_INIT, 0, 1);
  old.Add(InitIn(26));
  EXPECT_EQ(Run(old).error(), EPROTO);
  EXPECT_FALSE(engine().initialized());
  fuse_init_in v6 = InitIn(38);
  v6.major = 6;
  RawRequest older(FUSE_INIT, 0, 1);
  older.Add(v6);
  EXPECT_EQ(Run(older).error(), EPROTO);

  fuse_init_in v8 = InitIn(0);
  v8.major = 8;
  RawRequest newer(FUSE_INIT, 0, 2);
  newer.Add(v8);
  Reply r = Run(newer);
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(r.As<fuse_init_out>().major, 7u);  // the kernel retries with our major
  EXPECT_EQ(r.As<fuse_init_out>().flags, 0u);
  EXPECT_FALSE(engine().initialized());
  EXPECT_TRUE(backend_.Calls().empty());

  RawRequest truncated(FUSE_INIT, 0, 3);
  truncated.AddPrefix(InitIn(), 12);
  EXPECT_EQ(Run(truncated).error(), EINVAL);
  EXPECT_FALSE(engine().initialized());
}

TEST_F(EngineTest, InitWithoutRoomForItsReplyIsRefused) {
  RawRequest req(FUSE_INIT, 0, 1);
  req.Add(InitIn());
  Reply r = Run(req, {sizeof(fuse_out_header) + 20});
  EXPECT_EQ(r.error(), EINVAL);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  EXPECT_FALSE(engine().initialized());
}

TEST_F(EngineTest, DestroyEndsTheSessionAndInitStartsAnother) {
  Init();
  RawRequest d(FUSE_DESTROY, 0);
  EXPECT_EQ(Run(d).error(), 0);
  EXPECT_FALSE(engine().initialized());
  EXPECT_EQ(backend_.Last(), "destroy");
  RawRequest lookup(FUSE_LOOKUP, 1);
  lookup.Str("a");
  EXPECT_EQ(Run(lookup).error(), EIO);
  Init();
  EXPECT_EQ(Run(lookup).error(), 0);
  // A second INIT (guest reboot) ends the old session first.
  Init();
  std::vector<std::string> want = {"init", "destroy", "init", "lookup 1 a", "destroy", "init"};
  EXPECT_EQ(backend_.Calls(), want);
}

// ---- Operations: decoded arguments and exact replies -----------------------------------

TEST_F(EngineTest, LookupEncodesEntryAndCarriesCaller) {
  Init();
  RawRequest req(FUSE_LOOKUP, 1, 77);
  req.Str("file");
  Reply r = Run(req);
  ASSERT_EQ(r.bytes, sizeof(fuse_out_header) + sizeof(fuse_entry_out));
  EXPECT_EQ(r.header.len, r.bytes);
  EXPECT_EQ(r.header.unique, 77u);
  EXPECT_EQ(r.header.error, 0);
  fuse_entry_out want{};
  want.nodeid = 5;
  want.generation = 9;
  want.entry_valid = 1;
  want.entry_valid_nsec = 500000000;
  want.attr_valid = 2;
  want.attr_valid_nsec = 250000000;
  want.attr = {55, 1234, 8, 111, 222, 333, 1, 2, 3, S_IFREG | 0644, 2, 1000, 100, 0, 65536, 0};
  EXPECT_EQ(r.body, std::string(reinterpret_cast<const char*>(&want), sizeof want));
  EXPECT_EQ(backend_.Last(), "lookup 1 file");
  EXPECT_EQ(backend_.last_caller.uid, 1000u);
  EXPECT_EQ(backend_.last_caller.gid, 100u);
  EXPECT_EQ(backend_.last_caller.pid, 42u);
}

TEST_F(EngineTest, GetattrAndSetattr) {
  Init();
  RawRequest plain(FUSE_GETATTR, 3);
  plain.Add(fuse_getattr_in{0, 0, 99});
  Reply r = Run(plain);
  ASSERT_EQ(r.body.size(), sizeof(fuse_attr_out));
  auto ao = r.As<fuse_attr_out>();
  EXPECT_EQ(ao.attr_valid, 0u);
  EXPECT_EQ(ao.attr_valid_nsec, 750000000u);
  EXPECT_EQ(ao.attr.mode, uint32_t{S_IFREG | 0600});
  EXPECT_EQ(ao.attr.blksize, 65536u);
  EXPECT_EQ(ao.attr.mtimensec, 2u);
  EXPECT_EQ(ao.dummy, 0u);
  EXPECT_EQ(backend_.Last(), "getattr 3");
  RawRequest withfh(FUSE_GETATTR, 3);
  withfh.Add(fuse_getattr_in{FUSE_GETATTR_FH, 0, 99});
  Run(withfh);
  EXPECT_EQ(backend_.Last(), "getattr 3 fh 99");

  fuse_setattr_in in{};
  in.valid = FATTR_MODE | FATTR_SIZE | FATTR_MTIME | FATTR_FH;
  in.fh = 12;
  in.size = 4096;
  in.mode = 0640;
  in.mtime = 1000;
  in.mtimensec = 5;
  in.atime = 7;
  in.atimensec = 2000000001;  // out of range: reduced
  RawRequest set(FUSE_SETATTR, 3);
  set.Add(in);
  r = Run(set);
  EXPECT_EQ(r.error(), 0);
  EXPECT_EQ(r.body.size(), sizeof(fuse_attr_out));
  EXPECT_EQ(backend_.Last(), "setattr 3 valid " + std::to_string(in.valid) +
                                 " mode 416 uid 0 gid 0 size 4096 atime 7.1 mtime 1000.5 fh 12");
}

TEST_F(EngineTest, NamespaceOperations) {
  Init();
  RawRequest mknod(FUSE_MKNOD, 1);
  mknod.Add(fuse_mknod_in{S_IFIFO | 0644, 0x0801, 022, 0}).Str("fifo");
  Reply r = Run(mknod);
  EXPECT_EQ(r.As<fuse_entry_out>().nodeid, 6u);
  EXPECT_EQ(backend_.Last(), "mknod 1 fifo " + std::to_string(S_IFIFO | 0644) + " 2049");

  RawRequest mkdir(FUSE_MKDIR, 1);
  mkdir.Add(fuse_mkdir_in{0755, 022}).Str("dir");
  r = Run(mkdir);
  EXPECT_EQ(r.error(), EEXIST);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  EXPECT_EQ(backend_.Last(), "mkdir 1 dir 493");

  RawRequest symlink(FUSE_SYMLINK, 1);
  symlink.Str("ln").Str("../some/target");  // entry name first, then the target
  r = Run(symlink);
  EXPECT_EQ(r.As<fuse_entry_out>().nodeid, 7u);
  EXPECT_EQ(backend_.Last(), "symlink ../some/target 1 ln");

  RawRequest link(FUSE_LINK, 2);
  link.Add(fuse_link_in{5}).Str("hard");
  EXPECT_EQ(Run(link).As<fuse_entry_out>().nodeid, 8u);
  EXPECT_EQ(backend_.Last(), "link 5 2 hard");

  RawRequest unlink(FUSE_UNLINK, 1);
  unlink.Str("gone");
  r = Run(unlink);
  EXPECT_EQ(r.error(), 0);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  EXPECT_EQ(backend_.Last(), "unlink 1 gone");

  RawRequest rmdir(FUSE_RMDIR, 1);
  rmdir.Str("d");
  EXPECT_EQ(Run(rmdir).error(), 0);
  EXPECT_EQ(backend_.Last(), "rmdir 1 d");

  RawRequest rename(FUSE_RENAME, 1);
  rename.Add(fuse_rename_in{4}).Str("a").Str("b");
  EXPECT_EQ(Run(rename).error(), 0);
  EXPECT_EQ(backend_.Last(), "rename 1 a 4 b 0");

  RawRequest rename2(FUSE_RENAME2, 1);
  rename2.Add(fuse_rename2_in{4, RENAME_EXCHANGE, 0}).Str("a").Str("b");
  EXPECT_EQ(Run(rename2).error(), 0);
  EXPECT_EQ(backend_.Last(), "rename 1 a 4 b " + std::to_string(RENAME_EXCHANGE));

  RawRequest readlink(FUSE_READLINK, 7);
  r = Run(readlink);
  EXPECT_EQ(r.body, "../target");
  EXPECT_EQ(r.header.len, sizeof(fuse_out_header) + 9);
}

TEST_F(EngineTest, OpenCreateAndFileOperations) {
  Init();
  RawRequest open(FUSE_OPEN, 5);
  open.Add(fuse_open_in{O_RDWR | O_TRUNC, 0});
  Reply r = Run(open);
  ASSERT_EQ(r.body.size(), sizeof(fuse_open_out));
  auto oo = r.As<fuse_open_out>();
  EXPECT_EQ(oo.fh, 77u);
  EXPECT_EQ(oo.open_flags, uint32_t{FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE});
  EXPECT_EQ(backend_.Last(), "open 5 flags " + std::to_string(O_RDWR | O_TRUNC));

  RawRequest create(FUSE_CREATE, 1);
  create.Add(fuse_create_in{O_WRONLY | O_CREAT, 0100644, 022, 0}).Str("new");
  r = Run(create);
  ASSERT_EQ(r.body.size(), sizeof(fuse_entry_out) + sizeof(fuse_open_out));
  EXPECT_EQ(r.As<fuse_entry_out>().nodeid, 10u);
  oo = r.As<fuse_open_out>(sizeof(fuse_entry_out));
  EXPECT_EQ(oo.fh, 78u);
  EXPECT_EQ(oo.open_flags, uint32_t{FOPEN_KEEP_CACHE});
  EXPECT_EQ(backend_.Last(), "create 1 new 33188 flags " + std::to_string(O_WRONLY | O_CREAT));

  fuse_read_in rin{};
  rin.fh = 77;
  rin.offset = 4096;
  rin.size = 10;
  rin.lock_owner = 55;
  RawRequest read(FUSE_READ, 5);
  read.Add(rin);
  r = Run(read);
  EXPECT_EQ(r.body, std::string(10, 'x'));
  EXPECT_EQ(backend_.Last(), "read 5 10 4096 fh 77 owner 55");

  fuse_write_in win{};
  win.fh = 77;
  win.offset = 10;
  win.size = 11;
  RawRequest write(FUSE_WRITE, 5);
  write.Add(win).Bytes("hello world");
  r = Run(write);
  EXPECT_EQ(r.As<fuse_write_out>().size, 11u);
  EXPECT_EQ(r.body.size(), sizeof(fuse_write_out));
  EXPECT_EQ(backend_.Last(), "write 5 10 fh 77 hello world");

  RawRequest flush(FUSE_FLUSH, 5);
  flush.Add(fuse_flush_in{77, 0, 0, 31});
  EXPECT_EQ(Run(flush).error(), 0);
  EXPECT_EQ(backend_.Last(), "flush 5 fh 77 owner 31");

  RawRequest fsync(FUSE_FSYNC, 5);
  fsync.Add(fuse_fsync_in{77, 1, 0});
  EXPECT_EQ(Run(fsync).error(), 0);
  EXPECT_EQ(backend_.Last(), "fsync 5 1 fh 77");

  RawRequest release(FUSE_RELEASE, 5);
  release.Add(fuse_release_in{77, O_RDWR, 0, 0});
  EXPECT_EQ(Run(release).error(), 0);
  EXPECT_EQ(backend_.Last(), "release 5 fh 77 flags 2");

  RawRequest falloc(FUSE_FALLOCATE, 5);
  falloc.Add(fuse_fallocate_in{77, 4096, 8192, 1, 0});
  EXPECT_EQ(Run(falloc).error(), 0);
  EXPECT_EQ(backend_.Last(), "fallocate 5 fh 77 1 4096 8192");

  RawRequest lseek(FUSE_LSEEK, 5);
  lseek.Add(fuse_lseek_in{77, 300, SEEK_DATA, 0});
  r = Run(lseek);
  EXPECT_EQ(r.As<fuse_lseek_out>().offset, 400u);
  EXPECT_EQ(backend_.Last(), "lseek 5 fh 77 300 3");

  RawRequest copy(FUSE_COPY_FILE_RANGE, 5);
  copy.Add(fuse_copy_file_range_in{77, 10, 6, 78, 20, 1000, 0});
  r = Run(copy);
  EXPECT_EQ(r.As<fuse_write_out>().size, 500u);
  EXPECT_EQ(backend_.Last(), "copy 5 fh 77 10 -> 6 fh 78 20 len 1000 0");

  RawRequest statfs(FUSE_STATFS, 1);
  r = Run(statfs);
  ASSERT_EQ(r.body.size(), sizeof(fuse_statfs_out));
  auto st = r.As<fuse_statfs_out>().st;
  EXPECT_EQ(st.blocks, 1000u);
  EXPECT_EQ(st.bavail, 400u);
  EXPECT_EQ(st.ffree, 200u);
  EXPECT_EQ(st.bsize, 4096u);
  EXPECT_EQ(st.namelen, 255u);

  RawRequest access(FUSE_ACCESS, 5);
  access.Add(fuse_access_in{R_OK | W_OK, 0});
  EXPECT_EQ(Run(access).error(), 0);
  EXPECT_EQ(backend_.Last(), "access 5 6");
}

TEST_F(EngineTest, Xattrs) {
  Init();
  RawRequest set(FUSE_SETXATTR, 5);
  // The 8-byte compat argument (FUSE_SETXATTR_EXT is never negotiated).
  set.Add(uint32_t{5}).Add(uint32_t{XATTR_CREATE}).Str("user.k").Bytes("value");
  EXPECT_EQ(Run(set).error(), 0);
  EXPECT_EQ(backend_.Last(), "setxattr 5 user.k value " + std::to_string(XATTR_CREATE));

  RawRequest lying(FUSE_SETXATTR, 5);
  lying.Add(uint32_t{50}).Add(uint32_t{0}).Str("user.k").Bytes("value");
  EXPECT_EQ(Run(lying).error(), EINVAL);
  RawRequest huge(FUSE_SETXATTR, 5);
  huge.Add(uint32_t{65537}).Add(uint32_t{0}).Str("user.k");
  EXPECT_EQ(Run(huge).error(), E2BIG);
  RawRequest longname(FUSE_SETXATTR, 5);
  longname.Add(uint32_t{0}).Add(uint32_t{0}).Str("user." + std::string(300, 'n'));
  EXPECT_EQ(Run(longname).error(), ERANGE);

  RawRequest sizeq(FUSE_GETXATTR, 5);
  sizeq.Add(fuse_getxattr_in{0, 0}).Str("user.k");
  Reply r = Run(sizeq);
  EXPECT_EQ(r.body.size(), sizeof(fuse_getxattr_out));
  EXPECT_EQ(r.As<fuse_getxattr_out>().size, 5u);
  EXPECT_EQ(backend_.Last(), "getxattr 5 user.k 0");

  RawRequest get(FUSE_GETXATTR, 5);
  get.Add(fuse_getxattr_in{64, 0}).Str("user.k");
  EXPECT_EQ(Run(get).body, "value");
  EXPECT_EQ(backend_.Last(), "getxattr 5 user.k 64");

  RawRequest small(FUSE_GETXATTR, 5);  // the value does not fit: ERANGE, not truncation
  small.Add(fuse_getxattr_in{3, 0}).Str("user.k");
  EXPECT_EQ(Run(small).error(), ERANGE);

  RawRequest list(FUSE_LISTXATTR, 5);
  list.Add(fuse_getxattr_in{100, 0});
  EXPECT_EQ(Run(list).body, std::string("user.a\0user.b\0", 14));
  RawRequest listq(FUSE_LISTXATTR, 5);
  listq.Add(fuse_getxattr_in{0, 0});
  EXPECT_EQ(Run(listq).As<fuse_getxattr_out>().size, 14u);

  RawRequest remove(FUSE_REMOVEXATTR, 5);
  remove.Str("user.k");
  EXPECT_EQ(Run(remove).error(), 0);
  EXPECT_EQ(backend_.Last(), "removexattr 5 user.k");
  RawRequest empty(FUSE_REMOVEXATTR, 5);
  empty.Str("");
  EXPECT_EQ(Run(empty).error(), EINVAL);
}

TEST_F(EngineTest, PosixLocksAndFlock) {
  Init();
  fuse_lk_in in{};
  in.fh = 77;
  in.owner = 1234;
  in.lk = {0, 99, F_RDLCK, 42};
  RawRequest getlk(FUSE_GETLK, 5);
  getlk.Add(in);
  Reply r = Run(getlk);
  auto lk = r.As<fuse_lk_out>().lk;
  EXPECT_EQ(lk.type, uint32_t{F_WRLCK});
  EXPECT_EQ(lk.pid, 4321u);
  EXPECT_EQ(backend_.Last(), "getlk 5 owner 1234 0-99 type 0 pid 42");

  RawRequest setlkw(FUSE_SETLKW, 5);
  setlkw.Add(in);
  EXPECT_EQ(Run(setlkw).error(), 0);
  EXPECT_EQ(backend_.Last(), "setlk 5 owner 1234 0-99 type 0 pid 42 sleep 1");
  RawRequest setlk(FUSE_SETLK, 5);
  setlk.Add(in);
  Run(setlk);
  EXPECT_EQ(backend_.Last(), "setlk 5 owner 1234 0-99 type 0 pid 42 sleep 0");

  in.lk.type = 77;  // not a lock type
  RawRequest bad(FUSE_SETLK, 5);
  bad.Add(in);
  EXPECT_EQ(Run(bad).error(), EINVAL);

  in.lk_flags = FUSE_LK_FLOCK;
  struct Case {
    uint32_t opcode, type;
    int op;
  };
  for (Case c :
       {Case{FUSE_SETLK, F_WRLCK, LOCK_EX | LOCK_NB}, Case{FUSE_SETLKW, F_WRLCK, LOCK_EX},
        Case{FUSE_SETLKW, F_RDLCK, LOCK_SH}, Case{FUSE_SETLK, F_UNLCK, LOCK_UN | LOCK_NB}}) {
    in.lk.type = c.type;
    RawRequest req(c.opcode, 5);
    req.Add(in);
    EXPECT_EQ(Run(req).error(), 0);
    EXPECT_EQ(backend_.Last(), "flock 5 fh 77 " + std::to_string(c.op));
  }
}

TEST_F(EngineTest, ReaddirEntriesAreAlignedPaddedAndBounded) {
  Init();
  fuse_read_in in{};
  in.fh = 90;
  in.size = 200;
  RawRequest req(FUSE_READDIR, 1);
  req.Add(in);
  Reply r = Run(req);
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(backend_.Last(), "readdir 1 200 0 fh 90");
  // Each "entryN" record: 24-byte header + 6 name bytes + 2 zero bytes of padding.
  ASSERT_EQ(r.body.size(), 6u * 32);
  for (int n = 0; n < 6; ++n) {
    fuse_dirent d = r.As<fuse_dirent>(n * 32);
    EXPECT_EQ(d.ino, 100u + n);
    EXPECT_EQ(d.off, uint64_t(n + 1));
    EXPECT_EQ(d.namelen, 6u);
    EXPECT_EQ(d.type, uint32_t{DT_REG});
    EXPECT_EQ(r.body.substr(n * 32 + FUSE_NAME_OFFSET, 8),
              "entry" + std::to_string(n) + '\0' + '\0');
  }
  // Continue from a cookie.
  in.offset = 98;
  RawRequest more(FUSE_READDIR, 1);
  more.Add(in);
  EXPECT_EQ(Run(more).body.size(), 2u * FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 7));
}

TEST_F(EngineTest, ReaddirplusEncodesEntriesWithAndWithoutLookups) {
  Init();
  fuse_read_in in{};
  in.size = 400;
  RawRequest req(FUSE_READDIRPLUS, 1);
  req.Add(in);
  Reply r = Run(req);
  ASSERT_EQ(r.error(), 0);
  const size_t rec = FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + 6);  // 160
  ASSERT_EQ(r.body.size(), 2 * rec);
  fuse_direntplus d0 = r.As<fuse_direntplus>(0);
  EXPECT_EQ(d0.entry_out.nodeid, 0u);  // no lookup: all of entry_out is zero
  EXPECT_EQ(d0.entry_out.attr.ino, 0u);
  EXPECT_EQ(d0.dirent.ino, 50u);
  EXPECT_EQ(d0.dirent.type, uint32_t{DT_REG});
  fuse_direntplus d1 = r.As<fuse_direntplus>(rec);
  EXPECT_EQ(d1.entry_out.nodeid, 201u);
  EXPECT_EQ(d1.entry_out.attr.ino, 251u);
  EXPECT_EQ(d1.entry_out.entry_valid_nsec, 500000000u);
  EXPECT_EQ(d1.dirent.off, 2u);
  EXPECT_EQ(r.body.substr(rec + FUSE_NAME_OFFSET_DIRENTPLUS, 8), std::string("entry1\0\0", 8));
}

TEST_F(EngineTest, DirectoryHandles) {
  Init();
  RawRequest opendir(FUSE_OPENDIR, 1);
  opendir.Add(fuse_open_in{O_RDONLY | O_DIRECTORY, 0});
  auto oo = Run(opendir).As<fuse_open_out>();
  EXPECT_EQ(oo.fh, 90u);
  EXPECT_EQ(oo.open_flags, uint32_t{FOPEN_CACHE_DIR});
  RawRequest fsyncdir(FUSE_FSYNCDIR, 1);
  fsyncdir.Add(fuse_fsync_in{90, 0, 0});
  EXPECT_EQ(Run(fsyncdir).error(), 0);
  EXPECT_EQ(backend_.Last(), "fsyncdir 1 0");
  RawRequest releasedir(FUSE_RELEASEDIR, 1);
  releasedir.Add(fuse_release_in{90, 0, 0, 0});
  EXPECT_EQ(Run(releasedir).error(), 0);
  EXPECT_EQ(backend_.Last(), "releasedir 1 fh 90");
}

TEST_F(EngineTest, ZeroCopyReadIntoScatteredBuffers) {
  Init();
  backend_.hook = [](Request* q) {
    std::span<const iovec> bufs = q->DataBuffers(1 << 20);
    size_t n = 0;
    for (const iovec& v : bufs) {
      for (size_t i = 0; i < v.iov_len; ++i)
        static_cast<char*>(v.iov_base)[i] = char('a' + n++ % 26);
    }
    q->ReplyDataFilled(n);
    return true;
  };
  fuse_read_in in{};
  in.size = 40;
  RawRequest req(FUSE_READ, 5);
  req.Add(in);
  // Header split across two buffers, data across three.
  Reply r = Run(req, {10, 20, 7, 100});
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header) + 40);
  EXPECT_EQ(r.body, "abcdefghijklmnopqrstuvwxyzabcdefghijklmn");
}

TEST_F(EngineTest, UnsupportedOperationsGetEnosys) {
  Init();
  for (uint32_t op :
       {uint32_t{FUSE_BMAP}, uint32_t{FUSE_IOCTL}, uint32_t{FUSE_POLL}, uint32_t{FUSE_SETUPMAPPING},
        uint32_t{FUSE_REMOVEMAPPING}, uint32_t{FUSE_SYNCFS}, uint32_t{FUSE_TMPFILE}, 52u, 63u, 64u,
        4096u, uint32_t{CUSE_INIT}, 0u, 0xffffffffu}) {
    RawRequest req(op, 1);
    req.Bytes(std::string(64, '\0'));
    Reply r = Run(req);
    EXPECT_EQ(r.error(), ENOSYS) << op;
    EXPECT_EQ(r.bytes, sizeof(fuse_out_header)) << op;
  }
  // Backend defaults answer ENOSYS too.
  Backend plain;
  Engine engine(plain, {});
  RawRequest init(FUSE_INIT, 0, 1);
  init.Add(InitIn());
  OutBuffers out({4096});
  InBuffers in(init.bytes(), {});
  Done d;
  engine.Process(in.iov(), out.iov(), &d);
  RawRequest lookup(FUSE_LOOKUP, 1);
  lookup.Str("x");
  InBuffers in2(lookup.bytes(), {});
  Done d2;
  engine.Process(in2.iov(), out.iov(), &d2);
  EXPECT_EQ(Decode(out.Joined(d2.bytes), d2.bytes, d2.calls).error(), ENOSYS);
}

TEST_F(EngineTest, NotifyReplyAndInterruptTakeNoReply) {
  Init();
  RawRequest notify(FUSE_NOTIFY_REPLY, 0);
  notify.Bytes(std::string(24, '\0'));
  Reply r = Run(notify);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.bytes, 0u);
  RawRequest intr(FUSE_INTERRUPT, 0, 301);
  intr.Add(fuse_interrupt_in{12345});  // nothing in flight has that unique: ignored
  r = Run(intr);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.bytes, 0u);
}

// ---- Validation -------------------------------------------------------------------------

TEST_F(EngineTest, BadNamesNeverReachTheBackend) {
  Init();
  struct Case {
    std::string name;
    int mkdir_err, lookup_err;
  };
  for (const Case& c :
       {Case{"..", EINVAL, ENOENT}, Case{".", EINVAL, ENOENT}, Case{"a/b", EINVAL, ENOENT},
        Case{"", EINVAL, ENOENT}, Case{std::string(256, 'n'), ENAMETOOLONG, ENAMETOOLONG}}) {
    RawRequest mk(FUSE_MKDIR, 1);
    mk.Add(fuse_mkdir_in{0755, 022}).Str(c.name);
    EXPECT_EQ(Run(mk).error(), c.mkdir_err) << c.name;
    RawRequest look(FUSE_LOOKUP, 1);
    look.Str(c.name);
    EXPECT_EQ(Run(look).error(), c.lookup_err) << c.name;
    RawRequest ren(FUSE_RENAME2, 1);
    ren.Add(fuse_rename2_in{1, 0, 0}).Str("ok").Str(c.name);
    EXPECT_EQ(Run(ren).error(), c.mkdir_err) << c.name;
  }
  RawRequest unterminated(FUSE_UNLINK, 1);
  unterminated.Bytes("no-nul");
  EXPECT_EQ(Run(unterminated).error(), EINVAL);
  RawRequest one_name(FUSE_RENAME, 1);
  one_name.Add(fuse_rename_in{1}).Str("only");
  EXPECT_EQ(Run(one_name).error(), EINVAL);
  RawRequest empty_target(FUSE_SYMLINK, 1);
  empty_target.Str("ln").Str("");
  EXPECT_EQ(Run(empty_target).error(), ENOENT);
  RawRequest long_target(FUSE_SYMLINK, 1);
  long_target.Str("ln").Str(std::string(4096, 't'));
  EXPECT_EQ(Run(long_target).error(), ENAMETOOLONG);
  EXPECT_EQ(backend_.Calls(), std::vector<std::string>{"init"});
}

TEST_F(EngineTest, ExportSupportAllowsDotLookups) {
  backend_.caps.export_support = true;
  Rebuild();
  Init();
  RawRequest dotdot(FUSE_LOOKUP, 9);
  dotdot.Str("..");
  EXPECT_EQ(Run(dotdot).error(), 0);
  EXPECT_EQ(backend_.Last(), "lookup 9 ..");
  RawRequest mk(FUSE_MKDIR, 1);  // only lookups
  mk.Add(fuse_mkdir_in{0755, 022}).Str("..");
  EXPECT_EQ(Run(mk).error(), EINVAL);
}

TEST_F(EngineTest, TruncatedArgumentsAreRefusedForEveryOperation) {
  Init();
  struct Case {
    uint32_t opcode;
    size_t args;
  };
  for (Case c : {Case{FUSE_GETATTR, sizeof(fuse_getattr_in)},
                 Case{FUSE_SETATTR, sizeof(fuse_setattr_in)},
                 Case{FUSE_MKNOD, sizeof(fuse_mknod_in)},
                 Case{FUSE_MKDIR, sizeof(fuse_mkdir_in)},
                 Case{FUSE_RENAME, sizeof(fuse_rename_in)},
                 Case{FUSE_RENAME2, sizeof(fuse_rename2_in)},
                 Case{FUSE_LINK, sizeof(fuse_link_in)},
                 Case{FUSE_OPEN, sizeof(fuse_open_in)},
                 Case{FUSE_OPENDIR, sizeof(fuse_open_in)},
                 Case{FUSE_READ, sizeof(fuse_read_in)},
                 Case{FUSE_READDIR, sizeof(fuse_read_in)},
                 Case{FUSE_READDIRPLUS, sizeof(fuse_read_in)},
                 Case{FUSE_WRITE, sizeof(fuse_write_in)},
                 Case{FUSE_RELEASE, sizeof(fuse_release_in)},
                 Case{FUSE_RELEASEDIR, sizeof(fuse_release_in)},
                 Case{FUSE_FSYNC, sizeof(fuse_fsync_in)},
                 Case{FUSE_FSYNCDIR, sizeof(fuse_fsync_in)},
                 Case{FUSE_FLUSH, sizeof(fuse_flush_in)},
                 Case{FUSE_SETXATTR, FUSE_COMPAT_SETXATTR_IN_SIZE},
                 Case{FUSE_GETXATTR, sizeof(fuse_getxattr_in)},
                 Case{FUSE_LISTXATTR, sizeof(fuse_getxattr_in)},
                 Case{FUSE_ACCESS, sizeof(fuse_access_in)},
                 Case{FUSE_CREATE, sizeof(fuse_create_in)},
                 Case{FUSE_GETLK, sizeof(fuse_lk_in)},
                 Case{FUSE_SETLK, sizeof(fuse_lk_in)},
                 Case{FUSE_SETLKW, sizeof(fuse_lk_in)},
                 Case{FUSE_FALLOCATE, sizeof(fuse_fallocate_in)},
                 Case{FUSE_LSEEK, sizeof(fuse_lseek_in)},
                 Case{FUSE_COPY_FILE_RANGE, sizeof(fuse_copy_file_range_in)}}) {
    for (size_t n : {size_t{0}, c.args - 1}) {
      RawRequest req(c.opcode, 5);
      req.Bytes(std::string(n, '\x01'));
      Reply r = Run(req);
      EXPECT_EQ(r.error(), EINVAL) << OpcodeName(c.opcode) << " with " << n << " bytes";
      EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
    }
  }
  EXPECT_EQ(backend_.Calls(), std::vector<std::string>{"init"});
}

TEST_F(EngineTest, LengthMismatchesAndTinyBuffers) {
  Init();
  RawRequest longer(FUSE_LOOKUP, 1);
  longer.Str("x").SetLen(4096);  // claims more bytes than it has
  EXPECT_EQ(Run(longer).error(), EINVAL);
  RawRequest below_header(FUSE_LOOKUP, 1);
  below_header.Str("x").SetLen(20);
  EXPECT_EQ(Run(below_header).error(), EINVAL);
  // A len shorter than the buffer: the trailing bytes are ignored (a virtqueue descriptor
  // may be larger than the request), so the name lacks its NUL.
  RawRequest shorter(FUSE_LOOKUP, 1);
  shorter.Str("abc").SetLen(sizeof(fuse_in_header) + 3);
  EXPECT_EQ(Run(shorter).error(), EINVAL);
  RawRequest padded(FUSE_LOOKUP, 1);
  padded.Str("abc").Bytes("trailing garbage").SetLen(sizeof(fuse_in_header) + 4);
  EXPECT_EQ(Run(padded).error(), 0);
  EXPECT_EQ(backend_.Last(), "lookup 1 abc");

  // Too short for a header: nothing to answer.
  std::vector<char> tiny(10, 1);
  iovec in{tiny.data(), tiny.size()};
  OutBuffers out({4096});
  Done d;
  engine().Process({&in, 1}, out.iov(), &d);
  EXPECT_EQ(d.calls, 1);
  EXPECT_EQ(d.bytes, 0u);
  Done d0;
  engine().Process({}, out.iov(), &d0);
  EXPECT_EQ(d0.calls, 1);
  EXPECT_EQ(d0.bytes, 0u);

  // No room for a reply header: completed with nothing.
  RawRequest lookup(FUSE_LOOKUP, 1);
  lookup.Str("a");
  Reply r = Run(lookup, {8});
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.bytes, 0u);
  r = Run(lookup, {});
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.bytes, 0u);
  // Room for a header but not the entry: EIO rather than a cut reply.
  r = Run(lookup, {sizeof(fuse_out_header) + 10});
  EXPECT_EQ(r.error(), EIO);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  EXPECT_EQ(engine().inflight(), 0u);
}

TEST_F(EngineTest, ReadAndListingsAreClampedToTheReplyBuffers) {
  Init();
  fuse_read_in in{};
  in.fh = 3;
  in.offset = 4096;
  in.size = 1 << 20;  // more than the 1000-byte reply room
  RawRequest req(FUSE_READ, 5);
  req.Add(in);
  Reply r = Run(req, {1000});
  EXPECT_EQ(r.bytes, 1000u);
  EXPECT_EQ(backend_.Last(), "read 5 984 4096 fh 3 owner 0");
  in.offset = 0;
  RawRequest dir(FUSE_READDIR, 1);
  dir.Add(in);
  r = Run(dir, {100});
  EXPECT_LE(r.bytes, 100u);
  EXPECT_EQ(r.body.size(), 2u * 32);
  RawRequest list(FUSE_LISTXATTR, 5);
  list.Add(fuse_getxattr_in{4096, 0});
  r = Run(list, {sizeof(fuse_out_header) + 10});
  EXPECT_EQ(r.error(), ERANGE);
  EXPECT_EQ(backend_.Last(), "listxattr 5 10");
}

TEST_F(EngineTest, WritePayloadScatteredAndChecked) {
  backend_.caps.max_write = 16;
  options_.max_pages = 1;
  Rebuild();
  EXPECT_EQ(Init().max_write, 4096u);  // the kernel's minimum wins over a tiny backend limit
  fuse_write_in in{};
  in.offset = 10;
  in.size = 11;
  RawRequest req(FUSE_WRITE, 5);
  req.Add(in).Bytes("hello world");
  size_t n = req.size();
  // Payload over three buffers, the argument struct cut too.
  Reply r = Run(req, {4096}, {50, n - 8, n - 3});
  ASSERT_EQ(r.error(), 0);
  EXPECT_EQ(backend_.Last(), "write 5 10 fh 0 hello world");

  RawRequest lying(FUSE_WRITE, 5);
  in.size = 100;  // more than the payload present
  lying.Add(in).Bytes("short");
  EXPECT_EQ(Run(lying).error(), EINVAL);
  RawRequest extra(FUSE_WRITE, 5);
  in.size = 2;  // less than the payload present
  extra.Add(in).Bytes("short");
  EXPECT_EQ(Run(extra).error(), EINVAL);
  RawRequest big(FUSE_WRITE, 5);
  in.size = 5000;  // over max_write
  big.Add(in).Bytes(std::string(5000, 'b'));
  EXPECT_EQ(Run(big).error(), EINVAL);
  EXPECT_EQ(backend_.Last(), "write 5 10 fh 0 hello world");
}

TEST_F(EngineTest, HeaderAndArgumentsSplitAtEveryOffset) {
  Init();
  RawRequest lookup(FUSE_LOOKUP, 1);
  lookup.Str("split-name");
  fuse_setattr_in sa{};
  sa.valid = FATTR_SIZE;
  sa.size = 777;
  RawRequest setattr(FUSE_SETATTR, 4);
  setattr.Add(sa);
  fuse_write_in wi{};
  wi.size = 4;
  RawRequest write(FUSE_WRITE, 4);
  write.Add(wi).Bytes("data");
  struct Case {
    RawRequest* req;
    std::string call;
    size_t body;
  };
  for (Case c : {Case{&lookup, "lookup 1 split-name", sizeof(fuse_entry_out)},
                 Case{&setattr,
                      "setattr 4 valid 8 mode 0 uid 0 gid 0 size 777 atime 0.0 "
                      "mtime 0.0",
                      sizeof(fuse_attr_out)},
                 Case{&write, "write 4 0 fh 0 data", sizeof(fuse_write_out)}}) {
    size_t n = c.req->size();
    for (size_t cut = 1; cut < n; ++cut) {
      for (size_t cut2 : {cut, std::min(cut + 3, n)}) {
        std::vector<size_t> cuts = {cut};
        if (cut2 != cut && cut2 < n) cuts.push_back(cut2);
        Reply r = Run(*c.req, {13, 100, 300}, cuts);  // the reply is scattered too
        ASSERT_EQ(r.calls, 1);
        ASSERT_EQ(r.error(), 0) << c.call << " cut " << cut;
        ASSERT_EQ(r.body.size(), c.body) << "cut " << cut;
        ASSERT_EQ(backend_.Last(), c.call) << "cut " << cut;
      }
    }
  }
}

TEST_F(EngineTest, ReplyScatteredAtEveryOffsetIsIdentical) {
  Init();
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("f");
  Reply whole = Run(req);
  size_t n = whole.bytes;
  for (size_t cut = 1; cut < n; ++cut) {
    Reply r = Run(req, {cut, 0, n - cut});
    ASSERT_EQ(r.bytes, n);
    ASSERT_EQ(r.body, whole.body) << cut;
  }
}

TEST_F(EngineTest, GarbageNeverCrashesAndAlwaysCompletesOnce) {
  Init();
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::vector<char> bytes(rng() % 200);
    for (char& b : bytes) b = static_cast<char>(rng());
    if (bytes.size() >= sizeof(fuse_in_header)) {
      fuse_in_header h;
      std::memcpy(&h, bytes.data(), sizeof h);
      h.opcode %= 56;  // mostly real opcodes
      if (rng() % 2) h.len = static_cast<uint32_t>(bytes.size());
      std::memcpy(bytes.data(), &h, sizeof h);
    }
    std::vector<size_t> cuts;
    if (bytes.size() > 2) cuts.push_back(rng() % bytes.size());
    std::sort(cuts.begin(), cuts.end());
    InBuffers in(bytes, cuts);
    OutBuffers out({rng() % 64, rng() % 400});
    Done d;
    engine().Process(in.iov(), out.iov(), &d);
    ASSERT_EQ(d.calls, 1);
    if (d.bytes) {
      Reply r = Decode(out.Joined(d.bytes), d.bytes, d.calls);
      ASSERT_EQ(r.header.len, d.bytes);
      ASSERT_LE(r.header.error, 0);
    }
  }
  EXPECT_EQ(engine().inflight(), 0u);
}

// ---- Asynchrony, interrupts, forgets ----------------------------------------------------

TEST_F(EngineTest, AsyncRepliesOutOfOrderAndInterrupt) {
  Init();
  backend_.hold = true;
  std::vector<RawRequest> reqs;
  std::vector<OutBuffers> outs;
  std::vector<InBuffers> ins;
  Done done[3];
  for (int i = 0; i < 3; ++i) {
    reqs.emplace_back(FUSE_LOOKUP, 1, 100 + 2 * i);
    reqs.back().Str("n" + std::to_string(i));
  }
  for (int i = 0; i < 3; ++i) {
    ins.emplace_back(reqs[i].bytes(), std::vector<size_t>{});
    outs.emplace_back(std::vector<size_t>{4096});
  }
  for (int i = 0; i < 3; ++i) engine().Process(ins[i].iov(), outs[i].iov(), &done[i]);
  ASSERT_EQ(backend_.held.size(), 3u);
  EXPECT_EQ(engine().inflight(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(done[i].calls, 0);
  RawRequest intr(FUSE_INTERRUPT, 0, 103);
  intr.Add(fuse_interrupt_in{102});
  Reply ri = Run(intr);
  EXPECT_EQ(ri.bytes, 0u);  // INTERRUPT takes no reply
  EXPECT_FALSE(backend_.held[0]->interrupted());
  EXPECT_TRUE(backend_.held[1]->interrupted());
  EXPECT_FALSE(backend_.held[2]->interrupted());
  // Complete from another thread, last first.
  std::thread t([&] {
    backend_.held[2]->ReplyError(ENOENT);
    backend_.held[1]->ReplyError(EINTR);
    backend_.held[0]->ReplyEntry(SomeEntry(5));
  });
  t.join();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(done[i].calls, 1);
    Reply r = Decode(outs[i].Joined(done[i].bytes), done[i].bytes, 1);
    EXPECT_EQ(r.header.unique, static_cast<uint64_t>(100 + 2 * i));
    EXPECT_EQ(r.error(), i == 0 ? 0 : i == 1 ? EINTR : ENOENT);
  }
  EXPECT_EQ(outs[0].Joined(done[0].bytes).size(), sizeof(fuse_out_header) + sizeof(fuse_entry_out));
  EXPECT_EQ(engine().inflight(), 0u);
}

TEST_F(EngineTest, InterruptReachesABlockedLockWait) {
  Init();
  std::atomic<Request*> waiting{nullptr};
  std::thread waiter;
  backend_.hook = [&](Request* q) {
    waiting = q;
    waiter = std::thread([q] {  // a lock wait that gives up when interrupted
      while (!q->interrupted()) std::this_thread::yield();
      q->ReplyError(EINTR);
    });
    return true;
  };
  fuse_lk_in in{};
  in.lk = {0, 10, F_WRLCK, 1};
  RawRequest setlkw(FUSE_SETLKW, 5, 500);
  setlkw.Add(in);
  InBuffers inb(setlkw.bytes(), {});
  OutBuffers out({4096});
  Done done;
  engine().Process(inb.iov(), out.iov(), &done);
  backend_.hook = nullptr;
  RawRequest intr(FUSE_INTERRUPT, 0, 501);
  intr.Add(fuse_interrupt_in{500});
  Run(intr);
  ASSERT_TRUE(done.Wait());
  waiter.join();
  EXPECT_EQ(Decode(out.Joined(done.bytes), done.bytes, 1).error(), EINTR);
}

TEST_F(EngineTest, ForgetsReachTheBackendWithoutReplies) {
  Init();
  RawRequest one(FUSE_FORGET, 8, 0);
  one.Add(fuse_forget_in{3});
  Reply r = Run(one);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.bytes, 0u);
  RawRequest batch(FUSE_BATCH_FORGET, 0, 0);
  batch.Add(fuse_batch_forget_in{3, 0})
      .Add(fuse_forget_one{10, 1})
      .Add(fuse_forget_one{11, 2})
      .Add(fuse_forget_one{12, 1ull << 40});
  r = Run(batch, {4096}, {45, 61});  // entries cut across buffers
  EXPECT_EQ(r.bytes, 0u);
  RawRequest lying(FUSE_BATCH_FORGET, 0, 0);
  lying.Add(fuse_batch_forget_in{1000000, 0}).Add(fuse_forget_one{13, 1});
  EXPECT_EQ(Run(lying).bytes, 0u);
  RawRequest cut(FUSE_BATCH_FORGET, 0, 0);
  cut.Add(fuse_batch_forget_in{2, 0}).Add(fuse_forget_one{14, 1}).Bytes("12345678");
  EXPECT_EQ(Run(cut).calls, 1);
  RawRequest headless(FUSE_BATCH_FORGET, 0, 0);
  headless.Bytes("1234");
  EXPECT_EQ(Run(headless).calls, 1);
  std::vector<std::string> want = {"init", "forget 8 3", "forget 10 1", "forget 11 2",
                                   "forget 12 " + std::to_string(1ull << 40)};
  EXPECT_EQ(backend_.Calls(), want);
  EXPECT_EQ(engine().stats().op(FUSE_BATCH_FORGET)->count.load(), 4u);
}

TEST_F(EngineTest, ManyThreadsWithAsyncReplies) {
  Init();
  std::mutex repliers_mu;
  std::vector<std::thread> repliers;
  backend_.hook = [&](Request* q) {
    std::lock_guard lock(repliers_mu);
    repliers.emplace_back([q] { q->ReplyEntry(SomeEntry(5)); });
    return true;
  };
  constexpr int kThreads = 4, kEach = 200;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        RawRequest req(FUSE_LOOKUP, 1, uint64_t(2 * (t * kEach + i)));
        req.Str("n");
        InBuffers in(req.bytes(), {});
        OutBuffers out({4096});
        Done d;
        engine().Process(in.iov(), out.iov(), &d);
        if (!d.Wait() || d.calls != 1) ++bad;
        Reply r = Decode(out.Joined(d.bytes), d.bytes, 1);
        if (r.header.unique != uint64_t(2 * (t * kEach + i)) || r.error() != 0) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& t : repliers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(engine().inflight(), 0u);
  backend_.hook = nullptr;
}

// ---- Backend misuse ---------------------------------------------------------------------

TEST_F(EngineTest, DoubleReplyFromInsideTheOperationIsHarmless) {
  Init();
  backend_.hook = [](Request* q) {
    q->ReplyError(ENOENT);
    q->ReplyEntry(SomeEntry(5));  // a bug: ignored and logged
    q->ReplyError(EIO);
    return true;
  };
  RawRequest req(FUSE_LOOKUP, 1);
  req.Str("x");
  Reply r = Run(req);
  EXPECT_EQ(r.calls, 1);
  EXPECT_EQ(r.error(), ENOENT);
  EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  nlohmann::json j = engine().stats().ToJson();
  EXPECT_EQ(j["LOOKUP"]["count"], 1);
  EXPECT_EQ(engine().inflight(), 0u);
}

TEST_F(EngineTest, WrongReplyKindBecomesEio) {
  Init();
  struct Case {
    RawRequest req;
    std::function<void(Request*)> reply;
  };
  std::vector<Case> cases;
  cases.push_back({RawRequest(FUSE_GETATTR, 5), [](Request* q) { q->ReplyEntry(SomeEntry(5)); }});
  cases.back().req.Add(fuse_getattr_in{});
  cases.push_back({RawRequest(FUSE_LOOKUP, 1), [](Request* q) { q->ReplyOk(); }});
  cases.back().req.Str("x");
  cases.push_back({RawRequest(FUSE_LOOKUP, 1), [](Request* q) { q->ReplyData({"abc", 3}); }});
  cases.back().req.Str("x");
  cases.push_back({RawRequest(FUSE_MKDIR, 1), [](Request* q) { q->ReplyDir(); }});
  cases.back().req.Add(fuse_mkdir_in{}).Str("x");
  cases.push_back({RawRequest(FUSE_GETXATTR, 1), [](Request* q) { q->ReplyData({"abc", 3}); }});
  cases.back().req.Add(fuse_getxattr_in{0, 0}).Str("user.x");  // a size query wants a size
  cases.push_back({RawRequest(FUSE_UNLINK, 1), [](Request* q) { q->ReplyWrite(3); }});
  cases.back().req.Str("x");
  cases.push_back({RawRequest(FUSE_READDIR, 1), [](Request* q) {
                     EXPECT_FALSE(q->AddDirEntryPlus("a", SomeEntry(5), 1));  // lookup lost
                     q->ReplyDir();
                   }});
  cases.back().req.Add(fuse_read_in{0, 0, 4096, 0, 0, 0, 0});
  cases.push_back({RawRequest(FUSE_READ, 1), [](Request* q) {
                     std::string big(5000, 'b');  // more than asked
                     q->ReplyData({big.data(), big.size()});
                   }});
  cases.back().req.Add(fuse_read_in{0, 0, 100, 0, 0, 0, 0});
  cases.push_back({RawRequest(FUSE_STATFS, 1), [](Request* q) {
                     EXPECT_TRUE(q->DataBuffers(100).empty());
                     q->ReplyDataFilled(50);
                   }});
  for (Case& c : cases) {
    backend_.hook = [&](Request* q) {
      c.reply(q);
      return true;
    };
    Reply r = Run(c.req);
    EXPECT_EQ(r.calls, 1);
    EXPECT_EQ(r.error(), EIO) << backend_.Last();
    EXPECT_EQ(r.bytes, sizeof(fuse_out_header));
  }
  backend_.hook = nullptr;
}

TEST_F(EngineTest, InvalidDirectoryNamesFromTheBackendAreNotListed) {
  Init();
  backend_.hook = [](Request* q) {
    EXPECT_TRUE(q->AddDirEntry("a/b", 1, DT_REG, 1));  // skipped
    EXPECT_TRUE(q->AddDirEntry(std::string_view("n\0l", 3), 1, DT_REG, 2));
    EXPECT_TRUE(q->AddDirEntry("ok", 2, DT_REG, 3));
    q->ReplyDir();
    return true;
  };
  RawRequest req(FUSE_READDIR, 1);
  req.Add(fuse_read_in{0, 0, 4096, 0, 0, 0, 0});
  Reply r = Run(req);
  ASSERT_EQ(r.body.size(), size_t{FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + 2)});
  EXPECT_EQ(r.As<fuse_dirent>().off, 3u);
  // A plain entry in a READDIRPLUS reply is encoded as a listing-only direntplus.
  backend_.hook = [](Request* q) {
    EXPECT_TRUE(q->AddDirEntry("ok", 2, DT_DIR, 3));
    q->ReplyDir();
    return true;
  };
  RawRequest plus(FUSE_READDIRPLUS, 1);
  plus.Add(fuse_read_in{0, 0, 4096, 0, 0, 0, 0});
  r = Run(plus);
  ASSERT_EQ(r.body.size(), size_t{FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + 2)});
  auto d = r.As<fuse_direntplus>();
  EXPECT_EQ(d.entry_out.nodeid, 0u);
  EXPECT_EQ(d.dirent.ino, 2u);
  EXPECT_EQ(d.dirent.type, uint32_t{DT_DIR});
  backend_.hook = nullptr;
}

// ---- Read-only, stats ---------------------------------------------------------------------

TEST_F(EngineTest, ReadOnlyRefusesChangesBeforeTheBackend) {
  options_.read_only = true;
  Rebuild();
  Init();
  std::vector<RawRequest> refused;
  refused.emplace_back(FUSE_SETATTR, 5).Add(fuse_setattr_in{});
  refused.emplace_back(FUSE_MKNOD, 1).Add(fuse_mknod_in{}).Str("n");
  refused.emplace_back(FUSE_MKDIR, 1).Add(fuse_mkdir_in{0755, 0}).Str("d");
  refused.emplace_back(FUSE_SYMLINK, 1).Str("l").Str("t");
  refused.emplace_back(FUSE_LINK, 1).Add(fuse_link_in{5}).Str("l");
  refused.emplace_back(FUSE_UNLINK, 1).Str("f");
  refused.emplace_back(FUSE_RMDIR, 1).Str("d");
  refused.emplace_back(FUSE_RENAME, 1).Add(fuse_rename_in{1}).Str("a").Str("b");
  refused.emplace_back(FUSE_RENAME2, 1).Add(fuse_rename2_in{1, 0, 0}).Str("a").Str("b");
  refused.emplace_back(FUSE_WRITE, 5).Add(fuse_write_in{0, 0, 1, 0, 0, 0, 0}).Bytes("w");
  refused.emplace_back(FUSE_CREATE, 1).Add(fuse_create_in{O_RDONLY, 0644, 0, 0}).Str("c");
  refused.emplace_back(FUSE_SETXATTR, 5).Add(uint64_t{0}).Str("user.x");
  refused.emplace_back(FUSE_REMOVEXATTR, 5).Str("user.x");
  refused.emplace_back(FUSE_FALLOCATE, 5).Add(fuse_fallocate_in{});
  refused.emplace_back(FUSE_COPY_FILE_RANGE, 5).Add(fuse_copy_file_range_in{});
  refused.emplace_back(FUSE_OPEN, 5).Add(fuse_open_in{O_RDWR, 0});
  refused.emplace_back(FUSE_OPEN, 5).Add(fuse_open_in{O_WRONLY, 0});
  refused.emplace_back(FUSE_OPEN, 5).Add(fuse_open_in{O_RDONLY | O_TRUNC, 0});
  for (RawRequest& req : refused) {
    fuse_in_header h;
    std::memcpy(&h, req.bytes().data(), sizeof h);
    EXPECT_EQ(Run(req).error(), EROFS) << OpcodeName(h.opcode);
  }
  EXPECT_EQ(backend_.Calls(), std::vector<std::string>{"init"});
  RawRequest ro(FUSE_OPEN, 5);
  ro.Add(fuse_open_in{O_RDONLY, 0});
  EXPECT_EQ(Run(ro).error(), 0);
  RawRequest look(FUSE_LOOKUP, 1);
  look.Str("x");
  EXPECT_EQ(Run(look).error(), 0);
}

TEST_F(EngineTest, StatsCountOperationsAndErrors) {
  Init();
  RawRequest a(FUSE_LOOKUP, 1);
  a.Str("x");
  Run(a);
  Run(a);
  RawRequest m(FUSE_MKDIR, 1);
  m.Add(fuse_mkdir_in{0755, 0}).Str("d");
  EXPECT_EQ(Run(m).error(), EEXIST);
  RawRequest unknown(200, 1);
  Run(unknown);
  nlohmann::json j = engine().stats().ToJson();
  EXPECT_EQ(j["LOOKUP"]["count"], 2);
  EXPECT_EQ(j["LOOKUP"]["errors"], 0);
  EXPECT_EQ(j["MKDIR"]["count"], 1);
  EXPECT_EQ(j["MKDIR"]["errors"], 1);
  EXPECT_EQ(j["INIT"]["count"], 1);
  EXPECT_EQ(j["UNKNOWN"]["errors"], 1);
  EXPECT_FALSE(j.contains("GETATTR"));
  EXPECT_EQ(OpcodeName(FUSE_COPY_FILE_RANGE), "COPY_FILE_RANGE");
  EXPECT_EQ(OpcodeName(1000), "UNKNOWN");
}

}  // namespace
}  // namespace dpustor::fs
