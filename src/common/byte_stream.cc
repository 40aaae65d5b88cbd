#include "common/byte_stream.h"

#include <boost/asio/write.hpp>

namespace dpustor::net {

namespace {

class SocketStream : public ByteStream {
 public:
  explicit SocketStream(Protocol::socket socket) : socket_(std::move(socket)) {
    boost::system::error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    peer_ = ec ? "?" : ToString(remote);
    if (peer_ == "unix:") peer_ = "unix-peer";
  }

  void AsyncReadSome(boost::asio::mutable_buffer buffer, Handler handler) override {
    socket_.async_read_some(buffer, std::move(handler));
  }
  void AsyncWrite(boost::asio::const_buffer buffer, Handler handler) override {
    boost::asio::async_write(socket_, buffer, std::move(handler));
  }
  void Close() override {
    boost::system::error_code ec;
    socket_.shutdown(Protocol::socket::shutdown_both, ec);
    socket_.close(ec);
  }
  std::string Peer() const override { return peer_; }
  boost::asio::any_io_executor executor() override { return socket_.get_executor(); }

 private:
  Protocol::socket socket_;
  std::string peer_;
};

}  // namespace

std::unique_ptr<ByteStream> MakeSocketStream(Protocol::socket socket) {
  return std::make_unique<SocketStream>(std::move(socket));
}

}  // namespace dpustor::net
