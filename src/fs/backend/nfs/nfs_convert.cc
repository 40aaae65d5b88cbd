// NFSv3 <-> FUSE value conversions (see nfs_convert.h).
#include "fs/backend/nfs/nfs_convert.h"

#include <dirent.h>
#include <sys/sysmacros.h>

#include <cerrno>

namespace dpustor::fs::nfs {

int StatusToErrno(int status) {
  switch (status) {
    case NFS3_OK:
      return 0;
    case NFS3ERR_PERM:
      return EPERM;
    case NFS3ERR_NOENT:
      return ENOENT;
    case NFS3ERR_IO:
      return EIO;
    case NFS3ERR_NXIO:
      return ENXIO;
    case NFS3ERR_ACCES:
      return EACCES;
    case NFS3ERR_EXIST:
      return EEXIST;
    case NFS3ERR_XDEV:
      return EXDEV;
    case NFS3ERR_NODEV:
      return ENODEV;
    case NFS3ERR_NOTDIR:
      return ENOTDIR;
    case NFS3ERR_ISDIR:
      return EISDIR;
    case NFS3ERR_INVAL:
      return EINVAL;
    case NFS3ERR_FBIG:
      return EFBIG;
    case NFS3ERR_NOSPC:
      return ENOSPC;
    case NFS3ERR_ROFS:
      return EROFS;
    case NFS3ERR_MLINK:
      return EMLINK;
    case NFS3ERR_NAMETOOLONG:
      return ENAMETOOLONG;
    case NFS3ERR_NOTEMPTY:
      return ENOTEMPTY;
    case NFS3ERR_DQUOT:
      return EDQUOT;
    case NFS3ERR_STALE:
    case NFS3ERR_BADHANDLE:  // a handle the server cannot decode: as gone as a stale one
      return ESTALE;
    case NFS3ERR_REMOTE:
      return EREMOTE;
    case NFS3ERR_NOT_SYNC:  // SETATTR guard mismatch; we never send a guard
      return EINVAL;
    case NFS3ERR_BAD_COOKIE:
      return EINVAL;
    case NFS3ERR_NOTSUPP:
      return EOPNOTSUPP;
    case NFS3ERR_TOOSMALL:  // a readdir entry larger than our maxcount
      return EOVERFLOW;
    case NFS3ERR_SERVERFAULT:
      return EIO;
    case NFS3ERR_BADTYPE:  // MKNOD of a type the server does not create
      return EOPNOTSUPP;
    case NFS3ERR_JUKEBOX:
      return EAGAIN;
    default:
      return EIO;
  }
}

mode_t FtypeToMode(int type) {
  switch (type) {
    case NF3REG:
      return S_IFREG;
    case NF3DIR:
      return S_IFDIR;
    case NF3BLK:
      return S_IFBLK;
    case NF3CHR:
      return S_IFCHR;
    case NF3LNK:
      return S_IFLNK;
    case NF3SOCK:
      return S_IFSOCK;
    case NF3FIFO:
      return S_IFIFO;
    default:
      return 0;
  }
}

uint32_t FtypeToDirType(int type) {
  mode_t mode = FtypeToMode(type);
  return mode == 0 ? uint32_t{DT_UNKNOWN} : uint32_t{IFTODT(mode)};
}

struct stat FattrToStat(const fattr3& a) {
  struct stat st = {};
  st.st_ino = a.fileid;
  st.st_mode = FtypeToMode(a.type) | (a.mode & 07777);
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blksize = 4096;
  st.st_blocks = static_cast<blkcnt_t>((a.used + 511) / 512);
  if (a.type == NF3BLK || a.type == NF3CHR)
    st.st_rdev = makedev(a.rdev.specdata1, a.rdev.specdata2);
  st.st_atim = {static_cast<time_t>(a.atime.seconds), static_cast<long>(a.atime.nseconds)};
  st.st_mtim = {static_cast<time_t>(a.mtime.seconds), static_cast<long>(a.mtime.nseconds)};
  st.st_ctim = {static_cast<time_t>(a.ctime.seconds), static_cast<long>(a.ctime.nseconds)};
  return st;
}

struct statvfs FsstatToStatvfs(const FSSTAT3resok& s, uint32_t bsize, uint32_t name_max) {
  struct statvfs v = {};
  if (bsize == 0) bsize = 4096;
  v.f_bsize = bsize;
  v.f_frsize = bsize;
  v.f_blocks = s.tbytes / bsize;
  v.f_bfree = s.fbytes / bsize;
  v.f_bavail = s.abytes / bsize;
  v.f_files = s.tfiles;
  v.f_ffree = s.ffiles;
  v.f_favail = s.afiles;
  v.f_namemax = name_max;
  return v;
}

namespace {

nfstime3 ToNfsTime(const timespec& t) {
  return {static_cast<u_int>(t.tv_sec), static_cast<u_int>(t.tv_nsec)};
}

}  // namespace

sattr3 SetattrToSattr(const SetattrArgs& a) {
  sattr3 s = {};
  if (a.valid & FATTR_MODE) {
    s.mode.set_it = 1;
    s.mode.set_mode3_u.mode = a.mode & 07777;
  }
  if (a.valid & FATTR_UID) {
    s.uid.set_it = 1;
    s.uid.set_uid3_u.uid = a.uid;
  }
  if (a.valid & FATTR_GID) {
    s.gid.set_it = 1;
    s.gid.set_gid3_u.gid = a.gid;
  }
  if (a.valid & FATTR_SIZE) {
    s.size.set_it = 1;
    s.size.set_size3_u.size = a.size;
  }
  if (a.valid & FATTR_ATIME_NOW) {
    s.atime.set_it = SET_TO_SERVER_TIME;
  } else if (a.valid & FATTR_ATIME) {
    s.atime.set_it = SET_TO_CLIENT_TIME;
    s.atime.set_atime_u.atime = ToNfsTime(a.atime);
  }
  if (a.valid & FATTR_MTIME_NOW) {
    s.mtime.set_it = SET_TO_SERVER_TIME;
  } else if (a.valid & FATTR_MTIME) {
    s.mtime.set_it = SET_TO_CLIENT_TIME;
    s.mtime.set_mtime_u.mtime = ToNfsTime(a.mtime);
  }
  return s;
}

sattr3 ModeOnlySattr(mode_t mode) {
  sattr3 s = {};
  s.mode.set_it = 1;
  s.mode.set_mode3_u.mode = mode & 07777;
  return s;
}

}  // namespace dpustor::fs::nfs
