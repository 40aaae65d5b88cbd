// NFSv3 -> FUSE conversions: status -> errno, fattr3 -> stat, setattr -> sattr3.
#include "fs/backend/nfs/nfs_convert.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace dpustor::fs::nfs {
namespace {

TEST(NfsStatusToErrno, EveryNfs3StatusHasItsErrno) {
  const std::vector<std::pair<int, int>> table = {
      {NFS3_OK, 0},
      {NFS3ERR_PERM, EPERM},
      {NFS3ERR_NOENT, ENOENT},
      {NFS3ERR_IO, EIO},
      {NFS3ERR_NXIO, ENXIO},
      {NFS3ERR_ACCES, EACCES},
      {NFS3ERR_EXIST, EEXIST},
      {NFS3ERR_XDEV, EXDEV},
      {NFS3ERR_NODEV, ENODEV},
      {NFS3ERR_NOTDIR, ENOTDIR},
      {NFS3ERR_ISDIR, EISDIR},
      {NFS3ERR_INVAL, EINVAL},
      {NFS3ERR_FBIG, EFBIG},
      {NFS3ERR_NOSPC, ENOSPC},
      {NFS3ERR_ROFS, EROFS},
      {NFS3ERR_MLINK, EMLINK},
      {NFS3ERR_NAMETOOLONG, ENAMETOOLONG},
      {NFS3ERR_NOTEMPTY, ENOTEMPTY},
      {NFS3ERR_DQUOT, EDQUOT},
      {NFS3ERR_STALE, ESTALE},
      {NFS3ERR_REMOTE, EREMOTE},
      {NFS3ERR_BADHANDLE, ESTALE},
      {NFS3ERR_NOT_SYNC, EINVAL},
      {NFS3ERR_BAD_COOKIE, EINVAL},
      {NFS3ERR_NOTSUPP, EOPNOTSUPP},
      {NFS3ERR_TOOSMALL, EOVERFLOW},
      {NFS3ERR_SERVERFAULT, EIO},
      {NFS3ERR_BADTYPE, EOPNOTSUPP},
      {NFS3ERR_JUKEBOX, EAGAIN},
  };
  for (auto [status, err] : table) EXPECT_EQ(StatusToErrno(status), err) << "status " << status;
}

TEST(NfsStatusToErrno, UnknownStatusIsEio) {
  EXPECT_EQ(StatusToErrno(12345), EIO);
  EXPECT_EQ(StatusToErrno(-1), EIO);
}

TEST(NfsFtype, MapsEveryTypeToModeAndDirType) {
  EXPECT_EQ(FtypeToMode(NF3REG), S_IFREG);
  EXPECT_EQ(FtypeToMode(NF3DIR), S_IFDIR);
  EXPECT_EQ(FtypeToMode(NF3BLK), S_IFBLK);
  EXPECT_EQ(FtypeToMode(NF3CHR), S_IFCHR);
  EXPECT_EQ(FtypeToMode(NF3LNK), S_IFLNK);
  EXPECT_EQ(FtypeToMode(NF3SOCK), S_IFSOCK);
  EXPECT_EQ(FtypeToMode(NF3FIFO), S_IFIFO);
  EXPECT_EQ(FtypeToMode(99), 0u);
  EXPECT_EQ(FtypeToDirType(NF3DIR), uint32_t{DT_DIR});
  EXPECT_EQ(FtypeToDirType(NF3LNK), uint32_t{DT_LNK});
  EXPECT_EQ(FtypeToDirType(99), uint32_t{DT_UNKNOWN});
}

TEST(NfsFattrToStat, CopiesEveryField) {
  fattr3 a = {};
  a.type = NF3CHR;
  a.mode = 04755;
  a.nlink = 3;
  a.uid = 1234;
  a.gid = 5678;
  a.size = 1ull << 40;
  a.used = 1000;
  a.rdev = {8, 17};
  a.fileid = 0xabcdef0123ull;
  a.atime = {100, 1};
  a.mtime = {200, 2};
  a.ctime = {300, 3};
  struct stat st = FattrToStat(a);
  EXPECT_EQ(st.st_ino, 0xabcdef0123ull);
  EXPECT_EQ(st.st_mode, S_IFCHR | 04755u);
  EXPECT_EQ(st.st_nlink, 3u);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  EXPECT_EQ(st.st_size, static_cast<off_t>(1ull << 40));
  EXPECT_EQ(st.st_blocks, 2);  // 1000 bytes used -> two 512-byte blocks
  EXPECT_EQ(major(st.st_rdev), 8u);
  EXPECT_EQ(minor(st.st_rdev), 17u);
  EXPECT_EQ(st.st_atim.tv_sec, 100);
  EXPECT_EQ(st.st_atim.tv_nsec, 1);
  EXPECT_EQ(st.st_mtim.tv_sec, 200);
  EXPECT_EQ(st.st_mtim.tv_nsec, 2);
  EXPECT_EQ(st.st_ctim.tv_sec, 300);
  EXPECT_EQ(st.st_ctim.tv_nsec, 3);
}

TEST(NfsFattrToStat, RegularFileHasNoRdevAndNoStrayModeBits) {
  fattr3 a = {};
  a.type = NF3REG;
  a.mode = 0170644;  // a server sending type bits in mode must not corrupt st_mode
  a.rdev = {1, 2};
  struct stat st = FattrToStat(a);
  EXPECT_EQ(st.st_mode, S_IFREG | 0644u);
  EXPECT_EQ(st.st_rdev, 0u);
}

TEST(NfsFsstat, ConvertsBytesToBlocks) {
  FSSTAT3resok s = {};
  s.tbytes = 4096 * 1000;
  s.fbytes = 4096 * 600;
  s.abytes = 4096 * 500;
  s.tfiles = 77;
  s.ffiles = 66;
  s.afiles = 55;
  struct statvfs v = FsstatToStatvfs(s, 4096, 255);
  EXPECT_EQ(v.f_bsize, 4096u);
  EXPECT_EQ(v.f_frsize, 4096u);
  EXPECT_EQ(v.f_blocks, 1000u);
  EXPECT_EQ(v.f_bfree, 600u);
  EXPECT_EQ(v.f_bavail, 500u);
  EXPECT_EQ(v.f_files, 77u);
  EXPECT_EQ(v.f_ffree, 66u);
  EXPECT_EQ(v.f_favail, 55u);
  EXPECT_EQ(v.f_namemax, 255u);
}

TEST(NfsSetattr, SetsOnlyTheValidFields) {
  SetattrArgs a;
  a.valid = FATTR_MODE | FATTR_SIZE;
  a.mode = S_IFREG | 0640;
  a.size = 42;
  a.uid = 7;
  sattr3 s = SetattrToSattr(a);
  EXPECT_TRUE(s.mode.set_it);
  EXPECT_EQ(s.mode.set_mode3_u.mode, 0640u);
  EXPECT_TRUE(s.size.set_it);
  EXPECT_EQ(s.size.set_size3_u.size, 42u);
  EXPECT_FALSE(s.uid.set_it);
  EXPECT_FALSE(s.gid.set_it);
  EXPECT_EQ(s.atime.set_it, DONT_CHANGE);
  EXPECT_EQ(s.mtime.set_it, DONT_CHANGE);
}

TEST(NfsSetattr, TimesNowUseServerTimeAndExplicitTimesAreSent) {
  SetattrArgs a;
  a.valid = FATTR_ATIME | FATTR_ATIME_NOW | FATTR_MTIME | FATTR_UID | FATTR_GID;
  a.mtime = {1700000000, 123};
  a.uid = 1234;
  a.gid = 4321;
  sattr3 s = SetattrToSattr(a);
  EXPECT_EQ(s.atime.set_it, SET_TO_SERVER_TIME);
  EXPECT_EQ(s.mtime.set_it, SET_TO_CLIENT_TIME);
  EXPECT_EQ(s.mtime.set_mtime_u.mtime.seconds, 1700000000u);
  EXPECT_EQ(s.mtime.set_mtime_u.mtime.nseconds, 123u);
  EXPECT_EQ(s.uid.set_uid3_u.uid, 1234u);
  EXPECT_EQ(s.gid.set_gid3_u.gid, 4321u);
}

TEST(NfsSetattr, ModeOnlySetsPermissionBits) {
  sattr3 s = ModeOnlySattr(S_IFDIR | 01777);
  EXPECT_TRUE(s.mode.set_it);
  EXPECT_EQ(s.mode.set_mode3_u.mode, 01777u);
  EXPECT_FALSE(s.size.set_it);
  EXPECT_FALSE(s.uid.set_it);
}

}  // namespace
}  // namespace dpustor::fs::nfs
