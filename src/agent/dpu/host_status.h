// Parsers for small host facts read from /proc: load average, uptime, hostname and kernel
// release, plus the bounded file reader the other DPU status collectors share.
// Threading: every function here is pure (or only reads the named file) and is safe to call
// from any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::agent::dpu {

// Reads a whole /proc or /sys file (whose stat size is often 0) of at most `max_bytes`.
// Returns nullopt and sets `*error` (when given) to "<path>: <reason>" on any failure,
// including a file larger than `max_bytes`.
std::optional<std::string> ReadTextFile(const std::string& path, std::string* error = nullptr,
                                        std::size_t max_bytes = 4 * 1024 * 1024);

// "0.13 0.07 0.02 3/87 4729" -> {"load1":0.13,"load5":0.07,"load15":0.02,
//                                 "running_tasks":3,"total_tasks":87}
std::optional<nlohmann::json> ParseLoadavg(std::string_view text, std::string* error = nullptr);

// "161.54 285.15" -> 161.54 (seconds since boot; the idle-time column is ignored).
std::optional<double> ParseUptime(std::string_view text, std::string* error = nullptr);

// One-line files such as /proc/sys/kernel/hostname and /proc/sys/kernel/osrelease:
// surrounding whitespace trimmed; fails when empty or when it spans several lines. Bytes
// outside printable ASCII are replaced by '?', so the result is always safe to put into JSON.
std::optional<std::string> ParseSingleLine(std::string_view text, std::string* error = nullptr);

}  // namespace dpustor::agent::dpu
