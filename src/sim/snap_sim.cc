#include "sim/snap_sim.h"

#include <functional>
#include <mutex>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "common/endpoint.h"
#include "common/rpc_server.h"

namespace dpustor::sim {

namespace asio = boost::asio;
using json = nlohmann::json;

std::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kSnap4 ? "snap4" : "snap3";
}

std::optional<Dialect> ParseDialect(std::string_view name) {
  if (name == "snap4") return Dialect::kSnap4;
  if (name == "snap3") return Dialect::kSnap3;
  return std::nullopt;
}

SimMethodTable BuildMethodTable(Dialect dialect, bool virtio_fs) {
  SimMethodTable t;
  if (dialect == Dialect::kSnap4) {
    AddSnap4Methods(t);
    if (virtio_fs) AddVirtioFsMethods(t);
  } else {
    AddSnap3Methods(t);
  }
  AddBdevMethods(t);
  AddCommonMethods(t, dialect);
  return t;
}

struct SnapSim::Rep : std::enable_shared_from_this<SnapSim::Rep> {
  Rep(asio::io_context& ioc, SnapSimOptions o, std::unique_ptr<RbdOpener> rbd)
      : options(std::move(o)),
        strand(asio::make_strand(ioc)),
        state(options.config, std::move(rbd)),
        table(BuildMethodTable(options.dialect, options.config.virtio_fs)),
        server(ioc, options.connection,
               [this](std::shared_ptr<rpc::RpcConnection> c) { OnConnection(std::move(c)); }) {}

  void OnConnection(std::shared_ptr<rpc::RpcConnection> conn);
  void Handle(std::string method, json params, rpc::Reply reply);

  SnapSimOptions options;
  asio::strand<asio::io_context::executor_type> strand;
  SimState state;  // touched only on `strand`
  SimMethodTable table;
  rpc::RpcServer server;
  std::mutex mu;  // guards `connections` and `stopped` (accepts run on connection strands)
  std::vector<std::weak_ptr<rpc::RpcConnection>> connections;
  bool stopped = false;  // Stop() ran: the socket file is gone (maybe reused by another server)
};

namespace {

// Hands each request of one connection to the simulator (which queues it on its strand).
class SimConnectionHandler : public rpc::ConnectionHandler {
 public:
  using Handle = std::function<void(std::string method, json params, rpc::Reply reply)>;
  explicit SimConnectionHandler(Handle handle) : handle_(std::move(handle)) {}

  void OnRequest(rpc::RpcConnection&, rpc::Message&& request, rpc::Reply reply) override {
    handle_(std::move(request.method), std::move(request.params), std::move(reply));
  }
  void OnNotification(rpc::RpcConnection& conn, rpc::Message&& note) override {
    spdlog::debug("simulator: ignoring notification {} from {}", note.method, conn.peer());
  }

 private:
  Handle handle_;
};

}  // namespace

void SnapSim::Rep::OnConnection(std::shared_ptr<rpc::RpcConnection> conn) {
  spdlog::debug("simulator: connection from {}", conn->peer());
  {
    std::lock_guard lock(mu);
    std::erase_if(connections, [](const auto& w) { return w.expired(); });
    connections.push_back(conn);
  }
  conn->Start(std::make_shared<SimConnectionHandler>(
      [weak = weak_from_this()](std::string method, json params, rpc::Reply reply) {
        if (auto self = weak.lock()) {
          self->Handle(std::move(method), std::move(params), std::move(reply));
        } else {
          reply(Error{rpc::kConnectionClosed, "simulator is shutting down"});
        }
      }));
}

void SnapSim::Rep::Handle(std::string method, json params, rpc::Reply reply) {
  asio::post(strand, [weak = weak_from_this(), method = std::move(method),
                      params = std::move(params), reply = std::move(reply)]() mutable {
    auto self = weak.lock();
    if (!self) {
      reply(Error{rpc::kConnectionClosed, "simulator is shutting down"});
      return;
    }
    self->table.Dispatch(self->state, method, params, [&](Result<json> result) {
      if (result.ok()) {
        spdlog::debug("simulator: {} ok", method);
      } else {
        spdlog::info("simulator: {} failed: {} ({})", method, result.error().message,
                     result.error().code);
      }
      reply(std::move(result));
    });
  });
}

SnapSim::SnapSim(asio::io_context& ioc, SnapSimOptions options, std::unique_ptr<RbdOpener> rbd)
    : rep_(std::make_shared<Rep>(ioc, std::move(options), std::move(rbd))) {}

SnapSim::~SnapSim() {
  Stop();
}

Status SnapSim::Listen(const std::string& socket_path) {
  std::string text = socket_path.rfind("unix:", 0) == 0 ? socket_path : "unix:" + socket_path;
  auto ep = net::ParseEndpoint(text);
  if (!ep.ok()) return ep.error();
  if (!ep->is_unix) return Error{rpc::kInvalidParams, socket_path + " is not a Unix socket path"};
  Status s = rep_->server.Listen(*ep);
  if (s.ok()) {
    spdlog::info("simulator: serving simulated {} SNAP (no BlueField) on {} with {} methods",
                 DialectName(rep_->options.dialect), rep_->server.local_address(),
                 rep_->table.Names().size());
  }
  return s;
}

void SnapSim::Stop() {
  std::vector<std::weak_ptr<rpc::RpcConnection>> conns;
  {
    std::lock_guard lock(rep_->mu);
    if (rep_->stopped) return;
    rep_->stopped = true;
    conns.swap(rep_->connections);
  }
  rep_->server.Stop();
  for (auto& w : conns)
    if (auto c = w.lock()) c->Close(Error{rpc::kConnectionClosed, "simulator stopped"});
}

Dialect SnapSim::dialect() const {
  return rep_->options.dialect;
}

std::vector<std::string> SnapSim::MethodNames() const {
  return rep_->table.Names();
}

}  // namespace dpustor::sim
