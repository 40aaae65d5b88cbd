#include "common/rpc_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/strand.hpp>

namespace dpustor::rpc {

namespace asio = boost::asio;

RpcServer::RpcServer(asio::io_context& ioc, ConnectionOptions options, OnConnection on_connection)
    : ioc_(ioc), options_(options), on_connection_(std::move(on_connection)), acceptor_(ioc) {}

namespace {
// True when something accepts connections at `path`, i.e. the socket is not stale.
bool UnixSocketAlive(const std::string& path) {
  asio::io_context ioc;
  asio::local::stream_protocol::socket s(ioc);
  boost::system::error_code ec;
  s.connect(asio::local::stream_protocol::endpoint(path), ec);
  return !ec;
}
}  // namespace

Status RpcServer::Listen(const net::Endpoint& endpoint) {
  boost::system::error_code ec;
  if (endpoint.is_unix) {
    std::string path = net::ToString(endpoint.address).substr(5);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return Error{kFailed, "cannot listen on " + path + ": exists and is not a socket"};
      if (UnixSocketAlive(path))
        return Error{kFailed, "cannot listen on " + path + ": another process is serving it"};
      ::unlink(path.c_str());
    }
    unix_path_ = path;
  }
  acceptor_.open(endpoint.address.protocol(), ec);
  if (!ec && !endpoint.is_unix) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint.address, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{kFailed, "cannot listen on " + endpoint.text + ": " + ec.message()};
  local_address_ = net::ToString(acceptor_.local_endpoint());
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
