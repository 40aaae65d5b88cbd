#include "common/unix_listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/json_rpc.h"

namespace dpustor {
namespace {

bool ToAddress(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr->sun_path) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

Error Failed(const std::string& what) {
  return Error{rpc::kFailed, what};
}

// errno is read before anything else can change it (building the message allocates).
Error Errno(const std::string& call) {
  const int e = errno;
  return Failed(call + ": " + std::strerror(e));
}

}  // namespace

bool UnixSocketAlive(const std::string& path) {
  sockaddr_un addr;
  if (!ToAddress(path, &addr)) return false;
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!probe.valid()) return false;
  return ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

Result<UniqueFd> ListenUnix(const std::string& path, int backlog) {
  sockaddr_un addr;
  if (!ToAddress(path, &addr))
    return Failed("path empty or longer than " + std::to_string(sizeof addr.sun_path - 1));
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Failed("exists and is not a socket");
    if (UnixSocketAlive(path)) return Failed("another process is serving it");
    ::unlink(path.c_str());  // stale: left by a process that died
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Errno("socket");

  // The temporary name: the path plus the PID, so two daemons started at once on one path
  // do not share it. When that does not fit in sun_path, bind the path itself (the window
  // between bind and listen is back, but nothing else is lost).
  std::string tmp = path + "." + std::to_string(::getpid()) + ".tmp";
  sockaddr_un tmp_addr;
  const bool use_tmp = ToAddress(tmp, &tmp_addr);
  if (use_tmp) ::unlink(tmp.c_str());  // ours from an earlier life of this PID, if any
  const sockaddr_un& bind_addr = use_tmp ? tmp_addr : addr;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bind_addr), sizeof bind_addr) != 0)
    return Errno("bind");
  if (::listen(fd.get(), backlog) != 0) {
    Error e = Errno("listen");
    ::unlink(bind_addr.sun_path);
    return e;
  }
  if (use_tmp) {
    // NOREPLACE: a daemon that took the path since the check above keeps it.
    int r = ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
    if (r != 0 && errno == EINVAL) r = ::rename(tmp.c_str(), path.c_str());  // fs without it
    if (r != 0) {
      Error e = errno == EEXIST ? Failed("another process took the path meanwhile")
                                : Errno("rename into place");
      ::unlink(tmp.c_str());
      return e;
    }
  }
  return fd;
}

}  // namespace dpustor
