// CephCli runs the `ceph` and `rbd` command-line tools as the Ceph admin node's operator
// would, always with --format json, the agent's own config, keyring and cephx user, and a
// time limit. A failing command (non-zero exit, timeout, output that is not JSON) becomes an
// Error naming the command and quoting its stderr; it never throws.
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

class CephCli {
 public:
  explicit CephCli(CephCliOptions options) : options_(std::move(options)) {}

  Result<nlohmann::json> Ceph(const std::vector<std::string>& args) const;
  Result<nlohmann::json> Rbd(const std::vector<std::string>& args) const;

  // The full argv that would run `tool` with `args` (for logs and tests).
  std::vector<std::string> Command(const std::string& tool,
                                   const std::vector<std::string>& args) const;

 private:
  Result<nlohmann::json> Run(const std::string& tool, const std::vector<std::string>& args) const;
  CephCliOptions options_;
};

}  // namespace dpustor::agent::ceph
