// RpcServer accepts stream connections on one endpoint (TCP or Unix) and hands each, as an
// RpcConnection on its own strand, to the owner's callback. A stale Unix socket file left by
// a dead process is replaced; a live one is not stolen.
// Thread-safety: Listen/Stop from one thread; the callback runs on the new connection's strand.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>

#include "common/endpoint.h"
#include "common/rpc_connection.h"

namespace dpustor::rpc {

class RpcServer {
 public:
  using OnConnection = std::function<void(std::shared_ptr<RpcConnection>)>;

  RpcServer(boost::asio::io_context& ioc, ConnectionOptions options, OnConnection on_connection);
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  Status Listen(const net::Endpoint& endpoint);
  void Stop();
  // The bound address (useful with port 0).
  std::string local_address() const { return local_address_; }

 private:
  void Accept();

  boost::asio::io_context& ioc_;
  ConnectionOptions options_;
  OnConnection on_connection_;
  boost::asio::basic_socket_acceptor<net::Protocol> acceptor_;
  std::string local_address_;
  std::string unix_path_;
};

}  // namespace dpustor::rpc
