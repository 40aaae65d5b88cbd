// Endpoint names a stream socket address as operators write it: "HOST:PORT", "[V6]:PORT",
// "unix:PATH" or an absolute PATH (a Unix socket). TCP and Unix sockets then share one
// generic Asio protocol, so every connection class serves both.
#pragma once

#include <string>
#include <string_view>

#include <boost/asio/generic/stream_protocol.hpp>

#include "common/status.h"

namespace dpustor::net {

using Protocol = boost::asio::generic::stream_protocol;

struct Endpoint {
  Protocol::endpoint address;
  bool is_unix = false;
  std::string text;  // as given, for logs and errors
};

// Parses and, for host names, resolves (blocking) an endpoint. Port 0 asks for any port.
Result<Endpoint> ParseEndpoint(std::string_view text);

// "127.0.0.1:4000", "[::1]:4000" or "unix:/run/x.sock" for a bound or connected address.
std::string ToString(const Protocol::endpoint& address);

}  // namespace dpustor::net
