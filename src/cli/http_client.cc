#include "cli/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/json_rpc.h"

namespace dpustor::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

Result<HttpResult> HttpGet(const std::string& server, const std::string& target,
                           std::chrono::milliseconds timeout) {
  return HttpRequest("GET", server, target, "", timeout);
}

Result<HttpResult> HttpRequest(const std::string& method, const std::string& server,
                               const std::string& target, const std::string& body,
                               std::chrono::milliseconds timeout) {
  const std::string scheme = "http://";
  if (!server.starts_with(scheme))
    return Error{rpc::kInvalidParams, "server URL must start with http:// (got '" + server + "')"};
  std::string rest = server.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  auto colon = hostport.rfind(':');
  std::string host = colon == std::string::npos ? hostport : hostport.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : hostport.substr(colon + 1);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty())
    return Error{rpc::kInvalidParams, "bad server URL '" + server + "'"};

  try {
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    auto endpoints = resolver.resolve(host, port);
    stream.connect(endpoints);
    http::request<http::string_body> req{http::string_to_verb(method), prefix + target, 11};
    req.set(http::field::host, hostport);
    req.set(http::field::user_agent, "dpustorctl");
    req.set(http::field::accept, "application/json");
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 << 20);
    http::read(stream, buffer, parser);
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    return HttpResult{static_cast<int>(parser.get().result_int()), parser.get().body()};
  } catch (const std::exception& e) {
    return Error{rpc::kConnectionClosed, "cannot reach the manager at " + server + ": " + e.what()};
  }
}

}  // namespace dpustor::cli
