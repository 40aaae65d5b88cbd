// ChildProcess starts a program as a child of the test, its output going to a log file, and
// stops it by PID (SIGTERM, then SIGKILL after a grace period) when asked or when destroyed,
// so a failing test never leaves daemons behind.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace dpustor::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;

  bool running();
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }

  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status (or -signal).
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  // SIGKILL at once, as a crash would.
  void Kill();
  // Waits for the child to exit by itself; -1 on timeout.
  int Wait(std::chrono::milliseconds timeout);

  std::string Log() const;

 private:
  int Reap(bool block);
  pid_t pid_ = -1;
  int status_ = 0;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreePort();

// Polls `condition` every 100 ms until it is true or `timeout` passes.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A fresh directory under the system temp dir, removed by the destructor.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& text);

}  // namespace dpustor::testing
