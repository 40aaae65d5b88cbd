// dpustor-dpu-agent: runs on a BlueField's Arm cores. Reports the DPU's health and SNAP's
// state to the manager and (later) applies what the manager wants on this DPU.
#include "agent/common/agent_main.h"
#include "agent/dpu/system_status.h"
#include "common/agent_protocol.h"
#include "snap/snap_client.h"

using namespace dpustor;

int main(int argc, char** argv) {
  CLI::App app{"dpustor-dpu-agent: DPU status and SNAP control for dpustor"};
  agent::AgentFlags flags;
  std::string host;
  std::string snap_socket = "/var/tmp/spdk.sock";
  int snap_timeout_ms = 3000;
  agent::dpu::SystemPaths paths;
  agent::AddAgentOptions(app, flags);
  app.add_option("--host", host, "name of the server this DPU sits in");
  app.add_option("--snap-socket", snap_socket, "SNAP's JSON-RPC Unix socket")
      ->capture_default_str();
  app.add_option("--snap-timeout-ms", snap_timeout_ms, "timeout of one SNAP call")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--proc-root", paths.proc_root, "where /proc is (tests)")->capture_default_str();
  app.add_option("--sys-root", paths.sys_root, "where /sys is (tests)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  // Both collectors keep baselines between calls (CPU, link counters); they are used only
  // from the session's single collector thread.
  auto system = std::make_shared<agent::dpu::SystemStatusCollector>(paths);
  auto snap =
      std::make_shared<snap::SnapClient>(snap_socket, std::chrono::milliseconds(snap_timeout_ms));
  auto collect = [system, snap, host, name = flags.name]() -> nlohmann::json {
    auto started = std::chrono::steady_clock::now();
    nlohmann::json status = {{"name", name},
                             {"host", host.empty() ? nullptr : nlohmann::json(host)}};
    status["system"] = system->Collect();
    status["snap"] = snap->CollectStatus();
    status["collect_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
    return status;
  };
  return agent::RunAgent("dpustor-dpu-agent", flags, protocol::kKindDpu,
                         {{"snap_dialects", {"snap3", "snap4"}}}, collect);
}
