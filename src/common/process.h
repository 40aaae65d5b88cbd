// RunProcess runs a command (argv, no shell) with a time limit and captures its output.
// A command that outlives the limit is killed by its PID and reaped; a missing executable
// is a clear error, not an exception. Safe to call from several threads at once.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace dpustor {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

struct ProcessOptions {
  std::chrono::milliseconds timeout{10000};
  std::size_t max_output_bytes = 64 << 20;  // per stream; beyond this the command fails
  std::vector<std::string> extra_env;       // "KEY=VALUE" added to the inherited environment
};

// Fails (with the command named in the message) when the command cannot start, times out,
// or writes more than allowed. A non-zero exit is not a failure here: callers judge it.
Result<ProcessResult> RunProcess(const std::vector<std::string>& argv,
                                 const ProcessOptions& options = {});

// "ceph osd pool ls" style rendering of argv for messages and logs.
std::string JoinCommand(const std::vector<std::string>& argv);

}  // namespace dpustor
