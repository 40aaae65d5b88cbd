// ManagerProcess runs one dpustor-manager as a child of the benchmark: a fresh temporary
// directory (token file, database, log), loopback ports picked free beforehand, and the
// child's CPU time and memory read from /proc. The child is stopped with SIGTERM by its PID
// (SIGKILL if it does not exit in time) when the object goes away, at exit() through an
// atexit hook, and by the kernel (PR_SET_PDEATHSIG) if the benchmark itself dies.
// Thread-safety: use from one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace dpustor::bench {

struct ManagerOptions {
  std::string binary;
  unsigned threads = 0;  // 0: the manager's default
  std::string log_level = "info";
  int heartbeat_timeout_ms = 0;  // 0: the manager's default
  std::vector<std::string> extra_args;
  bool keep_dir = false;
};

struct ProcSample {
  double cpu_seconds = 0;  // utime + stime
  std::uint64_t rss_kb = 0;
  std::uint64_t peak_rss_kb = 0;
  int threads = 0;
};

// The value of an unlabelled sample in Prometheus text, e.g. "dpustor_agent_connections".
std::optional<double> MetricValue(const std::string& text, const std::string& name);

class ManagerProcess {
 public:
  // Forks the manager; call before starting any other thread.
  static Result<std::unique_ptr<ManagerProcess>> Start(const ManagerOptions& options);
  ~ManagerProcess();
  ManagerProcess(const ManagerProcess&) = delete;
  ManagerProcess& operator=(const ManagerProcess&) = delete;

  // Waits until the agent port accepts connections; fails if the child exits first.
  Status WaitReady(std::chrono::milliseconds timeout);
  // True while the child has not exited (reaps it if it has).
  bool Running();
  Result<ProcSample> Sample() const;
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns how the child ended, e.g. "exit 0".
  std::string Stop(std::chrono::milliseconds grace);

  pid_t pid() const { return pid_; }
  const std::string& agent_endpoint() const { return agent_endpoint_; }
  const std::string& http_endpoint() const { return http_endpoint_; }
  const std::string& token() const { return token_; }
  const std::string& dir() const { return dir_; }
  std::string LogTail(std::size_t lines) const;

  // GET `path` from the manager's HTTP endpoint (blocking); the body of a 200 answer.
  Result<std::string> HttpGet(const std::string& path, std::chrono::milliseconds timeout) const;

 private:
  ManagerProcess() = default;
  void RemoveDir();

  ManagerOptions options_;
  std::string dir_;
  std::string token_;
  std::string agent_endpoint_;
  std::string http_endpoint_;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
};

}  // namespace dpustor::bench
