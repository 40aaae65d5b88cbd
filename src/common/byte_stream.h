// ByteStream is the transport under an RpcConnection: a connected stream socket today (TCP
// or Unix), a TLS stream over it later, without RpcConnection knowing which.
// Completion handlers run on the stream's executor (the connection's strand).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/buffer.hpp>

#include "common/endpoint.h"

namespace dpustor::net {

class ByteStream {
 public:
  using Handler = std::function<void(const boost::system::error_code&, std::size_t)>;
  virtual ~ByteStream() = default;

  virtual void AsyncReadSome(boost::asio::mutable_buffer buffer, Handler handler) = 0;
  // Writes the whole buffer (or fails).
  virtual void AsyncWrite(boost::asio::const_buffer buffer, Handler handler) = 0;
  virtual void Close() = 0;
  virtual std::string Peer() const = 0;
  virtual boost::asio::any_io_executor executor() = 0;
};

// A plain connected socket. The socket must have been created on the connection's strand.
std::unique_ptr<ByteStream> MakeSocketStream(Protocol::socket socket);

}  // namespace dpustor::net
