#include "manager/reconcile_loop.h"

#include <future>

#include <boost/asio/post.hpp>

#include "common/json_rpc.h"
#include "manager/agent_service.h"

namespace dpustor::manager {

ReconcileLoop::ReconcileLoop(std::mutex& mu, std::chrono::milliseconds interval, int workers)
    : mu_(mu), interval_(interval), worker_count_(workers) {}

ReconcileLoop::~ReconcileLoop() {
  Stop();
}

void ReconcileLoop::Start(Pass pass) {
  pass_ = std::move(pass);
  workers_ = std::make_unique<boost::asio::thread_pool>(worker_count_);
  loop_ = std::thread([this] { Run(); });
}

void ReconcileLoop::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (workers_) workers_->join();
}

void ReconcileLoop::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

bool ReconcileLoop::PostFor(std::set<std::string>& busy, const std::string& key,
                            std::function<void()> job) {
  if (!busy.insert(key).second) return false;
  boost::asio::post(*workers_, [this, &busy, key, job = std::move(job)] {
    job();
    std::lock_guard lock(mu_);
    busy.erase(key);
  });
  return true;
}

Result<nlohmann::json> ReconcileLoop::Call(AgentService& agents, const std::string& agent,
                                           const std::string& method, nlohmann::json params,
                                           std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<Result<nlohmann::json>>>();
  auto future = promise->get_future();
  agents.Call(agent, method, std::move(params), timeout,
              [promise](Result<nlohmann::json> r) { promise->set_value(std::move(r)); });
  while (future.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    std::lock_guard lock(mu_);
    if (stop_) return Error{rpc::kConnectionClosed, "manager is stopping"};
  }
  return future.get();
}

void ReconcileLoop::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, interval_, [&] { return kicked_ || stop_; });
    kicked_ = false;
    if (stop_) break;
    pass_(lock);
  }
}

}  // namespace dpustor::manager
