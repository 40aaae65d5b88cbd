// AgentService is the manager's side of the agent protocol (docs/protocol.md): it accepts
// agent connections, admits them with agent.hello (enrollment token, protocol version),
// takes agent.report and agent.event, and turns agents that fall silent for longer than the
// heartbeat timeout, or whose connection drops, `unreachable`.
// Thread-safety: Listen/Stop from the owner's thread; handlers run on connection strands and
// touch shared state only through Inventory and EventLog, which lock.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/method_table.h"
#include "common/rpc_server.h"
#include "manager/event_log.h"
#include "manager/inventory.h"

namespace dpustor::manager {

struct AgentServiceOptions {
  std::string token;
  std::chrono::milliseconds heartbeat_timeout{15000};
  std::size_t max_message_bytes = 16 << 20;
};

struct AgentServiceStats {
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> hellos_accepted{0};
  std::atomic<std::uint64_t> hellos_refused{0};
  std::atomic<std::uint64_t> requests_refused{0};  // before hello, unknown method, bad params
};

class AgentService {
 public:
  AgentService(boost::asio::io_context& ioc, Inventory& inventory, EventLog& events,
               AgentServiceOptions options);
  ~AgentService();

  Status Listen(const net::Endpoint& endpoint);

  // Calls `method` on the agent named `name` over its current session; kConnectionClosed
  // when it has none. `done` runs on that connection's strand.
  void Call(const std::string& name, const std::string& method, json params,
            std::chrono::milliseconds timeout, rpc::RpcConnection::Callback done);

  // Called (on a connection strand) after an agent registered, and with every report.
  using RegisteredHook = std::function<void(const std::string& name, const std::string& kind)>;
  using ReportHook = std::function<void(const std::string& name, const std::string& kind,
                                        const std::shared_ptr<const json>& status)>;
  // Called (on a connection strand) with every agent.event; returning true means the hook
  // recorded it, so it is not recorded again as a generic `agent.<type>` event.
  using EventHook = std::function<bool(const std::string& name, const std::string& kind,
                                       const std::string& type, const json& detail)>;
  void OnRegistered(RegisteredHook hook) { on_registered_ = std::move(hook); }
  void OnEvent(EventHook hook) { on_event_ = std::move(hook); }
  void OnReport(ReportHook hook) { on_report_ = std::move(hook); }
  void Stop();
  std::string local_address() const { return server_.local_address(); }
  const AgentServiceStats& stats() const { return stats_; }

  class Link;  // one agent connection

 private:
  void Accept(std::shared_ptr<rpc::RpcConnection> conn);
  void CheckHeartbeats();

  boost::asio::io_context& ioc_;
  Inventory& inventory_;
  EventLog& events_;
  AgentServiceOptions options_;
  AgentServiceStats stats_;
  rpc::MethodTable<Link> methods_;
  rpc::RpcServer server_;
  boost::asio::steady_timer heartbeat_timer_;
  std::mutex links_mu_;
  std::map<std::uint64_t, std::weak_ptr<rpc::RpcConnection>> links_;  // by session id
  RegisteredHook on_registered_;
  ReportHook on_report_;
  EventHook on_event_;
};

}  // namespace dpustor::manager
