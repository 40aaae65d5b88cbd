// A manager core (store, inventory, events, agent service) in-process, on a temp database
// and a Unix socket, served by a background io thread.
#pragma once

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "manager/agent_service.h"

namespace dpustor::manager {

// Polls f every 10 ms until it holds or t has passed.
inline bool Eventually(const std::function<bool()>& f,
                       std::chrono::milliseconds t = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + t;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

inline std::string TestDir(const std::string& name) {
  static int counter = 0;
  auto dir = std::filesystem::temp_directory_path() /
             ("mgr-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

class ManagerCore {
 public:
  explicit ManagerCore(const std::string& dir,
                       std::chrono::milliseconds heartbeat = std::chrono::seconds(10))
      : dir_(dir) {
    StoreOptions so;
    so.path = dir + "/m.db";
    so.flush_interval = std::chrono::milliseconds(50);
    so.history_interval = std::chrono::seconds(0);
    store_ = std::move(*Store::Open(so));
    inventory_ = std::make_unique<Inventory>(store_.get());
    inventory_->Load(store_->LoadAgents());
    events_ = std::make_unique<EventLog>(store_.get(), 1000);
    events_->Load(store_->LoadEvents(1000));
    AgentServiceOptions ao;
    ao.token = "tok";
    ao.heartbeat_timeout = heartbeat;
    service_ = std::make_unique<AgentService>(ioc_, *inventory_, *events_, ao);
    auto ep = net::ParseEndpoint("unix:" + socket());
    auto st = service_->Listen(*ep);
    if (!st.ok()) throw std::runtime_error(st.error().message);
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  ~ManagerCore() {
    // Stop on the io thread, let the closes run, then end the thread.
    boost::asio::post(ioc_, [this] {
      service_->Stop();
      boost::asio::post(ioc_, [this] { ioc_.stop(); });
    });
    thread_.join();
    service_.reset();
  }
  std::string socket() const { return dir_ + "/agents.sock"; }
  Inventory& inventory() { return *inventory_; }
  EventLog& events() { return *events_; }
  Store& store() { return *store_; }
  AgentService& service() { return *service_; }

 private:
  std::string dir_;
  boost::asio::io_context ioc_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<EventLog> events_;
  std::unique_ptr<AgentService> service_;
  std::thread thread_;
};

}  // namespace dpustor::manager
