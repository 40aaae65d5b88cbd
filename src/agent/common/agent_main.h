// What every agent program shares: the command-line options common to all agents and the
// run loop (logging, enrollment token, session to the manager, clean stop on SIGINT or
// SIGTERM). An agent's main adds its own options and its status collector.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "agent/common/agent_session.h"

namespace dpustor::agent {

struct AgentFlags {
  SessionOptions session;
  std::string name;
  std::string token_file;
  std::string log_level = "info";
  int report_interval_ms = 5000;
};

// Adds --config, --manager, --name, --token-file, --report-interval-ms and --log-level.
void AddAgentOptions(CLI::App& app, AgentFlags& flags);

// Runs until SIGINT/SIGTERM; returns the process exit status. `collect` runs on the
// session's collector thread. `register_methods`, if given, adds the agent's own methods to
// the session's method table before the session starts.
int RunAgent(const std::string& program, AgentFlags flags, const std::string& kind,
             nlohmann::json capabilities, AgentSession::Collector collect,
             std::function<void(rpc::MethodTable<AgentSession>&)> register_methods = nullptr);

}  // namespace dpustor::agent
