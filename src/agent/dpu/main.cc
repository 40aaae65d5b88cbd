// dpustor-dpu-agent: runs on a BlueField's Arm cores. Reports the DPU's health and SNAP's
// state to the manager and applies the block attachments the manager wants on this DPU
// (spec.apply, see volume_reconciler.h) and the file shares (share.apply, through SNAP's
// virtio-fs or dpustor-fsd, see share_reconciler.h).
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/common/agent_main.h"
#include "agent/dpu/share_reconciler.h"
#include "agent/dpu/system_status.h"
#include "agent/dpu/volume_reconciler.h"
#include "common/agent_protocol.h"
#include "snap/snap_client.h"

using namespace dpustor;

int main(int argc, char** argv) {
  CLI::App app{"dpustor-dpu-agent: DPU status and SNAP control for dpustor"};
  agent::AgentFlags flags;
  std::string host;
  std::string snap_socket = "/var/tmp/spdk.sock";
  std::string state_dir = "/var/lib/dpustor-dpu-agent";
  int snap_timeout_ms = 3000;
  agent::dpu::SystemPaths paths;
  agent::dpu::ShareReconcilerOptions share_options;
  agent::AddAgentOptions(app, flags);
  app.add_option("--host", host, "name of the server this DPU sits in");
  app.add_option("--snap-socket", snap_socket, "SNAP's JSON-RPC Unix socket")
      ->capture_default_str();
  app.add_option("--snap-timeout-ms", snap_timeout_ms, "timeout of one SNAP call")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--state-dir", state_dir,
                 "where the agent keeps what SNAP reads (Ceph configs and keyrings, mode 0600)")
      ->capture_default_str();
  app.add_option("--fsd-socket", share_options.fsd_socket,
                 "dpustor-fsd's control socket (file shares as vhost-user-fs; none if empty)");
  app.add_option("--fsd-vhost-dir", share_options.fsd_vhost_dir,
                 "where dpustor-fsd creates each share's vhost-user socket (<share>.sock); "
                 "default: <state-dir>/vhost");
  app.add_option("--snap-emulation-manager", share_options.emulation_manager,
                 "the emulation manager SNAP's virtio-fs devices are created on")
      ->capture_default_str();
  app.add_option("--proc-root", paths.proc_root, "where /proc is (tests)")->capture_default_str();
  app.add_option("--sys-root", paths.sys_root, "where /sys is (tests)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (share_options.fsd_vhost_dir.empty()) share_options.fsd_vhost_dir = state_dir + "/vhost";

  // Both collectors keep baselines between calls (CPU, link counters); they are used only
  // from the session's single collector thread.
  auto timeout = std::chrono::milliseconds(snap_timeout_ms);
  auto system = std::make_shared<agent::dpu::SystemStatusCollector>(paths);
  auto snap = std::make_shared<snap::SnapClient>(snap_socket, timeout);
  // spec.apply gets a SNAP connection of its own and one worker thread: applies run one at a
  // time and never share a connection with status collection.
  snap::SnapClient apply_snap(snap_socket, timeout);
  agent::dpu::VolumeReconciler reconciler(apply_snap, state_dir);
  // share.apply likewise: its own SNAP connection and worker, so a slow block apply never
  // holds up a share (nor the other way round).
  snap::SnapClient share_snap(snap_socket, timeout);
  agent::dpu::ShareReconciler shares(share_snap, share_options);
  boost::asio::thread_pool share_worker(1);
  boost::asio::thread_pool apply_worker(1);  // declared last: joined first

  auto collect = [system, snap, &reconciler, &shares, host, name = flags.name]() -> nlohmann::json {
    auto started = std::chrono::steady_clock::now();
    nlohmann::json status = {{"name", name},
                             {"host", host.empty() ? nullptr : nlohmann::json(host)}};
    status["system"] = system->Collect();
    std::uint64_t sequence = reconciler.ApplySequence();
    status["snap"] = snap->CollectStatus();
    // What SNAP holds of ours, read from the snapshot just taken (no extra SNAP call).
    status["attachments"] = reconciler.ObservedFrom(status["snap"], sequence);
    status["spec_generation"] = reconciler.spec_generation();
    status["shares"] = shares.Observed();
    status["collect_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
    return status;
  };
  auto register_methods = [&](rpc::MethodTable<agent::AgentSession>& methods) {
    methods.AddAsync("spec.apply", "converge SNAP to the block attachments the manager wants",
                     [&](agent::AgentSession&, const nlohmann::json& params, rpc::Reply reply) {
                       boost::asio::post(apply_worker, [&reconciler, params, reply] {
                         reply(reconciler.Apply(params));
                       });
                     });
    methods.AddAsync("share.apply", "converge the DPU to the file shares the manager wants",
                     [&](agent::AgentSession&, const nlohmann::json& params, rpc::Reply reply) {
                       boost::asio::post(share_worker,
                                         [&shares, params, reply] { reply(shares.Apply(params)); });
                     });
  };
  return agent::RunAgent(
      "dpustor-dpu-agent", flags, protocol::kKindDpu,
      {{"snap_dialects", {"snap3", "snap4"}}, {"spec_apply", true}, {"share_apply", true}}, collect,
      register_methods);
}
