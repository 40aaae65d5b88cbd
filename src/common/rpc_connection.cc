#include "common/rpc_connection.h"

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>

namespace dpustor::rpc {

namespace asio = boost::asio;

std::shared_ptr<RpcConnection> RpcConnection::Create(std::unique_ptr<net::ByteStream> stream,
                                                     ConnectionOptions options) {
  return std::shared_ptr<RpcConnection>(new RpcConnection(std::move(stream), options));
}

RpcConnection::RpcConnection(std::unique_ptr<net::ByteStream> stream, ConnectionOptions options)
    : stream_(std::move(stream)),
      options_(options),
      peer_(stream_->Peer()),
      framer_(options.max_message_bytes),
      read_buffer_(64 * 1024) {}

RpcConnection::~RpcConnection() {
  stream_->Close();
}

void RpcConnection::Start(std::shared_ptr<ConnectionHandler> handler) {
  asio::dispatch(executor(), [self = shared_from_this(), handler = std::move(handler)]() mutable {
    self->handler_ = std::move(handler);
    self->ReadMore();
  });
}

void RpcConnection::ReadMore() {
  if (closed_ || close_after_write_) return;
  stream_->AsyncReadSome(asio::buffer(read_buffer_),
                         [self = shared_from_this()](const boost::system::error_code& ec,
                                                     std::size_t n) { self->OnRead(ec, n); });
}

void RpcConnection::OnRead(const boost::system::error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) {
    DoClose(ec == asio::error::eof ? Error{kConnectionClosed, "peer closed the connection"}
                                   : Error{kConnectionClosed, "read failed: " + ec.message()});
    return;
  }
  frames_.clear();
  Status framed = framer_.Feed(std::string_view(read_buffer_.data(), n), frames_);
  for (const auto& text : frames_) {
    HandleMessage(text);
    if (closed_) return;
  }
  if (!framed.ok()) {
    spdlog::warn("rpc {}: {}; closing", peer_, framed.error().message);
    Send(Encode(MakeError(nullptr, framed.error())));
    close_after_write_ = framed.error();
    if (!writing_) DoClose(*close_after_write_);
    return;
  }
  ReadMore();
}

void RpcConnection::HandleMessage(const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    Send(Encode(MakeError(nullptr, Error{kParseError, "parse error: invalid JSON"})));
    return;
  }
  if (value.is_array()) {
    Send(Encode(MakeError(nullptr, Error{kInvalidRequest, "batch requests are not supported"})));
    return;
  }
  json bad_id;
  auto msg = Classify(std::move(value), &bad_id);
  if (!msg.ok()) {
    Send(Encode(MakeError(bad_id, msg.error())));
    return;
  }

  switch (msg->kind) {
    case Message::Kind::kResponse: {
      if (!msg->id.is_number_unsigned()) {
        spdlog::debug("rpc {}: response with foreign id {}", peer_, msg->id.dump());
        return;
      }
      auto it = pending_.find(msg->id.get<std::uint64_t>());
      if (it == pending_.end()) return;  // late answer to a call that already timed out
      Pending p = std::move(it->second);
      pending_.erase(it);
      p.timer->cancel();
      if (msg->error) {
        p.done(*msg->error);
      } else {
        p.done(std::move(msg->result));
      }
      return;
    }
    case Message::Kind::kNotification:
      if (handler_) handler_->OnNotification(*this, std::move(*msg));
      return;
    case Message::Kind::kRequest: {
      if (!handler_) {
        Send(
            Encode(MakeError(msg->id, Error{kMethodNotFound, "method not found: " + msg->method})));
        return;
      }
      json id = msg->id;
      std::weak_ptr<RpcConnection> weak = weak_from_this();
      handler_->OnRequest(*this, std::move(*msg), [weak, id](Result<json> result) {
        auto self = weak.lock();
        if (!self) return;
        std::string bytes =
            Encode(result.ok() ? MakeResult(id, result.value()) : MakeError(id, result.error()));
        asio::dispatch(self->executor(), [self, bytes = std::move(bytes)]() mutable {
          self->Send(std::move(bytes));
        });
      });
      return;
    }
  }
}

void RpcConnection::Call(std::string method, json params, Callback done,
                         std::optional<std::chrono::milliseconds> timeout) {
  asio::dispatch(
      executor(), [self = shared_from_this(), method = std::move(method),
                   params = std::move(params), done = std::move(done), timeout]() mutable {
        if (self->closed_) {
          done(Error{kConnectionClosed, "connection is closed"});
          return;
        }
        std::uint64_t id = self->next_id_++;
        auto timer = std::make_unique<asio::steady_timer>(self->executor());
        timer->expires_after(timeout.value_or(self->options_.call_timeout));
        timer->async_wait(
            [weak = self->weak_from_this(), id, method](const boost::system::error_code& ec) {
              auto s = weak.lock();
              if (ec || !s) return;
              auto it = s->pending_.find(id);
              if (it == s->pending_.end()) return;
              Callback cb = std::move(it->second.done);
              s->pending_.erase(it);
              cb(Error{kTimeout, "no reply to " + method + " within the timeout"});
            });
        self->pending_.emplace(id, Pending{std::move(done), std::move(timer)});
        self->Send(Encode(MakeRequest(id, method, params)));
      });
}

void RpcConnection::Notify(std::string method, json params) {
  asio::dispatch(executor(), [self = shared_from_this(), method = std::move(method),
                              params = std::move(params)] {
    self->Send(Encode(MakeNotification(method, params)));
  });
}

void RpcConnection::Close(Error why) {
  asio::dispatch(executor(),
                 [self = shared_from_this(), why = std::move(why)] { self->DoClose(why); });
}

void RpcConnection::Send(std::string bytes) {
  if (closed_) return;
  queued_bytes_ += bytes.size();
  if (queued_bytes_ > options_.max_queued_write_bytes) {
    DoClose(Error{kConnectionClosed, "peer is not reading; write queue over its limit"});
    return;
  }
  write_queue_.push_back(std::move(bytes));
  if (!writing_) WriteNext();
}

void RpcConnection::WriteNext() {
  if (write_queue_.empty()) {
    writing_ = false;
    if (close_after_write_) DoClose(*close_after_write_);
    return;
  }
  writing_ = true;
  stream_->AsyncWrite(
      asio::buffer(write_queue_.front()),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        if (self->closed_) return;
        if (ec) {
          self->DoClose(Error{kConnectionClosed, "write failed: " + ec.message()});
          return;
        }
        self->queued_bytes_ -= self->write_queue_.front().size();
        self->write_queue_.pop_front();
        self->WriteNext();
      });
}

void RpcConnection::DoClose(const Error& why) {
  if (closed_) return;
  closed_ = true;
  stream_->Close();
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [id, p] : pending) {
    p.timer->cancel();
    p.done(Error{kConnectionClosed, "connection closed before a reply: " + why.message});
  }
  if (auto handler = std::move(handler_)) handler->OnClose(*this, why);
}

}  // namespace dpustor::rpc
