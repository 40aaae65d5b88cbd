#include "common/endpoint.h"

#include <sys/un.h>

#include <charconv>
#include <cstddef>
#include <cstring>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "common/json_rpc.h"

namespace dpustor::net {

namespace asio = boost::asio;

namespace {
Error Bad(std::string_view text, std::string_view why) {
  return Error{rpc::kInvalidParams, "bad address '" + std::string(text) + "': " + std::string(why)};
}
}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  std::string_view path;
  if (text.starts_with("unix:")) {
    path = text.substr(5);
  } else if (text.starts_with("/")) {
    path = text;
  }
  if (!path.empty() || text.starts_with("unix:")) {
    if (path.empty()) return Bad(text, "empty socket path");
    if (path.size() >= sizeof(sockaddr_un::sun_path)) return Bad(text, "socket path too long");
    return Endpoint{Protocol::endpoint(asio::local::stream_protocol::endpoint(std::string(path))),
                    true, std::string(text)};
  }

  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return Bad(text, "expected HOST:PORT or unix:PATH");
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
    return Bad(text, "bad port");
  if (host.empty()) return Bad(text, "empty host");

  boost::system::error_code err;
  auto ip = asio::ip::make_address(std::string(host), err);
  if (err) {
    asio::io_context ioc;
    asio::ip::tcp::resolver resolver(ioc);
    auto results = resolver.resolve(std::string(host), std::string(port_text), err);
    if (err || results.empty()) return Bad(text, "cannot resolve host: " + err.message());
    ip = results.begin()->endpoint().address();
  }
  return Endpoint{
      Protocol::endpoint(asio::ip::tcp::endpoint(ip, static_cast<unsigned short>(port))), false,
      std::string(text)};
}

std::string ToString(const Protocol::endpoint& address) {
  if (address.protocol().family() == AF_UNIX) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(address.data());
    std::size_t len = address.size() - offsetof(sockaddr_un, sun_path);
    std::string path(sun->sun_path, strnlen(sun->sun_path, len));
    return "unix:" + path;
  }
  asio::ip::tcp::endpoint tcp;
  if (address.size() > tcp.capacity()) return "?";
  std::memcpy(tcp.data(), address.data(), address.size());
  tcp.resize(address.size());
  if (tcp.address().is_v6())
    return "[" + tcp.address().to_string() + "]:" + std::to_string(tcp.port());
  return tcp.address().to_string() + ":" + std::to_string(tcp.port());
}

}  // namespace dpustor::net
