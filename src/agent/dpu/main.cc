// dpustor-dpu-agent: runs on a BlueField's Arm cores. Reports the DPU's health and SNAP's
// state to the manager and applies the block attachments the manager wants on this DPU
// (spec.apply, see volume_reconciler.h) and the file shares (share.apply, through SNAP's
// virtio-fs or dpustor-fsd, see share_reconciler.h), and deploys SNAP itself (deploy.apply,
// see deploy/deployer.h).
#include <filesystem>
#include <memory>
#include <mutex>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "agent/common/agent_main.h"
#include "agent/dpu/deploy/deployer.h"
#include "agent/dpu/deploy/reapply.h"
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
  agent::dpu::deploy::DeployTools deploy_tools;
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
  app.add_option("--deploy-root", deploy_tools.root,
                 "prefix of the directories the SNAP deployer writes (tests)");
  app.add_option("--kubelet-manifest-dir", deploy_tools.manifest_dir,
                 "the standalone kubelet's static pod directory (under --deploy-root)")
      ->capture_default_str();
  app.add_option("--snap-conf-dir", deploy_tools.snap_conf_dir,
                 "host directory mounted at the SNAP container's /etc/nvda_snap "
                 "(under --deploy-root)")
      ->capture_default_str();
  app.add_option("--snap3-conf-dir", deploy_tools.snap3_conf_dir,
                 "where the mlnx_snap service reads snap_rpc_init.conf (under --deploy-root)")
      ->capture_default_str();
  app.add_option("--crictl", deploy_tools.crictl, "crictl executable")->capture_default_str();
  app.add_option("--kubelet", deploy_tools.kubelet, "kubelet executable (checked present)")
      ->capture_default_str();
  app.add_option("--mlxconfig", deploy_tools.mlxconfig, "mlxconfig executable")
      ->capture_default_str();
  app.add_option("--mst-device", deploy_tools.mst_device, "the card's mst device for mlxconfig")
      ->capture_default_str();
  app.add_option("--systemctl", deploy_tools.systemctl, "systemctl executable (snap3)")
      ->capture_default_str();
  app.add_option("--snap3-service", deploy_tools.snap3_service, "the SNAP 3.x service")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (share_options.fsd_vhost_dir.empty()) share_options.fsd_vhost_dir = state_dir + "/vhost";
  deploy_tools.sys_root = paths.sys_root;
  deploy_tools.proc_root = paths.proc_root;
  deploy_tools.snap_socket = snap_socket;
  deploy_tools.state_dir = state_dir + "/deploy";

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
  boost::asio::thread_pool apply_worker(1);

  // The last volume and share specs received: the deployer re-applies them to a SNAP it
  // (re)started. None yet: the manager's next push covers it.
  std::mutex desired_mu;
  nlohmann::json last_volumes, last_shares;
  // Events need the session, which only the method handlers see; remembered from the first
  // call (events sent before a connection would be dropped anyway).
  std::mutex session_mu;
  std::weak_ptr<agent::AgentSession> session;
  auto remember = [&](agent::AgentSession& s) {
    std::lock_guard lock(session_mu);
    session = s.weak_from_this();
  };
  agent::dpu::deploy::DeployHooks hooks;
  hooks.reapply = [&]() -> Result<std::string> {
    nlohmann::json volumes, share_set;
    {
      std::lock_guard lock(desired_mu);
      volumes = last_volumes;
      share_set = last_shares;
    }
    return agent::dpu::deploy::ReapplyDesired(reconciler, volumes, shares, share_set);
  };
  hooks.on_phase = [&](const nlohmann::json& detail) {
    std::shared_ptr<agent::AgentSession> s;
    {
      std::lock_guard lock(session_mu);
      s = session.lock();
    }
    if (s) s->SendEvent("deploy.phase", detail);
  };
  // Declared last: stopped (joined) first, before what its hooks use.
  agent::dpu::deploy::Deployer deployer(deploy_tools, hooks);
  if (Status s = deployer.Start(); !s.ok()) {
    // A state file that cannot be read is kept aside for the operator; the deployer starts
    // empty rather than keeping the agent down.
    spdlog::error("deploy: {}; moving it aside and starting without deployment state",
                  s.error().message);
    std::error_code ec;
    std::filesystem::rename(deploy_tools.StatePath(), deploy_tools.StatePath() + ".corrupt", ec);
    if (Status again = deployer.Start(); !again.ok()) {
      spdlog::error("deploy: {}", again.error().message);
      return 1;
    }
  }

  auto collect = [system, snap, &reconciler, &shares, &deployer, host,
                  name = flags.name]() -> nlohmann::json {
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
    status["deployment"] = deployer.Observed();
    status["collect_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - started)
                               .count();
    return status;
  };
  auto register_methods = [&](rpc::MethodTable<agent::AgentSession>& methods) {
    methods.AddAsync("spec.apply", "converge SNAP to the block attachments the manager wants",
                     [&](agent::AgentSession& s, const nlohmann::json& params, rpc::Reply reply) {
                       remember(s);
                       boost::asio::post(apply_worker, [&, params, reply] {
                         auto r = reconciler.Apply(params);
                         if (r.ok()) {
                           std::lock_guard lock(desired_mu);
                           last_volumes = params;
                         }
                         reply(std::move(r));
                       });
                     });
    methods.AddAsync("share.apply", "converge the DPU to the file shares the manager wants",
                     [&](agent::AgentSession& s, const nlohmann::json& params, rpc::Reply reply) {
                       remember(s);
                       boost::asio::post(share_worker, [&, params, reply] {
                         auto r = shares.Apply(params);
                         if (r.ok()) {
                           std::lock_guard lock(desired_mu);
                           last_shares = params;
                         }
                         reply(std::move(r));
                       });
                     });
    methods.Add("deploy.apply", "deploy, upgrade or remove SNAP on this DPU, in phases",
                [&](agent::AgentSession& s, const nlohmann::json& params) -> nlohmann::json {
                  remember(s);
                  auto r = deployer.Apply(params);
                  if (!r.ok()) throw rpc::CallError(r.error().code, r.error().message);
                  return *r;
                });
  };
  return agent::RunAgent("dpustor-dpu-agent", flags, protocol::kKindDpu,
                         {{"snap_dialects", {"snap3", "snap4"}},
                          {"spec_apply", true},
                          {"share_apply", true},
                          {"deploy", {"snap4", "snap3"}}},
                         collect, register_methods);
}
