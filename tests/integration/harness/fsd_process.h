// dpustor-fsd from the build tree, run as a child of the test, serving one share on a FUSE
// mount (the /dev/fuse transport). Stop() sends SIGTERM and waits until the mount is gone.
// Not thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/child_process.h"

namespace dpustor::testing {

class FsdProcess {
 public:
  struct Options {
    std::string backend_url;              // local:/dir, memory:, nfs://...
    std::string mount_dir;                // created if missing
    std::string control_socket;           // empty: DIR/fsd.sock under the log dir
    std::vector<std::string> extra_args;  // e.g. {"--threads", "4", "--writeback"}
  };

  // Starts the daemon and waits until `mount_dir` is a FUSE mount answering stat().
  bool Start(const Options& options, const std::string& log_path, std::chrono::seconds timeout,
             std::string* error);
  // SIGTERM; waits for the daemon to exit and the mount to disappear. Returns exit status.
  int Stop();
  bool running() { return child_.running(); }

  // One JSON-RPC call on the daemon's control socket; null on failure.
  nlohmann::json Control(const std::string& method, const nlohmann::json& params = {});

  const std::string& mount_dir() const { return options_.mount_dir; }
  std::string Log() const { return child_.Log(); }

 private:
  Options options_;
  ChildProcess child_;
};

// True when `dir` is currently a mount point of type fuse.* (per /proc/self/mountinfo).
bool IsFuseMount(const std::string& dir);

}  // namespace dpustor::testing
