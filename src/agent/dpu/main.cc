// dpustor-dpu-agent: runs on a BlueField's Arm cores. Reports the DPU's health and SNAP's
// state to the manager and (later) applies what the manager wants on this DPU.
#include <csignal>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include "agent/common/agent_session.h"
#include "agent/dpu/system_status.h"
#include "common/agent_protocol.h"
#include "common/log.h"
#include "common/token.h"
#include "snap/snap_client.h"

using namespace dpustor;

int main(int argc, char** argv) {
  CLI::App app{"dpustor-dpu-agent: DPU status and SNAP control for dpustor"};
  agent::SessionOptions session;
  std::string name;
  std::string host;
  std::string token_file;
  std::string snap_socket = "/var/tmp/spdk.sock";
  std::string log_level = "info";
  int interval_ms = 5000;
  int snap_timeout_ms = 3000;
  agent::dpu::SystemPaths paths;
  app.set_config("--config", "", "read options from this file (TOML/INI: key = value)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--manager", session.manager, "manager address (HOST:PORT)")->required();
  app.add_option("--name", name, "this DPU's name in the inventory")->required();
  app.add_option("--host", host, "name of the server this DPU sits in");
  app.add_option("--token-file", token_file, "file holding the enrollment token")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--snap-socket", snap_socket, "SNAP's JSON-RPC Unix socket")->capture_default_str();
  app.add_option("--snap-timeout-ms", snap_timeout_ms, "timeout of one SNAP call")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--report-interval-ms", interval_ms, "how often status is reported")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--proc-root", paths.proc_root, "where /proc is (tests)")->capture_default_str();
  app.add_option("--sys-root", paths.sys_root, "where /sys is (tests)")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!InitLogging("dpustor-dpu-agent", log_level)) {
    spdlog::error("unknown log level '{}'", log_level);
    return 2;
  }
  auto token = ReadTokenFile(token_file);
  if (!token.ok()) {
    spdlog::error("{}", token.error().message);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  session.report_interval = std::chrono::milliseconds(interval_ms);

  // Both collectors keep baselines between calls (CPU, link counters); they are used only
  // from the session's single collector thread.
  auto system = std::make_shared<agent::dpu::SystemStatusCollector>(paths);
  auto snap =
      std::make_shared<snap::SnapClient>(snap_socket, std::chrono::milliseconds(snap_timeout_ms));
  auto collect = [system, snap, host, name]() -> nlohmann::json {
    auto started = std::chrono::steady_clock::now();
    nlohmann::json status = {{"name", name}, {"host", host.empty() ? nullptr : nlohmann::json(host)}};
    status["system"] = system->Collect();
    status["snap"] = snap->CollectStatus();
    status["collect_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
    return status;
  };

  agent::AgentIdentity id{name, protocol::kKindDpu, DPUSTOR_VERSION,
                          {{"snap_dialects", {"snap3", "snap4"}}}, *token};
  boost::asio::io_context ioc;
  auto s = agent::AgentSession::Create(ioc, id, session, collect);
  s->Start();
  spdlog::info("dpustor-dpu-agent {} '{}' reporting to {} every {} ms; SNAP at {}", DPUSTOR_VERSION,
               name, session.manager, interval_ms, snap_socket);

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    s->Stop();
    ioc.stop();
  });
  ioc.run();
  return 0;
}
