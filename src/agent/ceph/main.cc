// dpustor-ceph-agent: runs on the Ceph admin node, reports the cluster's health, capacity,
// pools and RBD images to the manager, and carries out the manager's Ceph operations.
#include "agent/ceph/ceph_cli.h"
#include "agent/ceph/cluster_collector.h"
#include "agent/ceph/rbd_methods.h"
#include "agent/common/agent_main.h"
#include "common/agent_protocol.h"

using namespace dpustor;

int main(int argc, char** argv) {
  CLI::App app{"dpustor-ceph-agent: Ceph cluster status and operations for dpustor"};
  agent::AgentFlags flags;
  flags.report_interval_ms = 10000;
  agent::ceph::CephCliOptions cli_options;
  int timeout_ms = 20000;
  agent::AddAgentOptions(app, flags);
  // The Ceph options may be repeated, the last one counting, so a wrapper (or a test) can
  // override the cluster, keyring or time limit it passes by default.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
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
  CLI11_PARSE(app, argc, argv);
  cli_options.timeout = std::chrono::milliseconds(timeout_ms);

  auto cli = std::make_shared<agent::ceph::CephCli>(cli_options);
  auto collector = std::make_shared<agent::ceph::ClusterCollector>(*cli);
  return agent::RunAgent(
      "dpustor-ceph-agent", flags, protocol::kKindCeph, {{"rbd", true}},
      [cli, collector] { return collector->Collect(); },
      [cli](rpc::MethodTable<agent::AgentSession>& table) {
        agent::ceph::RegisterCephMethods(table, cli);
      });
}
