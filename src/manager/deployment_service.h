// DeploymentService owns SNAP deployments and DPU groups (docs/protocol.md, "SNAP
// deployment"): the REST operations change desired state (persisted before they return), and
// a reconciler sends each targeted DPU agent deploy.apply {generation, deployment} when what
// the DPU should hold changes, when the agent (re)connects, and again while the agent has not
// taken the generation. The agent's deployer does the work in phases; its deploy.phase events
// and the `deployment` section of its reports are the observed state, recorded per DPU, and
// every phase is an event for the DPU and for the deployment. Deleting a deployment (or
// taking a DPU out of its group) sends `deployment: null`; the record goes once every DPU
// reported the removal.
//
// Thread-safety: public methods may be called from any thread. Applies run on a small worker
// pool, at most one per DPU at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>

#include <boost/asio/thread_pool.hpp>

#include "manager/agent_service.h"
#include "manager/deployment.h"
#include "manager/event_log.h"
#include "manager/inventory.h"
#include "manager/reconcile_loop.h"
#include "manager/store.h"

namespace dpustor::manager {

struct DeploymentServiceOptions {
  std::chrono::milliseconds pass_interval{500};
  std::chrono::milliseconds retry_interval{5000};  // while the agent has not taken a generation
  std::chrono::milliseconds apply_timeout{30000};  // deploy.apply is accepted at once
  int workers = 4;
};

class DeploymentService {
 public:
  DeploymentService(Store& store, Inventory& inventory, EventLog& events, AgentService& agents,
                    DeploymentServiceOptions options);
  ~DeploymentService();

  void Start();
  void Stop();

  // REST operations. Errors: kInvalidParams 400, kNotFound 404, kAlreadyExists/kBusy 409.
  // Apply creates (`*created`) or updates a deployment; the same spec again changes nothing.
  Result<json> Apply(const json& body, bool* created);
  // `force` forgets the deployment at once, without waiting for its DPUs to remove SNAP.
  Result<json> Delete(const std::string& name, bool force);
  json List() const;
  Result<json> Get(const std::string& name) const;
  // Creates (`*created`) or replaces a group's member list.
  Result<json> PutGroup(const json& body, bool* created);
  Result<json> DeleteGroup(const std::string& name);
  json Groups() const;
  Result<json> Group(const std::string& name) const;

  // Hooks from the agent service.
  void AgentRegistered(const std::string& name, const std::string& kind);
  void DpuReported(const std::string& dpu, const json& status);
  // True when the event was a deploy.phase (recorded here, not as a generic agent event).
  bool AgentEvent(const std::string& name, const std::string& kind, const std::string& type,
                  const json& detail);

 private:
  using News = std::vector<std::tuple<std::string, std::string, std::string, json>>;

  // REQUIRES: mu_ held (all below up to Loop).
  std::int64_t NextGeneration();
  Status Save(Deployment& d);
  json View(const Deployment& d) const;
  json DpuView(const std::string& dpu, const DpuDesired& want) const;
  // Why `dpu` cannot be targeted by deployment `name`, or "".
  std::string Conflict(const std::string& dpu, const std::string& name) const;
  void Observe(const std::string& dpu, const DeployObserved& seen, bool from_event, News& news);
  void Settle(News& news);  // ends deletions and releases whose DPUs reached the removal

  void Publish(const News& news);
  void Pass();  // one reconcile pass (REQUIRES: mu_ held)
  void ApplyDpu(const std::string& dpu, DpuDesired want);
  Result<json> CallAgent(const std::string& agent, const std::string& method, json params,
                         std::chrono::milliseconds timeout);
  void Kick() { loop_.Kick(); }

  Store& store_;
  Inventory& inventory_;
  EventLog& events_;
  AgentService& agents_;
  DeploymentServiceOptions options_;

  mutable std::mutex mu_;
  std::map<std::string, Deployment> deployments_;
  std::map<std::string, DpuGroup> groups_;
  std::map<std::string, DeployObserved> observed_;  // by DPU
  std::map<std::string, Sent> sent_;                // by DPU, this session of its agent
  std::map<std::string, std::pair<std::int64_t, std::string>> apply_errors_;  // by DPU
  // (generation, phase, state) already recorded as events, by DPU.
  std::map<std::string, std::set<std::tuple<std::int64_t, std::string, std::string>>> recorded_;
  std::map<std::string, std::pair<std::int64_t, std::string>> last_state_;  // by DPU
  std::set<std::string> busy_dpus_;
  std::int64_t last_generation_ = 0;

  ReconcileLoop loop_{mu_, options_.pass_interval, options_.workers};  // last: stops first
};

}  // namespace dpustor::manager
