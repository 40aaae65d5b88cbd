// VolumeService owns the block-volume workflow: the REST operations change desired state
// (persisted before they return), and a reconciler drives the agents toward it, level-
// triggered and idempotent, so a crash of the manager or of any agent at any step is
// repaired by the next pass: rbd.create/resize/snapshot/delete on the volume's Ceph agent,
// then spec.apply with every desired attachment of a DPU (and the cephx key of that DPU,
// limited to its pools) on that DPU's agent. Every step is an event.
//
// Thread-safety: public methods may be called from any thread. Reconciling runs on a
// private thread and a small worker pool; at most one task per volume and per DPU at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/thread_pool.hpp>

#include "manager/agent_service.h"
#include "manager/event_log.h"
#include "manager/inventory.h"
#include "manager/reconcile_loop.h"
#include "manager/store.h"
#include "manager/volume.h"

namespace dpustor::manager {

struct VolumeServiceOptions {
  std::chrono::milliseconds pass_interval{1000};
  std::chrono::milliseconds retry_interval{2000};     // after a failed step
  std::chrono::milliseconds reapply_interval{30000};  // drift correction per DPU
  std::chrono::milliseconds ceph_timeout{60000};
  std::chrono::milliseconds apply_timeout{120000};
  int workers = 8;
};

class VolumeService {
 public:
  VolumeService(Store& store, Inventory& inventory, EventLog& events, AgentService& agents,
                VolumeServiceOptions options);
  ~VolumeService();

  void Start();
  void Stop();

  // REST operations: the body is the request's JSON. Errors carry an HTTP-like meaning in
  // their code: kInvalidParams 400, kNotFound 404, kAlreadyExists/kBusy 409.
  Result<json> Create(const json& body);
  Result<json> Attach(const std::string& name, const json& body);
  Result<json> Detach(const std::string& name);
  Result<json> Resize(const std::string& name, const json& body);
  Result<json> Snapshot(const std::string& name, const json& body);
  Result<json> Delete(const std::string& name, bool force);
  json List() const;
  Result<json> Get(const std::string& name) const;

  // Hooks from the agent service.
  void AgentRegistered(const std::string& name, const std::string& kind);
  void DpuReported(const std::string& dpu, const json& status);

 private:
  struct ClusterCreds {
    json info;                                                           // {fsid, mon_host}
    std::map<std::string, std::pair<std::set<std::string>, json>> keys;  // dpu -> pools, key
  };

  Status Save(Volume& v);  // REQUIRES: mu_ held
  Result<json> Mutate(const std::string& name, const std::function<Status(Volume&)>& change);
  void Pass();  // one reconcile pass (REQUIRES: mu_ held)
  void ReconcileVolume(const std::string& name);
  void ApplyDpu(const std::string& dpu);
  Result<json> CallAgent(const std::string& agent, const std::string& method, json params,
                         std::chrono::milliseconds timeout);
  Result<json> ClusterCredentials(const std::string& cluster, const std::string& dpu,
                                  const std::set<std::string>& pools);
  void Kick() { loop_.Kick(); }

  Store& store_;
  Inventory& inventory_;
  EventLog& events_;
  AgentService& agents_;
  VolumeServiceOptions options_;

  mutable std::mutex mu_;
  std::map<std::string, Volume> volumes_;
  std::set<std::string> busy_volumes_;
  std::set<std::string> busy_dpus_;
  std::set<std::string> dirty_dpus_;
  std::map<std::string, std::chrono::steady_clock::time_point> next_try_;  // "v/x", "d/x"

  std::mutex creds_mu_;
  std::map<std::string, ClusterCreds> creds_;  // by cluster

  ReconcileLoop loop_{mu_, options_.pass_interval, options_.workers};  // last: stops first
};

}  // namespace dpustor::manager
