#include "agent/dpu/host_status.h"

#include "agent/dpu/text_fields.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <system_error>
#include <vector>

namespace dpustor::agent::dpu {
namespace {

std::optional<double> ParseNonNegativeDouble(std::string_view s) {
  auto v = ParseNumber<double>(s);
  if (!v || !(*v >= 0.0) || *v > 1e300) return std::nullopt;  // rejects nan and inf
  return v;
}

}  // namespace

std::optional<std::string> ReadTextFile(const std::string& path, std::string* error,
                                        std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    SetError(error, path + ": " + std::strerror(errno));
    return std::nullopt;
  }
  std::string data;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      SetError(error, path + ": " + std::strerror(err));
      return std::nullopt;
    }
    if (n == 0) break;
    if (data.size() + static_cast<std::size_t>(n) > max_bytes) {
      ::close(fd);
      SetError(error, path + ": larger than " + std::to_string(max_bytes) + " bytes");
      return std::nullopt;
    }
    data.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

std::optional<nlohmann::json> ParseLoadavg(std::string_view text, std::string* error) {
  const auto fields = SplitWhitespace(text);
  if (fields.size() < 4) {
    SetError(error, "loadavg: expected at least 4 fields, got " + std::to_string(fields.size()));
    return std::nullopt;
  }
  const auto load1 = ParseNonNegativeDouble(fields[0]);
  const auto load5 = ParseNonNegativeDouble(fields[1]);
  const auto load15 = ParseNonNegativeDouble(fields[2]);
  if (!load1 || !load5 || !load15) {
    SetError(error, "loadavg: malformed load averages");
    return std::nullopt;
  }
  const auto slash = fields[3].find('/');
  if (slash == std::string_view::npos) {
    SetError(error, "loadavg: expected running/total tasks, got '" + std::string(fields[3]) + "'");
    return std::nullopt;
  }
  const auto running = ParseNumber<std::uint64_t>(fields[3].substr(0, slash));
  const auto total = ParseNumber<std::uint64_t>(fields[3].substr(slash + 1));
  if (!running || !total) {
    SetError(error, "loadavg: malformed task counts '" + std::string(fields[3]) + "'");
    return std::nullopt;
  }
  return nlohmann::json{{"load1", *load1},
                        {"load5", *load5},
                        {"load15", *load15},
                        {"running_tasks", *running},
                        {"total_tasks", *total}};
}

std::optional<double> ParseUptime(std::string_view text, std::string* error) {
  const auto fields = SplitWhitespace(text);
  if (fields.empty()) {
    SetError(error, "uptime: empty");
    return std::nullopt;
  }
  const auto seconds = ParseNonNegativeDouble(fields[0]);
  if (!seconds) {
    SetError(error, "uptime: malformed seconds '" + std::string(fields[0]) + "'");
    return std::nullopt;
  }
  return seconds;
}

std::optional<std::string> ParseSingleLine(std::string_view text, std::string* error) {
  const auto value = Trim(text);
  if (value.empty()) {
    SetError(error, "empty value");
    return std::nullopt;
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    SetError(error, "expected a single line");
    return std::nullopt;
  }
  std::string out(value);
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e) c = '?';  // keep the value printable ASCII, hence valid UTF-8
  }
  return out;
}

}  // namespace dpustor::agent::dpu
