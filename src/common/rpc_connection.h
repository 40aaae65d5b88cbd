// RpcConnection speaks JSON-RPC 2.0 over one ByteStream in both directions: it answers
// incoming requests through a Handler and sends its own calls, matching responses to calls
// by id, each with a timeout. Messages are newline-delimited JSON on send; on receive any
// sequence of complete JSON values is accepted (see JsonFramer). A message over the size
// limit or bytes that are not JSON close the connection after an error reply; a malformed
// but delimited message only gets an error reply.
//
// Thread-safety: public methods may be called from any thread; all state lives on the
// connection's strand (the executor of its stream). Callbacks run on that strand.
// Lifetime: shared_ptr-owned; the connection keeps its Handler alive until it closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/byte_stream.h"
#include "common/json_framer.h"
#include "common/json_rpc.h"
#include "common/method_table.h"

namespace dpustor::rpc {

struct ConnectionOptions {
  std::size_t max_message_bytes = 4 << 20;
  std::chrono::milliseconds call_timeout{10000};
  // A peer that does not read its replies is cut off rather than buffered without bound.
  std::size_t max_queued_write_bytes = 64 << 20;
};

class RpcConnection;

class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  // A request to answer through `reply` (exactly once, from any thread).
  virtual void OnRequest(RpcConnection& conn, Message&& request, Reply reply) = 0;
  virtual void OnNotification(RpcConnection& /*conn*/, Message&& /*note*/) {}
  // The connection closed (peer, error or Close()); `why` says which.
  virtual void OnClose(RpcConnection& /*conn*/, const Error& /*why*/) {}
};

class RpcConnection : public std::enable_shared_from_this<RpcConnection> {
 public:
  using Callback = std::function<void(Result<json>)>;

  static std::shared_ptr<RpcConnection> Create(std::unique_ptr<net::ByteStream> stream,
                                               ConnectionOptions options = {});
  RpcConnection(const RpcConnection&) = delete;
  RpcConnection& operator=(const RpcConnection&) = delete;
  ~RpcConnection();

  // Starts reading. `handler` may be null for a connection that only makes calls.
  void Start(std::shared_ptr<ConnectionHandler> handler);

  // Sends a request; `done` gets the result, the peer's error, kTimeout or
  // kConnectionClosed. Timeout defaults to options.call_timeout.
  void Call(std::string method, json params, Callback done,
            std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  void Notify(std::string method, json params);
  void Close(Error why = Error{kConnectionClosed, "closed locally"});

  const std::string& peer() const { return peer_; }
  boost::asio::any_io_executor executor() { return stream_->executor(); }

 private:
  struct Pending {
    Callback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  RpcConnection(std::unique_ptr<net::ByteStream> stream, ConnectionOptions options);
  void ReadMore();
  void OnRead(const boost::system::error_code& ec, std::size_t n);
  void HandleMessage(const std::string& text);
  void Send(std::string bytes);
  void WriteNext();
  void DoClose(const Error& why);

  std::unique_ptr<net::ByteStream> stream_;
  ConnectionOptions options_;
  std::string peer_;
  std::shared_ptr<ConnectionHandler> handler_;
  JsonFramer framer_;
  std::vector<char> read_buffer_;
  std::vector<std::string> frames_;
  std::deque<std::string> write_queue_;
  std::size_t queued_bytes_ = 0;
  bool writing_ = false;
  std::optional<Error> close_after_write_;  // set when the stream cannot be read further
  bool closed_ = false;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Pending> pending_;
};

}  // namespace dpustor::rpc
