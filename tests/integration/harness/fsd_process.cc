#include "harness/fsd_process.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>

#include "common/rpc_client.h"
#include "fs/transport/devfuse/fuse_mount.h"
#include "harness/lab.h"

namespace dpustor::testing {

namespace {

// The absolute form of `dir` without touching `dir` itself (a hung FUSE mount would block
// a stat() on it): only its parent is resolved.
std::string CanonicalMountPoint(const std::string& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir).lexically_normal();
  if (p.has_filename() == false) p = p.parent_path();
  char parent[PATH_MAX];
  if (::realpath(p.parent_path().c_str(), parent) == nullptr) return p.string();
  std::string out = parent;
  if (out != "/") out += "/";
  return out + p.filename().string();
}

// stat() on `dir` from a helper thread, so a daemon that never answers cannot hang the test.
bool StatAnswers(const std::string& dir, std::chrono::milliseconds timeout) {
  struct State {
    std::atomic<int> result{-1};  // -1 pending, 0 failed, 1 ok
  };
  auto state = std::make_shared<State>();
  std::thread([state, dir] {
    struct stat st;
    state->result = ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? 1 : 0;
  }).detach();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (state->result.load() == -1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return state->result.load() == 1;
}

void LazyUnmount(const std::string& dir) {
  if (::geteuid() == 0) {
    ::umount2(dir.c_str(), MNT_DETACH);
  } else {
    std::string cmd = "fusermount3 -u -z -- '" + dir + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) ::umount2(dir.c_str(), MNT_DETACH);
  }
}

}  // namespace

bool IsFuseMount(const std::string& dir) {
  std::string target = CanonicalMountPoint(dir);
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool mounted = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (fs::devfuse::UnescapeMountinfo(mount_point) != target) continue;
    size_t dash = line.find(" - ");
    // The newest mount on a point hides the older ones; the last line wins.
    mounted = dash != std::string::npos && line.compare(dash + 3, 4, "fuse") == 0;
  }
  return mounted;
}

bool FsdProcess::Start(const Options& options, const std::string& log_path,
                       std::chrono::seconds timeout, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(options.mount_dir, ec);
  if (ec) {
    *error = "cannot create " + options.mount_dir + ": " + ec.message();
    return false;
  }
  if (IsFuseMount(options.mount_dir)) {
    *error = options.mount_dir + " is already a FUSE mount";  // not ours: Stop() leaves it
    return false;
  }
  options_ = options;
  if (options_.control_socket.empty()) {
    options_.control_socket = std::filesystem::path(log_path).parent_path().string() + "/fsd.sock";
  }
  std::vector<std::string> argv = {Bin("src/fs/fsd/dpustor-fsd"),
                                   "--transport",
                                   "fuse",
                                   "--mount",
                                   options_.mount_dir,
                                   "--backend",
                                   options_.backend_url,
                                   "--control-socket",
                                   options_.control_socket};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  try {
    child_ = ChildProcess(argv, log_path);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  bool ready = WaitFor(
      [&] {
        if (!child_.running()) return true;
        return IsFuseMount(options_.mount_dir) &&
               StatAnswers(options_.mount_dir, std::chrono::seconds(2));
      },
      timeout);
  if (!child_.running()) {
    *error = "dpustor-fsd exited before serving " + options_.mount_dir + ":\n" + child_.Log();
    return false;
  }
  if (!ready) {
    *error = "dpustor-fsd did not serve " + options_.mount_dir + " within " +
             std::to_string(timeout.count()) + " s:\n" + child_.Log();
    Stop();
    return false;
  }
  return true;
}

int FsdProcess::Stop() {
  int status = child_.Stop(std::chrono::seconds(15));
  if (options_.mount_dir.empty()) return status;
  if (!WaitFor([&] { return !IsFuseMount(options_.mount_dir); }, std::chrono::seconds(5))) {
    std::cerr << "FsdProcess: " << options_.mount_dir
              << " was still mounted after dpustor-fsd exited; unmounting it\n";
    LazyUnmount(options_.mount_dir);
    return -1;
  }
  return status;
}

nlohmann::json FsdProcess::Control(const std::string& method, const nlohmann::json& params) {
  auto client = rpc::RpcClient::Connect("unix:" + options_.control_socket, std::chrono::seconds(5));
  if (!client.ok()) return nullptr;
  auto result = (*client)->Call(method, params, std::chrono::seconds(10));
  if (!result.ok()) return nullptr;
  return *result;
}

}  // namespace dpustor::testing
