#include "agent/common/agent_session.h"

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "common/agent_protocol.h"
#include "common/endpoint.h"

namespace dpustor::agent {

namespace asio = boost::asio;

// Routes the manager's requests to the session's method table; reports a lost connection.
class AgentSession::Handler : public rpc::ConnectionHandler {
 public:
  Handler(std::weak_ptr<AgentSession> session, std::uint64_t generation)
      : session_(std::move(session)), generation_(generation) {}

  void OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) override {
    auto s = session_.lock();
    if (!s) return reply(Error{rpc::kConnectionClosed, "agent is stopping"});
    asio::post(s->ioc_, [s, m = std::move(m), reply = std::move(reply)]() mutable {
      s->methods_.Dispatch(*s, m.method, m.params, std::move(reply));
    });
  }
  void OnClose(rpc::RpcConnection&, const Error& why) override {
    auto s = session_.lock();
    if (!s) return;
    asio::post(s->ioc_, [s, why, g = generation_] {
      if (g == s->generation_) s->OnLost(why.message);
    });
  }

 private:
  std::weak_ptr<AgentSession> session_;
  std::uint64_t generation_;
};

std::shared_ptr<AgentSession> AgentSession::Create(asio::io_context& ioc, AgentIdentity id,
                                                   SessionOptions options, Collector collect) {
  return std::shared_ptr<AgentSession>(
      new AgentSession(ioc, std::move(id), std::move(options), std::move(collect)));
}

AgentSession::AgentSession(asio::io_context& ioc, AgentIdentity id, SessionOptions options,
                           Collector collect)
    : ioc_(ioc),
      id_(std::move(id)),
      options_(std::move(options)),
      collect_(std::move(collect)),
      timer_(ioc),
      heartbeat_timer_(ioc) {
  methods_.Add(protocol::kPing, "liveness check", [](AgentSession&, const json&) -> json {
    return {{"ok", true}};
  });
  methods_.AddAsync(protocol::kCollect, "collect and return a status snapshot now",
                    [](AgentSession& s, const json&, rpc::Reply reply) {
                      asio::post(s.collector_, [collect = s.collect_, reply] { reply(collect()); });
                    });
}

AgentSession::~AgentSession() {
  collector_.join();
}

void AgentSession::Start() {
  asio::post(ioc_, [self = shared_from_this()] { self->Connect(); });
}

void AgentSession::Stop() {
  asio::post(ioc_, [self = shared_from_this()] {
    self->stopped_ = true;
    self->timer_.cancel();
    self->heartbeat_timer_.cancel();
    ++self->generation_;
    if (self->conn_) self->conn_->Close(Error{rpc::kConnectionClosed, "agent stopping"});
    self->conn_.reset();
  });
}

void AgentSession::Connect() {
  if (stopped_) return;
  auto ep = net::ParseEndpoint(options_.manager);
  if (!ep.ok()) return OnLost(ep.error().message);
  auto socket = std::make_shared<net::Protocol::socket>(ioc_);
  auto deadline = std::make_shared<asio::steady_timer>(ioc_, options_.connect_timeout);
  deadline->async_wait([socket](const boost::system::error_code& ec) {
    if (!ec) socket->close();
  });
  std::uint64_t g = ++generation_;
  socket->async_connect(ep->address, [self = shared_from_this(), socket, deadline,
                                      g](const boost::system::error_code& ec) {
    deadline->cancel();
    if (g != self->generation_ || self->stopped_) return;
    if (ec) return self->OnLost("connect to " + self->options_.manager + ": " + ec.message());
    rpc::ConnectionOptions copts;
    copts.max_message_bytes = self->options_.max_message_bytes;
    self->conn_ = rpc::RpcConnection::Create(net::MakeSocketStream(std::move(*socket)), copts);
    self->handler_ = std::make_shared<Handler>(self, g);
    self->conn_->Start(self->handler_);
    self->Hello();
  });
}

void AgentSession::Hello() {
  json params = {{"name", id_.name},
                 {"kind", id_.kind},
                 {"version", id_.version},
                 {"protocol", protocol::kVersion},
                 {"capabilities", id_.capabilities},
                 {"token", id_.token}};
  conn_->Call(
      protocol::kHello, params, [self = shared_from_this(), g = generation_](Result<json> r) {
        asio::post(self->ioc_, [self, g, r = std::move(r)] {
          if (g != self->generation_ || self->stopped_) return;
          if (!r.ok()) {
            // A refused hello (bad token, version) is logged loudly but still retried: the
            // operator may fix the manager side without restarting every agent.
            spdlog::error("manager refused agent.hello: {}", r.error().message);
            if (self->conn_) self->conn_->Close(r.error());
            return;
          }
          spdlog::info("registered with manager {} as {} '{}'", self->options_.manager,
                       self->id_.kind, self->id_.name);
          self->registered_ = true;
          self->backoff_ = std::chrono::milliseconds(0);
          self->Sent();
          // Three chances within the manager's timeout; none when it names none.
          std::int64_t timeout = 0;
          if (auto it = r->find("heartbeat_timeout_ms"); it != r->end() && it->is_number_integer())
            timeout = it->get<std::int64_t>();
          self->heartbeat_every_ =
              std::chrono::milliseconds(timeout > 0 ? std::max<std::int64_t>(timeout / 3, 50) : 0);
          self->ScheduleHeartbeat();
          self->ScheduleReport(std::chrono::milliseconds(0));
        });
      });
}

void AgentSession::ScheduleReport(std::chrono::milliseconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait(
      [self = shared_from_this(), g = generation_](const boost::system::error_code& ec) {
        if (ec || g != self->generation_ || self->stopped_) return;
        self->Report();
      });
}

void AgentSession::Report() {
  if (report_in_flight_) return;
  report_in_flight_ = true;
  auto started = std::chrono::steady_clock::now();
  asio::post(collector_, [self = shared_from_this(), g = generation_, started] {
    json status = self->collect_();
    asio::post(self->ioc_, [self, g, started, status = std::move(status)]() mutable {
      self->report_in_flight_ = false;
      if (g != self->generation_ || self->stopped_ || !self->conn_) return;
      self->report_in_flight_ = true;
      self->Sent();
      self->conn_->Call(protocol::kReport, {{"status", std::move(status)}},
                        [self, g, started](Result<json> r) {
                          asio::post(self->ioc_, [self, g, started, r = std::move(r)] {
                            self->report_in_flight_ = false;
                            if (g != self->generation_ || self->stopped_) return;
                            if (!r.ok()) {
                              spdlog::warn("agent.report failed: {}", r.error().message);
                              if (self->conn_) self->conn_->Close(r.error());
                              return;
                            }
                            // Keep a steady cadence: the next report is due one interval
                            // after this one started, not after it finished.
                            auto spent = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - started);
                            auto next = self->options_.report_interval - spent;
                            self->ScheduleReport(std::max(next, std::chrono::milliseconds(0)));
                          });
                        });
    });
  });
}

void AgentSession::ScheduleHeartbeat() {
  if (heartbeat_every_.count() == 0) return;
  heartbeat_timer_.expires_after(heartbeat_every_);
  heartbeat_timer_.async_wait(
      [self = shared_from_this(), g = generation_](const boost::system::error_code& ec) {
        if (ec || g != self->generation_ || self->stopped_ || !self->conn_) return;
        if (std::chrono::steady_clock::now() - self->last_sent_ >= self->heartbeat_every_) {
          self->conn_->Notify(protocol::kHeartbeat, json::object());
          self->Sent();
        }
        self->ScheduleHeartbeat();
      });
}

void AgentSession::OnLost(const std::string& why) {
  if (stopped_) return;
  ++generation_;  // invalidates callbacks of the old connection
  registered_ = false;
  if (conn_) conn_->Close(Error{rpc::kConnectionClosed, why});
  conn_.reset();
  handler_.reset();
  auto delay = NextBackoff();
  spdlog::warn("manager connection lost ({}); retrying in {} ms", why, delay.count());
  timer_.expires_after(delay);
  timer_.async_wait(
      [self = shared_from_this(), g = generation_](const boost::system::error_code& ec) {
        if (ec || g != self->generation_) return;
        self->Connect();
      });
}

std::chrono::milliseconds AgentSession::NextBackoff() {
  // Exponential backoff with full jitter (uniform in [base/2, base]) so a restarted manager
  // is not hit by every agent in the same millisecond.
  backoff_ = backoff_.count() == 0 ? options_.backoff_initial
                                   : std::min(backoff_ * 2, options_.backoff_max);
  std::uniform_int_distribution<std::int64_t> d(backoff_.count() / 2, backoff_.count());
  return std::chrono::milliseconds(d(rng_));
}

void AgentSession::SendEvent(const std::string& type, const json& detail) {
  asio::post(ioc_, [self = shared_from_this(), type, detail] {
    if (self->registered_ && self->conn_) {
      self->conn_->Notify(protocol::kEvent, {{"type", type}, {"detail", detail}});
      self->Sent();
    }
  });
}

}  // namespace dpustor::agent
