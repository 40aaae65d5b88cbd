#include "manager/agent_service.h"

#include <spdlog/spdlog.h>

#include "common/agent_protocol.h"
#include "common/names.h"
#include "common/params.h"
#include "common/token.h"

namespace dpustor::manager {

namespace asio = boost::asio;
using rpc::CallError;
using rpc::Params;

namespace {
std::string Subject(const std::string& kind, const std::string& name) {
  return kind + "/" + name;
}

}  // namespace

// One agent connection. Until agent.hello succeeds only agent.hello is accepted.
class AgentService::Link : public rpc::ConnectionHandler {
 public:
  Link(AgentService& service, std::shared_ptr<rpc::RpcConnection> conn)
      : service_(service), conn_(conn) {}

  void OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) override {
    if (session_ == 0 && m.method != protocol::kHello) {
      ++service_.stats_.requests_refused;
      return reply(Error{rpc::kUnauthorized, "say agent.hello first"});
    }
    service_.methods_.Dispatch(*this, m.method, m.params, [this, reply](Result<json> r) {
      if (!r.ok()) ++service_.stats_.requests_refused;
      reply(std::move(r));
    });
  }

  void OnNotification(rpc::RpcConnection&, rpc::Message&& m) override {
    if (session_ == 0) return;
    service_.inventory_.Touch(name_, session_);  // agent.heartbeat needs nothing more
    if (m.method != protocol::kEvent) return;
    try {
      Params p(m.params);
      auto type = p.Required<std::string>("type");
      auto detail = p.Get<json>("detail", nullptr);
      if (service_.on_event_ && service_.on_event_(name_, kind_, type, detail)) return;
      service_.events_.Add(Subject(kind_, name_), "agent." + type, detail.dump(), detail);
    } catch (const CallError& e) {
      spdlog::warn("agent {}: bad agent.event: {}", name_, e.what());
    }
  }

  void OnClose(rpc::RpcConnection&, const Error& why) override {
    --service_.stats_.connections_open;
    if (session_ == 0) return;
    {
      std::lock_guard lock(service_.links_mu_);
      service_.links_.erase(session_);
    }
    if (service_.inventory_.MarkUnreachable(name_, session_, "connection lost: " + why.message))
      service_.events_.Add(Subject(kind_, name_), "agent.unreachable",
                           "connection lost: " + why.message);
  }

  json Hello(const json& params) {
    Params p(params);
    auto name = p.Required<std::string>("name");
    auto kind = p.Required<std::string>("kind");
    auto version = p.Get<std::string>("version", "");
    auto proto = p.Required<int>("protocol");
    auto token = p.Required<std::string>("token");
    auto caps = p.Get<json>("capabilities", json::object());
    protocol::CheckName("name", name);
    if (kind != protocol::kKindDpu && kind != protocol::kKindCeph)
      throw rpc::ParamError("kind", "must be \"dpu\" or \"ceph\"");
    if (!caps.is_object()) throw rpc::ParamError("capabilities", "expected an object");
    if (session_ != 0)
      throw CallError(rpc::kAlreadyExists, "already registered on this connection");
    if (!TokensEqual(token, service_.options_.token)) {
      ++service_.stats_.hellos_refused;
      spdlog::warn("agent.hello from {} as '{}' refused: bad enrollment token", conn_->peer(),
                   name);
      throw CallError(rpc::kUnauthorized, "enrollment token not accepted");
    }
    if (proto != protocol::kVersion) {
      ++service_.stats_.hellos_refused;
      throw CallError(rpc::kUnsupportedVersion, "protocol version " + std::to_string(proto) +
                                                    " not supported; manager speaks " +
                                                    std::to_string(protocol::kVersion));
    }

    std::uint64_t replaced = 0;
    auto session = service_.inventory_.Register(
        manager::Hello{name, kind, version, caps, conn_->peer()}, &replaced);
    if (!session.ok()) {
      ++service_.stats_.hellos_refused;
      throw CallError(session.error().code, session.error().message);
    }
    session_ = *session;
    name_ = name;
    kind_ = kind;
    std::shared_ptr<rpc::RpcConnection> old;
    {
      std::lock_guard lock(service_.links_mu_);
      if (replaced != 0) {
        old = service_.links_[replaced].lock();
        service_.links_.erase(replaced);
      }
      service_.links_[session_] = conn_;
    }
    // The agent reconnected before the manager noticed the old connection died.
    if (old) old->Close(Error{rpc::kConnectionClosed, "superseded by a new session"});
    ++service_.stats_.hellos_accepted;
    service_.events_.Add(Subject(kind, name), "agent.registered",
                         "registered from " + conn_->peer() + " (version " + version + ")");
    if (service_.on_registered_) service_.on_registered_(name_, kind_);
    return {{"session", session_},
            {"protocol", protocol::kVersion},
            {"heartbeat_timeout_ms", service_.options_.heartbeat_timeout.count()}};
  }

  json Report(const json& params) {
    Params(params).RejectUnknown({"status"});
    auto it = params.find("status");
    if (it == params.end()) throw rpc::ParamError("status", "required");
    if (!it->is_object()) throw rpc::ParamError("status", "expected an object");
    // The one copy of a report: into the immutable document the inventory shares.
    auto status = std::make_shared<const json>(*it);
    if (!service_.inventory_.Report(name_, session_, status))
      throw CallError(rpc::kConnectionClosed, "session superseded; say agent.hello again");
    if (service_.on_report_) service_.on_report_(name_, kind_, status);
    return {{"ack", true}};
  }

 private:
  AgentService& service_;
  std::shared_ptr<rpc::RpcConnection> conn_;
  std::uint64_t session_ = 0;
  std::string name_;
  std::string kind_;
};

AgentService::AgentService(asio::io_context& ioc, Inventory& inventory, EventLog& events,
                           AgentServiceOptions options)
    : ioc_(ioc),
      inventory_(inventory),
      events_(events),
      options_(std::move(options)),
      server_(
          ioc,
          rpc::ConnectionOptions{options_.max_message_bytes, std::chrono::seconds(30), 64 << 20},
          [this](std::shared_ptr<rpc::RpcConnection> c) { Accept(std::move(c)); }),
      heartbeat_timer_(ioc) {
  methods_.Add(protocol::kHello, "register an agent: name, kind, version, protocol, token",
               [](Link& l, const json& p) { return l.Hello(p); });
  methods_.Add(protocol::kReport, "status snapshot of the agent: {status: {...}}",
               [](Link& l, const json& p) { return l.Report(p); });
}

AgentService::~AgentService() {
  Stop();
}

Status AgentService::Listen(const net::Endpoint& endpoint) {
  auto st = server_.Listen(endpoint);
  if (st.ok()) CheckHeartbeats();
  return st;
}

void AgentService::Stop() {
  server_.Stop();
  heartbeat_timer_.cancel();
  // Close outside the lock: Close may run the connection's OnClose inline, which locks too.
  std::map<std::uint64_t, std::weak_ptr<rpc::RpcConnection>> links;
  {
    std::lock_guard lock(links_mu_);
    links.swap(links_);
  }
  for (auto& [id, weak] : links) {
    if (auto c = weak.lock()) c->Close(Error{rpc::kConnectionClosed, "manager shutting down"});
  }
}

void AgentService::Call(const std::string& name, const std::string& method, json params,
                        std::chrono::milliseconds timeout, rpc::RpcConnection::Callback done) {
  std::shared_ptr<rpc::RpcConnection> conn;
  if (auto rec = inventory_.Get(name); rec && rec->state == kOnline) {
    std::lock_guard lock(links_mu_);
    auto it = links_.find(rec->session);
    if (it != links_.end()) conn = it->second.lock();
  }
  if (!conn) {
    done(Error{rpc::kConnectionClosed, "agent '" + name + "' is not connected"});
    return;
  }
  conn->Call(method, std::move(params), std::move(done), timeout);
}

void AgentService::Accept(std::shared_ptr<rpc::RpcConnection> conn) {
  ++stats_.connections_open;
  conn->Start(std::make_shared<Link>(*this, conn));
}

void AgentService::CheckHeartbeats() {
  auto timeout = options_.heartbeat_timeout.count();
  for (const auto& [name, session] : inventory_.Silent(NowMs(), timeout)) {
    std::string why = "no message for " + std::to_string(timeout) + " ms";
    if (!inventory_.MarkUnreachable(name, session, why)) continue;
    auto rec = inventory_.Get(name);
    events_.Add(Subject(rec ? rec->kind : "agent", name), "agent.unreachable", why);
    std::shared_ptr<rpc::RpcConnection> conn;
    {
      std::lock_guard lock(links_mu_);
      conn = links_[session].lock();
      links_.erase(session);
    }
    if (conn) conn->Close(Error{rpc::kTimeout, why});
  }
  // Check often enough that an agent turns unreachable at most a quarter late.
  heartbeat_timer_.expires_after(
      std::max(options_.heartbeat_timeout / 4, std::chrono::milliseconds(100)));
  heartbeat_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) CheckHeartbeats();
  });
}

}  // namespace dpustor::manager
