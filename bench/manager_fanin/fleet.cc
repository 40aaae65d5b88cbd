#include "fleet.h"

#include <cstdio>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "common/agent_protocol.h"
#include "common/byte_stream.h"
#include "common/json_rpc.h"
#include "common/rpc_connection.h"
#include "status_doc.h"

namespace dpustor::bench {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::uint64_t Micros(Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

std::string AgentName(const std::string& prefix, int index) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%05d", index);
  return prefix + buf;
}

// The report template of this io thread: built once, then varied and copied per report,
// so the client spends little CPU and no per-agent memory on documents.
json& ThreadDocument(const std::string& prefix, std::size_t payload_bytes) {
  thread_local json doc = MakeDpuStatus(AgentName(prefix, 0), payload_bytes);
  return doc;
}

}  // namespace

// Answers the manager's calls like a DPU agent and tells the agent when the connection ends.
class Fleet::Handler : public rpc::ConnectionHandler {
 public:
  explicit Handler(std::weak_ptr<Agent> agent) : agent_(std::move(agent)) {}
  void OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) override;
  void OnClose(rpc::RpcConnection&, const Error& why) override;

 private:
  std::weak_ptr<Agent> agent_;
};

// One simulated agent. All members are used only on `strand_`.
class Fleet::Agent : public std::enable_shared_from_this<Agent> {
 public:
  Agent(Fleet& fleet, int index)
      : fleet_(fleet),
        name_(AgentName(fleet.options_.name_prefix, index)),
        strand_(asio::make_strand(fleet.ioc_)),
        socket_(strand_),
        timer_(strand_),
        rng_(0x5eed0000ULL + static_cast<std::uint64_t>(index)) {}

  asio::strand<asio::io_context::executor_type>& strand() { return strand_; }

  void Connect() {
    timer_.expires_after(fleet_.options_.connect_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec && !self->conn_) {
        boost::system::error_code ignored;
        self->socket_.close(ignored);
      }
    });
    socket_.async_connect(fleet_.options_.manager.address,
                          [self = shared_from_this()](const boost::system::error_code& ec) {
                            self->OnConnected(ec);
                          });
  }

  // Local shutdown: no further reports, connection closed.
  void Close() {
    closed_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (conn_) conn_->Close(Error{rpc::kConnectionClosed, "benchmark finished"});
  }

  void OnPeerClosed(const Error& why) {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    if (registered_) {
      fleet_.connected_.fetch_sub(1, std::memory_order_relaxed);
      fleet_.disconnects_.fetch_add(1, std::memory_order_relaxed);
      fleet_.NoteError(name_ + ": connection lost: " + why.message);
    }
  }

  json Document() {
    json& doc = ThreadDocument(fleet_.options_.name_prefix, fleet_.options_.payload_bytes);
    SetIdentity(doc, name_);
    VaryDpuStatus(doc, seq_, rng_());
    return doc;
  }

 private:
  void OnConnected(const boost::system::error_code& ec) {
    timer_.cancel();
    if (closed_) return Finish(false, "stopped");
    if (ec) return Finish(false, name_ + ": connect: " + ec.message());
    rpc::ConnectionOptions copts;
    copts.call_timeout = fleet_.options_.call_timeout;
    conn_ = rpc::RpcConnection::Create(net::MakeSocketStream(std::move(socket_)), copts);
    conn_->Start(std::make_shared<Handler>(weak_from_this()));
    json params = {{"name", name_},
                   {"kind", protocol::kKindDpu},
                   {"version", DPUSTOR_VERSION},
                   {"protocol", protocol::kVersion},
                   {"capabilities", json::object()},
                   {"token", fleet_.options_.token}};
    conn_->Call(protocol::kHello, std::move(params),
                [self = shared_from_this()](Result<json> r) { self->OnHello(r); });
  }

  void OnHello(const Result<json>& r) {
    if (!r.ok()) {
      Finish(false, name_ + ": agent.hello: " + r.error().message);
      if (conn_) conn_->Close(r.error());
      return;
    }
    if (closed_) return Finish(false, "stopped");
    registered_ = true;
    fleet_.connected_.fetch_add(1, std::memory_order_relaxed);
    Finish(true, "");
    // Random phase within one period so the reports of all agents spread evenly.
    std::uniform_real_distribution<double> phase(0.0, 1.0);
    next_due_ =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(fleet_.period_ * phase(rng_));
    Arm();
  }

  void Arm() {
    timer_.expires_at(next_due_);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->OnTimer();
    });
  }

  void OnTimer() {
    if (closed_ || !conn_) return;
    auto now = Clock::now();
    bool measuring = fleet_.measuring();
    if (measuring) fleet_.lag_.Record(Micros(now - next_due_));
    if (in_flight_) {
      if (measuring) fleet_.skipped_.fetch_add(1, std::memory_order_relaxed);
    } else {
      SendReport();
    }
    next_due_ += std::chrono::duration_cast<Clock::duration>(fleet_.period_);
    if (next_due_ <= now) {
      // More than a period behind (the client was starved): skip the missed slots.
      auto behind = (now - next_due_) / fleet_.period_ + 1;
      next_due_ += std::chrono::duration_cast<Clock::duration>(fleet_.period_ * behind);
      if (measuring)
        fleet_.skipped_.fetch_add(static_cast<std::uint64_t>(behind), std::memory_order_relaxed);
    }
    Arm();
  }

  void SendReport() {
    in_flight_ = true;
    ++seq_;
    json params = json::object();
    params["status"] = Document();
    auto sent = Clock::now();
    conn_->Call(protocol::kReport, std::move(params),
                [self = shared_from_this(), sent](Result<json> r) { self->OnAck(sent, r); });
  }

  void OnAck(Clock::time_point sent, const Result<json>& r) {
    in_flight_ = false;
    if (closed_ && !r.ok()) return;  // our own shutdown
    if (!fleet_.measuring()) return;
    if (r.ok() && r->is_object() && r->value("ack", false)) {
      fleet_.acked_.fetch_add(1, std::memory_order_relaxed);
      fleet_.latency_.Record(Micros(Clock::now() - sent));
    } else {
      fleet_.errors_.fetch_add(1, std::memory_order_relaxed);
      fleet_.NoteError(name_ + ": agent.report: " +
                       (r.ok() ? "unexpected result " + r->dump() : r.error().message));
    }
  }

  void Finish(bool ok, const std::string& why) {
    if (finished_) return;
    finished_ = true;
    fleet_.OnRegistered(ok, why);
  }

  Fleet& fleet_;
  std::string name_;
  asio::strand<asio::io_context::executor_type> strand_;
  net::Protocol::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<rpc::RpcConnection> conn_;
  std::mt19937_64 rng_;
  Clock::time_point next_due_;
  std::uint64_t seq_ = 0;
  bool registered_ = false;
  bool finished_ = false;
  bool closed_ = false;
  bool in_flight_ = false;
};

void Fleet::Handler::OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) {
  auto a = agent_.lock();
  if (m.method == protocol::kPing) return reply(json{{"ok", true}});
  if (m.method == protocol::kCollect && a) return reply(a->Document());
  reply(Error{rpc::kMethodNotFound, "method not found: " + m.method});
}

void Fleet::Handler::OnClose(rpc::RpcConnection&, const Error& why) {
  if (auto a = agent_.lock()) a->OnPeerClosed(why);
}

Fleet::Fleet(FleetOptions options)
    : options_(std::move(options)),
      period_(std::chrono::duration_cast<std::chrono::nanoseconds>(
          std::chrono::duration<double>(1.0 / options_.rate))),
      work_(asio::make_work_guard(ioc_)) {
  json doc = MakeDpuStatus(AgentName(options_.name_prefix, 0), options_.payload_bytes);
  VaryDpuStatus(doc, 1, 1);
  payload_size_ = rpc::Encode(rpc::MakeRequest(1, protocol::kReport, {{"status", doc}})).size();
}

Fleet::~Fleet() {
  Shutdown();
}

ConnectResult Fleet::ConnectAll(const std::atomic<bool>& interrupted,
                                const std::function<void(const ConnectResult&)>& progress) {
  for (unsigned i = 0; i < std::max(1u, options_.threads); ++i)
    threads_.emplace_back([this] { ioc_.run(); });

  auto started = Clock::now();
  auto state = [&] {  // REQUIRES: mu_ held
    ConnectResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    r.registered = done_ - failed_;
    r.failed = failed_;
    r.first_error = first_connect_error_;
    return r;
  };
  auto next_progress = started + std::chrono::seconds(5);
  agents_.reserve(static_cast<std::size_t>(options_.agents));
  for (int first = 0; first < options_.agents && !interrupted; first += options_.batch) {
    int last = std::min(options_.agents, first + options_.batch);
    for (int i = first; i < last; ++i) {
      auto agent = std::make_shared<Agent>(*this, i);
      agents_.push_back(agent);
      asio::post(agent->strand(), [agent] { agent->Connect(); });
    }
    std::unique_lock lock(mu_);
    while (done_ < last && !interrupted) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (progress && Clock::now() >= next_progress) {
        next_progress += std::chrono::seconds(5);
        auto r = state();
        lock.unlock();
        progress(r);
        lock.lock();
      }
    }
  }
  std::lock_guard lock(mu_);
  ConnectResult r = state();
  r.failed += options_.agents - done_;  // never tried (interrupted)
  return r;
}

void Fleet::OnRegistered(bool ok, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    ++done_;
    if (!ok) {
      ++failed_;
      if (first_connect_error_.empty()) first_connect_error_ = why;
    }
  }
  cv_.notify_all();
}

void Fleet::NoteError(const std::string& why) {
  if (stopping_) return;
  std::lock_guard lock(mu_);
  if (first_error_.empty()) first_error_ = why;
}

void Fleet::BeginWindow() {
  acked_ = 0;
  errors_ = 0;
  skipped_ = 0;
  disconnects_ = 0;
  latency_.Reset();
  lag_.Reset();
  {
    std::lock_guard lock(mu_);
    first_error_.clear();
  }
  measuring_ = true;
}

void Fleet::EndWindow() {
  measuring_ = false;
}

WindowStats Fleet::Snapshot() const {
  WindowStats s;
  s.acked = acked_;
  s.errors = errors_;
  s.skipped = skipped_;
  s.disconnects = disconnects_;
  s.lat_p50_us = latency_.Quantile(0.50);
  s.lat_p90_us = latency_.Quantile(0.90);
  s.lat_p99_us = latency_.Quantile(0.99);
  s.lat_p999_us = latency_.Quantile(0.999);
  s.lat_max_us = latency_.max();
  s.lag_p99_us = lag_.Quantile(0.99);
  s.lag_max_us = lag_.max();
  s.connected = connected_;
  std::lock_guard lock(mu_);
  s.first_error = first_error_;
  return s;
}

void Fleet::Shutdown() {
  if (stopping_.exchange(true)) return;
  measuring_ = false;
  for (auto& a : agents_) asio::post(a->strand(), [a] { a->Close(); });
  work_.reset();
  // The io threads return once every connection and timer is gone; do not wait forever on
  // a connection that refuses to die.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!threads_.empty() && !ioc_.stopped() && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ioc_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
  agents_.clear();
}

}  // namespace dpustor::bench
