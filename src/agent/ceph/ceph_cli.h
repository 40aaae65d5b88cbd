// CephCli runs the `ceph` and `rbd` command-line tools as the Ceph admin node's operator
// would, with --format json (unless the subcommand has no such option), the agent's own
// config, keyring and cephx user, and a time limit. A failing command (non-zero exit,
// timeout, output that is not JSON) becomes an Error naming the command and quoting its
// stderr; it never throws. The command's stdout is never quoted in an error, since some
// commands print secrets (`ceph auth get`).
// Thread-safety: const; safe from several threads.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::agent::ceph {

struct CephCliOptions {
  std::string ceph = "ceph";
  std::string rbd = "rbd";
  std::string conf;     // --conf; empty: the tools' default
  std::string keyring;  // --keyring; empty: the tools' default
  std::string user;     // --id; empty: "admin"
  std::chrono::milliseconds timeout{20000};
};

// How one command is run.
struct CliRun {
  // Appends --format json and parses stdout. rbd's mutating subcommands (create, resize, rm,
  // snap create, snap purge) reject --format; run them with json = false: their output is
  // ignored and success is null.
  bool json = true;
  // When set, receives the exit status of a command that ran and failed (0 otherwise). Both
  // tools exit with the errno of the failure: 2 ENOENT, 16 EBUSY, 17 EEXIST, 22 EINVAL,
  // 39 ENOTEMPTY.
  int* exit_code = nullptr;
};

class CephCli {
 public:
  explicit CephCli(CephCliOptions options) : options_(std::move(options)) {}

  Result<nlohmann::json> Ceph(const std::vector<std::string>& args, CliRun run = {}) const;
  Result<nlohmann::json> Rbd(const std::vector<std::string>& args, CliRun run = {}) const;

  // The full argv that would run `tool` with `args` (for logs and tests).
  std::vector<std::string> Command(const std::string& tool, const std::vector<std::string>& args,
                                   bool json = true) const;

 private:
  Result<nlohmann::json> Run(const std::string& tool, const std::vector<std::string>& args,
                             CliRun run) const;
  CephCliOptions options_;
};

}  // namespace dpustor::agent::ceph
