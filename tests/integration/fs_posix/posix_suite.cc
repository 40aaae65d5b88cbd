#include "posix_suite.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace dpustor::testing::posix {
namespace {

constexpr uid_t kUserA = 1000;
constexpr uid_t kUserB = 1001;
constexpr off_t kKiB = 1024;
constexpr off_t kMiB = 1024 * kKiB;
constexpr off_t kGiB = 1024 * kMiB;

// "ENOENT (No such file or directory)", or "success" for 0: failures name the errno.
std::string ErrnoName(int e) {
  if (e == 0) return "success";
  const char* name = strerrorname_np(e);
  return std::string(name ? name : std::to_string(e).c_str()) + " (" + strerror(e) + ")";
}

}  // namespace

// errno of a failed call (rc < 0), 0 on success; read right after the call returns.
#define ERRNO_OF(call) ((call) < 0 ? errno : 0)
#define EXPECT_OK(call) EXPECT_EQ(ErrnoName(ERRNO_OF(call)), ErrnoName(0)) << #call
#define ASSERT_OK(call) ASSERT_EQ(ErrnoName(ERRNO_OF(call)), ErrnoName(0)) << #call
#define EXPECT_ERRNO(call, err) EXPECT_EQ(ErrnoName(ERRNO_OF(call)), ErrnoName(err)) << #call
// For results of RunAs: an errno (or 0) computed in the child.
#define EXPECT_CHILD(result, err) EXPECT_EQ(ErrnoName(result), ErrnoName(err))

namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { Reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int* out() { return &fd_; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string Path(const std::string& dir, const std::string& name) {
  return dir + "/" + name;
}

// Deterministic bytes (splitmix64), cheap enough for tens of MiB.
std::string RandomBytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x += 0x9E3779B97F4A7C15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    memcpy(out.data() + i, &z, std::min<size_t>(8, n - i));
  }
  return out;
}

// Compares without printing megabytes: the first differing offset and the sizes.
::testing::AssertionResult SameBytes(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return ::testing::AssertionFailure() << "got " << got.size() << " bytes, want " << want.size()
                                       << "; first difference at offset " << i;
}

bool AllZero(const std::string& s) {
  return s.find_first_not_of('\0') == std::string::npos;
}

// Writes all of `data` at `offset` (pwrite loop); false with errno on failure.
bool PwriteAll(int fd, const std::string& data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, offset + done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += n;
  }
  return true;
}

// Reads up to `n` bytes at `offset`, stopping early only at end of file.
std::string PreadAll(int fd, size_t n, off_t offset) {
  std::string out(n, '\0');
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out.data() + done, n - done, offset + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    done += r;
  }
  out.resize(done);
  return out;
}

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode));
  ASSERT_GE(fd.get(), 0) << path << ": " << ErrnoName(errno);
  ASSERT_TRUE(PwriteAll(fd.get(), data, 0)) << path << ": " << ErrnoName(errno);
}

std::string ReadFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY));
  if (fd.get() < 0) {
    ADD_FAILURE() << "open " << path << ": " << ErrnoName(errno);
    return "";
  }
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, n);
  if (n < 0) ADD_FAILURE() << "read " << path << ": " << ErrnoName(errno);
  return out;
}

struct stat Stat(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) ADD_FAILURE() << "stat " << path << ": " << ErrnoName(errno);
  return st;
}

struct stat Lstat(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    ADD_FAILURE() << "lstat " << path << ": " << ErrnoName(errno);
  return st;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// When `cap` is supported returns true. Otherwise prints that the full behaviour of `what`
// is not expected on this setup, and why, and returns false.
bool Supported(const Context& ctx, const Capability& cap, const std::string& what) {
  if (cap.supported) return true;
  std::cout << "[   NOTE   ] " << ctx.setup << ": " << what << " not expected: " << cap.why << "\n";
  return false;
}

// Runs `fn` in a forked child that has become uid/gid (and only that group); returns what
// `fn` returned (an errno, 0 for success), or a value >= 200 if the child could not switch.
int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn) {
  std::cout.flush();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(1, &gid) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      ::_exit(201);
    ::_exit(fn());
  }
  if (pid < 0) {
    ADD_FAILURE() << "fork: " << ErrnoName(errno);
    return 202;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status)) return 203;
  return WEXITSTATUS(status);
}

// Children report "errno of this call" as their exit code.
int Try(long rc) {
  return rc < 0 ? errno : 0;
}

// Opens `path` with `flags` (creating with `mode`) and closes it: 0 or the errno.
int TryOpen(const std::string& path, int flags, mode_t mode = 0644) {
  int fd = ::open(path.c_str(), flags, mode);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// Every name in `dir` except "." and "..", read with getdents64 through a small buffer so
// the listing needs many calls (and so many readdir continuations on a FUSE mount).
// Duplicates are kept, so callers can check each entry appears exactly once.
struct Entry {
  std::string name;
  unsigned char type;
  ino_t ino;
};
std::vector<Entry> ListDir(const std::string& dir, size_t buffer = 4096) {
  std::vector<Entry> out;
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  if (fd.get() < 0) {
    ADD_FAILURE() << "open " << dir << ": " << ErrnoName(errno);
    return out;
  }
  std::vector<char> buf(buffer);
  int dots = 0;
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd.get(), buf.data(), buf.size());
    if (n < 0) {
      ADD_FAILURE() << "getdents64 " << dir << ": " << ErrnoName(errno);
      break;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      auto* d = reinterpret_cast<struct dirent64*>(buf.data() + off);
      std::string name = d->d_name;
      if (name == "." || name == "..") {
        ++dots;
      } else {
        out.push_back({name, d->d_type, d->d_ino});
      }
      off += d->d_reclen;
    }
  }
  EXPECT_EQ(dots, 2) << dir << ": '.' and '..' must each be listed once";
  return out;
}

std::multiset<std::string> Names(const std::vector<Entry>& entries) {
  std::multiset<std::string> out;
  for (const auto& e : entries) out.insert(e.name);
  return out;
}

timespec Now() {
  timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return t;
}

int64_t Ns(const timespec& t) {
  return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Timestamps compared to the precision the setup keeps.
void ExpectTime(const Context& ctx, const timespec& got, const timespec& want, const char* what) {
  if (ctx.caps.nanoseconds.supported) {
    EXPECT_EQ(Ns(got), Ns(want)) << what;
  } else {
    EXPECT_EQ(got.tv_sec, want.tv_sec) << what;
  }
}

// True when `t` lies in [before - 1 s, after + 1 s]: "now" as seen by a server on this host,
// whose clock may be read at a coarser granularity than ours.
bool AroundNow(const timespec& t, const timespec& before, const timespec& after) {
  return Ns(t) >= Ns(before) - 1000000000 && Ns(t) <= Ns(after) + 1000000000;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Operations.

void LookupAndStat(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "hello, world", 0640));
  ASSERT_OK(::mkdir(Path(dir, "a").c_str(), 0755));
  ASSERT_OK(::mkdir(Path(dir, "a/b").c_str(), 0750));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "a/b/c"), "deep"));
  ASSERT_OK(::symlink("file", Path(dir, "link").c_str()));

  struct stat st = Stat(file);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_size, 12);
  EXPECT_EQ(st.st_nlink, 1u);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);

  Fd fd(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  struct stat fst {};
  ASSERT_OK(::fstat(fd.get(), &fst));
  EXPECT_EQ(fst.st_ino, st.st_ino);
  EXPECT_EQ(fst.st_dev, st.st_dev);
  EXPECT_EQ(fst.st_size, st.st_size);
  EXPECT_EQ(fst.st_mode, st.st_mode);

  // stat follows the link, lstat does not.
  struct stat via_link = Stat(Path(dir, "link"));
  struct stat link = Lstat(Path(dir, "link"));
  EXPECT_EQ(via_link.st_ino, st.st_ino);
  EXPECT_TRUE(S_ISLNK(link.st_mode));
  EXPECT_NE(link.st_ino, st.st_ino);
  EXPECT_EQ(link.st_size, 4);  // a symlink's size is the length of its target

  struct stat deep = Stat(Path(dir, "a/b/c"));
  EXPECT_EQ(deep.st_size, 4);
  EXPECT_TRUE(S_ISDIR(Stat(Path(dir, "a/b")).st_mode));
  EXPECT_EQ(Stat(Path(dir, "a/b")).st_mode & 07777, 0750u);
  // fstatat relative to a directory fd.
  Fd dfd(::open(Path(dir, "a").c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  struct stat at {};
  EXPECT_OK(::fstatat(dfd.get(), "b/c", &at, 0));
  EXPECT_EQ(at.st_ino, deep.st_ino);

  struct stat none;
  EXPECT_ERRNO(::stat(Path(dir, "missing").c_str(), &none), ENOENT);
  EXPECT_ERRNO(::stat(Path(dir, "missing/x").c_str(), &none), ENOENT);
  EXPECT_ERRNO(::stat(Path(dir, "file/x").c_str(), &none), ENOTDIR);
  EXPECT_ERRNO(::stat(Path(dir, "file/").c_str(), &none), ENOTDIR);
  EXPECT_ERRNO(::stat(Path(dir, std::string(256, 'n')).c_str(), &none), ENAMETOOLONG);
  // A 255-byte name is legal.
  const std::string longest = Path(dir, std::string(255, 'l'));
  EXPECT_EQ(ErrnoName(TryOpen(longest, O_CREAT | O_WRONLY)), ErrnoName(0));
  EXPECT_TRUE(Exists(longest));
}

void ChmodAndFchmod(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x", 0644));
  for (mode_t mode : {0600, 0000, 0777, 04755, 02755, 01644, 0444}) {
    EXPECT_OK(::chmod(file.c_str(), mode));
    EXPECT_EQ(Stat(file).st_mode & 07777, mode);
  }
  struct stat before = Stat(file);
  Fd fd(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::fchmod(fd.get(), 0604));
  struct stat after {};
  EXPECT_OK(::fstat(fd.get(), &after));
  EXPECT_EQ(after.st_mode & 07777, 0604u);
  EXPECT_EQ(Stat(file).st_mode & 07777, 0604u);
  EXPECT_GE(Ns(after.st_ctim), Ns(before.st_ctim)) << "chmod must not move ctime back";

  // chmod through a symlink changes the target.
  ASSERT_OK(::symlink("file", Path(dir, "link").c_str()));
  EXPECT_OK(::chmod(Path(dir, "link").c_str(), 0640));
  EXPECT_EQ(Stat(file).st_mode & 07777, 0640u);

  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_OK(::chmod(Path(dir, "d").c_str(), 01777));
  EXPECT_EQ(Stat(Path(dir, "d")).st_mode & 07777, 01777u);
  EXPECT_TRUE(S_ISDIR(Stat(Path(dir, "d")).st_mode));
  EXPECT_ERRNO(::chmod(Path(dir, "missing").c_str(), 0644), ENOENT);
}

void ChownAsRoot(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x", 0644));
  EXPECT_OK(::chown(file.c_str(), kUserA, kUserB));
  struct stat st = Stat(file);
  EXPECT_EQ(st.st_uid, kUserA);
  EXPECT_EQ(st.st_gid, kUserB);
  // -1 leaves a field alone.
  EXPECT_OK(::chown(file.c_str(), static_cast<uid_t>(-1), 4242));
  st = Stat(file);
  EXPECT_EQ(st.st_uid, kUserA);
  EXPECT_EQ(st.st_gid, 4242u);
  Fd fd(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::fchown(fd.get(), 0, 0));
  st = Stat(file);
  EXPECT_EQ(st.st_uid, 0u);
  EXPECT_EQ(st.st_gid, 0u);

  // A change of owner clears set-user-ID (even when root does it).
  EXPECT_OK(::chmod(file.c_str(), 04755));
  EXPECT_OK(::chown(file.c_str(), kUserA, static_cast<gid_t>(-1)));
  EXPECT_EQ(Stat(file).st_mode & 07777, 0755u);

  // lchown changes the link itself, chown the target.
  const std::string link = Path(dir, "link");
  ASSERT_OK(::symlink("file", link.c_str()));
  EXPECT_OK(::lchown(link.c_str(), kUserB, kUserB));
  EXPECT_EQ(Lstat(link).st_uid, kUserB);
  EXPECT_EQ(Stat(file).st_uid, kUserA);
  EXPECT_OK(::chown(link.c_str(), 7, 7));
  EXPECT_EQ(Stat(file).st_uid, 7u);
  EXPECT_EQ(Lstat(link).st_uid, kUserB);

  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_OK(::chown(Path(dir, "d").c_str(), kUserA, kUserA));
  EXPECT_EQ(Stat(Path(dir, "d")).st_uid, kUserA);
}

void TruncateAndFtruncate(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  const std::string data = RandomBytes(10000, 1);
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, data));
  // Shrink, then grow: the regrown part reads as zeros, not as the old bytes.
  EXPECT_OK(::truncate(file.c_str(), 3000));
  EXPECT_EQ(Stat(file).st_size, 3000);
  EXPECT_OK(::truncate(file.c_str(), 20000));
  EXPECT_EQ(Stat(file).st_size, 20000);
  std::string got = ReadFile(file);
  ASSERT_EQ(got.size(), 20000u);
  EXPECT_TRUE(SameBytes(got.substr(0, 3000), data.substr(0, 3000)));
  EXPECT_TRUE(AllZero(got.substr(3000)));

  Fd fd(::open(file.c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::ftruncate(fd.get(), 100));
  struct stat st {};
  EXPECT_OK(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, 100);
  EXPECT_EQ(PreadAll(fd.get(), 1000, 0).size(), 100u);
  EXPECT_OK(::ftruncate(fd.get(), 0));
  EXPECT_EQ(Stat(file).st_size, 0);
  // Past 4 GiB: sizes are 64-bit end to end.
  EXPECT_OK(::ftruncate(fd.get(), 5 * kGiB + 1));
  EXPECT_EQ(Stat(file).st_size, 5 * kGiB + 1);
  EXPECT_TRUE(AllZero(PreadAll(fd.get(), 4096, 5 * kGiB - 4095)));
  EXPECT_OK(::ftruncate(fd.get(), 0));

  Fd ro(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(ro.get(), 0);
  EXPECT_ERRNO(::ftruncate(ro.get(), 10), EINVAL);
  EXPECT_ERRNO(::ftruncate(fd.get(), -1), EINVAL);
  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_ERRNO(::truncate(Path(dir, "d").c_str(), 0), EISDIR);
  EXPECT_ERRNO(::truncate(Path(dir, "missing").c_str(), 0), ENOENT);
}

void Utimens(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x"));
  if (!Supported(ctx, ctx.caps.nanoseconds, "nanosecond timestamps")) {
    std::cout << "[   NOTE   ] " << ctx.setup << ": timestamps compared in whole seconds\n";
  }

  timespec times[2] = {{1000000000, 123456789}, {1200000000, 987654321}};
  EXPECT_OK(::utimensat(AT_FDCWD, file.c_str(), times, 0));
  struct stat st = Stat(file);
  ExpectTime(ctx, st.st_atim, times[0], "atime");
  ExpectTime(ctx, st.st_mtim, times[1], "mtime");

  // UTIME_OMIT leaves atime alone; the explicit mtime is taken.
  timespec omit[2] = {{0, UTIME_OMIT}, {1300000000, 5}};
  EXPECT_OK(::utimensat(AT_FDCWD, file.c_str(), omit, 0));
  st = Stat(file);
  ExpectTime(ctx, st.st_atim, times[0], "atime after UTIME_OMIT");
  ExpectTime(ctx, st.st_mtim, omit[1], "mtime after explicit set");

  // UTIME_NOW sets the current time; ctime follows every change.
  timespec before = Now();
  timespec now[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  EXPECT_OK(::utimensat(AT_FDCWD, file.c_str(), now, 0));
  timespec after = Now();
  st = Stat(file);
  ExpectTime(ctx, st.st_atim, times[0], "atime after UTIME_OMIT (2)");
  EXPECT_TRUE(AroundNow(st.st_mtim, before, after)) << "mtime " << st.st_mtim.tv_sec;
  EXPECT_TRUE(AroundNow(st.st_ctim, before, after)) << "ctime " << st.st_ctim.tv_sec;

  // NULL times: both now. futimens on an fd too.
  EXPECT_OK(::utimensat(AT_FDCWD, file.c_str(), nullptr, 0));
  st = Stat(file);
  EXPECT_TRUE(AroundNow(st.st_atim, before, Now()));
  EXPECT_TRUE(AroundNow(st.st_mtim, before, Now()));
  Fd fd(::open(file.c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::futimens(fd.get(), times));
  struct stat fst {};
  EXPECT_OK(::fstat(fd.get(), &fst));
  ExpectTime(ctx, fst.st_mtim, times[1], "mtime after futimens");

  // A write moves mtime forward from an old value.
  ASSERT_TRUE(PwriteAll(fd.get(), "more", 1));
  fd.Reset();
  st = Stat(file);
  EXPECT_GT(st.st_mtim.tv_sec, times[1].tv_sec) << "write must update mtime";

  // Directories carry times too.
  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_OK(::utimensat(AT_FDCWD, Path(dir, "d").c_str(), times, 0));
  ExpectTime(ctx, Stat(Path(dir, "d")).st_mtim, times[1], "directory mtime");
  // Creating an entry moves the directory's mtime.
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "d/new"), ""));
  EXPECT_GT(Stat(Path(dir, "d")).st_mtim.tv_sec, times[1].tv_sec);
}

void MknodFifoAndDevice(const Context& ctx, const std::string& dir) {
  const std::string fifo = Path(dir, "fifo");
  EXPECT_OK(::mkfifo(fifo.c_str(), 0640));
  struct stat st = Lstat(fifo);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_ERRNO(::mkfifo(fifo.c_str(), 0640), EEXIST);
  // The pipe itself lives in the kernel: data passes through it.
  {
    Fd rw(::open(fifo.c_str(), O_RDWR | O_NONBLOCK));
    ASSERT_GE(rw.get(), 0) << ErrnoName(errno);
    EXPECT_EQ(::write(rw.get(), "ping", 4), 4);
    char buf[8] = {};
    EXPECT_EQ(::read(rw.get(), buf, sizeof buf), 4);
    EXPECT_STREQ(buf, "ping");
  }
  const std::string node = Path(dir, "fifo2");
  EXPECT_OK(::mknod(node.c_str(), S_IFIFO | 0600, 0));
  EXPECT_TRUE(S_ISFIFO(Lstat(node).st_mode));
  // Regular files through mknod as well.
  EXPECT_OK(::mknod(Path(dir, "regular").c_str(), S_IFREG | 0600, 0));
  EXPECT_TRUE(S_ISREG(Lstat(Path(dir, "regular")).st_mode));

  const std::string dev = Path(dir, "null");
  int e = ERRNO_OF(::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)));
  if (e != 0 && !Supported(ctx, ctx.caps.char_device, "mknod S_IFCHR")) {
    EXPECT_TRUE(e == EPERM || e == EOPNOTSUPP) << ErrnoName(e);
    return;
  }
  ASSERT_EQ(ErrnoName(e), ErrnoName(0)) << "mknod S_IFCHR 1:3";
  st = Lstat(dev);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(major(st.st_rdev), 1u);
  EXPECT_EQ(minor(st.st_rdev), 3u);
  // Opening the node reaches the local kernel's /dev/null, not the file system; unless the
  // mount is nodev (dpustor-fsd mounts nosuid,nodev), where opening any device is EACCES.
  struct statvfs vfs {};
  ASSERT_OK(::statvfs(dir.c_str(), &vfs));
  Fd fd(::open(dev.c_str(), O_RDWR));
  if (vfs.f_flag & ST_NODEV) {
    std::cout << "[   INFO   ] " << ctx.setup << ": mounted nodev, device nodes do not open\n";
    EXPECT_LT(fd.get(), 0);
    EXPECT_EQ(ErrnoName(errno), ErrnoName(EACCES));
    return;
  }
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(::write(fd.get(), "abc", 3), 3);
  char c;
  EXPECT_EQ(::read(fd.get(), &c, 1), 0);
}

void MkdirAndRmdir(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string d = Path(dir, "d");
  EXPECT_OK(::mkdir(d.c_str(), 0750));
  struct stat st = Stat(d);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_ERRNO(::mkdir(d.c_str(), 0755), EEXIST);
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "f"), ""));
  EXPECT_ERRNO(::mkdir(Path(dir, "f").c_str(), 0755), EEXIST);
  EXPECT_ERRNO(::mkdir(Path(dir, "missing/d").c_str(), 0755), ENOENT);
  EXPECT_ERRNO(::mkdir(Path(dir, "f/d").c_str(), 0755), ENOTDIR);

  // ".." of a new directory is its parent.
  EXPECT_EQ(Stat(Path(d, "..")).st_ino, Stat(dir).st_ino);
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(d, "inner"), "x"));
  EXPECT_ERRNO(::rmdir(d.c_str()), ENOTEMPTY);
  EXPECT_ERRNO(::rmdir(Path(dir, "f").c_str()), ENOTDIR);
  EXPECT_ERRNO(::rmdir(Path(d, ".").c_str()), EINVAL);
  EXPECT_ERRNO(::rmdir(Path(dir, "missing").c_str()), ENOENT);
  EXPECT_ERRNO(::unlink(d.c_str()), EISDIR);
  EXPECT_OK(::unlink(Path(d, "inner").c_str()));
  EXPECT_OK(::rmdir(d.c_str()));
  EXPECT_FALSE(Exists(d));

  // A deep tree, then torn down bottom-up.
  std::string p = dir;
  for (int i = 0; i < 20; ++i) {
    p = Path(p, "n" + std::to_string(i));
    ASSERT_OK(::mkdir(p.c_str(), 0755));
  }
  EXPECT_TRUE(S_ISDIR(Stat(p).st_mode));
  for (int i = 0; i < 20; ++i) {
    EXPECT_OK(::rmdir(p.c_str()));
    p = p.substr(0, p.rfind('/'));
  }
  EXPECT_EQ(p, dir);
  EXPECT_TRUE(ListDir(dir).size() == 1) << "only f is left";
}

void Unlink(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  const std::string data = RandomBytes(100000, 2);
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, data));
  Fd fd(::open(file.c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::unlink(file.c_str()));
  EXPECT_FALSE(Exists(file));
  EXPECT_ERRNO(::unlink(file.c_str()), ENOENT);
  // An open file outlives its last name.
  struct stat st {};
  EXPECT_OK(::fstat(fd.get(), &st));
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_TRUE(SameBytes(PreadAll(fd.get(), data.size(), 0), data));
  EXPECT_TRUE(PwriteAll(fd.get(), "tail", data.size()));
  EXPECT_EQ(PreadAll(fd.get(), 4, data.size()), "tail");
  fd.Reset();
  EXPECT_TRUE(ListDir(dir).empty());
  // A new file may take the name at once.
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "new"));
  EXPECT_EQ(ReadFile(file), "new");
  EXPECT_ERRNO(::unlink(Path(dir, "file/x").c_str()), ENOTDIR);
}

void OpenReadWrite(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  Fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL, 0666));
  ASSERT_GE(fd.get(), 0) << ErrnoName(errno);
  EXPECT_EQ(Stat(file).st_mode & 07777, 0644u) << "mode 0666 under umask 022";
  EXPECT_EQ(Stat(file).st_size, 0);

  // write/read follow the file offset; pread/pwrite do not move it.
  EXPECT_EQ(::write(fd.get(), "abcdef", 6), 6);
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 6);
  EXPECT_EQ(::pwrite(fd.get(), "XY", 2, 2), 2);
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 6);
  EXPECT_EQ(PreadAll(fd.get(), 100, 0), "abXYef");
  EXPECT_EQ(::lseek(fd.get(), 1, SEEK_SET), 1);
  char buf[16] = {};
  EXPECT_EQ(::read(fd.get(), buf, 3), 3);
  EXPECT_EQ(std::string(buf, 3), "bXY");
  EXPECT_EQ(::read(fd.get(), buf, sizeof buf), 2);
  EXPECT_EQ(::read(fd.get(), buf, sizeof buf), 0) << "end of file";
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_END), 6);

  // Writing past the end leaves a gap of zeros.
  EXPECT_EQ(::pwrite(fd.get(), "Z", 1, 100000), 1);
  EXPECT_EQ(Stat(file).st_size, 100001);
  std::string all = PreadAll(fd.get(), 200000, 0);
  ASSERT_EQ(all.size(), 100001u);
  EXPECT_EQ(all.substr(0, 6), "abXYef");
  EXPECT_TRUE(AllZero(all.substr(6, 100000 - 6)));
  EXPECT_EQ(all.back(), 'Z');

  // Unaligned writes across page boundaries, read back through a second descriptor.
  const std::string big = RandomBytes(3 * kMiB + 17, 3);
  EXPECT_TRUE(PwriteAll(fd.get(), big, 4093));
  Fd other(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(other.get(), 0);
  EXPECT_TRUE(SameBytes(PreadAll(other.get(), big.size(), 4093), big));
  EXPECT_EQ(PreadAll(other.get(), 6, 0), "abXYef");

  // Access modes are enforced on the descriptor.
  EXPECT_ERRNO(::write(other.get(), "x", 1), EBADF);
  Fd wo(::open(file.c_str(), O_WRONLY));
  ASSERT_GE(wo.get(), 0);
  EXPECT_ERRNO(::read(wo.get(), buf, 1), EBADF);
  EXPECT_EQ(::write(wo.get(), "", 0), 0);
}

void OpenFlags(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  // O_CREAT creates; without O_EXCL an existing file is opened, with it EEXIST.
  EXPECT_EQ(ErrnoName(TryOpen(file, O_WRONLY | O_CREAT, 0600)), ErrnoName(0));
  EXPECT_EQ(Stat(file).st_mode & 07777, 0600u);
  EXPECT_EQ(ErrnoName(TryOpen(file, O_WRONLY | O_CREAT, 0644)), ErrnoName(0));
  EXPECT_EQ(Stat(file).st_mode & 07777, 0600u) << "O_CREAT on an existing file keeps its mode";
  EXPECT_EQ(ErrnoName(TryOpen(file, O_WRONLY | O_CREAT | O_EXCL)), ErrnoName(EEXIST));
  ASSERT_OK(::symlink("file", Path(dir, "link").c_str()));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "link"), O_WRONLY | O_CREAT | O_EXCL)), ErrnoName(EEXIST));
  ASSERT_OK(::symlink("nowhere", Path(dir, "dangling").c_str()));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "dangling"), O_WRONLY | O_CREAT | O_EXCL)),
            ErrnoName(EEXIST));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "missing"), O_RDONLY)), ErrnoName(ENOENT));

  // O_TRUNC empties an existing file; on O_RDONLY-less opens only.
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "0123456789"));
  EXPECT_EQ(ErrnoName(TryOpen(file, O_WRONLY | O_TRUNC)), ErrnoName(0));
  EXPECT_EQ(Stat(file).st_size, 0);

  // O_APPEND writes at the end whatever the offset, and pwrite ignores the offset too
  // (Linux appends).
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "start"));
  {
    Fd fd(::open(file.c_str(), O_WRONLY | O_APPEND));
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    EXPECT_EQ(::write(fd.get(), "-one", 4), 4);
    EXPECT_EQ(::lseek(fd.get(), 0, SEEK_CUR), 9);
    // Another writer extends the file; the next append still lands at the new end.
    Fd plain(::open(file.c_str(), O_WRONLY));
    ASSERT_GE(plain.get(), 0);
    EXPECT_EQ(::pwrite(plain.get(), "+more", 5, 9), 5);
    EXPECT_EQ(::write(fd.get(), "-two", 4), 4);
    EXPECT_EQ(::pwrite(fd.get(), "-three", 6, 0), 6);
  }
  EXPECT_EQ(ReadFile(file), "start-one+more-two-three");

  // Directories: O_DIRECTORY, EISDIR for writing, ENOTDIR for files.
  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "d"), O_RDONLY | O_DIRECTORY)), ErrnoName(0));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "d"), O_WRONLY)), ErrnoName(EISDIR));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "d"), O_RDWR)), ErrnoName(EISDIR));
  EXPECT_EQ(ErrnoName(TryOpen(file, O_RDONLY | O_DIRECTORY)), ErrnoName(ENOTDIR));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "link"), O_RDONLY | O_NOFOLLOW)), ErrnoName(ELOOP));
  // O_CREAT on a directory name.
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "d"), O_WRONLY | O_CREAT)), ErrnoName(EISDIR));
  // O_PATH | O_NOFOLLOW opens the link itself.
  Fd path(::open(Path(dir, "link").c_str(), O_PATH | O_NOFOLLOW));
  ASSERT_GE(path.get(), 0);
  struct stat st {};
  EXPECT_OK(::fstat(path.get(), &st));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

void StatfsAndStatvfs(const Context& ctx, const std::string& dir) {
  (void)ctx;
  struct statvfs vfs {};
  ASSERT_OK(::statvfs(dir.c_str(), &vfs));
  EXPECT_GT(vfs.f_bsize, 0u);
  EXPECT_GT(vfs.f_frsize, 0u);
  EXPECT_GT(vfs.f_blocks, 0u);
  EXPECT_LE(vfs.f_bfree, vfs.f_blocks);
  EXPECT_LE(vfs.f_bavail, vfs.f_bfree);
  // CephFS (kernel client and libcephfs alike) counts files in use and reports free inodes
  // as unlimited (all ones); otherwise free cannot exceed total.
  if (vfs.f_ffree != static_cast<fsfilcnt_t>(-1)) {
    EXPECT_LE(vfs.f_ffree, vfs.f_files);
  }
  EXPECT_GE(vfs.f_namemax, 255u);
  std::cout << "[   INFO   ] " << ctx.setup << ": statvfs bsize=" << vfs.f_bsize
            << " frsize=" << vfs.f_frsize << " blocks=" << vfs.f_blocks << " bfree=" << vfs.f_bfree
            << " files=" << vfs.f_files << " ffree=" << vfs.f_ffree << " namemax=" << vfs.f_namemax
            << "\n";

  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "f"), "x"));
  Fd fd(::open(Path(dir, "f").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  struct statfs fs {};
  ASSERT_OK(::fstatfs(fd.get(), &fs));
  EXPECT_EQ(static_cast<uint64_t>(fs.f_blocks), static_cast<uint64_t>(vfs.f_blocks));
  EXPECT_GE(fs.f_namelen, 255);
  struct statfs root {};
  ASSERT_OK(::statfs(ctx.root.c_str(), &root));
  EXPECT_EQ(root.f_type, fs.f_type) << "one file system from the root down";
  struct statfs none;
  EXPECT_ERRNO(::statfs(Path(dir, "missing").c_str(), &none), ENOENT);
}

void FsyncAndClose(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  const std::string data = RandomBytes(2 * kMiB + 3, 4);
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  EXPECT_TRUE(PwriteAll(fd, data, 0));
  EXPECT_OK(::fdatasync(fd));
  EXPECT_TRUE(PwriteAll(fd, "sync", 10));
  EXPECT_OK(::fsync(fd));
  // Closing one duplicate flushes but keeps the other usable.
  int dup = ::dup(fd);
  ASSERT_GE(dup, 0);
  EXPECT_OK(::close(dup));
  EXPECT_TRUE(PwriteAll(fd, "last", 20));
  EXPECT_OK(::close(fd));
  EXPECT_ERRNO(::close(fd), EBADF);
  std::string want = data;
  want.replace(10, 4, "sync");
  want.replace(20, 4, "last");
  EXPECT_TRUE(SameBytes(ReadFile(file), want));

  // fsync of a directory (after creating in it) and of a read-only file descriptor.
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(dfd.get(), 0);
  EXPECT_OK(::fsync(dfd.get()));
  EXPECT_OK(::fdatasync(dfd.get()));
  Fd ro(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(ro.get(), 0);
  EXPECT_OK(::fsync(ro.get()));
  EXPECT_OK(::syncfs(ro.get()));
}

void Readdir(const Context& ctx, const std::string& dir) {
  (void)ctx;
  // Names of many lengths so entries straddle the getdents buffer in every way.
  std::map<std::string, unsigned char> want;
  for (int i = 0; i < 600; ++i) {
    std::string name = "f" + std::to_string(i) + std::string(i % 200, 'x');
    ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, name), ""));
    want[name] = DT_REG;
  }
  for (int i = 0; i < 50; ++i) {
    std::string name = "d" + std::to_string(i);
    ASSERT_OK(::mkdir(Path(dir, name).c_str(), 0755));
    want[name] = DT_DIR;
  }
  ASSERT_OK(::symlink("f1", Path(dir, "ln").c_str()));
  want["ln"] = DT_LNK;
  ASSERT_OK(::mkfifo(Path(dir, "fifo").c_str(), 0644));
  want["fifo"] = DT_FIFO;

  for (size_t buffer : {size_t(512), size_t(4096), size_t(65536)}) {
    auto entries = ListDir(dir, buffer);
    std::multiset<std::string> names = Names(entries);
    EXPECT_EQ(names.size(), want.size()) << "buffer " << buffer;
    for (const auto& [name, type] : want)
      EXPECT_EQ(names.count(name), 1u) << name << " (buffer " << buffer << ")";
    for (const auto& e : entries) {
      if (e.type != DT_UNKNOWN) {
        EXPECT_EQ(int(e.type), int(want[e.name])) << e.name;
      }
      // d_ino is the inode stat reports (NFS and FUSE may both remap; they must agree).
      if (e.name == "d0") {
        EXPECT_EQ(e.ino, Lstat(Path(dir, e.name)).st_ino);
      }
    }
  }

  // opendir/readdir, then telldir/seekdir resume at the same place.
  DIR* d = ::opendir(dir.c_str());
  ASSERT_NE(d, nullptr);
  std::vector<std::string> first;
  for (int i = 0; i < 100; ++i) {
    struct dirent* e = ::readdir(d);
    ASSERT_NE(e, nullptr);
    first.push_back(e->d_name);
  }
  long pos = ::telldir(d);
  std::vector<std::string> rest;
  while (struct dirent* e = ::readdir(d)) rest.push_back(e->d_name);
  ::seekdir(d, pos);
  std::vector<std::string> again;
  while (struct dirent* e = ::readdir(d)) again.push_back(e->d_name);
  EXPECT_EQ(rest, again) << "seekdir(telldir()) resumes where telldir was taken";
  EXPECT_EQ(first.size() + rest.size(), want.size() + 2);
  ::rewinddir(d);
  size_t count = 0;
  while (::readdir(d) != nullptr) ++count;
  EXPECT_EQ(count, want.size() + 2);
  ::closedir(d);

  // An emptied directory lists nothing but "." and "..".
  ASSERT_OK(::mkdir(Path(dir, "empty").c_str(), 0755));
  EXPECT_TRUE(ListDir(Path(dir, "empty")).empty());
  EXPECT_ERRNO(::syscall(SYS_getdents64, -1, nullptr, 0), EBADF);
}

void Xattrs(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x"));
  const char* f = file.c_str();
  char buf[256];
  if (!Supported(ctx, ctx.caps.xattr, "extended attributes")) {
    // Refused as a whole, the same way for every call.
    EXPECT_ERRNO(::setxattr(f, "user.a", "v", 1, 0), EOPNOTSUPP);
    EXPECT_ERRNO(::setxattr(f, "user.a", "v", 1, XATTR_CREATE), EOPNOTSUPP);
    int e = ERRNO_OF(::getxattr(f, "user.a", buf, sizeof buf));
    EXPECT_TRUE(e == EOPNOTSUPP || e == ENODATA) << ErrnoName(e);
    ssize_t n = ::listxattr(f, buf, sizeof buf);
    EXPECT_TRUE(n == 0 || (n < 0 && errno == EOPNOTSUPP)) << n << " " << ErrnoName(errno);
    e = ERRNO_OF(::removexattr(f, "user.a"));
    EXPECT_TRUE(e == EOPNOTSUPP || e == ENODATA) << ErrnoName(e);
    return;
  }
  EXPECT_ERRNO(::getxattr(f, "user.a", buf, sizeof buf), ENODATA);
  EXPECT_ERRNO(::setxattr(f, "user.a", "v", 1, XATTR_REPLACE), ENODATA);
  EXPECT_OK(::setxattr(f, "user.a", "value1", 6, XATTR_CREATE));
  EXPECT_ERRNO(::setxattr(f, "user.a", "again", 5, XATTR_CREATE), EEXIST);
  EXPECT_EQ(::getxattr(f, "user.a", nullptr, 0), 6) << "size query";
  EXPECT_ERRNO(::getxattr(f, "user.a", buf, 3), ERANGE);
  EXPECT_EQ(::getxattr(f, "user.a", buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), "value1");
  EXPECT_OK(::setxattr(f, "user.a", "longer value 2", 14, XATTR_REPLACE));
  EXPECT_EQ(::getxattr(f, "user.a", buf, sizeof buf), 14);
  EXPECT_EQ(std::string(buf, 14), "longer value 2");
  // Flags 0: create or replace. Binary values and empty values are kept exactly.
  const std::string binary("\0\1\2\xff\0z", 6);
  EXPECT_OK(::setxattr(f, "user.bin", binary.data(), binary.size(), 0));
  EXPECT_OK(::setxattr(f, "user.empty", "", 0, 0));
  EXPECT_EQ(::getxattr(f, "user.bin", buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), binary);
  EXPECT_EQ(::getxattr(f, "user.empty", buf, sizeof buf), 0);

  ssize_t n = ::listxattr(f, nullptr, 0);
  ASSERT_GT(n, 0) << ErrnoName(errno);
  std::string list(n, '\0');
  ASSERT_EQ(::listxattr(f, list.data(), list.size()), n);
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); i += strlen(list.c_str() + i) + 1)
    names.insert(list.c_str() + i);
  EXPECT_TRUE(names.count("user.a") && names.count("user.bin") && names.count("user.empty"))
      << list;
  if (n > 1) {
    EXPECT_ERRNO(::listxattr(f, buf, 1), ERANGE);
  }

  EXPECT_OK(::removexattr(f, "user.a"));
  EXPECT_ERRNO(::removexattr(f, "user.a"), ENODATA);
  EXPECT_ERRNO(::getxattr(f, "user.a", buf, sizeof buf), ENODATA);

  // On descriptors and directories; user.* is refused on symlinks by the kernel.
  Fd fd(::open(f, O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  EXPECT_OK(::fsetxattr(fd.get(), "user.fd", "1", 1, 0));
  EXPECT_EQ(::fgetxattr(fd.get(), "user.fd", buf, sizeof buf), 1);
  EXPECT_OK(::setxattr(dir.c_str(), "user.dir", "d", 1, 0));
  EXPECT_EQ(::getxattr(dir.c_str(), "user.dir", buf, sizeof buf), 1);
  ASSERT_OK(::symlink("file", Path(dir, "link").c_str()));
  EXPECT_ERRNO(::lsetxattr(Path(dir, "link").c_str(), "user.l", "1", 1, 0), EPERM);
  // Values survive a rename.
  ASSERT_OK(::rename(f, Path(dir, "renamed").c_str()));
  EXPECT_EQ(::getxattr(Path(dir, "renamed").c_str(), "user.fd", buf, sizeof buf), 1);
  EXPECT_ERRNO(::setxattr(Path(dir, "missing").c_str(), "user.a", "v", 1, 0), ENOENT);
}

void Access(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x", 0640));
  EXPECT_OK(::access(file.c_str(), F_OK));
  EXPECT_OK(::access(file.c_str(), R_OK | W_OK));
  // Root may read and write anything, but execute only what has an x bit.
  EXPECT_ERRNO(::access(file.c_str(), X_OK), EACCES);
  EXPECT_OK(::chmod(file.c_str(), 0010));
  EXPECT_OK(::access(file.c_str(), X_OK | R_OK | W_OK));
  EXPECT_OK(::chmod(file.c_str(), 0640));
  EXPECT_ERRNO(::access(Path(dir, "missing").c_str(), F_OK), ENOENT);

  // Another user: "other" bits only.
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::access(file.c_str(), F_OK)); }), 0);
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::access(file.c_str(), R_OK)); }), EACCES);
  EXPECT_OK(::chmod(file.c_str(), 0644));
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::access(file.c_str(), R_OK)); }), 0);
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::access(file.c_str(), W_OK)); }), EACCES);
  // The group's bits apply to the group.
  EXPECT_OK(::chown(file.c_str(), 0, kUserA));
  EXPECT_OK(::chmod(file.c_str(), 0060));
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::access(file.c_str(), R_OK | W_OK)); }), 0);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::access(file.c_str(), R_OK)); }), EACCES);
  // Search permission on the directory gates everything below it.
  ASSERT_OK(::mkdir(Path(dir, "closed").c_str(), 0700));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "closed/f"), "", 0666));
  EXPECT_CHILD(
      RunAs(kUserA, kUserA, [&] { return Try(::access(Path(dir, "closed/f").c_str(), F_OK)); }),
      EACCES);
}

void Fallocate(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "file");
  Fd fd(::open(file.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(fd.get(), 0);
  int e = ERRNO_OF(::fallocate(fd.get(), 0, 0, kMiB));
  if (e != 0 && !Supported(ctx, ctx.caps.fallocate, "fallocate")) {
    EXPECT_EQ(ErrnoName(e), ErrnoName(EOPNOTSUPP));
    EXPECT_ERRNO(::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, kMiB), EOPNOTSUPP);
    EXPECT_EQ(Stat(file).st_size, 0) << "a refused fallocate changes nothing";
  } else {
    ASSERT_EQ(ErrnoName(e), ErrnoName(0)) << "fallocate(0, 1 MiB)";
    EXPECT_EQ(Stat(file).st_size, kMiB);
    EXPECT_TRUE(AllZero(PreadAll(fd.get(), kMiB, 0)));
    // KEEP_SIZE reserves beyond the end without growing the file.
    EXPECT_OK(::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, kMiB, kMiB));
    EXPECT_EQ(Stat(file).st_size, kMiB);
    // Within data it changes nothing.
    ASSERT_TRUE(PwriteAll(fd.get(), "data", 100));
    EXPECT_OK(::fallocate(fd.get(), 0, 0, 4096));
    EXPECT_EQ(PreadAll(fd.get(), 4, 100), "data");
  }
  EXPECT_ERRNO(::fallocate(fd.get(), 0, 0, 0), EINVAL);

  // Punching a hole zeroes exactly the range and keeps the size.
  const std::string p = Path(dir, "punch");
  const std::string data = RandomBytes(kMiB, 5);
  ASSERT_NO_FATAL_FAILURE(WriteFile(p, data));
  Fd pfd(::open(p.c_str(), O_RDWR));
  ASSERT_GE(pfd.get(), 0);
  // The kernel refuses PUNCH_HOLE without KEEP_SIZE before asking the file system.
  EXPECT_ERRNO(::fallocate(pfd.get(), FALLOC_FL_PUNCH_HOLE, 0, 4096), EOPNOTSUPP);
  e = ERRNO_OF(
      ::fallocate(pfd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 3 * 4096 + 100));
  if (e != 0 && !Supported(ctx, ctx.caps.punch_hole, "FALLOC_FL_PUNCH_HOLE")) {
    EXPECT_EQ(ErrnoName(e), ErrnoName(EOPNOTSUPP));
    EXPECT_TRUE(SameBytes(ReadFile(p), data)) << "a refused punch changes nothing";
    return;
  }
  ASSERT_EQ(ErrnoName(e), ErrnoName(0)) << "PUNCH_HOLE";
  std::string want = data;
  want.replace(4096, 3 * 4096 + 100, std::string(3 * 4096 + 100, '\0'));
  EXPECT_EQ(Stat(p).st_size, kMiB);
  EXPECT_TRUE(SameBytes(PreadAll(pfd.get(), kMiB, 0), want));
  pfd.Reset();
  EXPECT_TRUE(SameBytes(ReadFile(p), want));
}

void SeekDataAndHole(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "file");
  Fd fd(::open(file.c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(fd.get(), 0);
  // Data at [0, 4 KiB) and [2 MiB, 2 MiB + 4 KiB); the rest never written.
  ASSERT_TRUE(PwriteAll(fd.get(), RandomBytes(4096, 6), 0));
  ASSERT_TRUE(PwriteAll(fd.get(), RandomBytes(4096, 7), 2 * kMiB));
  const off_t size = 2 * kMiB + 4096;
  EXPECT_OK(::fsync(fd.get()));

  // What holds whether or not holes are reported: data is never skipped, a hole never
  // starts inside written data, and past the end there is neither.
  EXPECT_EQ(::lseek(fd.get(), 0, SEEK_DATA), 0);
  off_t hole = ::lseek(fd.get(), 0, SEEK_HOLE);
  EXPECT_TRUE(hole == 4096 || hole == size) << hole;
  off_t data = ::lseek(fd.get(), 8192, SEEK_DATA);
  EXPECT_TRUE(data == 8192 || data == 2 * kMiB) << data;
  EXPECT_EQ(::lseek(fd.get(), 2 * kMiB + 10, SEEK_DATA), 2 * kMiB + 10);
  EXPECT_EQ(::lseek(fd.get(), 2 * kMiB, SEEK_HOLE), size);
  EXPECT_ERRNO(::lseek(fd.get(), size, SEEK_DATA), ENXIO);
  EXPECT_ERRNO(::lseek(fd.get(), size + 1, SEEK_HOLE), ENXIO);
  if (Supported(ctx, ctx.caps.seek_holes, "SEEK_DATA/SEEK_HOLE finding holes")) {
    EXPECT_EQ(hole, 4096);
    EXPECT_EQ(data, 2 * kMiB);
    EXPECT_EQ(::lseek(fd.get(), 4096, SEEK_HOLE), 4096);
  } else {
    EXPECT_EQ(hole, size) << "without hole support the whole file is data";
    EXPECT_EQ(data, 8192);
  }
  // A file that is only a hole.
  Fd empty(::open(Path(dir, "hole").c_str(), O_RDWR | O_CREAT, 0644));
  ASSERT_GE(empty.get(), 0);
  ASSERT_OK(::ftruncate(empty.get(), kMiB));
  EXPECT_EQ(::lseek(empty.get(), 0, SEEK_HOLE), ctx.caps.seek_holes.supported ? 0 : kMiB);
  if (ctx.caps.seek_holes.supported) {
    EXPECT_ERRNO(::lseek(empty.get(), 0, SEEK_DATA), ENXIO);
  }
}

void CopyFileRange(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string src = Path(dir, "src");
  const std::string data = RandomBytes(3 * kMiB + 5, 8);
  ASSERT_NO_FATAL_FAILURE(WriteFile(src, data));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "dst"), std::string(100, 'd')));
  Fd in(::open(src.c_str(), O_RDONLY));
  Fd out(::open(Path(dir, "dst").c_str(), O_WRONLY));
  ASSERT_GE(in.get(), 0);
  ASSERT_GE(out.get(), 0);
  // Copy [1000, 1000 + 2 MiB + 1) of src to offset 50 of dst, in as many calls as it takes.
  loff_t in_off = 1000, out_off = 50;
  size_t left = 2 * kMiB + 1;
  while (left > 0) {
    ssize_t n = ::copy_file_range(in.get(), &in_off, out.get(), &out_off, left, 0);
    ASSERT_GT(n, 0) << ErrnoName(errno);
    left -= n;
  }
  EXPECT_EQ(in_off, 1000 + 2 * kMiB + 1);
  EXPECT_EQ(out_off, 50 + 2 * kMiB + 1);
  out.Reset();
  std::string want = std::string(50, 'd') + data.substr(1000, 2 * kMiB + 1);
  EXPECT_TRUE(SameBytes(ReadFile(Path(dir, "dst")), want));
  // Past the end of the source: nothing copied.
  Fd out2(::open(Path(dir, "dst").c_str(), O_WRONLY));
  loff_t past = data.size() + 10, at = 0;
  EXPECT_EQ(::copy_file_range(in.get(), &past, out2.get(), &at, 100, 0), 0);
  // Using the file offsets.
  Fd whole(::open(Path(dir, "whole").c_str(), O_WRONLY | O_CREAT, 0644));
  ASSERT_GE(whole.get(), 0);
  ASSERT_EQ(::lseek(in.get(), 0, SEEK_SET), 0);
  size_t copied = 0;
  while (copied < data.size()) {
    ssize_t n = ::copy_file_range(in.get(), nullptr, whole.get(), nullptr, data.size(), 0);
    ASSERT_GT(n, 0) << ErrnoName(errno);
    copied += n;
  }
  whole.Reset();
  EXPECT_TRUE(SameBytes(ReadFile(Path(dir, "whole")), data));
}

void Flock(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "x"));
  // Two open file descriptions of one file conflict like two processes would.
  Fd a(::open(file.c_str(), O_RDWR));
  Fd b(::open(file.c_str(), O_RDWR));
  ASSERT_GE(a.get(), 0);
  ASSERT_GE(b.get(), 0);
  EXPECT_OK(::flock(a.get(), LOCK_EX | LOCK_NB));
  EXPECT_ERRNO(::flock(b.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);
  EXPECT_ERRNO(::flock(b.get(), LOCK_SH | LOCK_NB), EWOULDBLOCK);
  // The same description may convert its own lock.
  EXPECT_OK(::flock(a.get(), LOCK_SH | LOCK_NB));
  EXPECT_OK(::flock(b.get(), LOCK_SH | LOCK_NB));
  EXPECT_ERRNO(::flock(a.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);
  EXPECT_OK(::flock(b.get(), LOCK_UN));
  EXPECT_OK(::flock(a.get(), LOCK_EX | LOCK_NB));
  // Closing the holder releases the lock: at once, or (over FUSE) when the daemon has
  // handled the RELEASE that follows the close.
  a.Reset();
  if (Supported(ctx, ctx.caps.release_at_close, "a flock freed before close() returns")) {
    EXPECT_OK(::flock(b.get(), LOCK_EX | LOCK_NB));
  } else {
    int e = EWOULDBLOCK;
    for (int i = 0; i < 1000 && e == EWOULDBLOCK; ++i) {
      e = Try(::flock(b.get(), LOCK_EX | LOCK_NB));
      if (e == EWOULDBLOCK) ::usleep(10000);
    }
    EXPECT_EQ(ErrnoName(e), ErrnoName(0)) << "the lock is still held 10 s after the close";
  }
  // A child sees the same conflict.
  EXPECT_CHILD(RunAs(0, 0,
                     [&] {
                       int fd = ::open(file.c_str(), O_RDWR);
                       if (fd < 0) return errno;
                       return Try(::flock(fd, LOCK_EX | LOCK_NB));
                     }),
               EWOULDBLOCK);
}

void PosixLocks(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, std::string(1000, 'x')));
  // The child takes a write lock on [100, 200) and a read lock on [500, 600), tells the
  // parent through a pipe, and holds them until the parent closes the other pipe.
  int ready[2], release[2];
  ASSERT_OK(::pipe(ready));
  ASSERT_OK(::pipe(release));
  std::cout.flush();
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    ::close(release[1]);
    int fd = ::open(file.c_str(), O_RDWR);
    struct flock w {};
    w.l_type = F_WRLCK;
    w.l_whence = SEEK_SET;
    w.l_start = 100;
    w.l_len = 100;
    struct flock r = w;
    r.l_type = F_RDLCK;
    r.l_start = 500;
    char ok =
        (fd >= 0 && ::fcntl(fd, F_SETLK, &w) == 0 && ::fcntl(fd, F_SETLK, &r) == 0) ? 'y' : 'n';
    if (::write(ready[1], &ok, 1) != 1) ::_exit(1);
    char c;
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  ::close(ready[1]);
  ::close(release[0]);
  char ok = 0;
  EXPECT_EQ(::read(ready[0], &ok, 1), 1);
  EXPECT_EQ(ok, 'y') << "the child could not take its locks";

  Fd fd(::open(file.c_str(), O_RDWR));
  ASSERT_GE(fd.get(), 0);
  struct flock q {};
  q.l_type = F_WRLCK;
  q.l_whence = SEEK_SET;
  q.l_start = 0;
  q.l_len = 1000;
  EXPECT_OK(::fcntl(fd.get(), F_GETLK, &q));
  EXPECT_EQ(q.l_type, F_WRLCK) << "the child's write lock is visible";
  EXPECT_EQ(q.l_start, 100);
  EXPECT_EQ(q.l_len, 100);
  std::cout << "[   INFO   ] " << ctx.setup << ": F_GETLK reports l_pid " << q.l_pid
            << " for child " << child << "\n";
  // A read lock request conflicts with the write lock only.
  q = {};
  q.l_type = F_RDLCK;
  q.l_whence = SEEK_SET;
  q.l_start = 450;
  q.l_len = 200;
  EXPECT_OK(::fcntl(fd.get(), F_GETLK, &q));
  EXPECT_EQ(q.l_type, F_UNLCK) << "read locks share";

  struct flock set {};
  set.l_type = F_WRLCK;
  set.l_whence = SEEK_SET;
  set.l_start = 150;
  set.l_len = 10;
  EXPECT_ERRNO(::fcntl(fd.get(), F_SETLK, &set), EAGAIN);
  set.l_start = 550;
  EXPECT_ERRNO(::fcntl(fd.get(), F_SETLK, &set), EAGAIN) << "write over a read lock";
  set.l_type = F_RDLCK;
  EXPECT_OK(::fcntl(fd.get(), F_SETLK, &set));
  set.l_type = F_WRLCK;
  set.l_start = 300;
  EXPECT_OK(::fcntl(fd.get(), F_SETLK, &set)) << "a free range";

  // The child's exit releases its locks.
  ::close(release[1]);
  int status = 0;
  EXPECT_EQ(::waitpid(child, &status, 0), child);
  ::close(ready[0]);
  set.l_start = 100;
  set.l_len = 500;
  EXPECT_OK(::fcntl(fd.get(), F_SETLK, &set));
  set.l_type = F_UNLCK;
  set.l_start = 0;
  set.l_len = 0;
  EXPECT_OK(::fcntl(fd.get(), F_SETLK, &set));
}

// ---------------------------------------------------------------------------------------
// Ownership and permissions.

void OwnershipOfNewFiles(const Context& ctx, const std::string& dir) {
  (void)ctx;
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] {
                       int e = TryOpen(Path(dir, "a-file"), O_WRONLY | O_CREAT | O_EXCL);
                       if (e) return e;
                       if (::mkdir(Path(dir, "a-dir").c_str(), 0755)) return errno;
                       if (::symlink("a-file", Path(dir, "a-link").c_str())) return errno;
                       return Try(::mkfifo(Path(dir, "a-fifo").c_str(), 0644));
                     }),
               0);
  EXPECT_CHILD(RunAs(kUserB, kUserB,
                     [&] { return TryOpen(Path(dir, "b-file"), O_WRONLY | O_CREAT | O_EXCL); }),
               0);
  for (const char* name : {"a-file", "a-dir", "a-link", "a-fifo"}) {
    struct stat st = Lstat(Path(dir, name));
    EXPECT_EQ(st.st_uid, kUserA) << name;
    EXPECT_EQ(st.st_gid, kUserA) << name;
  }
  EXPECT_EQ(Stat(Path(dir, "b-file")).st_uid, kUserB);
  EXPECT_EQ(Stat(Path(dir, "b-file")).st_gid, kUserB);
  // The owner may chmod and chown to its own group; data written by a user reads back.
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] {
                       int fd = ::open(Path(dir, "a-file").c_str(), O_WRONLY);
                       if (fd < 0) return errno;
                       if (::write(fd, "from a", 6) != 6) return errno ? errno : EIO;
                       ::close(fd);
                       if (::chmod(Path(dir, "a-file").c_str(), 0600)) return errno;
                       return Try(::chown(Path(dir, "a-file").c_str(), kUserA, kUserA));
                     }),
               0);
  EXPECT_EQ(Stat(Path(dir, "a-file")).st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(Path(dir, "a-file")), "from a");
}

void PermissionDenied(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string secret = Path(dir, "secret");
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] {
                       int fd = ::open(secret.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
                       if (fd < 0) return errno;
                       if (::write(fd, "mine", 4) != 4) return EIO;
                       return Try(::close(fd));
                     }),
               0);
  EXPECT_EQ(Stat(secret).st_mode & 07777, 0600u);
  // 0600 of user 1000: user 1001 can neither read nor write it, nor change it.
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(secret, O_RDONLY); }), EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(secret, O_WRONLY); }), EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::truncate(secret.c_str(), 0)); }), EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::chmod(secret.c_str(), 0666)); }), EPERM);
  EXPECT_CHILD(
      RunAs(kUserB, kUserB, [&] { return Try(::utimensat(AT_FDCWD, secret.c_str(), nullptr, 0)); }),
      EACCES);
  // Only root gives files away, even the owner cannot; nor to a group it is not in.
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] { return Try(::chown(secret.c_str(), kUserB, static_cast<gid_t>(-1))); }),
               EPERM);
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] { return Try(::chown(secret.c_str(), static_cast<uid_t>(-1), kUserB)); }),
               EPERM);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::chown(secret.c_str(), kUserB, kUserB)); }),
               EPERM);
  EXPECT_EQ(Stat(secret).st_uid, kUserA);
  EXPECT_EQ(Stat(secret).st_mode & 07777, 0600u);
  EXPECT_EQ(ReadFile(secret), "mine") << "root still reads it";

  // A writable file of someone else: writing and UTIME_NOW are allowed, explicit times
  // are the owner's alone.
  EXPECT_OK(::chmod(secret.c_str(), 0666));
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(secret, O_WRONLY); }), 0);
  EXPECT_CHILD(
      RunAs(kUserB, kUserB, [&] { return Try(::utimensat(AT_FDCWD, secret.c_str(), nullptr, 0)); }),
      0);
  timespec t[2] = {{1, 0}, {1, 0}};
  EXPECT_CHILD(
      RunAs(kUserB, kUserB, [&] { return Try(::utimensat(AT_FDCWD, secret.c_str(), t, 0)); }),
      EPERM);

  // A 0755 directory of user 1000: user 1001 may look but not create, delete or rename.
  const std::string home = Path(dir, "home");
  ASSERT_OK(::mkdir(home.c_str(), 0755));
  ASSERT_OK(::chown(home.c_str(), kUserA, kUserA));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(home, "f"), "x"));
  ASSERT_OK(::chmod(Path(home, "f").c_str(), 0666));
  EXPECT_CHILD(
      RunAs(kUserB, kUserB, [&] { return TryOpen(Path(home, "new"), O_WRONLY | O_CREAT); }),
      EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::mkdir(Path(home, "d").c_str(), 0755)); }),
               EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::unlink(Path(home, "f").c_str())); }),
               EACCES);
  EXPECT_CHILD(
      RunAs(kUserB, kUserB,
            [&] { return Try(::rename(Path(home, "f").c_str(), Path(dir, "stolen").c_str())); }),
      EACCES);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(Path(home, "f"), O_RDWR); }), 0)
      << "the 0666 file itself is writable";
  EXPECT_CHILD(
      RunAs(kUserA, kUserA, [&] { return TryOpen(Path(home, "new"), O_WRONLY | O_CREAT); }), 0)
      << "the owner creates";
  EXPECT_TRUE(Exists(Path(home, "f")));
  EXPECT_FALSE(Exists(Path(home, "d")));
}

void StickyDirectory(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string tmp = Path(dir, "tmp");
  ASSERT_OK(::mkdir(tmp.c_str(), 0777));
  ASSERT_OK(::chmod(tmp.c_str(), 01777));
  EXPECT_EQ(Stat(tmp).st_mode & 07777, 01777u);
  const std::string a = Path(tmp, "a"), b = Path(tmp, "b");
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return TryOpen(a, O_WRONLY | O_CREAT, 0666); }), 0);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(b, O_WRONLY | O_CREAT, 0666); }), 0);
  EXPECT_EQ(Stat(a).st_mode & 0777, 0644u) << "0666 under umask 022";
  EXPECT_OK(::chmod(a.c_str(), 0666));
  // In a sticky directory only the file's owner (or the directory's, or root) removes it.
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::unlink(a.c_str())); }), EPERM);
  EXPECT_CHILD(
      RunAs(kUserB, kUserB, [&] { return Try(::rename(a.c_str(), Path(tmp, "moved").c_str())); }),
      EPERM);
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return Try(::rename(b.c_str(), a.c_str())); }), EPERM)
      << "nor replace it by rename";
  EXPECT_TRUE(Exists(a));
  EXPECT_CHILD(RunAs(kUserB, kUserB, [&] { return TryOpen(a, O_WRONLY); }), 0)
      << "writing it is up to its mode";
  EXPECT_CHILD(RunAs(kUserA, kUserA, [&] { return Try(::unlink(a.c_str())); }), 0);
  EXPECT_FALSE(Exists(a));
  EXPECT_OK(::unlink(b.c_str())) << "root may";
}

void SetgidDirectory(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string shared = Path(dir, "shared");
  constexpr gid_t kGroup = 2000;
  ASSERT_OK(::mkdir(shared.c_str(), 0777));
  ASSERT_OK(::chown(shared.c_str(), 0, kGroup));
  ASSERT_OK(::chmod(shared.c_str(), 02777));
  EXPECT_EQ(Stat(shared).st_mode & 07777, 02777u);
  EXPECT_CHILD(RunAs(kUserA, kUserA,
                     [&] {
                       int e = TryOpen(Path(shared, "f"), O_WRONLY | O_CREAT, 0644);
                       if (e) return e;
                       return Try(::mkdir(Path(shared, "sub").c_str(), 0755));
                     }),
               0);
  // New entries take the directory's group; new directories also inherit the bit.
  struct stat f = Stat(Path(shared, "f"));
  EXPECT_EQ(f.st_uid, kUserA);
  EXPECT_EQ(f.st_gid, kGroup);
  struct stat sub = Stat(Path(shared, "sub"));
  EXPECT_EQ(sub.st_uid, kUserA);
  EXPECT_EQ(sub.st_gid, kGroup);
  EXPECT_TRUE(sub.st_mode & S_ISGID) << std::oct << sub.st_mode;
  // Root's files there too.
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(shared, "root-file"), ""));
  EXPECT_EQ(Stat(Path(shared, "root-file")).st_gid, kGroup);
  // Outside the directory a user's files keep the user's group.
  EXPECT_CHILD(
      RunAs(kUserA, kUserA, [&] { return TryOpen(Path(dir, "plain"), O_WRONLY | O_CREAT, 0644); }),
      0);
  EXPECT_EQ(Stat(Path(dir, "plain")).st_gid, kUserA);
}

// ---------------------------------------------------------------------------------------
// Names.

void HardLinks(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string a = Path(dir, "a"), b = Path(dir, "b");
  ASSERT_OK(::mkdir(Path(dir, "sub").c_str(), 0755));
  const std::string c = Path(dir, "sub/c");
  ASSERT_NO_FATAL_FAILURE(WriteFile(a, "shared data"));
  EXPECT_OK(::link(a.c_str(), b.c_str()));
  EXPECT_OK(::link(a.c_str(), c.c_str()));
  struct stat sa = Stat(a), sb = Stat(b), sc = Stat(c);
  EXPECT_EQ(sa.st_ino, sb.st_ino);
  EXPECT_EQ(sa.st_ino, sc.st_ino);
  EXPECT_EQ(sa.st_nlink, 3u);
  EXPECT_EQ(sb.st_nlink, 3u);
  // Data and attributes are shared.
  {
    Fd fd(::open(b.c_str(), O_WRONLY | O_APPEND));
    ASSERT_GE(fd.get(), 0);
    EXPECT_EQ(::write(fd.get(), "+b", 2), 2);
  }
  EXPECT_EQ(ReadFile(a), "shared data+b");
  EXPECT_EQ(ReadFile(c), "shared data+b");
  EXPECT_OK(::chmod(c.c_str(), 0600));
  EXPECT_EQ(Stat(a).st_mode & 07777, 0600u);
  // Removing names keeps the data under the others.
  EXPECT_OK(::unlink(a.c_str()));
  EXPECT_EQ(Stat(b).st_nlink, 2u);
  EXPECT_EQ(ReadFile(b), "shared data+b");
  EXPECT_OK(::unlink(c.c_str()));
  EXPECT_EQ(Stat(b).st_nlink, 1u);
  EXPECT_EQ(ReadFile(b), "shared data+b");

  EXPECT_ERRNO(::link(b.c_str(), b.c_str()), EEXIST);
  EXPECT_ERRNO(::link(Path(dir, "missing").c_str(), a.c_str()), ENOENT);
  EXPECT_ERRNO(::link(Path(dir, "sub").c_str(), Path(dir, "sub2").c_str()), EPERM)
      << "no hard links to directories";
  // link() does not follow a symlink: the new name is another link to the symlink.
  ASSERT_OK(::symlink("b", Path(dir, "sym").c_str()));
  EXPECT_OK(::link(Path(dir, "sym").c_str(), Path(dir, "sym2").c_str()));
  EXPECT_TRUE(S_ISLNK(Lstat(Path(dir, "sym2")).st_mode));
  EXPECT_EQ(Lstat(Path(dir, "sym")).st_nlink, 2u);
  // linkat with AT_SYMLINK_FOLLOW links the target.
  EXPECT_OK(::linkat(AT_FDCWD, Path(dir, "sym").c_str(), AT_FDCWD, Path(dir, "viasym").c_str(),
                     AT_SYMLINK_FOLLOW));
  EXPECT_EQ(Lstat(Path(dir, "viasym")).st_ino, Stat(b).st_ino);
  EXPECT_EQ(Stat(b).st_nlink, 2u);
}

void Symlinks(const Context& ctx, const std::string& dir) {
  (void)ctx;
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "target"), "through the link"));
  ASSERT_OK(::mkdir(Path(dir, "sub").c_str(), 0755));
  auto read_link = [](const std::string& p) {
    char buf[4200];
    ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
    if (n < 0) {
      ADD_FAILURE() << "readlink " << p << ": " << ErrnoName(errno);
      return std::string();
    }
    return std::string(buf, n);
  };
  // Relative (resolved from the link's directory), absolute, dangling.
  EXPECT_OK(::symlink("../target", Path(dir, "sub/rel").c_str()));
  EXPECT_OK(::symlink(Path(dir, "target").c_str(), Path(dir, "abs").c_str()));
  EXPECT_OK(::symlink("does/not/exist", Path(dir, "dangling").c_str()));
  EXPECT_EQ(read_link(Path(dir, "sub/rel")), "../target");
  EXPECT_EQ(read_link(Path(dir, "abs")), Path(dir, "target"));
  EXPECT_EQ(read_link(Path(dir, "dangling")), "does/not/exist");
  EXPECT_EQ(ReadFile(Path(dir, "sub/rel")), "through the link");
  EXPECT_EQ(ReadFile(Path(dir, "abs")), "through the link");
  struct stat st;
  EXPECT_ERRNO(::stat(Path(dir, "dangling").c_str(), &st), ENOENT);
  EXPECT_TRUE(S_ISLNK(Lstat(Path(dir, "dangling")).st_mode));
  EXPECT_EQ(Lstat(Path(dir, "dangling")).st_size, 14);
  EXPECT_TRUE(S_ISREG(Stat(Path(dir, "abs")).st_mode));
  EXPECT_TRUE(S_ISLNK(Lstat(Path(dir, "abs")).st_mode));
  // Writing through a dangling link creates its target.
  ASSERT_OK(::mkdir(Path(dir, "does").c_str(), 0755));
  ASSERT_OK(::mkdir(Path(dir, "does/not").c_str(), 0755));
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "dangling"), O_WRONLY | O_CREAT)), ErrnoName(0));
  EXPECT_TRUE(S_ISREG(Lstat(Path(dir, "does/not/exist")).st_mode));

  // Exact text is kept: odd characters, a trailing slash, a long target; a short buffer
  // truncates without a terminator.
  const std::string odd = "a b/../\t*?\\:\xc3\xa9//x/";
  EXPECT_OK(::symlink(odd.c_str(), Path(dir, "odd").c_str()));
  EXPECT_EQ(read_link(Path(dir, "odd")), odd);
  const std::string long_target = std::string(1000, 'p');
  EXPECT_OK(::symlink(long_target.c_str(), Path(dir, "long").c_str()));
  EXPECT_EQ(read_link(Path(dir, "long")), long_target);
  // Linux takes targets up to PATH_MAX - 1; a server with a lower limit must say
  // ENAMETOOLONG (NFSv3 servers commonly stop at 1024).
  const std::string longest_target = std::string(4000, 'q');
  int e = ERRNO_OF(::symlink(longest_target.c_str(), Path(dir, "longest").c_str()));
  if (e == 0) {
    EXPECT_EQ(read_link(Path(dir, "longest")), longest_target);
  } else {
    std::cout << "[   INFO   ] " << ctx.setup << ": a 4000-byte symlink target is refused\n";
    EXPECT_EQ(ErrnoName(e), ErrnoName(ENAMETOOLONG)) << "symlink of a 4000-byte target";
    EXPECT_FALSE(Exists(Path(dir, "longest")));
  }
  char small[4];
  EXPECT_EQ(::readlink(Path(dir, "sub/rel").c_str(), small, sizeof small), 4);
  EXPECT_EQ(std::string(small, 4), "../t");

  // Directories through links, loops, and errors.
  EXPECT_OK(::symlink("sub", Path(dir, "dirlink").c_str()));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, "dirlink/inside"), "in"));
  EXPECT_EQ(ReadFile(Path(dir, "sub/inside")), "in");
  EXPECT_OK(::symlink("loop2", Path(dir, "loop1").c_str()));
  EXPECT_OK(::symlink("loop1", Path(dir, "loop2").c_str()));
  EXPECT_ERRNO(::stat(Path(dir, "loop1").c_str(), &st), ELOOP);
  EXPECT_EQ(ErrnoName(TryOpen(Path(dir, "loop1"), O_RDONLY)), ErrnoName(ELOOP));
  EXPECT_OK(::symlink("self", Path(dir, "self").c_str()));
  EXPECT_ERRNO(::stat(Path(dir, "self").c_str(), &st), ELOOP);
  char buf[16];
  EXPECT_ERRNO(::readlink(Path(dir, "target").c_str(), buf, sizeof buf), EINVAL);
  EXPECT_ERRNO(::symlink("x", Path(dir, "abs").c_str()), EEXIST);
  EXPECT_ERRNO(::symlink("", Path(dir, "empty").c_str()), ENOENT);
  // Removing a link leaves its target.
  EXPECT_OK(::unlink(Path(dir, "abs").c_str()));
  EXPECT_TRUE(Exists(Path(dir, "target")));
}

void RenameFileOverFile(const Context& ctx, const std::string& dir) {
  const std::string a = Path(dir, "a"), b = Path(dir, "b");
  ASSERT_NO_FATAL_FAILURE(WriteFile(a, "new contents"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(b, "old contents, longer"));
  ino_t a_ino = Stat(a).st_ino;
  Fd old(::open(b.c_str(), O_RDONLY));
  ASSERT_GE(old.get(), 0);
  EXPECT_OK(::rename(a.c_str(), b.c_str()));
  EXPECT_FALSE(Exists(a));
  EXPECT_EQ(Stat(b).st_ino, a_ino) << "the name now points at the moved inode";
  EXPECT_EQ(ReadFile(b), "new contents");
  // The replaced file lives on for whoever holds it open.
  EXPECT_EQ(PreadAll(old.get(), 100, 0), "old contents, longer");
  EXPECT_EQ(Names(ListDir(dir)), std::multiset<std::string>{"b"});

  // Atomic replace: a reader opening the name during many renames always finds a whole
  // file, never ENOENT and never a mix.
  const std::string target = Path(dir, "target");
  ASSERT_NO_FATAL_FAILURE(WriteFile(target, std::string(4096, '0')));
  std::atomic<bool> stop{false};
  std::atomic<int> mixed{0}, missing{0}, failed{0}, first_errno{0};
  std::thread reader([&] {
    while (!stop) {
      int fd = ::open(target.c_str(), O_RDONLY);
      if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
          ++missing;
        } else {  // e.g. ESTALE: the inode was replaced again while the open was retried
          int zero = 0;
          first_errno.compare_exchange_strong(zero, e);
          ++failed;
        }
        continue;
      }
      std::string s(8192, '\0');
      ssize_t n = ::pread(fd, s.data(), s.size(), 0);
      int e = errno;
      ::close(fd);
      if (n < 0) {
        int zero = 0;
        first_errno.compare_exchange_strong(zero, e);
        ++failed;
      } else if (n != 4096 || s.find_first_not_of(s[0]) != 4096) {
        ++mixed;
      }
    }
  });
  for (int i = 1; i <= 50; ++i) {
    std::string tmp = Path(dir, "tmp" + std::to_string(i));
    WriteFile(tmp, std::string(4096, char('0' + i % 10)));
    EXPECT_OK(::rename(tmp.c_str(), target.c_str()));
  }
  stop = true;
  reader.join();
  EXPECT_EQ(missing.load(), 0) << "the name was missing during a replace";
  EXPECT_EQ(mixed.load(), 0) << "a reader saw a partial or mixed file";
  if (Supported(ctx, ctx.caps.open_racing_replace,
                "opening and reading a file during its replace")) {
    EXPECT_EQ(failed.load(), 0) << "opening or reading a file while it was replaced failed: "
                                << ErrnoName(first_errno);
  } else if (failed.load() != 0) {
    std::cout << "[   NOTE   ] " << ctx.setup << ": " << failed.load() << " reads failed with "
              << ErrnoName(first_errno) << "\n";
  }
  EXPECT_EQ(ReadFile(target), std::string(4096, '0'));
}

void RenameDirectories(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string src = Path(dir, "src"), empty = Path(dir, "empty"), full = Path(dir, "full");
  ASSERT_OK(::mkdir(src.c_str(), 0755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(src, "f"), "in src"));
  ASSERT_OK(::mkdir(empty.c_str(), 0700));
  ASSERT_OK(::mkdir(full.c_str(), 0755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(full, "g"), "in full"));
  ino_t src_ino = Stat(src).st_ino;

  // Over an empty directory: replaces it.
  EXPECT_OK(::rename(src.c_str(), empty.c_str()));
  EXPECT_FALSE(Exists(src));
  EXPECT_EQ(Stat(empty).st_ino, src_ino);
  EXPECT_EQ(Stat(empty).st_mode & 07777, 0755u);
  EXPECT_EQ(ReadFile(Path(empty, "f")), "in src");
  // Over a non-empty one: refused (Linux says ENOTEMPTY, POSIX allows EEXIST).
  int e = ERRNO_OF(::rename(empty.c_str(), full.c_str()));
  EXPECT_TRUE(e == ENOTEMPTY || e == EEXIST) << ErrnoName(e);
  EXPECT_EQ(ReadFile(Path(full, "g")), "in full");
  EXPECT_EQ(ReadFile(Path(empty, "f")), "in src");
  // Into its own subdirectory, or onto its own descendant: EINVAL.
  ASSERT_OK(::mkdir(Path(empty, "child").c_str(), 0755));
  EXPECT_ERRNO(::rename(empty.c_str(), Path(empty, "child/inside").c_str()), EINVAL);
  EXPECT_ERRNO(::rename(empty.c_str(), Path(empty, "child").c_str()), EINVAL);
  // A directory to a new name keeps its contents.
  EXPECT_OK(::rename(empty.c_str(), Path(dir, "moved").c_str()));
  EXPECT_EQ(ReadFile(Path(dir, "moved/f")), "in src");
  EXPECT_TRUE(S_ISDIR(Stat(Path(dir, "moved/child")).st_mode));
  EXPECT_ERRNO(::rename(Path(dir, "missing").c_str(), Path(dir, "x").c_str()), ENOENT);
  EXPECT_ERRNO(::rename(Path(dir, "moved").c_str(), Path(dir, "nodir/x").c_str()), ENOENT);
}

void RenameTypeMismatch(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string file = Path(dir, "file"), d = Path(dir, "d");
  ASSERT_NO_FATAL_FAILURE(WriteFile(file, "f"));
  ASSERT_OK(::mkdir(d.c_str(), 0755));
  ASSERT_OK(::mkdir(Path(dir, "empty").c_str(), 0755));
  // A file over a directory (even an empty one): EISDIR; a directory over a file: ENOTDIR.
  EXPECT_ERRNO(::rename(file.c_str(), d.c_str()), EISDIR);
  EXPECT_ERRNO(::rename(file.c_str(), Path(dir, "empty").c_str()), EISDIR);
  EXPECT_ERRNO(::rename(d.c_str(), file.c_str()), ENOTDIR);
  EXPECT_ERRNO(::rename(file.c_str(), Path(dir, "file/x").c_str()), ENOTDIR);
  EXPECT_EQ(ReadFile(file), "f");
  EXPECT_TRUE(S_ISDIR(Stat(d).st_mode));
  // A symlink is replaced like a file, not followed.
  ASSERT_OK(::symlink("d", Path(dir, "link").c_str()));
  EXPECT_OK(::rename(file.c_str(), Path(dir, "link").c_str()));
  EXPECT_TRUE(S_ISREG(Lstat(Path(dir, "link")).st_mode));
  EXPECT_TRUE(ListDir(d).empty());
}

void RenameAcrossDirectories(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string one = Path(dir, "one"), two = Path(dir, "two");
  ASSERT_OK(::mkdir(one.c_str(), 0755));
  ASSERT_OK(::mkdir(two.c_str(), 0755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(one, "f"), "moving"));
  ASSERT_OK(::mkdir(Path(one, "d").c_str(), 0755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(one, "d/inner"), "deep"));
  ino_t f_ino = Stat(Path(one, "f")).st_ino;

  EXPECT_OK(::rename(Path(one, "f").c_str(), Path(two, "g").c_str()));
  EXPECT_FALSE(Exists(Path(one, "f")));
  EXPECT_EQ(Stat(Path(two, "g")).st_ino, f_ino);
  EXPECT_EQ(ReadFile(Path(two, "g")), "moving");
  // A directory moved to another parent: ".." follows.
  EXPECT_OK(::rename(Path(one, "d").c_str(), Path(two, "d").c_str()));
  EXPECT_EQ(Stat(Path(two, "d/..")).st_ino, Stat(two).st_ino);
  EXPECT_EQ(ReadFile(Path(two, "d/inner")), "deep");
  EXPECT_TRUE(ListDir(one).empty());
  EXPECT_EQ(Names(ListDir(two)), (std::multiset<std::string>{"d", "g"}));
  // And back, over an existing file.
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(one, "g"), "old"));
  EXPECT_OK(::rename(Path(two, "g").c_str(), Path(one, "g").c_str()));
  EXPECT_EQ(ReadFile(Path(one, "g")), "moving");
  // renameat with directory descriptors.
  Fd d1(::open(one.c_str(), O_RDONLY | O_DIRECTORY));
  Fd d2(::open(two.c_str(), O_RDONLY | O_DIRECTORY));
  ASSERT_GE(d1.get(), 0);
  ASSERT_GE(d2.get(), 0);
  EXPECT_OK(::renameat(d1.get(), "g", d2.get(), "h"));
  EXPECT_EQ(ReadFile(Path(two, "h")), "moving");
}

void RenameToItself(const Context& ctx, const std::string& dir) {
  (void)ctx;
  const std::string f = Path(dir, "f");
  ASSERT_NO_FATAL_FAILURE(WriteFile(f, "same"));
  ino_t ino = Stat(f).st_ino;
  EXPECT_OK(::rename(f.c_str(), f.c_str()));
  EXPECT_EQ(Stat(f).st_ino, ino);
  EXPECT_EQ(ReadFile(f), "same");
  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  EXPECT_OK(::rename(Path(dir, "d").c_str(), Path(dir, "d").c_str()));
  EXPECT_TRUE(S_ISDIR(Stat(Path(dir, "d")).st_mode));
  // Two hard links of one inode: rename does nothing, both names stay.
  ASSERT_OK(::link(f.c_str(), Path(dir, "g").c_str()));
  EXPECT_OK(::rename(f.c_str(), Path(dir, "g").c_str()));
  EXPECT_TRUE(Exists(f));
  EXPECT_TRUE(Exists(Path(dir, "g")));
  EXPECT_EQ(Stat(f).st_nlink, 2u);
  EXPECT_EQ(Names(ListDir(dir)), (std::multiset<std::string>{"d", "f", "g"}));
}

void RenameNoreplace(const Context& ctx, const std::string& dir) {
  const std::string a = Path(dir, "a"), b = Path(dir, "b"), c = Path(dir, "c");
  ASSERT_NO_FATAL_FAILURE(WriteFile(a, "a"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(b, "b"));
  ASSERT_OK(::mkdir(Path(dir, "d").c_str(), 0755));
  // An existing target is refused whatever the file system supports: the kernel checks
  // before asking it.
  EXPECT_ERRNO(::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_NOREPLACE), EEXIST);
  EXPECT_ERRNO(::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, Path(dir, "d").c_str(), RENAME_NOREPLACE),
               EEXIST);
  EXPECT_EQ(ReadFile(a), "a");
  EXPECT_EQ(ReadFile(b), "b");
  // To a free name the file system itself must do it (or refuse the flag).
  int e = ERRNO_OF(::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, c.c_str(), RENAME_NOREPLACE));
  if (e == EINVAL && !Supported(ctx, ctx.caps.rename_noreplace, "RENAME_NOREPLACE")) {
    EXPECT_EQ(ReadFile(a), "a") << "a refused rename changes nothing";
    EXPECT_FALSE(Exists(c));
    return;
  }
  EXPECT_EQ(ErrnoName(e), ErrnoName(0)) << "RENAME_NOREPLACE to a free name";
  EXPECT_FALSE(Exists(a));
  EXPECT_EQ(ReadFile(c), "a");
}

void RenameExchange(const Context& ctx, const std::string& dir) {
  const std::string a = Path(dir, "a"), b = Path(dir, "b"), d = Path(dir, "d");
  ASSERT_NO_FATAL_FAILURE(WriteFile(a, "was a"));
  ASSERT_NO_FATAL_FAILURE(WriteFile(b, "was b"));
  ino_t a_ino = Stat(a).st_ino, b_ino = Stat(b).st_ino;
  int e = ERRNO_OF(::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE));
  if (e == EINVAL && !Supported(ctx, ctx.caps.rename_exchange, "RENAME_EXCHANGE")) {
    EXPECT_EQ(ReadFile(a), "was a");
    EXPECT_EQ(ReadFile(b), "was b") << "a refused exchange changes nothing";
    return;
  }
  EXPECT_EQ(ErrnoName(e), ErrnoName(0));
  EXPECT_EQ(ReadFile(a), "was b");
  EXPECT_EQ(ReadFile(b), "was a");
  EXPECT_EQ(Stat(a).st_ino, b_ino);
  EXPECT_EQ(Stat(b).st_ino, a_ino);
  // A file and a directory swap too, across parents.
  ASSERT_OK(::mkdir(d.c_str(), 0755));
  ASSERT_NO_FATAL_FAILURE(WriteFile(Path(d, "inner"), "i"));
  ASSERT_OK(::mkdir(Path(dir, "other").c_str(), 0755));
  ASSERT_OK(::rename(d.c_str(), Path(dir, "other/d").c_str()));
  EXPECT_OK(
      ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, Path(dir, "other/d").c_str(), RENAME_EXCHANGE));
  EXPECT_TRUE(S_ISDIR(Stat(a).st_mode));
  EXPECT_EQ(ReadFile(Path(a, "inner")), "i");
  EXPECT_EQ(Stat(Path(a, "..")).st_ino, Stat(dir).st_ino);
  EXPECT_EQ(ReadFile(Path(dir, "other/d")), "was b");
  // Both names must exist.
  EXPECT_ERRNO(
      ::renameat2(AT_FDCWD, b.c_str(), AT_FDCWD, Path(dir, "missing").c_str(), RENAME_EXCHANGE),
      ENOENT);
}

// ---------------------------------------------------------------------------------------
// Scale and data.

void SparseFileOver4GiB(const Context& ctx, const std::string& dir) {
  const std::string file = Path(dir, "sparse");
  const off_t offsets[] = {0, 4 * kGiB + 123, 5 * kGiB};
  std::vector<std::string> chunks;
  {
    Fd fd(::open(file.c_str(), O_RDWR | O_CREAT, 0644));
    ASSERT_GE(fd.get(), 0);
    for (size_t i = 0; i < 3; ++i) {
      chunks.push_back(RandomBytes(3 * kKiB + 5, 100 + i));
      ASSERT_TRUE(PwriteAll(fd.get(), chunks[i], offsets[i])) << ErrnoName(errno);
    }
    EXPECT_OK(::fsync(fd.get()));
  }
  const off_t size = 5 * kGiB + chunks[2].size();
  struct stat st = Stat(file);
  EXPECT_EQ(st.st_size, size);
  Fd fd(::open(file.c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(SameBytes(PreadAll(fd.get(), chunks[i].size(), offsets[i]), chunks[i]))
        << "at offset " << offsets[i];
  // Holes read as zeros: right after each chunk, in the middle, up to the 4 GiB mark.
  const std::pair<off_t, size_t> holes[] = {{chunks[0].size(), 65536},
                                            {2 * kGiB, 65536},
                                            {4 * kGiB - 65536, 65536 + 123},
                                            {4 * kGiB + 123 + chunks[1].size(), 65536},
                                            {5 * kGiB - 65536, 65536}};
  for (auto [at, len] : holes) {
    std::string got = PreadAll(fd.get(), len, at);
    EXPECT_EQ(got.size(), len) << "hole at " << at;
    EXPECT_TRUE(AllZero(got)) << "hole at " << at;
  }
  // The bytes around the middle chunk: zeros then data then zeros.
  std::string around = PreadAll(fd.get(), 8192, 4 * kGiB + 123 - 1000);
  ASSERT_EQ(around.size(), 8192u);
  EXPECT_TRUE(AllZero(around.substr(0, 1000)));
  EXPECT_TRUE(SameBytes(around.substr(1000, chunks[1].size()), chunks[1]));
  EXPECT_TRUE(AllZero(around.substr(1000 + chunks[1].size())));
  EXPECT_EQ(PreadAll(fd.get(), 100, size).size(), 0u) << "end of file";
  std::cout << "[   INFO   ] " << ctx.setup << ": sparse file st_blocks " << st.st_blocks << "\n";
  if (Supported(ctx, ctx.caps.sparse_blocks, "st_blocks of a sparse file")) {
    EXPECT_LT(st.st_blocks * 512, 1 * kMiB) << "only the written blocks are allocated";
  }
}

void HundredThousandFiles(const Context& ctx, const std::string& dir) {
  const int kFiles =
      Supported(ctx, ctx.caps.hundred_thousand, "100,000 files in one directory") ? 100000 : 20000;
  constexpr int kThreads = 8;
  const std::string big = Path(dir, "big");
  ASSERT_OK(::mkdir(big.c_str(), 0755));
  auto name = [](int i) {
    char buf[32];
    snprintf(buf, sizeof buf, "file-%06d", i);
    return std::string(buf);
  };
  // Each thread a stride of the names; failures are counted, the first one kept. A phase
  // in which no operation completes for a minute stops and fails with what it reached (a
  // hung share), however slow the setup is otherwise.
  constexpr auto kStall = std::chrono::seconds(60);
  auto parallel = [&](const char* what, const std::function<int(int)>& op) {
    using Clock = std::chrono::steady_clock;
    std::atomic<int> failures{0}, done{0};
    std::atomic<int> first_errno{0};
    auto t0 = Clock::now();
    std::atomic<Clock::rep> last_progress{t0.time_since_epoch().count()};
    auto stalled = [&] {
      return Clock::now() - Clock::time_point(Clock::duration(last_progress.load())) > kStall;
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kFiles && !stalled(); i += kThreads) {
          if (int e = op(i)) {
            int zero = 0;
            first_errno.compare_exchange_strong(zero, e);
            ++failures;
          }
          ++done;
          last_progress = Clock::now().time_since_epoch().count();
        }
      });
    }
    for (auto& th : threads) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "[   TIME   ] " << ctx.setup << ": " << what << " " << done << " files in " << s
              << " s (" << int(done / s) << "/s, " << kThreads << " threads)\n";
    EXPECT_EQ(failures.load(), 0) << what << ", first error " << ErrnoName(first_errno);
    EXPECT_EQ(done.load(), kFiles)
        << what << " stalled: nothing completed for " << kStall.count() << " s";
    return done.load() == kFiles;
  };

  if (!parallel("create", [&](int i) {
        return TryOpen(Path(big, name(i)), O_WRONLY | O_CREAT | O_EXCL, 0644);
      })) {
    return;  // the setup's directory goes with the setup
  }
  auto t0 = std::chrono::steady_clock::now();
  auto entries = ListDir(big, 32768);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[   TIME   ] " << ctx.setup << ": readdir " << entries.size() << " entries in " << s
            << " s\n";
  std::set<std::string> unique;
  for (const auto& e : entries) unique.insert(e.name);
  EXPECT_EQ(entries.size(), size_t(kFiles)) << "every entry exactly once";
  EXPECT_EQ(unique.size(), size_t(kFiles));
  if (!unique.empty()) {
    EXPECT_EQ(*unique.begin(), name(0));
    EXPECT_EQ(*unique.rbegin(), name(kFiles - 1));
  }
  std::set<ino_t> inodes;
  for (int i = 0; i < kFiles; i += 997) {
    struct stat st = Lstat(Path(big, name(i)));
    EXPECT_TRUE(S_ISREG(st.st_mode)) << name(i);
    EXPECT_EQ(st.st_size, 0) << name(i);
    inodes.insert(st.st_ino);
  }
  EXPECT_EQ(inodes.size(), size_t((kFiles + 996) / 997)) << "distinct inodes";
  if (!parallel("unlink", [&](int i) { return Try(::unlink(Path(big, name(i)).c_str())); })) return;
  EXPECT_TRUE(ListDir(big).empty());
  EXPECT_OK(::rmdir(big.c_str()));
}

void ConcurrentWriters(const Context& ctx, const std::string& dir) {
  (void)ctx;
  constexpr int kThreads = 8;
  constexpr size_t kRegion = kMiB;
  constexpr int kRecords = 2000;
  const std::string shared = Path(dir, "shared");
  ASSERT_NO_FATAL_FAILURE(WriteFile(shared, ""));
  auto record = [](int t, int i) {
    char buf[64];
    snprintf(buf, sizeof buf, "writer %d record %06d %s\n", t, i, i % 2 ? "odd" : "even");
    return std::string(buf);
  };
  std::vector<std::string> regions;
  for (int t = 0; t < kThreads; ++t) regions.push_back(RandomBytes(kRegion, 200 + t));
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    // Disjoint 1 MiB regions of one file, each through its own open, in odd-sized pieces.
    threads.emplace_back([&, t] {
      int fd = ::open(shared.c_str(), O_WRONLY);
      if (fd < 0) {
        ++errors;
        return;
      }
      for (size_t off = 0; off < kRegion; off += 12345) {
        size_t n = std::min<size_t>(12345, kRegion - off);
        if (!PwriteAll(fd, regions[t].substr(off, n), t * kRegion + off)) ++errors;
      }
      if (::close(fd) != 0) ++errors;
    });
    // Each appender its own file, one record per write().
    threads.emplace_back([&, t] {
      int fd =
          ::open(Path(dir, "log" + std::to_string(t)).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd < 0) {
        ++errors;
        return;
      }
      for (int i = 0; i < kRecords; ++i) {
        std::string r = record(t, i);
        if (::write(fd, r.data(), r.size()) != ssize_t(r.size())) ++errors;
      }
      if (::close(fd) != 0) ++errors;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::string want;
  for (const auto& r : regions) want += r;
  EXPECT_TRUE(SameBytes(ReadFile(shared), want));
  for (int t = 0; t < kThreads; ++t) {
    std::string log;
    for (int i = 0; i < kRecords; ++i) log += record(t, i);
    EXPECT_TRUE(SameBytes(ReadFile(Path(dir, "log" + std::to_string(t))), log)) << "log" << t;
  }
}

void DataSurvivesRemount(const Context& ctx, const std::string& dir) {
  struct File {
    std::string name;
    std::string data;
  };
  std::vector<File> files;
  const size_t sizes[] = {0, 1, 4095, 4096, 4097, 65536, kMiB + 7, 33 * kMiB};
  uint64_t seed = 300;
  ASSERT_OK(::mkdir(Path(dir, "nested").c_str(), 0755));
  for (size_t size : sizes) {
    for (const char* where : {"", "nested/"}) {
      if (*where && size > kMiB + 7) continue;  // one 33 MiB file is enough
      files.push_back(
          {std::string(where) + "size-" + std::to_string(size), RandomBytes(size, seed++)});
    }
  }
  for (const auto& f : files) ASSERT_NO_FATAL_FAILURE(WriteFile(Path(dir, f.name), f.data));
  // Overwrite part of one file in place after it was closed.
  {
    Fd fd(::open(Path(dir, "size-65536").c_str(), O_WRONLY));
    ASSERT_GE(fd.get(), 0);
    ASSERT_TRUE(PwriteAll(fd.get(), "patched", 1000));
  }
  for (auto& f : files)
    if (f.name == "size-65536") f.data.replace(1000, 7, "patched");

  std::string error;
  ASSERT_TRUE(ctx.remount(&error)) << error;
  for (const auto& f : files) {
    EXPECT_EQ(Stat(Path(dir, f.name)).st_size, off_t(f.data.size())) << f.name;
    EXPECT_TRUE(SameBytes(ReadFile(Path(dir, f.name)), f.data)) << f.name;
  }
  if (ctx.backing_root.empty()) return;
  // The share's files are the backing directory's files, byte for byte.
  std::string relative = dir.substr(ctx.root.size());
  for (const auto& f : files) {
    std::string backing = ctx.backing_root + relative + "/" + f.name;
    EXPECT_TRUE(SameBytes(ReadFile(backing), f.data)) << backing;
  }
}

}  // namespace dpustor::testing::posix
