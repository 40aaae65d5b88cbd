#include "manager/http_server.h"

#include <spdlog/spdlog.h>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace dpustor::manager {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

constexpr std::size_t kMaxBodyBytes = 1 << 20;
constexpr auto kIdleTimeout = std::chrono::seconds(60);

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
               HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// One HTTP connection: read a request, answer, repeat while keep-alive.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, const Router& router)
      : stream_(std::move(socket)), router_(router) {}

  void Start() { Read(); }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout) return Close();
    if (ec == http::error::body_limit)
      return Respond(JsonError(413, "request body too large"), false);
    if (ec) return Close();
    auto& req = parser_->get();
    HttpRequest r;
    r.method = std::string(req.method_string());
    ParseTarget(std::string(req.target()), r);
    r.body = req.body();
    HttpResponse resp;
    try {
      resp = router_.Handle(r);
    } catch (const std::exception& e) {
      spdlog::error("http {} {}: {}", r.method, r.path, e.what());
      resp = JsonError(500, std::string("internal error: ") + e.what());
    }
    Respond(std::move(resp), req.keep_alive());
  }

  void Respond(HttpResponse resp, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<http::status>(resp.status));
    res->version(11);
    res->set(http::field::server, "dpustor-manager");
    res->set(http::field::content_type, resp.content_type);
    res->set(http::field::cache_control, "no-store");
    res->keep_alive(keep_alive);
    res->body() = std::move(resp.body);
    res->prepare_payload();
    http::async_write(
        stream_, *res,
        [self = shared_from_this(), res, keep_alive](beast::error_code ec, std::size_t) {
          if (ec || !keep_alive) return self->Close();
          self->Read();
        });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const Router& router_;
};

}  // namespace

HttpResponse JsonError(int status, const std::string& message) {
  return HttpResponse{status, "application/json",
                      nlohmann::json{{"error", message}, {"status", status}}.dump()};
}

void ParseTarget(const std::string& target, HttpRequest& request) {
  auto q = target.find('?');
  request.path = Decode(target.substr(0, q));
  if (q == std::string::npos) return;
  std::string_view rest(target);
  rest.remove_prefix(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto part = rest.substr(0, amp);
    auto eq = part.find('=');
    if (!part.empty()) {
      request.query[Decode(part.substr(0, eq))] =
          eq == std::string_view::npos ? "" : Decode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
}

void Router::Add(std::string method, std::string pattern, HttpHandler handler) {
  routes_.push_back(Route{std::move(method), Split(pattern), std::move(handler)});
}

HttpResponse Router::Handle(const HttpRequest& request) const {
  auto parts = Split(request.path);
  bool path_known = false;
  for (const auto& route : routes_) {
    if (route.segments.size() != parts.size()) continue;
    std::vector<std::string> captures;
    bool match = true;
    for (std::size_t i = 0; i < parts.size() && match; ++i) {
      const auto& seg = route.segments[i];
      if (seg.size() > 1 && seg.front() == '{' && seg.back() == '}') {
        captures.push_back(parts[i]);
      } else {
        match = seg == parts[i];
      }
    }
    if (!match) continue;
    path_known = true;
    if (route.method != request.method) continue;
    return route.handler(request, captures);
  }
  return path_known ? JsonError(405, "method " + request.method + " not allowed on " + request.path)
                    : JsonError(404, "no such resource: " + request.path);
}

HttpServer::HttpServer(asio::io_context& ioc, const Router& router)
    : ioc_(ioc), router_(router), acceptor_(ioc) {}

HttpServer::~HttpServer() {
  Stop();
}

Status HttpServer::Listen(const std::string& address) {
  auto ep = net::ParseEndpoint(address);
  if (!ep.ok()) return ep.error();
  if (ep->is_unix) return Error{-32602, "the HTTP API listens on HOST:PORT, not " + address};
  asio::ip::tcp::endpoint tcp;
  std::memcpy(tcp.data(), ep->address.data(), ep->address.size());
  tcp.resize(ep->address.size());
  beast::error_code ec;
  acceptor_.open(tcp.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(tcp, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error{-32010, "cannot listen on " + address + ": " + ec.message()};
  auto local = acceptor_.local_endpoint();
  local_address_ = local.address().to_string() + ":" + std::to_string(local.port());
  Accept();
  return Status::Ok();
}

void HttpServer::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_),
                         [this](beast::error_code ec, asio::ip::tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                           if (!ec)
                             std::make_shared<HttpSession>(std::move(socket), router_)->Start();
                           Accept();
                         });
}

void HttpServer::Stop() {
  beast::error_code ec;
  acceptor_.close(ec);
}

}  // namespace dpustor::manager
