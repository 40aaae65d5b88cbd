// Fleet runs dpustor's daemons for an integration test as children of the test: the
// manager, SNAP simulators, DPU agents and Ceph agents, on free loopback ports in one test
// directory, and offers the operator's views (REST, dpustorctl, raw SNAP RPC).
// Not thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/child_process.h"
#include "harness/lab.h"

namespace dpustor::testing {

class Fleet {
 public:
  // `dir` holds logs, sockets, the database and the token; `ceph` may be null.
  Fleet(std::string dir, const CephLab* ceph);

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string server() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  std::string agent_address() const { return "127.0.0.1:" + std::to_string(agent_port_); }
  std::string token_file() const { return Path("token"); }

  // Each Start* returns the process; the caller keeps it (dropping it stops the daemon).
  ChildProcess StartManager(std::vector<std::string> extra = {});
  ChildProcess StartSim(const std::string& dialect, const std::string& socket,
                        std::vector<std::string> extra = {});
  ChildProcess StartDpuAgent(const std::string& name, const std::string& host,
                             const std::string& socket, std::vector<std::string> extra = {});
  ChildProcess StartCephAgent(const std::string& name, std::vector<std::string> extra = {});

  nlohmann::json Get(const std::string& path) const { return GetJson(server(), path); }
  nlohmann::json Dpu(const std::string& name) const { return Get("/api/v1/dpus/" + name); }
  nlohmann::json Volume(const std::string& name) const { return Get("/api/v1/volumes/" + name); }

  // dpustorctl -o json ARGS: the parsed output, or null when it failed.
  nlohmann::json Ctl(std::vector<std::string> args, int* exit_code = nullptr) const;
  // A raw JSON-RPC call on a SNAP socket; null on failure (the error in *error).
  nlohmann::json SnapCall(const std::string& socket, const std::string& method,
                          const nlohmann::json& params, std::string* error = nullptr) const;

 private:
  std::string dir_;
  const CephLab* ceph_;
  int agent_port_;
  int http_port_;
};

}  // namespace dpustor::testing
