#include "fs/transport/devfuse/fuse_mount.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "common/fd_passing.h"
#include "common/json_rpc.h"

extern char** environ;

namespace dpustor::fs::devfuse {

namespace {

constexpr const char* kFusermount = "fusermount3";
constexpr const char* kSubtype = "dpustor";

Error Failed(const std::string& what) {
  return Error{rpc::kFailed, what};
}

std::string Errno(int err) {
  return std::strerror(err);
}

// Runs fusermount3 with `args`, `comm_fd` (or -1) passed down as _FUSE_COMMFD; returns
// its pid or -1 with errno-style `*err`.
pid_t SpawnFusermount(const std::vector<std::string>& args, int comm_fd, int* err) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "_FUSE_COMMFD=", 13) != 0) env_store.emplace_back(*e);
  }
  if (comm_fd >= 0) env_store.push_back("_FUSE_COMMFD=" + std::to_string(comm_fd));
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = args;
  argv_store.insert(argv_store.begin(), kFusermount);
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  *err = posix_spawnp(&pid, kFusermount, nullptr, nullptr, argv.data(), envp.data());
  return *err == 0 ? pid : -1;
}

// Exit status of a finished child, or -signal.
int WaitChild(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

// Receives the session fd fusermount3 sends with SCM_RIGHTS; -1 if it sent none.
int ReceiveFd(int sock) {
  char byte = 0;
  std::vector<UniqueFd> fds;
  bool truncated = false;
  if (RecvWithFds(sock, &byte, 1, 1, &fds, &truncated) <= 0 || fds.empty()) return -1;
  return fds.front().Release();
}

// Mount points in /proc/self/mountinfo escape space, tab, newline and backslash as \ooo.

// The device minor of the newest fuse mount at `dir`: the fusectl connection number.
uint32_t ConnectionId(const std::string& dir) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  uint32_t id = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string mount_id, parent_id, dev, root, mount_point;
    fields >> mount_id >> parent_id >> dev >> root >> mount_point;
    size_t dash = line.find(" - ");
    if (dash == std::string::npos || UnescapeMountinfo(mount_point) != dir) continue;
    if (line.compare(dash + 3, 4, "fuse") != 0) continue;
    size_t colon = dev.find(':');
    if (colon != std::string::npos) id = std::strtoul(dev.c_str() + colon + 1, nullptr, 10);
  }
  return id;
}

Result<int> MountDirect(const FuseMountOptions& o, const std::string& dir) {
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return Failed("cannot open /dev/fuse: " + Errno(errno));
  std::string options = KernelMountOptions(o, fd, ::getuid(), ::getgid());
  unsigned long flags = MS_NOSUID | MS_NODEV | (o.read_only ? MS_RDONLY : 0);
  std::string source = o.source.empty() ? kSubtype : o.source;
  std::string fstype = std::string("fuse.") + kSubtype;
  int rc = ::mount(source.c_str(), dir.c_str(), fstype.c_str(), flags, options.c_str());
  if (rc != 0 && errno == ENODEV) {
    // Kernels without subtype support: plain "fuse" and the subtype as an option.
    options += std::string(",subtype=") + kSubtype;
    rc = ::mount(source.c_str(), dir.c_str(), "fuse", flags, options.c_str());
  }
  if (rc != 0) {
    int err = errno;
    ::close(fd);
    return Failed("mount of " + dir + " failed: " + Errno(err));
  }
  return fd;
}

Result<int> MountWithFusermount(const FuseMountOptions& o, const std::string& dir) {
  int sv[2];
  // Our end is close-on-exec; fusermount3 inherits only its own end.
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return Failed("socketpair: " + Errno(errno));
  int flags = ::fcntl(sv[1], F_GETFD);
  ::fcntl(sv[1], F_SETFD, flags & ~FD_CLOEXEC);
  std::string options = std::string(o.read_only ? "ro" : "rw") +
                        ",nosuid,nodev,fsname=" + (o.source.empty() ? kSubtype : o.source) +
                        ",subtype=" + kSubtype + ",max_read=" + std::to_string(o.max_read);
  if (o.allow_other) options += ",allow_other";
  if (o.default_permissions) options += ",default_permissions";
  int err = 0;
  pid_t pid = SpawnFusermount({"-o", options, "--", dir}, sv[1], &err);
  ::close(sv[1]);
  if (pid < 0) {
    ::close(sv[0]);
    return Failed(std::string("cannot run ") + kFusermount + ": " + Errno(err));
  }
  int fd = ReceiveFd(sv[0]);
  ::close(sv[0]);
  int status = WaitChild(pid);
  if (fd < 0) {
    return Failed("mount of " + dir + " through " + kFusermount + " failed (exit status " +
                  std::to_string(status) + ", its message is in the log above)");
  }
  return fd;
}

}  // namespace

std::string UnescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    bool octal = s[i] == '\\' && i + 3 < s.size();
    for (size_t k = 1; octal && k <= 3; ++k) octal = s[i + k] >= '0' && s[i + k] <= '7';
    if (octal) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string KernelMountOptions(const FuseMountOptions& options, int fd, uint32_t uid,
                               uint32_t gid) {
  std::string s = "fd=" + std::to_string(fd) + ",rootmode=40000,user_id=" + std::to_string(uid) +
                  ",group_id=" + std::to_string(gid);
  if (options.allow_other) s += ",allow_other";
  if (options.default_permissions) s += ",default_permissions";
  s += ",max_read=" + std::to_string(options.max_read);
  return s;
}

Result<std::unique_ptr<FuseMount>> FuseMount::Mount(const FuseMountOptions& options) {
  if (options.mount_dir.empty()) return Error{rpc::kInvalidParams, "no mount directory"};
  char resolved[PATH_MAX];
  if (::realpath(options.mount_dir.c_str(), resolved) == nullptr)
    return Failed("mount directory " + options.mount_dir + ": " + Errno(errno));
  struct stat st;
  if (::stat(resolved, &st) != 0 || !S_ISDIR(st.st_mode))
    return Failed("mount directory " + options.mount_dir + " is not a directory");

  bool direct = ::geteuid() == 0 && !options.use_fusermount;
  Result<int> fd = direct ? MountDirect(options, resolved) : MountWithFusermount(options, resolved);
  if (!fd.ok()) return fd.error();

  std::unique_ptr<FuseMount> m(new FuseMount);
  m->session_fd_ = *fd;
  m->mount_dir_ = resolved;
  m->mounted_ = true;
  m->connection_id_ = ConnectionId(resolved);
  spdlog::info("devfuse: mounted {} ({}, connection {})", m->mount_dir_,
               direct ? "mount(2)" : kFusermount, m->connection_id_);
  return m;
}

FuseMount::~FuseMount() {
  Unmount();
  if (session_fd_ >= 0) ::close(session_fd_);
}

Status FuseMount::Unmount() {
  std::lock_guard lock(mu_);
  if (!mounted_) return Status::Ok();
  mounted_ = false;
  if (::geteuid() == 0) {
    if (::umount2(mount_dir_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      if (errno != EINVAL && errno != ENOENT)
        return Failed("unmount of " + mount_dir_ + ": " + Errno(errno));
      spdlog::info("devfuse: {} was already unmounted", mount_dir_);
      return Status::Ok();
    }
  } else {
    int err = 0;
    pid_t pid = SpawnFusermount({"-u", "-z", "--", mount_dir_}, -1, &err);
    if (pid < 0) return Failed(std::string("cannot run ") + kFusermount + ": " + Errno(err));
    if (int status = WaitChild(pid); status != 0) {
      return Failed(std::string(kFusermount) + " -u " + mount_dir_ + " exited with " +
                    std::to_string(status));
    }
  }
  spdlog::info("devfuse: unmounted {}", mount_dir_);
  return Status::Ok();
}

bool FuseMount::Abort() {
  if (connection_id_ == 0) return false;
  std::string path = "/sys/fs/fuse/connections/" + std::to_string(connection_id_) + "/abort";
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, "1", 1) == 1;
  ::close(fd);
  if (ok) spdlog::warn("devfuse: aborted the session of {}", mount_dir_);
  return ok;
}

}  // namespace dpustor::fs::devfuse
