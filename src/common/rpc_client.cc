#include "common/rpc_client.h"

#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "common/endpoint.h"

namespace dpustor::rpc {

namespace asio = boost::asio;

Result<std::unique_ptr<RpcClient>> RpcClient::Connect(const std::string& endpoint,
                                                      std::chrono::milliseconds timeout,
                                                      ConnectionOptions options) {
  auto ep = net::ParseEndpoint(endpoint);
  if (!ep.ok()) return ep.error();
  std::unique_ptr<RpcClient> c(new RpcClient());
  auto strand = asio::make_strand(c->ioc_);
  net::Protocol::socket socket(strand);
  asio::steady_timer timer(strand, timeout);
  std::optional<boost::system::error_code> result;
  socket.async_connect(ep->address, [&](const boost::system::error_code& ec) {
    result = ec;
    timer.cancel();
  });
  timer.async_wait([&](const boost::system::error_code& ec) {
    if (!ec) socket.close();
  });
  c->ioc_.run();
  c->ioc_.restart();
  if (!result || *result) {
    std::string why =
        (!result || *result == asio::error::operation_aborted) ? "timed out" : result->message();
    return Error{kConnectionClosed, "cannot connect to " + endpoint + ": " + why};
  }
  c->conn_ = RpcConnection::Create(net::MakeSocketStream(std::move(socket)), options);
  c->conn_->Start(nullptr);
  return c;
}

RpcClient::~RpcClient() {
  if (conn_) {
    conn_->Close();
    ioc_.restart();
    ioc_.poll();
  }
}

Result<json> RpcClient::Call(const std::string& method, const json& params,
                             std::chrono::milliseconds timeout) {
  std::optional<Result<json>> out;
  conn_->Call(
      method, params, [&](Result<json> r) { out = std::move(r); }, timeout);
  while (!out && ioc_.run_one() > 0) {
  }
  ioc_.restart();
  if (!out) return Error{kConnectionClosed, "connection closed"};
  return std::move(*out);
}

}  // namespace dpustor::rpc
