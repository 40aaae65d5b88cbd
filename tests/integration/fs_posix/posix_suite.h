// The project's POSIX behaviour suite: test cases written against a directory with plain
// syscalls, so the same expectations run on a native Linux directory (proving they match
// Linux itself) and on dpustor-fsd FUSE mounts of every backend (fs_posix_test.cc).
// Each case is a GoogleTest body (EXPECT/ASSERT) working in a fresh, empty directory of
// mode 0777 owned by root. Non-root checks fork children that become uid/gid 1000 or 1001.
// What a setup cannot do is declared once in its Capabilities; a relaxed expectation
// always prints which one and why, it is never skipped silently.
// Owned by the fs_posix test. Cases run on the test's main thread; some start their own
// threads or child processes and join them before returning.
#pragma once

#include <functional>
#include <string>

namespace dpustor::testing::posix {

// One thing a setup may lack. When !supported, the documented fallback error (EOPNOTSUPP,
// EINVAL, ...) is accepted instead of the full behaviour, and `why` is printed.
struct Capability {
  bool supported = true;
  std::string why;
};

inline Capability Unsupported(std::string why) {
  return {false, std::move(why)};
}

struct Capabilities {
  Capability xattr;                // user.* xattrs (else every xattr call fails EOPNOTSUPP)
  Capability fallocate;            // fallocate mode 0 and KEEP_SIZE
  Capability punch_hole;           // FALLOC_FL_PUNCH_HOLE
  Capability seek_holes;           // SEEK_DATA/SEEK_HOLE find real holes (else all is data)
  Capability sparse_blocks;        // st_blocks of a sparse file counts written blocks only
  Capability rename_noreplace;     // renameat2 RENAME_NOREPLACE (else EINVAL)
  Capability rename_exchange;      // renameat2 RENAME_EXCHANGE (else EINVAL)
  Capability char_device;          // mknod S_IFCHR as root (else EPERM or EOPNOTSUPP)
  Capability nanoseconds;          // timestamps keep nanoseconds (else whole seconds)
  Capability open_racing_replace;  // a file opened while a rename replaces it stays readable
  Capability release_at_close;     // close() of a flock holder frees the lock before it returns
  Capability hundred_thousand;     // 100,000 files in one directory (else 20,000)
};

struct Context {
  std::string setup;  // "native", "local", ...: printed with every relaxed expectation
  Capabilities caps;
  // Unmounts and mounts the share again on the same backend; a no-op where nothing is
  // mounted. False with `error` set on failure.
  std::function<bool(std::string* error)> remount;
  // The mount root, and the directory that holds the same files directly when the backend
  // is a local directory (empty otherwise).
  std::string root;
  std::string backing_root;
};

// Operations, one family each.
void LookupAndStat(const Context& ctx, const std::string& dir);
void ChmodAndFchmod(const Context& ctx, const std::string& dir);
void ChownAsRoot(const Context& ctx, const std::string& dir);
void TruncateAndFtruncate(const Context& ctx, const std::string& dir);
void Utimens(const Context& ctx, const std::string& dir);
void MknodFifoAndDevice(const Context& ctx, const std::string& dir);
void MkdirAndRmdir(const Context& ctx, const std::string& dir);
void Unlink(const Context& ctx, const std::string& dir);
void OpenReadWrite(const Context& ctx, const std::string& dir);
void OpenFlags(const Context& ctx, const std::string& dir);
void StatfsAndStatvfs(const Context& ctx, const std::string& dir);
void FsyncAndClose(const Context& ctx, const std::string& dir);
void Readdir(const Context& ctx, const std::string& dir);
void Xattrs(const Context& ctx, const std::string& dir);
void Access(const Context& ctx, const std::string& dir);
void Fallocate(const Context& ctx, const std::string& dir);
void SeekDataAndHole(const Context& ctx, const std::string& dir);
void CopyFileRange(const Context& ctx, const std::string& dir);
void Flock(const Context& ctx, const std::string& dir);
void PosixLocks(const Context& ctx, const std::string& dir);

// Ownership and permission checks as users 1000 and 1001.
void OwnershipOfNewFiles(const Context& ctx, const std::string& dir);
void PermissionDenied(const Context& ctx, const std::string& dir);
void StickyDirectory(const Context& ctx, const std::string& dir);
void SetgidDirectory(const Context& ctx, const std::string& dir);

// Names.
void HardLinks(const Context& ctx, const std::string& dir);
void Symlinks(const Context& ctx, const std::string& dir);
void RenameFileOverFile(const Context& ctx, const std::string& dir);
void RenameDirectories(const Context& ctx, const std::string& dir);
void RenameTypeMismatch(const Context& ctx, const std::string& dir);
void RenameAcrossDirectories(const Context& ctx, const std::string& dir);
void RenameToItself(const Context& ctx, const std::string& dir);
void RenameNoreplace(const Context& ctx, const std::string& dir);
void RenameExchange(const Context& ctx, const std::string& dir);

// Scale and data.
void SparseFileOver4GiB(const Context& ctx, const std::string& dir);
void HundredThousandFiles(const Context& ctx, const std::string& dir);
void ConcurrentWriters(const Context& ctx, const std::string& dir);
void DataSurvivesRemount(const Context& ctx, const std::string& dir);

}  // namespace dpustor::testing::posix
