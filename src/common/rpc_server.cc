#include "common/rpc_server.h"

#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/strand.hpp>

#include "common/unix_listener.h"

namespace dpustor::rpc {

namespace asio = boost::asio;

RpcServer::RpcServer(asio::io_context& ioc, ConnectionOptions options, OnConnection on_connection)
    : ioc_(ioc), options_(options), on_connection_(std::move(on_connection)), acceptor_(ioc) {}

Status RpcServer::Listen(const net::Endpoint& endpoint) {
  boost::system::error_code ec;
  if (endpoint.is_unix) {
    std::string path = net::ToString(endpoint.address).substr(5);
    auto fd = ListenUnix(path, asio::socket_base::max_listen_connections);
    if (!fd.ok()) return Error{kFailed, "cannot listen on " + path + ": " + fd.error().message};
    acceptor_.assign(endpoint.address.protocol(), fd->get(), ec);
    if (ec) {
      ::unlink(path.c_str());
      return Error{kFailed, "cannot listen on " + path + ": " + ec.message()};
    }
    fd->Release();  // the acceptor owns it now
    unix_path_ = path;
    local_address_ = "unix:" + path;  // getsockname() would name the temporary path
  } else {
    acceptor_.open(endpoint.address.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint.address, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Error{kFailed, "cannot listen on " + endpoint.text + ": " + ec.message()};
    local_address_ = net::ToString(acceptor_.local_endpoint());
  }
  Accept();
  return Status::Ok();
}

void RpcServer::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](const boost::system::error_code& ec,
                                                         net::Protocol::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of descriptors and similar: log and keep serving the connections we have.
      spdlog::warn("accept on {}: {}", local_address_, ec.message());
    } else {
      on_connection_(RpcConnection::Create(net::MakeSocketStream(std::move(socket)), options_));
    }
    Accept();
  });
}

void RpcServer::Stop() {
  boost::system::error_code ec;
  acceptor_.close(ec);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

}  // namespace dpustor::rpc
