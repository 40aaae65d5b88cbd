// A blocking HTTP/1.1 client for dpustorctl: one request per call to the manager's REST API.
// Not thread-safe; one call at a time.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"

namespace dpustor::cli {

struct HttpResult {
  int status = 0;
  std::string body;
};

// `server` is "http://HOST:PORT" (an optional path prefix is kept); `target` starts with '/'.
Result<HttpResult> HttpGet(const std::string& server, const std::string& target,
                           std::chrono::milliseconds timeout);
Result<HttpResult> HttpRequest(const std::string& method, const std::string& server,
                               const std::string& target, const std::string& body,
                               std::chrono::milliseconds timeout);

}  // namespace dpustor::cli
