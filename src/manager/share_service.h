// ShareService owns the file-share workflow: the REST operations change desired state
// (persisted before they return), and a reconciler sends each DPU agent the full set of its
// shares (share.apply with a generation, like the volumes' spec.apply), level-triggered and
// idempotent: on every change, on every (re)registration of the DPU, while a share is not
// ready (retry) and periodically (drift). What the agent answers or reports (state, error,
// the data plane in use, counters) is recorded per share; every state change is an event.
// A deleted share leaves the set and is forgotten once its DPU no longer reports it.
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

#include <boost/asio/thread_pool.hpp>

#include "manager/agent_service.h"
#include "manager/event_log.h"
#include "manager/inventory.h"
#include "manager/reconcile_loop.h"
#include "manager/share.h"
#include "manager/store.h"

namespace dpustor::manager {

struct ShareServiceOptions {
  std::chrono::milliseconds pass_interval{1000};
  std::chrono::milliseconds retry_interval{2000};     // while a share is not ready
  std::chrono::milliseconds reapply_interval{30000};  // drift correction per DPU
  std::chrono::milliseconds apply_timeout{120000};
  int workers = 4;
};

class ShareService {
 public:
  ShareService(Store& store, Inventory& inventory, EventLog& events, AgentService& agents,
               ShareServiceOptions options);
  ~ShareService();

  void Start();
  void Stop();

  // REST operations. Errors: kInvalidParams 400, kNotFound 404, kAlreadyExists/kBusy 409.
  Result<json> Create(const json& body);
  Result<json> Delete(const std::string& name);
  json List() const;
  Result<json> Get(const std::string& name) const;

  // Hooks from the agent service.
  void AgentRegistered(const std::string& name, const std::string& kind);
  void DpuReported(const std::string& dpu, const json& status);

 private:
  Status Save(Share& s);  // REQUIRES: mu_ held
  void Pass();            // one reconcile pass (REQUIRES: mu_ held)
  void ApplyDpu(const std::string& dpu);
  // Records what `dpu` holds (`list`: share.apply's or a report's "shares"). REQUIRES: mu_.
  void Observe(const std::string& dpu, const json& list,
               std::vector<std::tuple<std::string, std::string, std::string>>& news);
  Result<json> CallAgent(const std::string& agent, const std::string& method, json params,
                         std::chrono::milliseconds timeout);
  void Kick() { loop_.Kick(); }

  Store& store_;
  Inventory& inventory_;
  EventLog& events_;
  AgentService& agents_;
  ShareServiceOptions options_;

  mutable std::mutex mu_;
  std::map<std::string, Share> shares_;
  std::map<std::string, std::int64_t> applied_;  // DPU -> generation its agent last applied
  std::set<std::string> busy_dpus_;
  std::set<std::string> dirty_dpus_;
  std::map<std::string, std::chrono::steady_clock::time_point> next_try_;  // by DPU

  ReconcileLoop loop_{mu_, options_.pass_interval, options_.workers};  // last: stops first
};

}  // namespace dpustor::manager
