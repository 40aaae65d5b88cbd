// /proc/meminfo parser.
// Threading: pure function, safe to call from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::agent::dpu {

// Parses /proc/meminfo text into
//   {"total_bytes": .., "free_bytes": .., "available_bytes": .., "buffers_bytes": ..,
//    "cached_bytes": .., "swap_total_bytes": .., "swap_free_bytes": ..,
//    "hugepages": {"size_bytes": .., "total": .., "free": .., "reserved": .., "surplus": ..}}
// "kB" values are converted to bytes; HugePages_* are page counts. Unknown lines are ignored,
// and a key whose line is missing (or whose value is malformed) is left out rather than
// reported as 0; "hugepages" is present only if at least one of its lines is.
// Fails (nullopt + *error) only when MemTotal cannot be read, i.e. the text is not meminfo.
std::optional<nlohmann::json> ParseMeminfo(std::string_view text, std::string* error = nullptr);

}  // namespace dpustor::agent::dpu
