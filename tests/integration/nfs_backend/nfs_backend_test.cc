// The nfs backend against a real NFS-Ganesha (FSAL_VFS over a temp dir, and FSAL_CEPH over a
// single-node CephFS), driven with RecordingRequest: no kernel, no FUSE mount.
#include "fs/backend/nfs/nfs_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fs/backend/backend_url.h"
#include "harness/child_process.h"
#include "harness/lab.h"
#include "harness/nfs_lab.h"
#include "support/recording_request.h"

namespace dpustor::fs {
namespace {

using testing::RecordingRequest;
using Kind = RecordingRequest::Kind;
using namespace std::chrono_literals;

// rpcbind needs a network namespace of its own; entered before gtest starts any thread.
std::string namespace_error;
const bool in_private_namespaces = [] {
  return dpustor::testing::EnterPrivateNamespaces(&namespace_error);
}();

constexpr Caller kRoot{0, 0, 1};
constexpr Caller kUser{1234, 1234, 2};

// Runs one backend call and waits for its reply.
template <class F>
std::unique_ptr<RecordingRequest> Call(F&& call, Caller caller = kRoot, size_t dir_room = 1 << 16) {
  auto r = std::make_unique<RecordingRequest>(caller, dir_room);
  call(r.get());
  EXPECT_TRUE(r->Wait(30s)) << "no reply";
  EXPECT_EQ(r->replies(), 1);
  return r;
}

iovec Iov(const std::string& s) {
  return {const_cast<char*>(s.data()), s.size()};
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class NfsBackendTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!in_private_namespaces) return;
    lab_dir_ = std::make_unique<dpustor::testing::TempDir>("nfs-lab");
    export_dir_ = std::make_unique<dpustor::testing::TempDir>("nfs-export");
    ::chmod(export_dir_->path().c_str(), 0777);
    lab_ = std::make_unique<dpustor::testing::NfsLab>(lab_dir_->path());
    dpustor::testing::NfsLab::Options o;
    o.export_dir = export_dir_->path();
    std::string error;
    if (!lab_->Start(o, 30s, &error)) {
      start_error_ = error;
      return;
    }
    auto url = ParseBackendUrl(lab_->Url() + "&timeout=5");
    if (!url) {
      start_error_ = url.error().message;
      return;
    }
    auto options = ParseNfsOptions(*url);
    if (!options) {
      start_error_ = options.error().message;
      return;
    }
    auto backend = NfsBackend::Make(*options);
    if (!backend) {
      start_error_ = backend.error().message;
      return;
    }
    backend_ = std::move(*backend);
    backend_->Init();
  }
  static void TearDownTestSuite() {
    backend_.reset();
    lab_.reset();
    export_dir_.reset();
    lab_dir_.reset();
  }
  void SetUp() override {
    if (!in_private_namespaces) GTEST_SKIP() << "needs root for namespaces: " << namespace_error;
    ASSERT_TRUE(backend_) << start_error_;
  }

  NfsBackend& b() { return *backend_; }
  std::string Host(const std::string& rel) { return export_dir_->path() + "/" + rel; }

  Entry Lookup(uint64_t parent, const std::string& name, Caller c = kRoot) {
    auto r = Call([&](Request* q) { b().Lookup(q, parent, name); }, c);
    EXPECT_EQ(r->kind, Kind::kEntry) << name << ": error " << r->error;
    return r->entry;
  }
  // Creates `name` under `parent` and returns (entry, open handle).
  std::pair<Entry, uint64_t> Create(uint64_t parent, const std::string& name, mode_t mode,
                                    Caller c = kRoot, int flags = O_CREAT | O_RDWR) {
    FileInfo fi;
    fi.flags = flags;
    auto r = Call([&](Request* q) { b().Create(q, parent, name, mode, fi); }, c);
    EXPECT_EQ(r->kind, Kind::kCreate) << name << ": error " << r->error;
    return {r->entry, r->open.fh};
  }
  int WriteAt(uint64_t ino, uint64_t fh, const std::string& data, uint64_t off, Caller c = kRoot) {
    FileInfo fi;
    fi.fh = fh;
    iovec v = Iov(data);
    auto r = Call([&](Request* q) { b().Write(q, ino, {&v, 1}, off, fi); }, c);
    if (r->kind != Kind::kWrite) return -r->error;
    return static_cast<int>(r->count);
  }
  std::string ReadAt(uint64_t ino, size_t size, uint64_t off) {
    FileInfo fi;
    auto r = Call([&](Request* q) { b().Read(q, ino, size, off, fi); });
    EXPECT_EQ(r->kind, Kind::kData) << "error " << r->error;
    return r->data;
  }
  int Release(uint64_t ino, uint64_t fh) {
    FileInfo fi;
    fi.fh = fh;
    return Call([&](Request* q) { b().Release(q, ino, fi); })->error;
  }

  static std::unique_ptr<dpustor::testing::TempDir> lab_dir_;
  static std::unique_ptr<dpustor::testing::TempDir> export_dir_;
  static std::unique_ptr<dpustor::testing::NfsLab> lab_;
  static std::unique_ptr<NfsBackend> backend_;
  static std::string start_error_;
};

std::unique_ptr<dpustor::testing::TempDir> NfsBackendTest::lab_dir_;
std::unique_ptr<dpustor::testing::TempDir> NfsBackendTest::export_dir_;
std::unique_ptr<dpustor::testing::NfsLab> NfsBackendTest::lab_;
std::unique_ptr<NfsBackend> NfsBackendTest::backend_;
std::string NfsBackendTest::start_error_;

TEST_F(NfsBackendTest, CreateWriteReadGetattrSetattr) {
  auto [e, fh] = Create(FUSE_ROOT_ID, "file", 0640);
  EXPECT_NE(e.nodeid, 0u);
  EXPECT_EQ(e.attr.st_mode, S_IFREG | 0640u);
  EXPECT_EQ(WriteAt(e.nodeid, fh, "hello, nfs world", 0), 16);
  // A payload in several pieces.
  std::string a = "ABC", c = "DEFG";
  iovec parts[2] = {Iov(a), Iov(c)};
  FileInfo fi;
  fi.fh = fh;
  auto w = Call([&](Request* q) { b().Write(q, e.nodeid, parts, 16, fi); });
  ASSERT_EQ(w->kind, Kind::kWrite);
  EXPECT_EQ(w->count, 7u);
  EXPECT_EQ(ReadAt(e.nodeid, 100, 0), "hello, nfs worldABCDEFG");
  EXPECT_EQ(ReadAt(e.nodeid, 3, 7), "nfs");
  EXPECT_EQ(ReadAt(e.nodeid, 10, 1000), "");  // past EOF
  EXPECT_EQ(Call([&](Request* q) { b().Fsync(q, e.nodeid, false, fi); })->error, 0);
  EXPECT_EQ(Slurp(Host("file")), "hello, nfs worldABCDEFG");

  // Lookup finds the same node; a missing name is ENOENT.
  EXPECT_EQ(Lookup(FUSE_ROOT_ID, "file").nodeid, e.nodeid);
  auto missing = Call([&](Request* q) { b().Lookup(q, FUSE_ROOT_ID, "missing"); });
  EXPECT_EQ(missing->kind, Kind::kError);
  EXPECT_EQ(missing->error, ENOENT);

  auto g = Call([&](Request* q) { b().Getattr(q, e.nodeid, nullptr); });
  ASSERT_EQ(g->kind, Kind::kAttr);
  EXPECT_EQ(g->attr.st_size, 23);
  struct stat host = {};
  ASSERT_EQ(::stat(Host("file").c_str(), &host), 0);
  EXPECT_EQ(g->attr.st_ino, host.st_ino);

  SetattrArgs sa;
  sa.valid = FATTR_SIZE | FATTR_MODE | FATTR_MTIME;
  sa.size = 5;
  sa.mode = 0600;
  sa.mtime = {1600000000, 0};
  auto s = Call([&](Request* q) { b().Setattr(q, e.nodeid, sa); });
  ASSERT_EQ(s->kind, Kind::kAttr) << s->error;
  EXPECT_EQ(s->attr.st_size, 5);
  EXPECT_EQ(s->attr.st_mode, S_IFREG | 0600u);
  EXPECT_EQ(s->attr.st_mtim.tv_sec, 1600000000);
  ASSERT_EQ(::stat(Host("file").c_str(), &host), 0);
  EXPECT_EQ(host.st_size, 5);
  EXPECT_EQ(host.st_mode & 07777, 0600u);
  EXPECT_EQ(host.st_mtim.tv_sec, 1600000000);
  sa.valid = FATTR_MTIME | FATTR_MTIME_NOW;
  s = Call([&](Request* q) { b().Setattr(q, e.nodeid, sa); });
  ASSERT_EQ(s->kind, Kind::kAttr);
  EXPECT_GT(s->attr.st_mtim.tv_sec, 1600000000);

  EXPECT_EQ(Release(e.nodeid, fh), 0);

  // O_EXCL on an existing name fails; O_TRUNC through open truncates.
  FileInfo excl;
  excl.flags = O_CREAT | O_EXCL | O_RDWR;
  auto x = Call([&](Request* q) { b().Create(q, FUSE_ROOT_ID, "file", 0644, excl); });
  EXPECT_EQ(x->error, EEXIST);
  FileInfo trunc;
  trunc.flags = O_WRONLY | O_TRUNC;
  auto o = Call([&](Request* q) { b().Open(q, e.nodeid, trunc); });
  ASSERT_EQ(o->kind, Kind::kOpen) << o->error;
  EXPECT_EQ(Slurp(Host("file")), "");
  EXPECT_EQ(Release(e.nodeid, o->open.fh), 0);
}

TEST_F(NfsBackendTest, LargeWritesAreSplitAtWtmax) {
  auto [e, fh] = Create(FUSE_ROOT_ID, "large", 0644);
  ASSERT_GT(b().max_write(), 0u);
  std::string data(b().max_write() * 2 + 12345, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + (i * 7919) % 26);
  EXPECT_EQ(WriteAt(e.nodeid, fh, data, 0), static_cast<int>(data.size()));
  EXPECT_EQ(Release(e.nodeid, fh), 0);
  EXPECT_EQ(Slurp(Host("large")), data);
  EXPECT_EQ(ReadAt(e.nodeid, data.size(), 0), data);
  EXPECT_EQ(ReadAt(e.nodeid, 100, data.size() - 50), data.substr(data.size() - 50));
}

TEST_F(NfsBackendTest, SequentialThroughputAndLatency) {
  auto [e, fh] = Create(FUSE_ROOT_ID, "stream", 0644);
  constexpr int kChunks = 32;
  std::string chunk(1 << 20, 's');
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kChunks; ++i) {
    ASSERT_EQ(WriteAt(e.nodeid, fh, chunk, (uint64_t{1} << 20) * i), 1 << 20);
  }
  EXPECT_EQ(Release(e.nodeid, fh), 0);  // COMMIT
  auto t1 = std::chrono::steady_clock::now();
  for (int i = 0; i < kChunks; ++i)
    ASSERT_EQ(ReadAt(e.nodeid, 1 << 20, (uint64_t{1} << 20) * i).size(), 1u << 20);
  auto t2 = std::chrono::steady_clock::now();
  constexpr int kSmall = 500;
  for (int i = 0; i < kSmall; ++i) ASSERT_EQ(ReadAt(e.nodeid, 4096, 4096 * i).size(), 4096u);
  auto t3 = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf(
      "1 MiB sequential: write+commit %.0f MiB/s, read %.0f MiB/s; 4 KiB read at QD1: %.0f us\n",
      kChunks / secs(t0, t1), kChunks / secs(t1, t2), secs(t2, t3) * 1e6 / kSmall);
  EXPECT_EQ(std::filesystem::file_size(Host("stream")), uint64_t{kChunks} << 20);
}

TEST_F(NfsBackendTest, ReaddirOfManyEntriesIsCompleteAndBatched) {
  constexpr int kEntries = 5000;
  std::filesystem::create_directory(Host("big"));
  for (int i = 0; i < kEntries; ++i) {
    std::ofstream(Host("big/entry-" + std::to_string(i)));
  }
  Entry dir = Lookup(FUSE_ROOT_ID, "big");
  for (bool plus : {true, false}) {
    size_t nodes_before = b().known_nodes();
    auto od = Call([&](Request* q) { b().Opendir(q, dir.nodeid, {}); });
    ASSERT_EQ(od->kind, Kind::kOpen);
    FileInfo fi;
    fi.fh = od->open.fh;
    uint64_t rpcs_before = b().readdirplus_rpcs();
    std::set<std::string> names;
    std::vector<uint64_t> acquired;
    uint64_t off = 0;
    int calls = 0;
    while (true) {
      // 4 KiB: the size a kernel asks per readdir call.
      auto r =
          Call([&](Request* q) { b().Readdir(q, dir.nodeid, 4096, off, plus, fi); }, kRoot, 4096);
      ASSERT_EQ(r->kind, Kind::kDir) << r->error;
      if (r->dir.empty()) break;
      ++calls;
      for (const auto& item : r->dir) {
        EXPECT_TRUE(names.insert(item.name).second) << "duplicate " << item.name;
        if (item.entry && item.entry->nodeid != 0) acquired.push_back(item.entry->nodeid);
        off = item.next_offset;
      }
    }
    uint64_t rpcs = b().readdirplus_rpcs() - rpcs_before;
    names.erase(".");
    names.erase("..");
    EXPECT_EQ(names.size(), static_cast<size_t>(kEntries));
    EXPECT_TRUE(names.count("entry-0") && names.count("entry-4999"));
    // Linear: about entries / batch RPCs, far fewer than the kernel's readdir calls.
    EXPECT_GT(calls, 50);
    EXPECT_LT(rpcs, 60u) << "readdir calls " << calls;
    std::printf("readdir%s of %d entries: %d kernel-sized calls, %lu READDIRPLUS RPCs\n",
                plus ? "plus" : "", kEntries, calls, static_cast<unsigned long>(rpcs));
    if (plus) {
      EXPECT_EQ(acquired.size(), static_cast<size_t>(kEntries));
      EXPECT_EQ(b().known_nodes(), nodes_before + kEntries);
      for (uint64_t id : acquired) b().Forget(id, 1);
      EXPECT_EQ(b().known_nodes(), nodes_before);
    }
    // Rewinding (offset 0) lists again from the start.
    auto again =
        Call([&](Request* q) { b().Readdir(q, dir.nodeid, 4096, 0, false, fi); }, kRoot, 4096);
    ASSERT_EQ(again->kind, Kind::kDir);
    EXPECT_FALSE(again->dir.empty());
    EXPECT_EQ(Call([&](Request* q) { b().Releasedir(q, dir.nodeid, fi); })->error, 0);
  }
}

TEST_F(NfsBackendTest, NamespaceOperations) {
  Entry d = [&] {
    auto r = Call([&](Request* q) { b().Mkdir(q, FUSE_ROOT_ID, "ns", 0750); });
    EXPECT_EQ(r->kind, Kind::kEntry) << r->error;
    return r->entry;
  }();
  EXPECT_EQ(d.attr.st_mode, S_IFDIR | 0750u);
  EXPECT_TRUE(std::filesystem::is_directory(Host("ns")));
  auto [f, fh] = Create(d.nodeid, "a", 0644);
  EXPECT_EQ(Release(f.nodeid, fh), 0);

  // rename
  EXPECT_EQ(Call([&](Request* q) { b().Rename(q, d.nodeid, "a", d.nodeid, "b", 0); })->error, 0);
  EXPECT_TRUE(std::filesystem::exists(Host("ns/b")));
  EXPECT_FALSE(std::filesystem::exists(Host("ns/a")));
  EXPECT_EQ(Lookup(d.nodeid, "b").nodeid, f.nodeid);  // same handle, same node
  auto flags =
      Call([&](Request* q) { b().Rename(q, d.nodeid, "b", d.nodeid, "c", RENAME_NOREPLACE); });
  EXPECT_EQ(flags->error, EINVAL);

  // hard link: same node, nlink 2
  auto l = Call([&](Request* q) { b().Link(q, f.nodeid, FUSE_ROOT_ID, "hard"); });
  ASSERT_EQ(l->kind, Kind::kEntry) << l->error;
  EXPECT_EQ(l->entry.nodeid, f.nodeid);
  EXPECT_EQ(l->entry.attr.st_nlink, 2u);

  // symlink + readlink
  auto s = Call([&](Request* q) { b().Symlink(q, "ns/b", FUSE_ROOT_ID, "sym"); });
  ASSERT_EQ(s->kind, Kind::kEntry) << s->error;
  EXPECT_TRUE(S_ISLNK(s->entry.attr.st_mode));
  auto rl = Call([&](Request* q) { b().Readlink(q, s->entry.nodeid); });
  ASSERT_EQ(rl->kind, Kind::kReadlink);
  EXPECT_EQ(rl->data, "ns/b");
  EXPECT_EQ(std::filesystem::read_symlink(Host("sym")).string(), "ns/b");

  // mknod fifo
  auto fifo = Call([&](Request* q) { b().Mknod(q, d.nodeid, "fifo", S_IFIFO | 0600, 0); });
  ASSERT_EQ(fifo->kind, Kind::kEntry) << fifo->error;
  EXPECT_TRUE(S_ISFIFO(fifo->entry.attr.st_mode));
  struct stat host = {};
  ASSERT_EQ(::lstat(Host("ns/fifo").c_str(), &host), 0);
  EXPECT_TRUE(S_ISFIFO(host.st_mode));

  // rmdir of a non-empty dir, unlink, rmdir
  EXPECT_EQ(Call([&](Request* q) { b().Rmdir(q, FUSE_ROOT_ID, "ns"); })->error, ENOTEMPTY);
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, d.nodeid, "b"); })->error, 0);
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, d.nodeid, "fifo"); })->error, 0);
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, d.nodeid, "nothing"); })->error, ENOENT);
  EXPECT_EQ(Call([&](Request* q) { b().Rmdir(q, FUSE_ROOT_ID, "ns"); })->error, 0);
  EXPECT_FALSE(std::filesystem::exists(Host("ns")));
  // The hard link keeps the data reachable.
  auto g = Call([&](Request* q) { b().Getattr(q, f.nodeid, nullptr); });
  ASSERT_EQ(g->kind, Kind::kAttr);
  EXPECT_EQ(g->attr.st_nlink, 1u);

  // statfs, access, and what NFSv3 cannot do
  auto st = Call([&](Request* q) { b().Statfs(q, FUSE_ROOT_ID); });
  ASSERT_EQ(st->kind, Kind::kStatfs);
  EXPECT_GT(st->statfs.f_blocks, 0u);
  EXPECT_GT(st->statfs.f_files, 0u);
  EXPECT_GE(st->statfs.f_namemax, 255u);  // the server's PATHCONF name_max
  EXPECT_EQ(Call([&](Request* q) { b().Access(q, FUSE_ROOT_ID, R_OK | W_OK | X_OK); })->error, 0);
  EXPECT_EQ(Call([&](Request* q) { b().Getxattr(q, f.nodeid, "user.x", 0); })->error, ENOSYS);
  EXPECT_EQ(Call([&](Request* q) { b().Listxattr(q, f.nodeid, 0); })->error, ENOSYS);
  FileInfo none;
  EXPECT_EQ(Call([&](Request* q) { b().Fallocate(q, f.nodeid, none, 0, 0, 10); })->error,
            EOPNOTSUPP);
  EXPECT_EQ(Call([&](Request* q) { b().Lseek(q, f.nodeid, none, 0, SEEK_DATA); })->error, ENOSYS);
  Capabilities caps = b().Init();
  EXPECT_FALSE(caps.posix_locks);
  EXPECT_FALSE(caps.flock_locks);
  EXPECT_FALSE(caps.writeback_cache);
  EXPECT_EQ(caps.max_write, b().max_write());
}

// Names listed by readdir in directory `ino` (without "." and "..").
std::set<std::string> ListNames(NfsBackend& b, uint64_t ino) {
  auto od = Call([&](Request* q) { b.Opendir(q, ino, {}); });
  EXPECT_EQ(od->kind, Kind::kOpen);
  FileInfo fi;
  fi.fh = od->open.fh;
  std::set<std::string> names;
  uint64_t off = 0;
  while (true) {
    auto r = Call([&](Request* q) { b.Readdir(q, ino, 4096, off, false, fi); }, kRoot, 4096);
    EXPECT_EQ(r->kind, Kind::kDir) << r->error;
    if (r->kind != Kind::kDir || r->dir.empty()) break;
    for (const auto& item : r->dir) {
      names.insert(item.name);
      off = item.next_offset;
    }
  }
  Call([&](Request* q) { b.Releasedir(q, ino, fi); });
  names.erase(".");
  names.erase("..");
  return names;
}

// Host-side names in `dir` that start with the hidden prefix of unlinked open files.
std::vector<std::string> HiddenOnHost(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.starts_with(".dpustor-silly-")) out.push_back(n);
  }
  return out;
}

TEST_F(NfsBackendTest, UnlinkedOpenFileKeepsWorkingUntilRelease) {
  auto d = Call([&](Request* q) { b().Mkdir(q, FUSE_ROOT_ID, "silly", 0755); });
  ASSERT_EQ(d->kind, Kind::kEntry) << d->error;
  uint64_t dir = d->entry.nodeid;
  auto [e, fh] = Create(dir, "victim", 0644);
  ASSERT_EQ(WriteAt(e.nodeid, fh, "still here", 0), 10);

  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, dir, "victim"); })->error, 0);
  EXPECT_FALSE(std::filesystem::exists(Host("silly/victim")));
  auto gone = Call([&](Request* q) { b().Lookup(q, dir, "victim"); });
  EXPECT_EQ(gone->error, ENOENT);
  EXPECT_EQ(ListNames(b(), dir), std::set<std::string>{});  // the hidden name is not listed
  EXPECT_EQ(HiddenOnHost(Host("silly")).size(), 1u);

  // The open handle keeps working: getattr, read, write.
  auto g = Call([&](Request* q) { b().Getattr(q, e.nodeid, nullptr); });
  ASSERT_EQ(g->kind, Kind::kAttr) << g->error;
  EXPECT_EQ(g->attr.st_size, 10);
  EXPECT_EQ(ReadAt(e.nodeid, 100, 0), "still here");
  EXPECT_EQ(WriteAt(e.nodeid, fh, "!", 10), 1);
  EXPECT_EQ(ReadAt(e.nodeid, 100, 0), "still here!");

  // A second open of the same file: the first release leaves it, the last removes it.
  FileInfo ofi;
  ofi.flags = O_RDONLY;
  auto o = Call([&](Request* q) { b().Open(q, e.nodeid, ofi); });
  ASSERT_EQ(o->kind, Kind::kOpen) << o->error;
  EXPECT_EQ(Release(e.nodeid, fh), 0);
  EXPECT_EQ(HiddenOnHost(Host("silly")).size(), 1u);
  EXPECT_EQ(ReadAt(e.nodeid, 100, 0), "still here!");
  EXPECT_EQ(Release(e.nodeid, o->open.fh), 0);
  EXPECT_TRUE(HiddenOnHost(Host("silly")).empty());
  EXPECT_TRUE(std::filesystem::is_empty(Host("silly")));

  // Nothing open: a plain unlink, no hidden name.
  auto [e2, fh2] = Create(dir, "closed", 0644);
  EXPECT_EQ(Release(e2.nodeid, fh2), 0);
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, dir, "closed"); })->error, 0);
  EXPECT_TRUE(std::filesystem::is_empty(Host("silly")));
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, dir, "closed"); })->error, ENOENT);
  EXPECT_EQ(Call([&](Request* q) { b().Rmdir(q, FUSE_ROOT_ID, "silly"); })->error, 0);
}

TEST_F(NfsBackendTest, RenameOverOpenFileKeepsOldContentReadable) {
  auto [old_e, old_fh] = Create(FUSE_ROOT_ID, "target", 0644);
  ASSERT_EQ(WriteAt(old_e.nodeid, old_fh, "old content", 0), 11);
  auto [new_e, new_fh] = Create(FUSE_ROOT_ID, "incoming", 0644);
  ASSERT_EQ(WriteAt(new_e.nodeid, new_fh, "new", 0), 3);
  EXPECT_EQ(Release(new_e.nodeid, new_fh), 0);

  EXPECT_EQ(Call([&](Request* q) {
              b().Rename(q, FUSE_ROOT_ID, "incoming", FUSE_ROOT_ID, "target", 0);
            })->error,
            0);
  EXPECT_EQ(Slurp(Host("target")), "new");
  EXPECT_FALSE(std::filesystem::exists(Host("incoming")));
  EXPECT_EQ(Lookup(FUSE_ROOT_ID, "target").nodeid, new_e.nodeid);
  // The replaced file, still open, reads its old content.
  EXPECT_EQ(ReadAt(old_e.nodeid, 100, 0), "old content");
  auto names = ListNames(b(), FUSE_ROOT_ID);
  for (const auto& n : names) EXPECT_FALSE(n.starts_with(".dpustor-silly-")) << n;
  EXPECT_EQ(HiddenOnHost(export_dir_->path()).size(), 1u);
  EXPECT_EQ(Release(old_e.nodeid, old_fh), 0);
  EXPECT_TRUE(HiddenOnHost(export_dir_->path()).empty());
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, FUSE_ROOT_ID, "target"); })->error, 0);
}

TEST_F(NfsBackendTest, OverlongSymlinkTargetIsNameTooLong) {
  std::string target(4000, 'x');
  auto s = Call([&](Request* q) { b().Symlink(q, target, FUSE_ROOT_ID, "long-link"); });
  EXPECT_EQ(s->kind, Kind::kError);
  EXPECT_EQ(s->error, ENAMETOOLONG);
  EXPECT_FALSE(std::filesystem::exists(Host("long-link")));
  // The backend still serves requests afterwards, and a 1024-byte target is fine.
  std::string ok(1024, 'y');
  auto s2 = Call([&](Request* q) { b().Symlink(q, ok, FUSE_ROOT_ID, "ok-link"); });
  ASSERT_EQ(s2->kind, Kind::kEntry) << s2->error;
  EXPECT_EQ(std::filesystem::read_symlink(Host("ok-link")).string(), ok);
  EXPECT_EQ(Call([&](Request* q) { b().Unlink(q, FUSE_ROOT_ID, "ok-link"); })->error, 0);
}

TEST_F(NfsBackendTest, CallerCredentialsReachTheServer) {
  // Created as uid 1234: owned by 1234 on the server.
  auto [e, fh] = Create(FUSE_ROOT_ID, "users-file", 0644, kUser);
  EXPECT_EQ(e.attr.st_uid, 1234u);
  EXPECT_EQ(Release(e.nodeid, fh), 0);
  struct stat host = {};
  ASSERT_EQ(::stat(Host("users-file").c_str(), &host), 0);
  EXPECT_EQ(host.st_uid, 1234u);
  EXPECT_EQ(host.st_gid, 1234u);

  // A root-owned 0644 file: uid 1234 may read, not write.
  std::ofstream(Host("roots-file")) << "root data";
  ::chmod(Host("roots-file").c_str(), 0644);
  Entry r = Lookup(FUSE_ROOT_ID, "roots-file", kUser);
  FileInfo wr;
  wr.flags = O_WRONLY;
  auto o = Call([&](Request* q) { b().Open(q, r.nodeid, wr); }, kUser);
  EXPECT_EQ(o->error, EACCES);
  EXPECT_EQ(WriteAt(r.nodeid, 0, "x", 0, kUser), -EACCES);
  EXPECT_EQ(Call([&](Request* q) { b().Access(q, r.nodeid, W_OK); }, kUser)->error, EACCES);
  EXPECT_EQ(Call([&](Request* q) { b().Access(q, r.nodeid, R_OK); }, kUser)->error, 0);
  EXPECT_EQ(Slurp(Host("roots-file")), "root data");
  // Root may write it (no root squash on this export).
  EXPECT_EQ(WriteAt(r.nodeid, 0, "ROOT", 0, kRoot), 4);
}

TEST_F(NfsBackendTest, ConcurrentRequestsAcrossConnections) {
  constexpr int kThreads = 8;
  constexpr int kFilesPerThread = 40;
  std::atomic<int> failures{0};
  uint64_t rpcs_before = b().rpcs_sent();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFilesPerThread; ++i) {
        std::string name = "c-" + std::to_string(t) + "-" + std::to_string(i);
        RecordingRequest cr(kRoot);
        FileInfo fi;
        fi.flags = O_CREAT | O_RDWR;
        b().Create(&cr, FUSE_ROOT_ID, name, 0644, fi);
        if (!cr.Wait(30s) || cr.kind != Kind::kCreate) {
          ++failures;
          continue;
        }
        std::string payload = name + std::string(4096, 'x');
        iovec v = Iov(payload);
        fi.fh = cr.open.fh;
        RecordingRequest w(kRoot);
        b().Write(&w, cr.entry.nodeid, {&v, 1}, 0, fi);
        RecordingRequest rd(kRoot);
        if (!w.Wait(30s) || w.count != payload.size()) ++failures;
        b().Read(&rd, cr.entry.nodeid, payload.size(), 0, fi);
        if (!rd.Wait(30s) || rd.data != payload) ++failures;
        RecordingRequest rel(kRoot);
        b().Release(&rel, cr.entry.nodeid, fi);
        if (!rel.Wait(30s) || rel.error != 0) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  uint64_t rpcs = b().rpcs_sent() - rpcs_before;
  EXPECT_EQ(failures.load(), 0);
  std::printf("%d threads: %lu RPCs in %.2f s (%.0f RPC/s, mean %.0f us per RPC, %d in flight)\n",
              kThreads, static_cast<unsigned long>(rpcs), seconds, rpcs / seconds,
              seconds * 1e6 * kThreads / static_cast<double>(rpcs), kThreads);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(Slurp(Host("c-" + std::to_string(t) + "-0")).size(), 4096u + 5u);
  }
}

// A server that goes away: calls fail (EIO) within the timeout instead of hanging, and a
// backend keeps answering afterwards.
TEST(NfsBackendFailure, StoppedServerGivesErrorsNotHangs) {
  if (!in_private_namespaces) GTEST_SKIP() << "needs root for namespaces: " << namespace_error;
  dpustor::testing::TempDir lab_dir("nfs-lab-stop");
  dpustor::testing::TempDir export_dir("nfs-export-stop");
  dpustor::testing::NfsLab lab(lab_dir.path());
  dpustor::testing::NfsLab::Options o;
  o.export_dir = export_dir.path();
  std::string error;
  ASSERT_TRUE(lab.Start(o, 30s, &error)) << error;
  auto url = ParseBackendUrl(lab.Url() + "&timeout=3&connections=2");
  ASSERT_TRUE(url);
  auto backend = OpenBackend(*url);
  ASSERT_TRUE(backend) << backend.error().message;
  Backend& b = **backend;
  auto ok = Call([&](Request* q) { b.Getattr(q, FUSE_ROOT_ID, nullptr); });
  ASSERT_EQ(ok->kind, Kind::kAttr);

  lab.Stop();
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<RecordingRequest>> calls;
  for (int i = 0; i < 8; ++i) {
    calls.push_back(std::make_unique<RecordingRequest>(kRoot));
    b.Getattr(calls.back().get(), FUSE_ROOT_ID, nullptr);
  }
  for (auto& c : calls) {
    ASSERT_TRUE(c->Wait(15s)) << "a call hung after the server stopped";
    EXPECT_EQ(c->kind, Kind::kError);
    EXPECT_EQ(c->error, EIO);
    EXPECT_EQ(c->replies(), 1);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 10.0);
  // Destroying the backend with the server gone must not hang either.
  backend->reset();
}

// A server that stops answering (frozen, not gone): calls fail with EIO once the timeout
// passes, and the backend reconnects and serves again once the server is back.
TEST(NfsBackendFailure, FrozenServerTimesOutThenRecovers) {
  if (!in_private_namespaces) GTEST_SKIP() << "needs root for namespaces: " << namespace_error;
  dpustor::testing::TempDir lab_dir("nfs-lab-freeze");
  dpustor::testing::TempDir export_dir("nfs-export-freeze");
  dpustor::testing::NfsLab lab(lab_dir.path());
  dpustor::testing::NfsLab::Options o;
  o.export_dir = export_dir.path();
  std::string error;
  ASSERT_TRUE(lab.Start(o, 30s, &error)) << error;
  auto url = ParseBackendUrl(lab.Url() + "&timeout=2&connections=1");
  ASSERT_TRUE(url);
  auto backend = OpenBackend(*url);
  ASSERT_TRUE(backend) << backend.error().message;
  Backend& b = **backend;
  ASSERT_EQ(Call([&](Request* q) { b.Getattr(q, FUSE_ROOT_ID, nullptr); })->kind, Kind::kAttr);

  pid_t ganesha = lab.ganesha_pid();
  ASSERT_GT(ganesha, 0);
  ASSERT_EQ(::kill(ganesha, SIGSTOP), 0);
  struct Resume {
    pid_t pid;
    ~Resume() { ::kill(pid, SIGCONT); }
  } resume{ganesha};
  // SIGSTOP takes effect asynchronously: a worker thread on the other core may still answer.
  // Wait until every thread of the server is stopped.
  ASSERT_TRUE(dpustor::testing::WaitFor(
      [&] {
        std::error_code ec;
        std::string tasks = "/proc/" + std::to_string(ganesha) + "/task";
        for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
          std::ifstream stat(t.path() / "stat");
          std::string pid, comm, state;
          stat >> pid >> comm >> state;
          if (state != "T") return false;
        }
        return !ec;
      },
      5s));
  auto t0 = std::chrono::steady_clock::now();
  auto frozen = Call([&](Request* q) { b.Getattr(q, FUSE_ROOT_ID, nullptr); });
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(frozen->kind, Kind::kError);
  EXPECT_EQ(frozen->error, EIO);
  EXPECT_GE(seconds, 1.5);
  EXPECT_LT(seconds, 6.0);

  ASSERT_EQ(::kill(ganesha, SIGCONT), 0);
  // The connection was reset; the next calls go over a new one.
  bool recovered = dpustor::testing::WaitFor(
      [&] {
        return Call([&](Request* q) { b.Getattr(q, FUSE_ROOT_ID, nullptr); })->kind == Kind::kAttr;
      },
      15s);
  EXPECT_TRUE(recovered);
}

TEST(NfsBackendOpen, RefusesVersion4AndUnreachableServers) {
  auto v4 = ParseBackendUrl("nfs://127.0.0.1/export?version=4");
  ASSERT_TRUE(v4);
  auto b4 = OpenBackend(*v4);
  ASSERT_FALSE(b4);
  EXPECT_NE(b4.error().message.find("version=4 is not supported"), std::string::npos);
  if (!in_private_namespaces) GTEST_SKIP() << namespace_error;
  // Nothing listens on this port in our private namespace.
  int port = dpustor::testing::FreePort();
  auto none = ParseBackendUrl("nfs://127.0.0.1/export?nfsport=" + std::to_string(port) +
                              "&mountport=" + std::to_string(port) + "&timeout=2");
  ASSERT_TRUE(none);
  auto bn = OpenBackend(*none);
  ASSERT_FALSE(bn);
  EXPECT_NE(bn.error().message.find("mount service"), std::string::npos) << bn.error().message;
}

// CephFS exported by Ganesha's FSAL_CEPH: the path JuiceFS/CephFS deployments take.
TEST(NfsBackendCephFs, GaneshaCephExport) {
  if (!in_private_namespaces) GTEST_SKIP() << "needs root for namespaces: " << namespace_error;
  dpustor::testing::TempDir dir("nfs-cephfs");
  dpustor::testing::CephLab ceph(dir / "ceph", /*cephfs=*/true);
  std::string error;
  // Stop with a long grace on every path: ceph.sh needs seconds to stop its daemons, and a
  // shorter kill of the script would orphan them.
  struct StopCeph {
    dpustor::testing::CephLab& lab;
    ~StopCeph() { lab.Stop(); }
  } stop_ceph{ceph};
  ASSERT_TRUE(ceph.Start(120s, &error)) << error;
  std::filesystem::create_directories(dir / "ganesha");
  dpustor::testing::NfsLab lab(dir / "ganesha");
  dpustor::testing::NfsLab::Options o;
  o.ceph_conf = ceph.conf();
  o.ceph_keyring = ceph.keyring();
  ASSERT_TRUE(lab.Start(o, 60s, &error)) << error;
  auto url = ParseBackendUrl(lab.Url() + "&timeout=20");
  ASSERT_TRUE(url);
  auto backend = OpenBackend(*url);
  ASSERT_TRUE(backend) << backend.error().message;
  Backend& b = **backend;
  b.Init();

  // CephFS' root is root's 0755: a user may not create there until root opens it up.
  FileInfo fi;
  fi.flags = O_CREAT | O_RDWR;
  auto denied = Call([&](Request* q) { b.Create(q, FUSE_ROOT_ID, "on-ceph", 0644, fi); }, kUser);
  EXPECT_EQ(denied->error, EACCES);
  SetattrArgs open_up;
  open_up.valid = FATTR_MODE;
  open_up.mode = 0777;
  auto sa = Call([&](Request* q) { b.Setattr(q, FUSE_ROOT_ID, open_up); });
  ASSERT_EQ(sa->kind, Kind::kAttr) << sa->error;
  EXPECT_EQ(sa->attr.st_mode & 07777, 0777u);
  auto cr = Call([&](Request* q) { b.Create(q, FUSE_ROOT_ID, "on-ceph", 0644, fi); }, kUser);
  ASSERT_EQ(cr->kind, Kind::kCreate) << cr->error;
  EXPECT_EQ(cr->entry.attr.st_uid, 1234u);
  fi.fh = cr->open.fh;
  std::string payload(100000, 'c');
  iovec v = Iov(payload);
  auto w = Call([&](Request* q) { b.Write(q, cr->entry.nodeid, {&v, 1}, 0, fi); }, kUser);
  ASSERT_EQ(w->kind, Kind::kWrite) << w->error;
  EXPECT_EQ(w->count, payload.size());
  EXPECT_EQ(Call([&](Request* q) { b.Fsync(q, cr->entry.nodeid, false, fi); }, kUser)->error, 0);
  auto rd = Call([&](Request* q) { b.Read(q, cr->entry.nodeid, payload.size(), 0, fi); }, kUser);
  ASSERT_EQ(rd->kind, Kind::kData);
  EXPECT_EQ(rd->data, payload);
  auto mk = Call([&](Request* q) { b.Mkdir(q, FUSE_ROOT_ID, "d", 0755); });
  ASSERT_EQ(mk->kind, Kind::kEntry) << mk->error;
  auto od = Call([&](Request* q) { b.Opendir(q, FUSE_ROOT_ID, {}); });
  FileInfo dfi;
  dfi.fh = od->open.fh;
  auto rdd = Call([&](Request* q) { b.Readdir(q, FUSE_ROOT_ID, 65536, 0, true, dfi); });
  ASSERT_EQ(rdd->kind, Kind::kDir) << rdd->error;
  std::set<std::string> names;
  for (const auto& item : rdd->dir) names.insert(item.name);
  EXPECT_TRUE(names.count("on-ceph") && names.count("d"));
  auto st = Call([&](Request* q) { b.Statfs(q, FUSE_ROOT_ID); });
  ASSERT_EQ(st->kind, Kind::kStatfs);
  EXPECT_GT(st->statfs.f_blocks, 0u);
  backend->reset();
  lab.Stop();
}

}  // namespace
}  // namespace dpustor::fs
