// RpcClient is a blocking JSON-RPC client for command-line tools, tests and collectors that
// run on their own thread (the SNAP client in the DPU agent, dpustorctl helpers). It runs a
// private io_context only while a call is in flight.
// Not thread-safe: one caller at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "common/rpc_connection.h"

namespace dpustor::rpc {

class RpcClient {
 public:
  static Result<std::unique_ptr<RpcClient>> Connect(const std::string& endpoint,
                                                    std::chrono::milliseconds timeout,
                                                    ConnectionOptions options = {});
  ~RpcClient();

  Result<json> Call(const std::string& method, const json& params,
                    std::chrono::milliseconds timeout);

 private:
  RpcClient() = default;
  boost::asio::io_context ioc_;
  std::shared_ptr<RpcConnection> conn_;
};

}  // namespace dpustor::rpc
