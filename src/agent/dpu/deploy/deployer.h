// Deployer is the DPU agent's side of deploy.apply (docs/protocol.md, "SNAP deployment"): it
// brings SNAP on this DPU to the deployment the manager asks for, in phases, on a thread of
// its own, and reports every phase.
//
// snap4 (DOCA SNAP as a static pod): preflight -> firmware -> hugepages -> manifest ->
// container -> rpc -> reapply -> ready. snap3 (the mlnx_snap service) has config and
// service in place of manifest and container. Each phase is idempotent, and the state
// (DeployState) is saved before each one, so an agent killed mid-deploy resumes from the
// recorded phase when it starts again. Outcomes other than ready: refused (pre-flight said
// no, nothing changed), power-cycle-required (a firmware setting was set for next boot, or
// is pending), failed (a fresh deployment did not become ready: what it wrote is removed and
// nr_hugepages restored), rolled-back (an upgrade did not become ready within
// ready_timeout_s: the previous manifest is written back, the previous SNAP waited for and
// the volumes and shares re-applied). Removal (deployment null) restores or deletes exactly
// the files the deployer wrote and the nr_hugepages value it found.
//
// Thread-safety: Apply, Status and Stop may be called from any thread. The hooks run on the
// deployer's thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "agent/dpu/deploy/deploy_spec.h"
#include "agent/dpu/deploy/deploy_state.h"
#include "agent/dpu/deploy/tools.h"
#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

struct DeployHooks {
  // Re-applies the DPU's desired volumes and shares to a (re)started SNAP; returns what it
  // did, for the phase message. Absent: the phase passes.
  std::function<Result<std::string>()> reapply;
  // Every phase transition: {deployment, generation, phase, state, message}.
  std::function<void(const nlohmann::json& detail)> on_phase;
};

class Deployer {
 public:
  Deployer(DeployTools tools, DeployHooks hooks);
  ~Deployer();
  Deployer(const Deployer&) = delete;
  Deployer& operator=(const Deployer&) = delete;

  // Loads the state file and starts the thread; a deployment that was in progress resumes.
  // Fails when the state file exists but cannot be read.
  Status Start();
  void Stop();

  // deploy.apply: validates (kInvalidParams naming the field; nothing changes) and hands the
  // request to the thread. Result: {"accepted": true, "generation": N}.
  Result<nlohmann::json> Apply(const nlohmann::json& params);

  // The "deployment" section of the DPU status (null before any deployment):
  // {name, generation, version, flavour, image, phase, state, message, previous: {version,
  //  image} | null, running: {version, image, generation} | null, snap_version, since,
  //  history: [{phase, state, message, at}]}.
  nlohmann::json Observed() const;

  // Waits until the thread has nothing left to do (tests).
  bool WaitIdle(std::chrono::milliseconds timeout);

 private:
  enum class Outcome { kNext, kStop, kSuperseded };

  void Loop();
  void Run(const DeployRequest& request, bool resume);
  bool NoOp(const DeployRequest& request);
  Outcome RunPhase(const std::string& phase, const DeploySpec& spec, std::int64_t generation);
  Outcome Preflight(const DeploySpec& spec);
  Outcome Firmware(const DeploySpec& spec);
  Outcome Hugepages(std::int64_t pages);  // kStop with hugepages_error_ set
  Status WriteFiles(const DeploySpec& spec, std::int64_t generation);
  // Poll until `image` runs (crictl) / SNAP answers, within deadline_.
  Status AwaitContainer(const std::string& image);
  Status AwaitRpc();
  // A deployment that did not become ready: roll back or clean up. kStop, or kSuperseded
  // when Stop() interrupted a rollback (resumed at the next Start).
  Outcome NotReady(const DeploySpec& spec, const std::string& why);
  void Remove(std::int64_t generation);

  // Records a transition, saves the state and reports it.
  void Transition(const std::string& phase, const std::string& state, const std::string& message);
  // Writes a file the deployer owns, remembering what it held before the first write.
  // Unchanged content is not rewritten.
  Status WriteOwned(const std::string& path, const std::string& text);
  // Restores (or deletes) every file the deployer wrote.
  Status RestoreOwned();
  Result<std::int64_t> ReadNrHugepages() const;
  Status SetNrHugepages(std::int64_t pages);
  // Waits one poll interval; false when a newer request or Stop() wants the thread.
  bool Pause();
  bool Superseded() const;

  std::string Manifest(const DeploySpec& spec, std::int64_t generation) const;

  const DeployTools tools_;
  const DeployHooks hooks_;

  mutable std::mutex mu_;  // guards the members below
  std::condition_variable cv_;
  DeployState state_;
  std::optional<DeployRequest> pending_;
  bool pending_resume_ = false;  // pending_ is the interrupted request found at Start
  std::optional<DeployRequest> running_;
  bool interruptible_ = true;  // false while rolling back: a rollback is finished first
  bool stop_ = false;
  std::thread thread_;

  // The deployer thread's own (no lock): the deadline of the current readiness wait
  // (container and rpc share one budget), and notes carried between phases.
  std::chrono::steady_clock::time_point deadline_;
  std::string reapply_note_;
  std::string hugepages_error_;
};

}  // namespace dpustor::agent::dpu::deploy
