// HttpServer serves the manager's REST API, /metrics and the dashboard over HTTP/1.1 with
// keep-alive (Boost.Beast). Routes are patterns like "/api/v1/dpus/{name}"; a handler gets
// the request and the captured segments and returns a response. Unknown paths are 404,
// known paths with another method 405, oversized requests 413, all with a JSON error body.
// Thread-safety: handlers run on the io_context threads, concurrently for different
// connections; they must only touch thread-safe state.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/endpoint.h"
#include "common/status.h"

namespace dpustor::manager {

struct HttpRequest {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

using HttpHandler =
    std::function<HttpResponse(const HttpRequest&, const std::vector<std::string>& captures)>;

class Router {
 public:
  void Add(std::string method, std::string pattern, HttpHandler handler);
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;  // "{x}" captures
    HttpHandler handler;
  };
  std::vector<Route> routes_;
};

HttpResponse JsonError(int status, const std::string& message);

// Splits "/a/b?x=1&y=%20" into path and decoded query parameters.
void ParseTarget(const std::string& target, HttpRequest& request);

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& ioc, const Router& router);
  ~HttpServer();
  Status Listen(const std::string& address);  // "HOST:PORT"
  void Stop();
  std::string local_address() const { return local_address_; }

 private:
  void Accept();
  boost::asio::io_context& ioc_;
  const Router& router_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string local_address_;
};

}  // namespace dpustor::manager
