// The local backend through its Backend interface on a temporary host directory, in both
// inode modes (file handles, and one O_PATH descriptor per node): every operation, the
// confinement to the shared root (symlinks never followed, host-side renames racing
// lookups), caller ownership, locks, sparse files and descriptor use.
#include "fs/backend/local/local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/backend_driver.h"

namespace dpustor::fs {
namespace {

using testing::BackendDriver;
using testing::Err;
using testing::Kind;
using testing::Rec;
namespace stdfs = std::filesystem;

constexpr uint64_t kRoot = FUSE_ROOT_ID;

size_t OpenFdCount() {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : stdfs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

void WriteHostFile(const stdfs::path& p, const std::string& data) {
  std::ofstream(p, std::ios::binary) << data;
}

class LocalBackendTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/dpustor-local-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ / "root";
    outside_ = base_ / "outside";
    stdfs::create_directory(root_);
    stdfs::create_directory(outside_);
    chmod(root_.c_str(), 0777);  // callers other than root create here too
    chmod(base_.c_str(), 0755);
    LocalOptions options;
    options.root = root_.string();
    options.allow_handles = GetParam();
    auto made = LocalBackend::Make(options);
    ASSERT_TRUE(made.ok()) << made.error().message;
    fs_ = std::move(*made);
    fs_->Init();
    d_ = std::make_unique<BackendDriver>(*fs_, Caller{0, 0, 1});
  }
  void TearDown() override {
    d_.reset();
    fs_.reset();
    std::error_code ec;
    stdfs::remove_all(base_, ec);
  }

  stdfs::path base_, root_, outside_;
  std::unique_ptr<LocalBackend> fs_;
  std::unique_ptr<BackendDriver> d_;
};

TEST_P(LocalBackendTest, ModeIsWhatWasAsked) {
  if (!GetParam()) {
    EXPECT_FALSE(fs_->uses_handles());
  } else if (geteuid() == 0) {
    EXPECT_TRUE(fs_->uses_handles());  // root has CAP_DAC_READ_SEARCH; tmp dirs have handles
  }
}

TEST_P(LocalBackendTest, RefusesRootThatIsNotADirectory) {
  WriteHostFile(base_ / "plain", "x");
  LocalOptions options;
  options.root = (base_ / "plain").string();
  EXPECT_FALSE(LocalBackend::Make(options).ok());
  options.root = (base_ / "missing").string();
  EXPECT_FALSE(LocalBackend::Make(options).ok());
  BackendUrl url;
  url.scheme = "local";
  url.path = root_.string();
  url.query["cache"] = "always";
  url.query["handles"] = GetParam() ? "auto" : "off";
  EXPECT_TRUE(OpenLocalBackend(url).ok());
  url.query["cache"] = "sometimes";
  EXPECT_FALSE(OpenLocalBackend(url).ok());
}

TEST_P(LocalBackendTest, CreateWriteReadGetattrOnHost) {
  auto [e, fh] = d_->MustCreate(kRoot, "f", 0640);
  EXPECT_TRUE(S_ISREG(e.attr.st_mode));
  d_->MustWrite(e.nodeid, fh, "hello world", 0);
  EXPECT_EQ(d_->MustRead(e.nodeid, fh, 100, 0), "hello world");
  EXPECT_EQ(d_->MustRead(e.nodeid, fh, 5, 6), "world");
  EXPECT_EQ(d_->MustGetattr(e.nodeid).st_size, 11);
  FileInfo fi = BackendDriver::Fi(fh);
  EXPECT_EQ(d_->Getattr(e.nodeid, &fi)->attr.st_size, 11);
  EXPECT_EQ(Err(d_->Flush(e.nodeid, fh)), 0);
  EXPECT_EQ(Err(d_->Fsync(e.nodeid, fh, true)), 0);
  EXPECT_EQ(Err(d_->Fsync(e.nodeid, fh, false)), 0);
  EXPECT_EQ(Err(d_->Release(e.nodeid, fh)), 0);
  struct stat st;
  ASSERT_EQ(stat((root_ / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(d_->MustLookup(kRoot, "f").nodeid, e.nodeid);
  EXPECT_EQ(d_->MustLookup(kRoot, "f").attr.st_ino, st.st_ino);
  EXPECT_EQ(Err(d_->Lookup(kRoot, "missing")), ENOENT);
  EXPECT_EQ(Err(d_->Lookup(kRoot, "..")), EINVAL);
  EXPECT_EQ(Err(d_->Lookup(kRoot, "a/b")), EINVAL);
  EXPECT_EQ(Err(d_->Create(kRoot, "f", 0644, O_RDWR | O_CREAT | O_EXCL)), EEXIST);
  uint64_t fh2 = d_->MustOpen(e.nodeid, O_RDONLY);
  EXPECT_EQ(d_->MustRead(e.nodeid, fh2, 5, 0), "hello");
  d_->Release(e.nodeid, fh2);
}

TEST_P(LocalBackendTest, ForgedHandlesAreRefused) {
  ExpectForgedHandlesRefused(*d_, kRoot, /*dir_handles=*/true);
}

TEST_P(LocalBackendTest, NamespaceOperations) {
  Entry dir = d_->MustMkdir(kRoot, "dir", 0750);
  EXPECT_TRUE(S_ISDIR(dir.attr.st_mode));
  EXPECT_TRUE(stdfs::is_directory(root_ / "dir"));
  EXPECT_EQ(Err(d_->Mkdir(kRoot, "dir")), EEXIST);
  Rec fifo = d_->Mknod(dir.nodeid, "fifo", S_IFIFO | 0600);
  ASSERT_EQ(fifo->kind, Kind::kEntry);
  EXPECT_TRUE(S_ISFIFO(fifo->entry.attr.st_mode));
  EXPECT_TRUE(stdfs::is_fifo(root_ / "dir" / "fifo"));
  if (geteuid() == 0) {
    Rec chr = d_->Mknod(dir.nodeid, "null", S_IFCHR | 0666, makedev(1, 3));
    ASSERT_EQ(chr->kind, Kind::kEntry) << chr->error;
    EXPECT_EQ(chr->entry.attr.st_rdev, makedev(1, 3));
  }
  auto [f, fh] = d_->MustCreate(dir.nodeid, "file");
  d_->Release(f.nodeid, fh);
  EXPECT_EQ(Err(d_->Rmdir(kRoot, "dir")), ENOTEMPTY);
  EXPECT_EQ(Err(d_->Rmdir(dir.nodeid, "file")), ENOTDIR);
  EXPECT_EQ(Err(d_->Unlink(kRoot, "dir")), EISDIR);
  EXPECT_EQ(Err(d_->Unlink(dir.nodeid, "file")), 0);
  EXPECT_EQ(Err(d_->Unlink(dir.nodeid, "fifo")), 0);
  if (geteuid() == 0) d_->Unlink(dir.nodeid, "null");
  EXPECT_EQ(Err(d_->Rmdir(kRoot, "dir")), 0);
  EXPECT_FALSE(stdfs::exists(root_ / "dir"));
}

TEST_P(LocalBackendTest, HardLinksShareTheNode) {
  auto [e, fh] = d_->MustCreate(kRoot, "orig");
  d_->Release(e.nodeid, fh);
  Rec l = d_->Link(e.nodeid, kRoot, "alias");
  ASSERT_EQ(l->kind, Kind::kEntry) << l->error;
  EXPECT_EQ(l->entry.nodeid, e.nodeid);
  EXPECT_EQ(l->entry.attr.st_nlink, 2u);
  EXPECT_EQ(stdfs::hard_link_count(root_ / "orig"), 2u);
  EXPECT_EQ(Err(d_->Link(e.nodeid, kRoot, "alias")), EEXIST);
  if (geteuid() == 0) {
    // As a non-root caller the link goes through /proc (no CAP_DAC_READ_SEARCH then), and
    // the host's protected_hardlinks rules apply to the caller: their own file links.
    d_->set_caller({1000, 1000, 2});
    auto [mine, mh] = d_->MustCreate(kRoot, "mine");
    d_->Release(mine.nodeid, mh);
    Rec l2 = d_->Link(mine.nodeid, kRoot, "mine2");
    ASSERT_EQ(l2->kind, Kind::kEntry) << l2->error;
    EXPECT_EQ(l2->entry.nodeid, mine.nodeid);
    EXPECT_EQ(stdfs::hard_link_count(root_ / "mine"), 2u);
    d_->set_caller({0, 0, 1});
  }
  // A symlink node is linked as the symlink, never its target.
  Rec s = d_->Symlink("/etc/passwd", kRoot, "sym");
  Rec ls = d_->Link(s->entry.nodeid, kRoot, "sym2");
  ASSERT_EQ(ls->kind, Kind::kEntry) << ls->error;
  EXPECT_TRUE(stdfs::is_symlink(root_ / "sym2"));
  Entry dir = d_->MustMkdir(kRoot, "d");
  EXPECT_EQ(Err(d_->Link(dir.nodeid, kRoot, "dirlink")), EPERM);
}

TEST_P(LocalBackendTest, RenameCases) {
  Entry a = d_->MustMkdir(kRoot, "a");
  Entry b = d_->MustMkdir(kRoot, "b");
  d_->MustMkdir(a.nodeid, "sub");
  auto [f, fh] = d_->MustCreate(kRoot, "f");
  auto [g, gh] = d_->MustCreate(kRoot, "g");
  d_->Release(f.nodeid, fh), d_->Release(g.nodeid, gh);
  EXPECT_EQ(Err(d_->Rename(kRoot, "nope", kRoot, "x")), ENOENT);
  EXPECT_EQ(Err(d_->Rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE)), EEXIST);
  EXPECT_EQ(Err(d_->Rename(kRoot, "f", kRoot, "a")), EISDIR);
  EXPECT_EQ(Err(d_->Rename(kRoot, "a", kRoot, "f")), ENOTDIR);
  EXPECT_EQ(Err(d_->Rename(kRoot, "a", a.nodeid, "inside")), EINVAL);
  EXPECT_EQ(Err(d_->Rename(kRoot, "b", kRoot, "a")), ENOTEMPTY);
  EXPECT_EQ(Err(d_->Rename(kRoot, "f", kRoot, "h", RENAME_EXCHANGE)), ENOENT);
  EXPECT_EQ(Err(d_->Rename(kRoot, "f", kRoot, "..")), EINVAL);
  EXPECT_EQ(Err(d_->Rename(kRoot, "f", kRoot, "g")), 0);
  EXPECT_EQ(d_->MustLookup(kRoot, "g").nodeid, f.nodeid);
  EXPECT_EQ(Err(d_->Rename(kRoot, "g", b.nodeid, "moved")), 0);
  EXPECT_TRUE(stdfs::exists(root_ / "b" / "moved"));
  EXPECT_EQ(Err(d_->Rename(b.nodeid, "moved", kRoot, "a", RENAME_EXCHANGE)), 0);
  EXPECT_TRUE(stdfs::is_directory(root_ / "b" / "moved"));
  EXPECT_TRUE(stdfs::is_regular_file(root_ / "a"));
  EXPECT_EQ(d_->MustLookup(kRoot, "a").nodeid, f.nodeid);
}

TEST_P(LocalBackendTest, SetattrModeOwnerSizeTimes) {
  auto [e, fh] = d_->MustCreate(kRoot, "f");
  d_->MustWrite(e.nodeid, fh, "0123456789", 0);
  SetattrArgs a;
  a.valid = FATTR_MODE;
  a.mode = 0711;
  Rec r = d_->Setattr(e.nodeid, a);
  ASSERT_EQ(r->kind, Kind::kAttr) << r->error;
  EXPECT_EQ(r->attr.st_mode, S_IFREG | 0711u);
  a = {};
  a.valid = FATTR_SIZE;
  a.size = 4;
  EXPECT_EQ(d_->Setattr(e.nodeid, a)->attr.st_size, 4);  // through the path
  FileInfo fi = BackendDriver::Fi(fh);
  a.valid = FATTR_SIZE | FATTR_FH;
  a.size = 6;
  a.fi = &fi;
  EXPECT_EQ(d_->Setattr(e.nodeid, a)->attr.st_size, 6);  // through the open file
  a = {};
  a.valid = FATTR_ATIME | FATTR_MTIME;
  a.atime = {1000, 1};
  a.mtime = {2000, 2};
  r = d_->Setattr(e.nodeid, a);
  EXPECT_EQ(r->attr.st_atim.tv_sec, 1000);
  EXPECT_EQ(r->attr.st_mtim.tv_sec, 2000);
  EXPECT_EQ(r->attr.st_mtim.tv_nsec, 2);
  a.valid = FATTR_MTIME | FATTR_MTIME_NOW;
  r = d_->Setattr(e.nodeid, a);
  EXPECT_EQ(r->attr.st_atim.tv_sec, 1000);  // omitted
  EXPECT_GT(r->attr.st_mtim.tv_sec, 1000000000);
  if (geteuid() == 0) {
    a = {};
    a.valid = FATTR_UID | FATTR_GID;
    a.uid = 1234;
    a.gid = 5678;
    r = d_->Setattr(e.nodeid, a);
    EXPECT_EQ(r->attr.st_uid, 1234u);
    EXPECT_EQ(r->attr.st_gid, 5678u);
    struct stat st;
    stat((root_ / "f").c_str(), &st);
    EXPECT_EQ(st.st_uid, 1234u);
  }
  Entry dir = d_->MustMkdir(kRoot, "dir");
  a = {};
  a.valid = FATTR_SIZE;
  EXPECT_EQ(Err(d_->Setattr(dir.nodeid, a)), EISDIR);
  d_->Release(e.nodeid, fh);
}

TEST_P(LocalBackendTest, SymlinksAreNeverFollowed) {
  WriteHostFile(outside_ / "secret", "outside data");
  for (const char* target : {"/etc", "../..", "../outside/secret"}) {
    SCOPED_TRACE(target);
    std::string name = std::string("link-") + std::to_string(std::hash<std::string>{}(target));
    Rec s = d_->Symlink(target, kRoot, name);
    ASSERT_EQ(s->kind, Kind::kEntry) << s->error;
    Entry e = d_->MustLookup(kRoot, name);
    EXPECT_EQ(e.nodeid, s->entry.nodeid);
    EXPECT_TRUE(S_ISLNK(e.attr.st_mode));
    EXPECT_TRUE(S_ISLNK(d_->MustGetattr(e.nodeid).st_mode));
    EXPECT_EQ(d_->Readlink(e.nodeid)->data, target);
    EXPECT_EQ(Err(d_->Open(e.nodeid, O_RDONLY)), ELOOP);
    EXPECT_EQ(Err(d_->Opendir(e.nodeid)), ENOTDIR);
    EXPECT_EQ(Err(d_->Lookup(e.nodeid, "passwd")), ENOTDIR);
    EXPECT_EQ(Err(d_->Lookup(e.nodeid, "secret")), ENOTDIR);
    // Creating "through" it fails instead of landing outside.
    EXPECT_EQ(Err(d_->Create(e.nodeid, "planted")), ENOTDIR);
    EXPECT_EQ(Err(d_->Create(kRoot, name, 0644, O_RDWR | O_CREAT)), ELOOP);
  }
  EXPECT_FALSE(stdfs::exists(outside_ / "planted"));
  std::string secret;
  std::getline(std::ifstream(outside_ / "secret"), secret);
  EXPECT_EQ(secret, "outside data");
  // A symlink the host put there is no different.
  stdfs::create_directory_symlink(outside_, root_ / "hostlink");
  Entry h = d_->MustLookup(kRoot, "hostlink");
  EXPECT_TRUE(S_ISLNK(h.attr.st_mode));
  EXPECT_EQ(Err(d_->Lookup(h.nodeid, "secret")), ENOTDIR);
  // Xattrs of a symlink node are the symlink's: user.* is refused by the host, not followed.
  EXPECT_EQ(Err(d_->Setxattr(h.nodeid, "user.x", "1")), EPERM);
}

TEST_P(LocalBackendTest, NodeMovedOutsideKeepsWorkingButIsNotReachableByName) {
  stdfs::create_directories(root_ / "d");
  WriteHostFile(root_ / "d" / "f", "in d");
  Entry d = d_->MustLookup(kRoot, "d");
  stdfs::rename(root_ / "d", outside_ / "d");  // the host moves it out
  // The node still works through its handle / descriptor (as virtiofsd's do)...
  EXPECT_TRUE(S_ISDIR(d_->MustGetattr(d.nodeid).st_mode));
  Entry f = d_->MustLookup(d.nodeid, "f");
  uint64_t fh = d_->MustOpen(f.nodeid, O_RDONLY);
  EXPECT_EQ(d_->MustRead(f.nodeid, fh, 100, 0), "in d");
  d_->Release(f.nodeid, fh);
  // ...but nothing outside is reachable by name from the root.
  EXPECT_EQ(Err(d_->Lookup(kRoot, "d")), ENOENT);
  EXPECT_EQ(Err(d_->Lookup(kRoot, "outside")), ENOENT);
  // The host replaces it with a symlink to where it went: still only a symlink.
  stdfs::create_directory_symlink("../outside/d", root_ / "d");
  Entry l = d_->MustLookup(kRoot, "d");
  EXPECT_TRUE(S_ISLNK(l.attr.st_mode));
  EXPECT_EQ(Err(d_->Lookup(l.nodeid, "f")), ENOTDIR);
}

TEST_P(LocalBackendTest, HostRenamesRacingLookupsNeverReachOutside) {
  // outside/x holds the secret; root/a/x is moved out and back, or replaced by a symlink
  // to the outside, while lookups walk root -> a -> x -> name.
  stdfs::create_directories(root_ / "a" / "x");
  WriteHostFile(root_ / "a" / "x" / "inside", "ok");
  stdfs::create_directories(outside_ / "secretdir");
  WriteHostFile(outside_ / "secretdir" / "secret", "no");
  std::atomic<bool> stop{false};
  std::thread mover([&] {
    std::error_code ec;
    for (int i = 0; !stop; ++i) {
      if (i % 2 == 0) {
        stdfs::rename(root_ / "a" / "x", outside_ / "x", ec);
        stdfs::create_directory_symlink("../../outside/secretdir", root_ / "a" / "x", ec);
        stdfs::remove(root_ / "a" / "x", ec);
        stdfs::rename(outside_ / "x", root_ / "a" / "x", ec);
      } else {
        stdfs::rename(root_ / "a", outside_ / "a", ec);
        stdfs::rename(outside_ / "a", root_ / "a", ec);
      }
      // A short pause now and then leaves windows where the tree is whole, so the
      // lookups also take the path that succeeds (a busy mover on its own core can
      // otherwise keep every walk in a half-moved state).
      if (i % 16 == 15) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  int reached = 0;
  // At least 2000 walks, and on until one reached the real directory (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int i = 0; i < 2000 || (reached == 0 && std::chrono::steady_clock::now() < deadline); ++i) {
    Rec a = d_->Lookup(kRoot, "a");
    if (a->kind != Kind::kEntry) continue;
    Rec x = d_->Lookup(a->entry.nodeid, "x");
    if (x->kind == Kind::kEntry) {
      EXPECT_EQ(Err(d_->Lookup(x->entry.nodeid, "secret")),
                S_ISLNK(x->entry.attr.st_mode) ? ENOTDIR : ENOENT);
      if (S_ISLNK(x->entry.attr.st_mode)) {
        EXPECT_EQ(Err(d_->Open(x->entry.nodeid, O_RDONLY)), ELOOP);
      } else {
        ++reached;
      }
      fs_->Forget(x->entry.nodeid, 1);
    }
    fs_->Forget(a->entry.nodeid, 1);
  }
  stop = true;
  mover.join();
  EXPECT_GT(reached, 0);
}

TEST_P(LocalBackendTest, ReaddirTenThousandSmallReplies) {
  stdfs::create_directory(root_ / "big");
  std::set<std::string> want;
  for (int i = 0; i < 10000; ++i) {
    std::string name = "entry-" + std::to_string(i);
    int fd = open((root_ / "big" / name).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
    want.insert(name);
  }
  Entry dir = d_->MustLookup(kRoot, "big");
  for (bool plus : {false, true}) {
    Rec od = d_->Opendir(dir.nodeid);
    ASSERT_EQ(od->kind, Kind::kOpen);
    std::set<std::string> got;
    for (auto& item : d_->ReadAll(dir.nodeid, od->open.fh, plus, 512)) {
      if (item.name == "." || item.name == "..") {
        if (plus) {
          EXPECT_EQ(item.entry->nodeid, 0u);
        }
        continue;
      }
      EXPECT_TRUE(got.insert(item.name).second) << "repeated " << item.name;
      if (plus) {
        EXPECT_NE(item.entry->nodeid, 0u);
        EXPECT_TRUE(S_ISREG(item.entry->attr.st_mode));
      }
    }
    EXPECT_EQ(got, want);
    d_->Releasedir(dir.nodeid, od->open.fh);
  }
  // Every readdirplus lookup was forgotten (ReadAll forgets what it received; the backend
  // forgot what did not fit): only the root and "big" are known.
  EXPECT_EQ(fs_->known_nodes(), 2u);
}

TEST_P(LocalBackendTest, SparseFiveGibFileAndSeekDataHole) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  auto [e, fh] = d_->MustCreate(kRoot, "sparse");
  SetattrArgs a;
  a.valid = FATTR_SIZE;
  a.size = 5 * kGiB;
  ASSERT_EQ(d_->Setattr(e.nodeid, a)->attr.st_size, static_cast<off_t>(5 * kGiB));
  d_->MustWrite(e.nodeid, fh, "middle", 4 * kGiB);
  struct stat st = d_->MustGetattr(e.nodeid);
  EXPECT_EQ(st.st_size, static_cast<off_t>(5 * kGiB));
  EXPECT_LE(st.st_blocks * 512, 1 << 20);
  EXPECT_EQ(d_->MustRead(e.nodeid, fh, 6, 4 * kGiB), "middle");
  EXPECT_EQ(d_->MustRead(e.nodeid, fh, 4, 2 * kGiB), std::string(4, '\0'));
  Rec data = d_->Lseek(e.nodeid, fh, 0, SEEK_DATA);
  ASSERT_EQ(data->kind, Kind::kLseek) << data->error;
  EXPECT_LE(data->offset, 4 * kGiB);
  EXPECT_GT(data->offset, 4 * kGiB - (1 << 20));
  Rec hole = d_->Lseek(e.nodeid, fh, 4 * kGiB, SEEK_HOLE);
  EXPECT_GT(hole->offset, 4 * kGiB);
  EXPECT_LT(hole->offset, 5 * kGiB);
  EXPECT_EQ(Err(d_->Lseek(e.nodeid, fh, 5 * kGiB, SEEK_DATA)), ENXIO);
  d_->Release(e.nodeid, fh);
}

TEST_P(LocalBackendTest, FallocateAndCopyFileRange) {
  auto [src, sfh] = d_->MustCreate(kRoot, "src");
  auto [dst, dfh] = d_->MustCreate(kRoot, "dst");
  EXPECT_EQ(Err(d_->Fallocate(src.nodeid, sfh, 0, 0, 100000)), 0);
  EXPECT_EQ(d_->MustGetattr(src.nodeid).st_size, 100000);
  d_->MustWrite(src.nodeid, sfh, std::string(100000, 'x'), 0);
  EXPECT_EQ(
      Err(d_->Fallocate(src.nodeid, sfh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192, 8192)),
      0);
  EXPECT_EQ(d_->MustRead(src.nodeid, sfh, 4, 8192), std::string(4, '\0'));
  EXPECT_EQ(Err(d_->Fallocate(src.nodeid, sfh, FALLOC_FL_PUNCH_HOLE, 0, 10)), EOPNOTSUPP);
  Rec c = d_->CopyFileRange(src.nodeid, sfh, 0, dst.nodeid, dfh, 10, 1 << 20);
  ASSERT_EQ(c->kind, Kind::kWrite) << c->error;
  EXPECT_EQ(c->count, 100000u);
  EXPECT_EQ(d_->MustRead(dst.nodeid, dfh, 20, 0), std::string(10, '\0') + std::string(10, 'x'));
  EXPECT_EQ(d_->MustGetattr(dst.nodeid).st_size, 100010);
  d_->Release(src.nodeid, sfh), d_->Release(dst.nodeid, dfh);
}

TEST_P(LocalBackendTest, XattrsAndStatfsAndAccess) {
  auto [e, fh] = d_->MustCreate(kRoot, "f", 0640);
  d_->Release(e.nodeid, fh);
  Rec probe = d_->Setxattr(e.nodeid, "user.a", "value-a");
  if (Err(probe) == EOPNOTSUPP) GTEST_SKIP() << "no user xattrs on this file system";
  ASSERT_EQ(Err(probe), 0);
  EXPECT_EQ(Err(d_->Setxattr(e.nodeid, "user.a", "x", XATTR_CREATE)), EEXIST);
  EXPECT_EQ(Err(d_->Setxattr(e.nodeid, "user.c", "x", XATTR_REPLACE)), ENODATA);
  Rec size = d_->Getxattr(e.nodeid, "user.a", 0);
  ASSERT_EQ(size->kind, Kind::kXattrSize);
  EXPECT_EQ(size->count, 7u);
  EXPECT_EQ(Err(d_->Getxattr(e.nodeid, "user.a", 3)), ERANGE);
  EXPECT_EQ(d_->Getxattr(e.nodeid, "user.a", 100)->data, "value-a");
  EXPECT_EQ(Err(d_->Getxattr(e.nodeid, "user.none", 100)), ENODATA);
  std::string list = d_->Listxattr(e.nodeid, 1000)->data;
  EXPECT_NE(list.find(std::string("user.a\0", 7)), std::string::npos);
  EXPECT_EQ(d_->Listxattr(e.nodeid, 0)->count, list.size());
  EXPECT_EQ(Err(d_->Listxattr(e.nodeid, 1)), ERANGE);
  char host[32] = {};
  EXPECT_EQ(getxattr((root_ / "f").c_str(), "user.a", host, sizeof(host)), 7);
  EXPECT_EQ(Err(d_->Removexattr(e.nodeid, "user.a")), 0);
  EXPECT_EQ(Err(d_->Removexattr(e.nodeid, "user.a")), ENODATA);
  d_->set_caller({1000, 1000, 2});
  EXPECT_EQ(Err(d_->Setxattr(e.nodeid, "trusted.a", "x")), EPERM);

  Rec sfs = d_->Statfs(kRoot);
  ASSERT_EQ(sfs->kind, Kind::kStatfs);
  EXPECT_GT(sfs->statfs.f_blocks, 0u);

  if (geteuid() != 0) return;
  chown((root_ / "f").c_str(), 1000, 2000);  // rw- r-- ---
  EXPECT_EQ(Err(d_->Access(e.nodeid, R_OK | W_OK)), 0);
  EXPECT_EQ(Err(d_->Access(e.nodeid, X_OK)), EACCES);
  d_->set_caller({3000, 2000, 2});
  EXPECT_EQ(Err(d_->Access(e.nodeid, R_OK)), 0);
  EXPECT_EQ(Err(d_->Access(e.nodeid, W_OK)), EACCES);
  d_->set_caller({3000, 3000, 2});
  EXPECT_EQ(Err(d_->Access(e.nodeid, R_OK)), EACCES);
  d_->set_caller({0, 0, 1});
  EXPECT_EQ(Err(d_->Access(e.nodeid, R_OK | W_OK)), 0);
}

TEST_P(LocalBackendTest, NewObjectsBelongToTheCaller) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to create as another user";
  d_->set_caller({1000, 1000, 2});
  auto [f, fh] = d_->MustCreate(kRoot, "file");
  d_->Release(f.nodeid, fh);
  d_->MustMkdir(kRoot, "dir");
  ASSERT_EQ(Err(d_->Mknod(kRoot, "fifo", S_IFIFO | 0600)), 0);
  ASSERT_EQ(Err(d_->Symlink("target", kRoot, "sym")), 0);
  for (const char* name : {"file", "dir", "fifo", "sym"}) {
    struct stat st;
    ASSERT_EQ(lstat((root_ / name).c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_uid, 1000u) << name;
    EXPECT_EQ(st.st_gid, 1000u) << name;
  }
  // Not root: no device nodes (the host says so), and the thread is root again afterwards.
  EXPECT_EQ(Err(d_->Mknod(kRoot, "null", S_IFCHR | 0666, makedev(1, 3))), EPERM);
  d_->set_caller({0, 0, 1});
  auto [r, rh] = d_->MustCreate(kRoot, "rootfile");
  d_->Release(r.nodeid, rh);
  struct stat st;
  lstat((root_ / "rootfile").c_str(), &st);
  EXPECT_EQ(st.st_uid, 0u);
  // A setgid directory hands down its group.
  stdfs::create_directory(root_ / "sg");
  chown((root_ / "sg").c_str(), 0, 4242);
  chmod((root_ / "sg").c_str(), 02777);
  Entry sg = d_->MustLookup(kRoot, "sg");
  d_->set_caller({1000, 1000, 2});
  Entry sub = d_->MustMkdir(sg.nodeid, "sub");
  EXPECT_EQ(sub.attr.st_uid, 1000u);
  EXPECT_EQ(sub.attr.st_gid, 4242u);
  EXPECT_TRUE(sub.attr.st_mode & S_ISGID);
}

TEST_P(LocalBackendTest, PosixLocks) {
  auto [e, fh1] = d_->MustCreate(kRoot, "locked");
  uint64_t fh2 = d_->MustOpen(e.nodeid, O_RDWR);
  auto call_setlk = [&](Request* r, uint64_t fh, uint32_t type, bool sleep) {
    fuse_file_lock lk{0, 99, type, 0};
    fs_->Setlk(r, e.nodeid, BackendDriver::Fi(fh), lk, sleep);
  };
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh1, F_WRLCK, false); })), 0);
  Rec got = d_->Run([&](Request* r) {
    fs_->Getlk(r, e.nodeid, BackendDriver::Fi(fh2), fuse_file_lock{10, 20, F_WRLCK, 0});
  });
  ASSERT_EQ(got->kind, Kind::kLock) << got->error;
  EXPECT_EQ(got->lock.type, static_cast<uint32_t>(F_WRLCK));
  EXPECT_EQ(got->lock.start, 0u);
  EXPECT_EQ(got->lock.end, 99u);
  Rec free_range = d_->Run([&](Request* r) {
    fs_->Getlk(r, e.nodeid, BackendDriver::Fi(fh2), fuse_file_lock{100, 200, F_WRLCK, 0});
  });
  EXPECT_EQ(free_range->lock.type, static_cast<uint32_t>(F_UNLCK));
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh2, F_WRLCK, false); })), EAGAIN);

  // A blocking request waits, without holding this thread, until the holder unlocks.
  testing::RecordingRequest waiting(Caller{0, 0, 3});
  call_setlk(&waiting, fh2, F_WRLCK, true);
  EXPECT_FALSE(waiting.Wait(std::chrono::milliseconds(100)));
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh1, F_UNLCK, false); })), 0);
  ASSERT_TRUE(waiting.Wait(std::chrono::seconds(5)));
  EXPECT_EQ(waiting.kind, Kind::kError);
  EXPECT_EQ(waiting.error, 0);
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh1, F_WRLCK, false); })), EAGAIN);

  // An interrupted wait ends with EINTR.
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh2, F_UNLCK, false); })), 0);
  EXPECT_EQ(Err(d_->Run([&](Request* r) { call_setlk(r, fh1, F_WRLCK, false); })), 0);
  testing::RecordingRequest interrupted(Caller{0, 0, 3});
  call_setlk(&interrupted, fh2, F_RDLCK, true);
  EXPECT_FALSE(interrupted.Wait(std::chrono::milliseconds(50)));
  interrupted.set_interrupted();
  ASSERT_TRUE(interrupted.Wait(std::chrono::seconds(5)));
  EXPECT_EQ(interrupted.error, EINTR);
  EXPECT_EQ(interrupted.replies(), 1);
  d_->Release(e.nodeid, fh1), d_->Release(e.nodeid, fh2);
}

TEST_P(LocalBackendTest, FlockLocks) {
  auto [e, fh1] = d_->MustCreate(kRoot, "flocked");
  uint64_t fh2 = d_->MustOpen(e.nodeid, O_RDWR);
  auto flock_call = [&](uint64_t fh, int op) {
    return d_->Run([&](Request* r) { fs_->Flock(r, e.nodeid, BackendDriver::Fi(fh), op); });
  };
  EXPECT_EQ(Err(flock_call(fh1, LOCK_EX)), 0);
  EXPECT_EQ(Err(flock_call(fh2, LOCK_SH | LOCK_NB)), EWOULDBLOCK);
  testing::RecordingRequest waiting(Caller{0, 0, 3});
  fs_->Flock(&waiting, e.nodeid, BackendDriver::Fi(fh2), LOCK_SH);
  EXPECT_FALSE(waiting.Wait(std::chrono::milliseconds(50)));
  EXPECT_EQ(Err(flock_call(fh1, LOCK_UN)), 0);
  ASSERT_TRUE(waiting.Wait(std::chrono::seconds(5)));
  EXPECT_EQ(waiting.error, 0);
  int other = open((root_ / "flocked").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_NE(flock(other, LOCK_EX | LOCK_NB), 0);  // the shared lock is really held on the host
  close(other);
  d_->Release(e.nodeid, fh1), d_->Release(e.nodeid, fh2);
}

TEST_P(LocalBackendTest, DescriptorsStayFewWithHandles) {
  if (!fs_->uses_handles()) GTEST_SKIP() << "descriptor mode keeps one fd per node by design";
  stdfs::create_directory(root_ / "many");
  for (int i = 0; i < 5000; ++i) {
    int fd =
        open((root_ / "many" / std::to_string(i)).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    close(fd);
  }
  Entry dir = d_->MustLookup(kRoot, "many");
  size_t before = OpenFdCount();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 5000; ++i)
    ids.push_back(d_->MustLookup(dir.nodeid, std::to_string(i)).nodeid);
  EXPECT_EQ(fs_->known_nodes(), 5002u);
  EXPECT_LT(OpenFdCount(), before + 10);
  // And the nodes still work. Nodes in use keep a descriptor (saves two system calls per
  // operation) within a budget of a quarter of RLIMIT_NOFILE; forgetting them closes it.
  EXPECT_TRUE(S_ISREG(d_->MustGetattr(ids[4321]).st_mode));
  for (uint64_t id : ids) d_->MustGetattr(id);
  rlimit rl{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
  EXPECT_LE(OpenFdCount(), before + 10 + std::min<size_t>(5000, rl.rlim_cur / 4));
  for (uint64_t id : ids) fs_->Forget(id, 1);
  EXPECT_EQ(fs_->known_nodes(), 2u);
  EXPECT_LT(OpenFdCount(), before + 10);
}

TEST_P(LocalBackendTest, ForgetAndDestroy) {
  Entry dir = d_->MustMkdir(kRoot, "d");
  EXPECT_EQ(d_->MustLookup(kRoot, "d").nodeid, dir.nodeid);
  fs_->Forget(dir.nodeid, 2);
  EXPECT_EQ(Err(d_->Getattr(dir.nodeid)), ESTALE);
  d_->MustLookup(kRoot, "d");
  fs_->Destroy();
  EXPECT_EQ(fs_->known_nodes(), 1u);
  EXPECT_TRUE(S_ISDIR(d_->MustGetattr(kRoot).st_mode));
}

INSTANTIATE_TEST_SUITE_P(Modes, LocalBackendTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Handles") : std::string("Fds");
                         });

}  // namespace
}  // namespace dpustor::fs
