#include "harness/fleet.h"

#include <algorithm>

#include "common/rpc_client.h"

namespace dpustor::testing {

using namespace std::chrono_literals;
using json = nlohmann::json;

Fleet::Fleet(std::string dir, const CephLab* ceph)
    : dir_(std::move(dir)), ceph_(ceph), agent_port_(FreePort()), http_port_(FreePort()) {
  WriteFile(Path("token"), "lab-token-0123456789\n");
}

ChildProcess Fleet::StartManager(std::vector<std::string> extra) {
  std::vector<std::string> argv = {Bin("src/manager/dpustor-manager"),
                                   "--listen",
                                   agent_address(),
                                   "--http",
                                   "127.0.0.1:" + std::to_string(http_port_),
                                   "--db",
                                   Path("manager.db"),
                                   "--token-file",
                                   token_file(),
                                   "--flush-ms",
                                   "200",
                                   "--history-interval-s",
                                   "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess p(argv, Path("manager.log"));
  WaitFor([&] { return !Get("/healthz").is_null() || !p.running(); }, 10s);
  return p;
}

ChildProcess Fleet::StartSim(const std::string& dialect, const std::string& socket,
                             std::vector<std::string> extra) {
  std::vector<std::string> argv = {Bin("src/sim/dpustor-snap-sim"), "--socket", socket, "--dialect",
                                   dialect};
  // Two PFs with two VFs each unless `extra` says otherwise.
  for (const char* flag : {"--pfs", "--vfs"})
    if (std::find(extra.begin(), extra.end(), flag) == extra.end())
      argv.insert(argv.end(), {flag, "2"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess p(argv, Path("sim-" + dialect + ".log"));
  WaitFor([&] { return rpc::RpcClient::Connect(socket, 1s).ok() || !p.running(); }, 10s);
  return p;
}

ChildProcess Fleet::StartDpuAgent(const std::string& name, const std::string& host,
                                  const std::string& socket, std::vector<std::string> extra) {
  std::vector<std::string> argv = {Bin("src/agent/dpu/dpustor-dpu-agent"),
                                   "--manager",
                                   agent_address(),
                                   "--name",
                                   name,
                                   "--host",
                                   host,
                                   "--snap-socket",
                                   socket,
                                   "--token-file",
                                   token_file(),
                                   "--report-interval-ms",
                                   "500",
                                   "--state-dir",
                                   Path("state-" + name)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ChildProcess(argv, Path("agent-" + name + ".log"));
}

ChildProcess Fleet::StartCephAgent(const std::string& name, std::vector<std::string> extra) {
  std::vector<std::string> argv = {Bin("src/agent/ceph/dpustor-ceph-agent"),
                                   "--manager",
                                   agent_address(),
                                   "--name",
                                   name,
                                   "--token-file",
                                   token_file(),
                                   "--report-interval-ms",
                                   "1000"};
  // The lab cluster's identity, for what `extra` does not set itself.
  auto given = [&](const char* flag) {
    return std::find(extra.begin(), extra.end(), flag) != extra.end();
  };
  if (ceph_ != nullptr && !given("--ceph-conf"))
    argv.insert(argv.end(), {"--ceph-conf", ceph_->conf()});
  if (ceph_ != nullptr && !given("--keyring"))
    argv.insert(argv.end(), {"--keyring", ceph_->keyring()});
  if (ceph_ != nullptr && !given("--user")) argv.insert(argv.end(), {"--user", "admin"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ChildProcess(argv, Path("agent-" + name + ".log"));
}

json Fleet::Ctl(std::vector<std::string> args, int* exit_code) const {
  args.insert(args.begin(), {Bin("src/cli/dpustorctl"), "--server", server(), "-o", "json"});
  ProcessOptions o;
  o.timeout = 180s;
  auto r = RunProcess(args, o);
  if (exit_code != nullptr) *exit_code = r.ok() ? r->exit_code : -1;
  if (!r.ok() || r->exit_code != 0) return nullptr;
  return json::parse(r->out, nullptr, false);
}

json Fleet::SnapCall(const std::string& socket, const std::string& method, const json& params,
                     std::string* error) const {
  auto c = rpc::RpcClient::Connect(socket, 2s);
  if (!c.ok()) {
    if (error) *error = c.error().message;
    return nullptr;
  }
  auto r = (*c)->Call(method, params, 10s);
  if (!r.ok()) {
    if (error) *error = r.error().message;
    return nullptr;
  }
  return *r;
}

}  // namespace dpustor::testing
