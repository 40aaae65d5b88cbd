// AgentSession keeps one agent connected to its manager: it dials out (agents never listen),
// says agent.hello with the enrollment token, sends agent.report every interval with a
// status snapshot, answers the manager's calls, and on any failure reconnects with
// exponential backoff and jitter, for as long as it runs. Used by every agent kind.
//
// Status collection blocks (files, commands, SNAP's socket), so it runs on a private
// collector thread; the session itself lives on the io_context given to it. While a
// collection is slow, agent.heartbeat keeps the manager from declaring the agent dead.
// Thread-safety: Start/Stop from the owner's thread; everything else runs on the io_context.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <nlohmann/json.hpp>

#include "common/method_table.h"
#include "common/rpc_connection.h"

namespace dpustor::agent {

using json = nlohmann::json;

struct AgentIdentity {
  std::string name;
  std::string kind;  // protocol::kKindDpu or kKindCeph
  std::string version;
  json capabilities = json::object();
  std::string token;
};

struct SessionOptions {
  std::string manager;  // "HOST:PORT"
  std::chrono::milliseconds report_interval{5000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::size_t max_message_bytes = 16 << 20;
};

class AgentSession : public std::enable_shared_from_this<AgentSession> {
 public:
  // Returns the status snapshot sent in agent.report; called on the collector thread.
  using Collector = std::function<json()>;

  static std::shared_ptr<AgentSession> Create(boost::asio::io_context& ioc, AgentIdentity id,
                                              SessionOptions options, Collector collect);
  ~AgentSession();

  // Methods the manager may call on this agent, besides the built-in agent.ping and
  // agent.collect. Register before Start().
  rpc::MethodTable<AgentSession>& methods() { return methods_; }

  void Start();
  void Stop();

  // Sends an agent.event notification if connected (dropped otherwise: events are also
  // visible in the next report).
  void SendEvent(const std::string& type, const json& detail);

  bool connected() const { return registered_; }

 private:
  class Handler;
  AgentSession(boost::asio::io_context& ioc, AgentIdentity id, SessionOptions options,
               Collector collect);
  void Connect();
  void Hello();
  void ScheduleReport(std::chrono::milliseconds delay);
  void Report();
  void ScheduleHeartbeat();
  void Sent() { last_sent_ = std::chrono::steady_clock::now(); }
  void OnLost(const std::string& why);
  std::chrono::milliseconds NextBackoff();

  boost::asio::io_context& ioc_;
  AgentIdentity id_;
  SessionOptions options_;
  Collector collect_;
  rpc::MethodTable<AgentSession> methods_;
  boost::asio::thread_pool collector_{1};
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer heartbeat_timer_;
  std::chrono::milliseconds heartbeat_every_{0};  // 0: the manager named no timeout
  std::chrono::steady_clock::time_point last_sent_;
  std::shared_ptr<rpc::RpcConnection> conn_;
  std::shared_ptr<Handler> handler_;
  std::chrono::milliseconds backoff_{0};
  std::mt19937_64 rng_{std::random_device{}()};
  std::uint64_t generation_ = 0;  // bumped per connection; stale callbacks check it
  bool registered_ = false;
  bool stopped_ = false;
  bool report_in_flight_ = false;
};

}  // namespace dpustor::agent
