#include "agent/common/agent_main.h"

#include <csignal>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/log.h"
#include "common/token.h"

namespace dpustor::agent {

void AddAgentOptions(CLI::App& app, AgentFlags& flags) {
  app.set_config("--config", "", "read options from this file (TOML/INI: key = value)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--manager", flags.session.manager, "manager address (HOST:PORT)")->required();
  app.add_option("--name", flags.name, "this agent's name in the inventory")->required();
  app.add_option("--token-file", flags.token_file, "file holding the enrollment token")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--report-interval-ms", flags.report_interval_ms, "how often status is reported")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
}

int RunAgent(const std::string& program, AgentFlags flags, const std::string& kind,
             nlohmann::json capabilities, AgentSession::Collector collect,
             std::function<void(rpc::MethodTable<AgentSession>&)> register_methods) {
  if (!InitLogging(program, flags.log_level)) {
    spdlog::error("unknown log level '{}'", flags.log_level);
    return 2;
  }
  auto token = ReadTokenFile(flags.token_file);
  if (!token.ok()) {
    spdlog::error("{}", token.error().message);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  flags.session.report_interval = std::chrono::milliseconds(flags.report_interval_ms);

  AgentIdentity id{flags.name, kind, DPUSTOR_VERSION, std::move(capabilities), *token};
  boost::asio::io_context ioc;
  auto session = AgentSession::Create(ioc, id, flags.session, std::move(collect));
  if (register_methods) register_methods(session->methods());
  session->Start();
  spdlog::info("{} {} '{}' reporting to {} every {} ms", program, DPUSTOR_VERSION, flags.name,
               flags.session.manager, flags.report_interval_ms);

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: stopping", sig);
    session->Stop();
    ioc.stop();
  });
  ioc.run();
  return 0;
}

}  // namespace dpustor::agent
