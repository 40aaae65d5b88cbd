// ReconcileLoop: what every reconciler in the manager (volumes, shares, deployments) runs
// on. One loop thread runs the owner's pass at least every `interval` and at once when
// kicked, under the owner's mutex; slow work (calls to agents, Ceph) goes to a small worker
// pool, one job per busy key, so a slow DPU never holds up the others.
//
// Threading: Start/Stop from the owner's constructor/destructor thread; Kick from any
// thread that does not hold the owner's mutex; Post and Call from the pass or a worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::manager {

class AgentService;

class ReconcileLoop {
 public:
  using Pass = std::function<void(std::unique_lock<std::mutex>& owner_lock)>;

  // `mu`: the owner's mutex, held while the pass runs.
  ReconcileLoop(std::mutex& mu, std::chrono::milliseconds interval, int workers);
  ~ReconcileLoop();  // Stop()

  void Start(Pass pass);
  // Ends the loop and waits for the workers' jobs. Idempotent.
  void Stop();
  // Runs a pass now (without waiting for the interval).
  void Kick();

  // Runs `job` on a worker with `key` in `busy` meanwhile (REQUIRES: the owner's mutex held;
  // `busy` is guarded by it). Returns false, doing nothing, when `key` is already busy.
  bool PostFor(std::set<std::string>& busy, const std::string& key, std::function<void()> job);

  // An agent call that blocks for its answer, or gives up once the loop stops (REQUIRES:
  // the owner's mutex not held).
  Result<nlohmann::json> Call(AgentService& agents, const std::string& agent,
                              const std::string& method, nlohmann::json params,
                              std::chrono::milliseconds timeout);

 private:
  void Run();

  std::mutex& mu_;
  const std::chrono::milliseconds interval_;
  const int worker_count_;
  std::condition_variable cv_;
  bool kicked_ = false;  // guarded by mu_
  bool stop_ = false;    // guarded by mu_
  Pass pass_;
  std::unique_ptr<boost::asio::thread_pool> workers_;
  std::thread loop_;
};

}  // namespace dpustor::manager
