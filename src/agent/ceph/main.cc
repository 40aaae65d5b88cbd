// dpustor-ceph-agent: runs on the Ceph admin node, reports the cluster's health, capacity,
// pools and RBD images to the manager, and carries out the manager's Ceph operations.
#include <csignal>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "agent/ceph/ceph_cli.h"
#include "agent/ceph/cluster_collector.h"
#include "agent/common/agent_session.h"
#include "common/agent_protocol.h"
#include "common/log.h"
#include "common/token.h"

using namespace dpustor;

int main(int argc, char** argv) {
  CLI::App app{"dpustor-ceph-agent: Ceph cluster status and operations for dpustor"};
  agent::SessionOptions session;
  agent::ceph::CephCliOptions cli_options;
  std::string name;
  std::string token_file;
  std::string log_level = "info";
  int interval_ms = 10000;
  int timeout_ms = 20000;
  app.set_config("--config", "", "read options from this file (TOML/INI: key = value)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--manager", session.manager, "manager address (HOST:PORT)")->required();
  app.add_option("--name", name, "this cluster's name in the inventory")->required();
  app.add_option("--token-file", token_file, "file holding the enrollment token")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--ceph-conf", cli_options.conf, "ceph.conf of the cluster")
      ->check(CLI::ExistingFile);
  app.add_option("--keyring", cli_options.keyring, "keyring of the cephx user")
      ->check(CLI::ExistingFile);
  app.add_option("--user", cli_options.user, "cephx user id (without 'client.')");
  app.add_option("--ceph-bin", cli_options.ceph, "ceph executable")->capture_default_str();
  app.add_option("--rbd-bin", cli_options.rbd, "rbd executable")->capture_default_str();
  app.add_option("--command-timeout-ms", timeout_ms, "time limit of one ceph/rbd command")
      ->check(CLI::Range(500, 600000))
      ->capture_default_str();
  app.add_option("--report-interval-ms", interval_ms, "how often status is reported")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!InitLogging("dpustor-ceph-agent", log_level)) {
    spdlog::error("unknown log level '{}'", log_level);
    return 2;
  }
  auto token = ReadTokenFile(token_file);
  if (!token.ok()) {
    spdlog::error("{}", token.error().message);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  cli_options.timeout = std::chrono::milliseconds(timeout_ms);
  session.report_interval = std::chrono::milliseconds(interval_ms);

  auto cli = std::make_shared<agent::ceph::CephCli>(cli_options);
  auto collector = std::make_shared<agent::ceph::ClusterCollector>(*cli);
  auto collect = [cli, collector]() { return collector->Collect(); };

  agent::AgentIdentity id{name, protocol::kKindCeph, DPUSTOR_VERSION, {{"rbd", true}}, *token};
  boost::asio::io_context ioc;
  auto s = agent::AgentSession::Create(ioc, id, session, collect);
  s->Start();
  spdlog::info("dpustor-ceph-agent {} '{}' reporting to {} every {} ms", DPUSTOR_VERSION, name,
               session.manager, interval_ms);

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
