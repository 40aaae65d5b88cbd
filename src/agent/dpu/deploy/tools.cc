#include "agent/dpu/deploy/tools.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/dpu/deploy/manifest.h"
#include "common/unique_fd.h"

namespace dpustor::agent::dpu::deploy {

namespace fs = std::filesystem;

std::string DeployTools::ManifestPath() const {
  return root + manifest_dir + "/" + kManifestFile;
}
std::string DeployTools::RpcInitPath(bool snap3) const {
  return root + (snap3 ? snap3_conf_dir : snap_conf_dir) + "/" + kRpcInitFile;
}
std::string DeployTools::NrHugepagesPath() const {
  return sys_root + "/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
}
std::string DeployTools::MeminfoPath() const {
  return proc_root + "/meminfo";
}
std::string DeployTools::StatePath() const {
  return state_dir + "/state.json";
}

std::optional<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return std::nullopt;
  auto usable = [](const std::string& p) {
    std::error_code ec;
    return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.find('/') != std::string::npos)
    return usable(name) ? std::optional<std::string>(name) : std::nullopt;
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (usable(candidate)) return candidate;
  }
  return std::nullopt;
}

Status WriteFileAtomic(const std::string& path, const std::string& text, int mode) {
  auto fail = [&](const std::string& what) {
    return Error{0, what + " " + path + ": " + std::strerror(errno)};
  };
  fs::path target(path);
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return Error{0, "cannot create " + target.parent_path().string() + ": " + ec.message()};
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (fd.get() < 0) return fail("cannot create a temporary file for");
    ::fchmod(fd.get(), mode);  // umask must not narrow what the reader needs
    std::size_t done = 0;
    while (done < text.size()) {
      ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        Status s = fail("cannot write");
        ::unlink(tmp.c_str());
        return s;
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0) {
      Status s = fail("cannot fsync");
      ::unlink(tmp.c_str());
      return s;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = fail("cannot rename into");
    ::unlink(tmp.c_str());
    return s;
  }
  UniqueFd dir(::open(target.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() >= 0) ::fsync(dir.get());
  return {};
}

Result<std::optional<std::string>> ReadFileIfExists(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return std::optional<std::string>();
    return Error{0, "cannot read " + path};
  }
  std::ostringstream text;
  text << in.rdbuf();
  return std::optional<std::string>(text.str());
}

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return Error{0, "cannot remove " + path + ": " + std::strerror(errno)};
  return {};
}

}  // namespace dpustor::agent::dpu::deploy
