// Pure conversions between NFSv3 wire values and what FUSE wants: status -> errno,
// fattr3 -> struct stat, FUSE setattr/mode -> sattr3. Owned by the nfs backend; no state,
// callable from any thread.
#pragma once

// libnfs.h first: it defines what its raw headers need.
#include <nfsc/libnfs.h>

#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdint>

#include "fs/fuse/backend.h"

namespace dpustor::fs::nfs {

// The errno a FUSE client should see for an NFSv3 status. NFS3_OK -> 0. Statuses that are
// not errors of the operation itself (JUKEBOX: retry later; BAD_COOKIE: restart the listing)
// are handled by the caller before mapping, and map to EAGAIN / EINVAL if they leak here.
int StatusToErrno(int nfsstat3);

// S_IF* bits for an ftype3 (0 for an unknown type).
mode_t FtypeToMode(int ftype3);
// DT_* value for readdir of an ftype3 (DT_UNKNOWN for an unknown type).
uint32_t FtypeToDirType(int ftype3);

// struct stat from NFS attributes: st_ino is the fileid, st_blocks counts 512-byte units of
// `used`, st_rdev comes from specdata.
struct stat FattrToStat(const fattr3& a);

// statvfs from FSSTAT3: sizes in `bsize` units, files straight through.
struct statvfs FsstatToStatvfs(const FSSTAT3resok& s, uint32_t bsize, uint32_t name_max);

// The sattr3 for a FUSE setattr (FATTR_* mask in a.valid). Times "now" become
// SET_TO_SERVER_TIME, so a client clock skew never lands in the file.
sattr3 SetattrToSattr(const SetattrArgs& a);
// sattr3 that sets only the permission bits (create, mkdir, mknod, symlink).
sattr3 ModeOnlySattr(mode_t mode);

}  // namespace dpustor::fs::nfs
