// dpustor-manager: accepts agent connections, keeps inventory and status in SQLite, serves
// the REST API, /metrics and the dashboard.
#include <sys/resource.h>

#include <csignal>
#include <thread>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/agent_protocol.h"
#include "common/log.h"
#include "common/token.h"
#include "manager/agent_service.h"
#include "manager/rest_api.h"

using namespace dpustor;
using namespace dpustor::manager;

namespace {
// Each agent holds a socket open; lift the soft descriptor limit to the hard one.
void RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpustor-manager: the dpustor management server"};
  // Loopback until TLS lands: agents on other machines need an explicit --listen.
  std::string listen = "127.0.0.1:7800";
  std::string http = "127.0.0.1:7880";
  std::string db = "dpustor-manager.db";
  std::string token_file;
  std::string log_level = "info";
  int heartbeat_ms = 15000;
  int flush_ms = 2000;
  int history_s = 60;
  std::size_t history_limit = 1440;
  unsigned threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
  app.set_config("--config", "", "read options from this file (TOML/INI: key = value)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_option("--listen", listen, "address agents connect to (HOST:PORT)")
      ->capture_default_str();
  app.add_option("--http", http, "address of the REST API and /metrics (HOST:PORT)")
      ->capture_default_str();
  app.add_option("--db", db, "SQLite database path")->capture_default_str();
  app.add_option("--token-file", token_file, "file holding the agents' enrollment token")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--heartbeat-timeout-ms", heartbeat_ms,
                 "silence after which an agent turns unreachable")
      ->check(CLI::Range(200, 3600000))
      ->capture_default_str();
  app.add_option("--flush-ms", flush_ms, "how often status is written to the database")
      ->check(CLI::Range(10, 600000))
      ->capture_default_str();
  app.add_option("--history-interval-s", history_s, "one history row per agent per interval")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--history-limit", history_limit, "history rows kept per agent")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", threads, "I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!InitLogging("dpustor-manager", log_level)) {
    spdlog::error("unknown log level '{}'", log_level);
    return 2;
  }
  RaiseFileLimit();
  auto token = ReadTokenFile(token_file);
  if (!token.ok()) {
    spdlog::error("{}", token.error().message);
    return 2;
  }
  auto agent_ep = net::ParseEndpoint(listen);
  if (!agent_ep.ok()) {
    spdlog::error("--listen: {}", agent_ep.error().message);
    return 2;
  }

  StoreOptions so;
  so.path = db;
  so.flush_interval = std::chrono::milliseconds(flush_ms);
  so.history_interval = std::chrono::seconds(history_s);
  so.history_limit = history_limit;
  auto store = Store::Open(so);
  if (!store.ok()) {
    spdlog::error("{}", store.error().message);
    return 1;
  }
  Inventory inventory(store->get());
  inventory.Load((*store)->LoadAgents());
  EventLog events(store->get(), 10000);
  events.Load((*store)->LoadEvents(10000));

  boost::asio::io_context ioc;
  AgentServiceOptions ao;
  ao.token = *token;
  ao.heartbeat_timeout = std::chrono::milliseconds(heartbeat_ms);
  AgentService agents(ioc, inventory, events, ao);
  if (auto st = agents.Listen(*agent_ep); !st.ok()) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  VolumeService volumes(**store, inventory, events, agents, VolumeServiceOptions{});
  ShareService shares(**store, inventory, events, agents, ShareServiceOptions{});
  DeploymentService deployments(**store, inventory, events, agents, DeploymentServiceOptions{});
  agents.OnRegistered([&](const std::string& name, const std::string& kind) {
    volumes.AgentRegistered(name, kind);
    shares.AgentRegistered(name, kind);
    deployments.AgentRegistered(name, kind);
  });
  agents.OnEvent(
      [&](const std::string& name, const std::string& kind, const std::string& type,
          const json& detail) { return deployments.AgentEvent(name, kind, type, detail); });
  agents.OnReport([&](const std::string& name, const std::string& kind,
                      const std::shared_ptr<const json>& status) {
    if (kind != protocol::kKindDpu) return;
    volumes.DpuReported(name, *status);
    shares.DpuReported(name, *status);
    deployments.DpuReported(name, *status);
  });
  volumes.Start();
  shares.Start();
  deployments.Start();
  Router router;
  RestContext ctx{inventory, events, **store, agents, volumes, shares, deployments, NowMs()};
  RegisterRestApi(router, ctx);
  HttpServer http_server(ioc, router);
  if (auto st = http_server.Listen(http); !st.ok()) {
    spdlog::error("{}", st.error().message);
    return 1;
  }
  spdlog::info("dpustor-manager {}: agents on {}, HTTP on {}, database {}, {} agents known",
               DPUSTOR_VERSION, agents.local_address(), http_server.local_address(), db,
               inventory.List().size());
  events.Add("manager", "manager.started",
             "listening for agents on " + agents.local_address() + ", HTTP on " +
                 http_server.local_address());

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    spdlog::info("signal {}: shutting down", sig);
    agents.Stop();
    http_server.Stop();
    ioc.stop();
  });
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  deployments.Stop();
  shares.Stop();
  volumes.Stop();
  events.Add("manager", "manager.stopped", "clean shutdown");
  (*store)->Flush();
  spdlog::info("stopped");
  return 0;
}
