// The memory backend through its Backend interface: namespace operations and their POSIX
// errors, data (sparse files, holes, fallocate, copy_file_range), xattrs, attributes,
// ownership, access checks and large directories.
#include "fs/backend/memory/memory_backend.h"

#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <chrono>
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

constexpr uint64_t kRoot = FUSE_ROOT_ID;

class MemoryBackendTest : public ::testing::Test {
 protected:
  MemoryBackendTest() { fs.Init(); }
  MemoryBackend fs;
  BackendDriver d{fs, Caller{0, 0, 1}};
};

TEST_F(MemoryBackendTest, CreateWriteReadGetattr) {
  auto [e, fh] = d.MustCreate(kRoot, "f", 0640);
  EXPECT_NE(e.nodeid, 0u);
  EXPECT_TRUE(S_ISREG(e.attr.st_mode));
  EXPECT_EQ(e.attr.st_mode & 07777, 0640u);
  d.MustWrite(e.nodeid, fh, "hello world", 0);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 100, 0), "hello world");
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 5, 6), "world");
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 5, 100), "");
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_size, 11);
  EXPECT_EQ(d.MustLookup(kRoot, "f").nodeid, e.nodeid);
  EXPECT_EQ(Err(d.Lookup(kRoot, "missing")), ENOENT);
  // A second create without O_EXCL opens the existing file; with O_EXCL it fails.
  EXPECT_EQ(d.Create(kRoot, "f", 0644, O_RDWR | O_CREAT)->kind, Kind::kCreate);
  EXPECT_EQ(Err(d.Create(kRoot, "f", 0644, O_RDWR | O_CREAT | O_EXCL)), EEXIST);
  EXPECT_EQ(Err(d.Release(e.nodeid, fh)), 0);
}

TEST_F(MemoryBackendTest, ForgedHandlesAreRefused) {
  testing::ExpectForgedHandlesRefused(d, FUSE_ROOT_ID, /*dir_handles=*/false);
}

TEST_F(MemoryBackendTest, WriteAcrossChunksAndOpenTrunc) {
  auto [e, fh] = d.MustCreate(kRoot, "big");
  std::string data(200 * 1024, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  d.MustWrite(e.nodeid, fh, data, 1000);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, data.size(), 1000), data);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 1000, 0), std::string(1000, '\0'));
  uint64_t fh2 = d.MustOpen(e.nodeid, O_WRONLY | O_TRUNC);
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_size, 0);
  d.Release(e.nodeid, fh2);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, MkdirReaddirRmdir) {
  Entry dir = d.MustMkdir(kRoot, "dir", 0750);
  EXPECT_TRUE(S_ISDIR(dir.attr.st_mode));
  EXPECT_EQ(dir.attr.st_nlink, 2u);
  EXPECT_EQ(d.MustGetattr(kRoot).st_nlink, 3u);
  d.MustCreate(dir.nodeid, "a");
  d.MustMkdir(dir.nodeid, "b");
  EXPECT_EQ(Err(d.Mkdir(dir.nodeid, "b")), EEXIST);
  Rec od = d.Opendir(dir.nodeid);
  ASSERT_EQ(od->kind, Kind::kOpen);
  std::vector<std::string> names;
  for (auto& item : d.ReadAll(dir.nodeid, od->open.fh, false)) names.push_back(item.name);
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "a", "b"}));
  EXPECT_EQ(Err(d.Rmdir(kRoot, "dir")), ENOTEMPTY);
  EXPECT_EQ(Err(d.Rmdir(dir.nodeid, "a")), ENOTDIR);
  EXPECT_EQ(Err(d.Unlink(dir.nodeid, "b")), EISDIR);
  EXPECT_EQ(Err(d.Unlink(dir.nodeid, "a")), 0);
  EXPECT_EQ(Err(d.Rmdir(dir.nodeid, "b")), 0);
  EXPECT_EQ(Err(d.Rmdir(kRoot, "dir")), 0);
  EXPECT_EQ(d.MustGetattr(kRoot).st_nlink, 2u);
  // The removed directory still has a node id; nothing new may appear in it.
  EXPECT_EQ(Err(d.Mkdir(dir.nodeid, "late")), ENOENT);
  EXPECT_EQ(Err(d.Opendir(d.MustCreate(kRoot, "file").first.nodeid)), ENOTDIR);
}

TEST_F(MemoryBackendTest, HardLinksShareTheNode) {
  auto [e, fh] = d.MustCreate(kRoot, "orig");
  d.MustWrite(e.nodeid, fh, "data", 0);
  Rec l = d.Link(e.nodeid, kRoot, "alias");
  ASSERT_EQ(l->kind, Kind::kEntry);
  EXPECT_EQ(l->entry.nodeid, e.nodeid);
  EXPECT_EQ(l->entry.attr.st_nlink, 2u);
  EXPECT_EQ(d.MustLookup(kRoot, "alias").nodeid, e.nodeid);
  EXPECT_EQ(Err(d.Link(e.nodeid, kRoot, "alias")), EEXIST);
  Entry dir = d.MustMkdir(kRoot, "d");
  EXPECT_EQ(Err(d.Link(dir.nodeid, kRoot, "dirlink")), EPERM);
  EXPECT_EQ(Err(d.Unlink(kRoot, "orig")), 0);
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_nlink, 1u);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 10, 0), "data");
  EXPECT_EQ(Err(d.Unlink(kRoot, "alias")), 0);
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_nlink, 0u);
  // An open but unlinked file keeps its data and cannot be linked back.
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 10, 0), "data");
  EXPECT_EQ(Err(d.Link(e.nodeid, kRoot, "again")), ENOENT);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, SymlinksAndSpecialFiles) {
  Rec s = d.Symlink("../../etc/passwd", kRoot, "link");
  ASSERT_EQ(s->kind, Kind::kEntry);
  EXPECT_TRUE(S_ISLNK(s->entry.attr.st_mode));
  EXPECT_EQ(s->entry.attr.st_size, 16);
  Rec rl = d.Readlink(s->entry.nodeid);
  ASSERT_EQ(rl->kind, Kind::kReadlink);
  EXPECT_EQ(rl->data, "../../etc/passwd");
  EXPECT_EQ(Err(d.Open(s->entry.nodeid)), ELOOP);
  EXPECT_EQ(Err(d.Lookup(s->entry.nodeid, "x")), ENOTDIR);

  Rec fifo = d.Mknod(kRoot, "fifo", S_IFIFO | 0600);
  ASSERT_EQ(fifo->kind, Kind::kEntry);
  EXPECT_TRUE(S_ISFIFO(fifo->entry.attr.st_mode));
  Rec chr = d.Mknod(kRoot, "null", S_IFCHR | 0666, makedev(1, 3));
  ASSERT_EQ(chr->kind, Kind::kEntry);
  EXPECT_TRUE(S_ISCHR(chr->entry.attr.st_mode));
  EXPECT_EQ(chr->entry.attr.st_rdev, makedev(1, 3));
  EXPECT_EQ(Err(d.Readlink(chr->entry.nodeid)), EINVAL);
  EXPECT_EQ(Err(d.Mknod(kRoot, "bad", S_IFDIR | 0755)), EINVAL);
  EXPECT_EQ(Err(d.Mknod(kRoot, "fifo", S_IFIFO | 0600)), EEXIST);
  EXPECT_EQ(Err(d.Mkdir(kRoot, std::string(256, 'n'))), ENAMETOOLONG);
}

TEST_F(MemoryBackendTest, RenameCases) {
  Entry a = d.MustMkdir(kRoot, "a");
  Entry b = d.MustMkdir(kRoot, "b");
  Entry sub = d.MustMkdir(a.nodeid, "sub");
  auto [f, fh] = d.MustCreate(kRoot, "f");
  auto [g, gh] = d.MustCreate(kRoot, "g");
  d.Release(f.nodeid, fh), d.Release(g.nodeid, gh);

  EXPECT_EQ(Err(d.Rename(kRoot, "nope", kRoot, "x")), ENOENT);
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "x", 0x80)), EINVAL);
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE | RENAME_EXCHANGE)), EINVAL);
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "g", RENAME_NOREPLACE)), EEXIST);
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "a")), EISDIR);
  EXPECT_EQ(Err(d.Rename(kRoot, "a", kRoot, "f")), ENOTDIR);
  EXPECT_EQ(Err(d.Rename(kRoot, "a", a.nodeid, "inside")), EINVAL);
  EXPECT_EQ(Err(d.Rename(kRoot, "a", sub.nodeid, "deeper")), EINVAL);
  EXPECT_EQ(Err(d.Rename(kRoot, "b", kRoot, "a")), ENOTEMPTY);
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "h", RENAME_EXCHANGE)), ENOENT);

  // Plain rename replaces a file; the replaced node loses its link.
  EXPECT_EQ(Err(d.Rename(kRoot, "f", kRoot, "g")), 0);
  EXPECT_EQ(Err(d.Lookup(kRoot, "f")), ENOENT);
  EXPECT_EQ(d.MustLookup(kRoot, "g").nodeid, f.nodeid);
  EXPECT_EQ(d.MustGetattr(g.nodeid).st_nlink, 0u);

  // Moving a directory across parents moves the ".." link count.
  EXPECT_EQ(Err(d.Rename(a.nodeid, "sub", b.nodeid, "sub2")), 0);
  EXPECT_EQ(d.MustGetattr(a.nodeid).st_nlink, 2u);
  EXPECT_EQ(d.MustGetattr(b.nodeid).st_nlink, 3u);
  // Renaming a directory over an empty one.
  d.MustMkdir(kRoot, "empty");
  EXPECT_EQ(Err(d.Rename(kRoot, "a", kRoot, "empty")), 0);
  EXPECT_EQ(d.MustLookup(kRoot, "empty").nodeid, a.nodeid);

  // Exchange a file and a directory in different parents.
  EXPECT_EQ(Err(d.Rename(kRoot, "g", b.nodeid, "sub2", RENAME_EXCHANGE)), 0);
  EXPECT_EQ(d.MustLookup(kRoot, "g").nodeid, sub.nodeid);
  EXPECT_EQ(d.MustLookup(b.nodeid, "sub2").nodeid, f.nodeid);
  EXPECT_EQ(d.MustGetattr(b.nodeid).st_nlink, 2u);
  // Exchanging a directory with something inside it would detach a subtree.
  d.MustCreate(sub.nodeid, "leaf");
  EXPECT_EQ(Err(d.Rename(kRoot, "g", sub.nodeid, "leaf", RENAME_EXCHANGE)), EINVAL);

  // Hard links of one inode: rename is a successful no-op, both names stay.
  ASSERT_EQ(d.Link(f.nodeid, kRoot, "f2")->kind, Kind::kEntry);
  EXPECT_EQ(Err(d.Rename(b.nodeid, "sub2", kRoot, "f2")), 0);
  EXPECT_EQ(d.MustLookup(b.nodeid, "sub2").nodeid, f.nodeid);
  EXPECT_EQ(d.MustLookup(kRoot, "f2").nodeid, f.nodeid);
}

TEST_F(MemoryBackendTest, SetattrModeOwnerSizeTimes) {
  auto [e, fh] = d.MustCreate(kRoot, "f");
  d.MustWrite(e.nodeid, fh, "0123456789", 0);
  timespec ctime0 = d.MustGetattr(e.nodeid).st_ctim;
  std::this_thread::sleep_for(std::chrono::milliseconds(5));

  SetattrArgs a;
  a.valid = FATTR_MODE | FATTR_UID | FATTR_GID;
  a.mode = 04711;
  a.uid = 1234;
  a.gid = 5678;
  Rec r = d.Setattr(e.nodeid, a);
  ASSERT_EQ(r->kind, Kind::kAttr);
  EXPECT_EQ(r->attr.st_mode, S_IFREG | 04711u);
  EXPECT_EQ(r->attr.st_uid, 1234u);
  EXPECT_EQ(r->attr.st_gid, 5678u);
  EXPECT_TRUE(r->attr.st_ctim.tv_sec > ctime0.tv_sec || (r->attr.st_ctim.tv_sec == ctime0.tv_sec &&
                                                         r->attr.st_ctim.tv_nsec > ctime0.tv_nsec));

  a = {};
  a.valid = FATTR_SIZE;
  a.size = 4;
  EXPECT_EQ(d.Setattr(e.nodeid, a)->attr.st_size, 4);
  a.size = 8;  // growing again reads zeros, not the old bytes
  d.Setattr(e.nodeid, a);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 100, 0), std::string("0123") + std::string(4, '\0'));

  a = {};
  a.valid = FATTR_ATIME | FATTR_MTIME;
  a.atime = {1000, 1};
  a.mtime = {2000, 2};
  r = d.Setattr(e.nodeid, a);
  EXPECT_EQ(r->attr.st_atim.tv_sec, 1000);
  EXPECT_EQ(r->attr.st_atim.tv_nsec, 1);
  EXPECT_EQ(r->attr.st_mtim.tv_sec, 2000);
  a.valid = FATTR_ATIME | FATTR_ATIME_NOW;
  r = d.Setattr(e.nodeid, a);
  EXPECT_GT(r->attr.st_atim.tv_sec, 1000000000);
  EXPECT_EQ(r->attr.st_mtim.tv_sec, 2000);

  Entry dir = d.MustMkdir(kRoot, "dir");
  a = {};
  a.valid = FATTR_SIZE;
  EXPECT_EQ(Err(d.Setattr(dir.nodeid, a)), EISDIR);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, OwnershipFollowsCallerAndSetgidDirectory) {
  d.set_caller({1000, 1000, 7});
  auto [e, fh] = d.MustCreate(kRoot, "mine");
  EXPECT_EQ(e.attr.st_uid, 1000u);
  EXPECT_EQ(e.attr.st_gid, 1000u);
  d.set_caller({0, 0, 1});
  Entry sg = d.MustMkdir(kRoot, "sg", 02775);
  SetattrArgs a;
  a.valid = FATTR_GID | FATTR_MODE;
  a.gid = 4242;
  a.mode = 02775;
  d.Setattr(sg.nodeid, a);
  d.set_caller({1000, 1000, 7});
  Entry sub = d.MustMkdir(sg.nodeid, "sub");
  EXPECT_EQ(sub.attr.st_uid, 1000u);
  EXPECT_EQ(sub.attr.st_gid, 4242u);
  EXPECT_TRUE(sub.attr.st_mode & S_ISGID);
  Rec f = d.Create(sg.nodeid, "file", 02755);
  ASSERT_EQ(f->kind, Kind::kCreate);
  EXPECT_EQ(f->entry.attr.st_gid, 4242u);
  EXPECT_FALSE(f->entry.attr.st_mode & S_ISGID);  // not a member of 4242
  d.Release(f->entry.nodeid, f->open.fh);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, AccessChecksModeBits) {
  auto [e, fh] = d.MustCreate(kRoot, "f", 0640);
  d.Release(e.nodeid, fh);
  SetattrArgs a;
  a.valid = FATTR_UID | FATTR_GID;
  a.uid = 1000;
  a.gid = 2000;
  d.Setattr(e.nodeid, a);
  d.set_caller({1000, 1, 1});  // owner: rw-
  EXPECT_EQ(Err(d.Access(e.nodeid, R_OK | W_OK)), 0);
  EXPECT_EQ(Err(d.Access(e.nodeid, X_OK)), EACCES);
  d.set_caller({3000, 2000, 1});  // group: r--
  EXPECT_EQ(Err(d.Access(e.nodeid, R_OK)), 0);
  EXPECT_EQ(Err(d.Access(e.nodeid, W_OK)), EACCES);
  d.set_caller({3000, 3000, 1});  // other: ---
  EXPECT_EQ(Err(d.Access(e.nodeid, R_OK)), EACCES);
  EXPECT_EQ(Err(d.Access(e.nodeid, F_OK)), 0);
  d.set_caller({0, 0, 1});  // root: rw always, x only if someone may execute
  EXPECT_EQ(Err(d.Access(e.nodeid, R_OK | W_OK)), 0);
  EXPECT_EQ(Err(d.Access(e.nodeid, X_OK)), EACCES);
  EXPECT_EQ(Err(d.Access(kRoot, X_OK)), 0);
}

TEST_F(MemoryBackendTest, Xattrs) {
  auto [e, fh] = d.MustCreate(kRoot, "f");
  d.Release(e.nodeid, fh);
  EXPECT_EQ(Err(d.Getxattr(e.nodeid, "user.a", 0)), ENODATA);
  EXPECT_EQ(Err(d.Setxattr(e.nodeid, "user.a", "value-a")), 0);
  EXPECT_EQ(Err(d.Setxattr(e.nodeid, "user.b", "")), 0);
  EXPECT_EQ(Err(d.Setxattr(e.nodeid, "user.a", "x", XATTR_CREATE)), EEXIST);
  EXPECT_EQ(Err(d.Setxattr(e.nodeid, "user.c", "x", XATTR_REPLACE)), ENODATA);
  EXPECT_EQ(Err(d.Setxattr(e.nodeid, "bogus.a", "x")), EOPNOTSUPP);
  Rec size = d.Getxattr(e.nodeid, "user.a", 0);
  ASSERT_EQ(size->kind, Kind::kXattrSize);
  EXPECT_EQ(size->count, 7u);
  EXPECT_EQ(Err(d.Getxattr(e.nodeid, "user.a", 3)), ERANGE);
  EXPECT_EQ(d.Getxattr(e.nodeid, "user.a", 100)->data, "value-a");
  Rec list_size = d.Listxattr(e.nodeid, 0);
  EXPECT_EQ(list_size->count, 14u);
  EXPECT_EQ(Err(d.Listxattr(e.nodeid, 5)), ERANGE);
  EXPECT_EQ(d.Listxattr(e.nodeid, 100)->data, std::string("user.a\0user.b\0", 14));
  EXPECT_EQ(Err(d.Removexattr(e.nodeid, "user.a")), 0);
  EXPECT_EQ(Err(d.Removexattr(e.nodeid, "user.a")), ENODATA);
  EXPECT_EQ(d.Listxattr(e.nodeid, 100)->data, std::string("user.b\0", 7));
  Rec s = d.Symlink("t", kRoot, "sym");
  EXPECT_EQ(Err(d.Setxattr(s->entry.nodeid, "user.a", "x")), EPERM);
  EXPECT_EQ(Err(d.Setxattr(s->entry.nodeid, "trusted.a", "x")), 0);
}

TEST_F(MemoryBackendTest, SparseFiveGibFileHolesAndSeek) {
  constexpr uint64_t kGiB = uint64_t{1} << 30;
  auto [e, fh] = d.MustCreate(kRoot, "sparse");
  SetattrArgs a;
  a.valid = FATTR_SIZE;
  a.size = 5 * kGiB;
  ASSERT_EQ(d.Setattr(e.nodeid, a)->attr.st_size, static_cast<off_t>(5 * kGiB));
  d.MustWrite(e.nodeid, fh, "middle", 4 * kGiB);
  struct stat st = d.MustGetattr(e.nodeid);
  EXPECT_EQ(st.st_size, static_cast<off_t>(5 * kGiB));
  EXPECT_LE(st.st_blocks * 512, 1 << 20);  // one chunk, not gigabytes
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 6, 4 * kGiB), "middle");
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 4, 2 * kGiB), std::string(4, '\0'));
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 100, 5 * kGiB - 2).size(), 2u);

  Rec data = d.Lseek(e.nodeid, fh, 0, SEEK_DATA);
  ASSERT_EQ(data->kind, Kind::kLseek);
  EXPECT_LE(data->offset, 4 * kGiB);
  EXPECT_GT(data->offset, 4 * kGiB - (1 << 20));
  Rec hole = d.Lseek(e.nodeid, fh, 4 * kGiB, SEEK_HOLE);
  EXPECT_GT(hole->offset, 4 * kGiB);
  EXPECT_LT(hole->offset, 5 * kGiB);
  EXPECT_EQ(d.Lseek(e.nodeid, fh, 0, SEEK_HOLE)->offset, 0u);
  EXPECT_EQ(Err(d.Lseek(e.nodeid, fh, 4 * kGiB + (1 << 20), SEEK_DATA)), ENXIO);
  EXPECT_EQ(Err(d.Lseek(e.nodeid, fh, 5 * kGiB, SEEK_HOLE)), ENXIO);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, FallocateModes) {
  auto [e, fh] = d.MustCreate(kRoot, "f");
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, 0, 0, 100000)), 0);
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_size, 100000);
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, FALLOC_FL_KEEP_SIZE, 100000, 100000)), 0);
  struct stat st = d.MustGetattr(e.nodeid);
  EXPECT_EQ(st.st_size, 100000);
  EXPECT_GE(st.st_blocks * 512, 200000);
  d.MustWrite(e.nodeid, fh, std::string(100000, 'x'), 0);
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, FALLOC_FL_PUNCH_HOLE, 10, 20)), EOPNOTSUPP);
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 20)), 0);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 40, 0),
            std::string(10, 'x') + std::string(20, '\0') + std::string(10, 'x'));
  EXPECT_EQ(d.MustGetattr(e.nodeid).st_size, 100000);
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, FALLOC_FL_COLLAPSE_RANGE, 0, 4096)), EOPNOTSUPP);
  EXPECT_EQ(Err(d.Fallocate(e.nodeid, fh, 0, 0, 0)), EINVAL);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, CopyFileRange) {
  auto [src, sfh] = d.MustCreate(kRoot, "src");
  auto [dst, dfh] = d.MustCreate(kRoot, "dst");
  std::string data(300000, 'q');
  data[0] = 'A', data[299999] = 'Z';
  d.MustWrite(src.nodeid, sfh, data, 0);
  Rec c = d.CopyFileRange(src.nodeid, sfh, 0, dst.nodeid, dfh, 10, 1 << 20);
  ASSERT_EQ(c->kind, Kind::kWrite);
  EXPECT_EQ(c->count, data.size());  // clamped at the end of the source
  EXPECT_EQ(d.MustGetattr(dst.nodeid).st_size, 300010);
  EXPECT_EQ(d.MustRead(dst.nodeid, dfh, 300010, 0), std::string(10, '\0') + data);
  EXPECT_EQ(d.CopyFileRange(src.nodeid, sfh, 400000, dst.nodeid, dfh, 0, 10)->count, 0u);
  EXPECT_EQ(Err(d.CopyFileRange(src.nodeid, sfh, 0, src.nodeid, sfh, 100, 1000)), EINVAL);
  d.Release(src.nodeid, sfh), d.Release(dst.nodeid, dfh);
}

TEST_F(MemoryBackendTest, StatfsReportsUsage) {
  Rec before = d.Statfs(kRoot);
  ASSERT_EQ(before->kind, Kind::kStatfs);
  EXPECT_GT(before->statfs.f_blocks, 0u);
  EXPECT_EQ(before->statfs.f_namemax, 255u);
  auto [e, fh] = d.MustCreate(kRoot, "f");
  d.MustWrite(e.nodeid, fh, std::string(1 << 20, 'x'), 0);
  Rec after = d.Statfs(kRoot);
  EXPECT_EQ(before->statfs.f_bfree - after->statfs.f_bfree, (1u << 20) / 4096);
  EXPECT_EQ(before->statfs.f_ffree - after->statfs.f_ffree, 1u);
  d.Release(e.nodeid, fh);
}

TEST_F(MemoryBackendTest, ReaddirTenThousandSmallReplies) {
  Entry dir = d.MustMkdir(kRoot, "dir");
  std::set<std::string> want;
  for (int i = 0; i < 10000; ++i) {
    std::string name = "entry-" + std::to_string(i);
    ASSERT_EQ(Err(d.Mknod(dir.nodeid, name, S_IFREG | 0644)), 0);
    want.insert(name);
    fs.Forget(d.MustLookup(dir.nodeid, name).nodeid, 2);  // mknod + lookup
  }
  for (bool plus : {false, true}) {
    std::set<std::string> got;
    for (auto& item : d.ReadAll(dir.nodeid, 0, plus, 512)) {
      if (item.name == "." || item.name == "..") continue;
      EXPECT_TRUE(got.insert(item.name).second) << "repeated " << item.name;
      if (plus) {
        EXPECT_NE(item.entry->nodeid, 0u);
      }
    }
    EXPECT_EQ(got, want);
  }
  // Every readdirplus lookup was forgotten again (ReadAll does it): root and dir remain.
  EXPECT_EQ(fs.known_nodes(), 2u);
}

TEST_F(MemoryBackendTest, ReaddirCookiesSurviveConcurrentUnlinks) {
  Entry dir = d.MustMkdir(kRoot, "dir");
  for (int i = 0; i < 100; ++i) d.Mknod(dir.nodeid, "e" + std::to_string(i), S_IFREG | 0644);
  Rec first = d.Readdir(dir.nodeid, 0, 0, false, 24 * 40);
  ASSERT_EQ(first->kind, Kind::kDir);
  std::set<std::string> seen;
  for (auto& item : first->dir) seen.insert(item.name);
  ASSERT_GT(seen.size(), 10u);
  ASSERT_LT(seen.size(), 90u);
  // Remove every other entry, seen or not, then continue from the last cookie.
  std::set<std::string> removed;
  for (int i = 0; i < 100; i += 2) {
    d.Unlink(dir.nodeid, "e" + std::to_string(i));
    removed.insert("e" + std::to_string(i));
  }
  uint64_t off = first->dir.back().next_offset;
  for (;;) {
    Rec r = d.Readdir(dir.nodeid, 0, off, false, 24 * 40);
    if (r->dir.empty()) break;
    for (auto& item : r->dir) {
      EXPECT_TRUE(seen.insert(item.name).second) << "repeated " << item.name;
      EXPECT_FALSE(removed.count(item.name)) << "removed but listed: " << item.name;
      off = item.next_offset;
    }
  }
  for (int i = 1; i < 100; i += 2) EXPECT_TRUE(seen.count("e" + std::to_string(i)));
}

TEST_F(MemoryBackendTest, HundredThousandEntriesInReasonableTime) {
  auto start = std::chrono::steady_clock::now();
  Entry dir = d.MustMkdir(kRoot, "big");
  for (int i = 0; i < 100000; ++i) {
    Rec r = d.Mknod(dir.nodeid, "file-" + std::to_string(i), S_IFREG | 0644);
    ASSERT_EQ(r->kind, Kind::kEntry);
    fs.Forget(r->entry.nodeid, 1);
  }
  for (int i = 0; i < 100000; i += 997) {
    Entry e = d.MustLookup(dir.nodeid, "file-" + std::to_string(i));
    fs.Forget(e.nodeid, 1);
  }
  size_t listed = d.ReadAll(dir.nodeid, 0, false, 32768).size();
  EXPECT_EQ(listed, 100002u);
  EXPECT_EQ(d.MustGetattr(dir.nodeid).st_size, 100000);
  for (int i = 0; i < 100000; i += 2)
    ASSERT_EQ(Err(d.Unlink(dir.nodeid, "file-" + std::to_string(i))), 0);
  EXPECT_EQ(d.ReadAll(dir.nodeid, 0, false, 32768).size(), 50002u);
  auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 20.0);
}

TEST_F(MemoryBackendTest, ForgetDropsNodesAndDestroyClears) {
  Entry dir = d.MustMkdir(kRoot, "d");
  EXPECT_EQ(d.MustLookup(kRoot, "d").nodeid, dir.nodeid);
  EXPECT_EQ(fs.known_nodes(), 2u);
  fs.Forget(dir.nodeid, 1);
  EXPECT_EQ(fs.known_nodes(), 2u);  // one lookup left
  fs.Forget(dir.nodeid, 1);
  EXPECT_EQ(fs.known_nodes(), 1u);
  EXPECT_EQ(Err(d.Getattr(dir.nodeid)), ESTALE);
  Entry again = d.MustLookup(kRoot, "d");
  EXPECT_NE(again.nodeid, dir.nodeid);  // node ids are never reused
  EXPECT_EQ(again.attr.st_ino, dir.attr.st_ino);
  fs.Destroy();
  EXPECT_EQ(fs.known_nodes(), 1u);
}

TEST_F(MemoryBackendTest, ConcurrentWritersAndRenamers) {
  Entry dir = d.MustMkdir(kRoot, "c");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      BackendDriver td(fs, Caller{0, 0, static_cast<uint32_t>(t)});
      for (int i = 0; i < 200; ++i) {
        std::string name = "t" + std::to_string(t) + "-" + std::to_string(i);
        auto [e, fh] = td.MustCreate(dir.nodeid, name);
        td.MustWrite(e.nodeid, fh, name, 0);
        td.Release(e.nodeid, fh);
        EXPECT_EQ(Err(td.Rename(dir.nodeid, name, kRoot, name + ".moved")), 0);
        EXPECT_EQ(Err(td.Unlink(kRoot, name + ".moved")), 0);
        fs.Forget(e.nodeid, 1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(d.ReadAll(dir.nodeid, 0, false).size(), 2u);
  EXPECT_EQ(d.ReadAll(kRoot, 0, false).size(), 3u);
}

TEST_F(MemoryBackendTest, OpenMemoryBackendParsesOptions) {
  BackendUrl url;
  url.scheme = "memory";
  url.query["timeout"] = "0.5";
  EXPECT_TRUE(OpenMemoryBackend(url).ok());
  url.query["timeout"] = "soon";
  EXPECT_FALSE(OpenMemoryBackend(url).ok());
  url.query.clear();
  url.query["color"] = "blue";
  EXPECT_FALSE(OpenMemoryBackend(url).ok());
  url.query.clear();
  url.scheme = "local";
  EXPECT_FALSE(OpenMemoryBackend(url).ok());
}

}  // namespace
}  // namespace dpustor::fs
