#include "agent/dpu/meminfo.h"

#include "agent/dpu/text_fields.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

namespace dpustor::agent::dpu {
namespace {

enum class Unit { kKilobytes, kCount };

struct Field {
  std::string_view key;   // name in /proc/meminfo
  std::string_view name;  // name in the JSON output
  Unit unit;
  bool hugepages;  // goes into the "hugepages" sub-object
};

constexpr Field kFields[] = {
    {"MemTotal", "total_bytes", Unit::kKilobytes, false},
    {"MemFree", "free_bytes", Unit::kKilobytes, false},
    {"MemAvailable", "available_bytes", Unit::kKilobytes, false},
    {"Buffers", "buffers_bytes", Unit::kKilobytes, false},
    {"Cached", "cached_bytes", Unit::kKilobytes, false},
    {"SwapTotal", "swap_total_bytes", Unit::kKilobytes, false},
    {"SwapFree", "swap_free_bytes", Unit::kKilobytes, false},
    {"Hugepagesize", "size_bytes", Unit::kKilobytes, true},
    {"HugePages_Total", "total", Unit::kCount, true},
    {"HugePages_Free", "free", Unit::kCount, true},
    {"HugePages_Rsvd", "reserved", Unit::kCount, true},
    {"HugePages_Surp", "surplus", Unit::kCount, true},
};

// "  24731708 kB" -> bytes; "   2048" -> count. nullopt when malformed or overflowing.
std::optional<std::uint64_t> ParseValue(std::string_view raw, Unit unit) {
  std::string_view v = Trim(raw);
  if (unit == Unit::kKilobytes) {
    if (v.size() < 2 || v.substr(v.size() - 2) != "kB") return std::nullopt;
    const auto kb = ParseNumber<std::uint64_t>(Trim(v.substr(0, v.size() - 2)));
    if (!kb || *kb > std::numeric_limits<std::uint64_t>::max() / 1024) return std::nullopt;
    return *kb * 1024;
  }
  return ParseNumber<std::uint64_t>(v);
}

}  // namespace

std::optional<nlohmann::json> ParseMeminfo(std::string_view text, std::string* error) {
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json hugepages = nlohmann::json::object();
  for (const std::string_view line : SplitLines(text)) {
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view key = Trim(line.substr(0, colon));
    for (const Field& f : kFields) {
      if (f.key != key) continue;
      const auto value = ParseValue(line.substr(colon + 1), f.unit);
      if (value) (f.hugepages ? hugepages : out)[std::string(f.name)] = *value;
      break;
    }
  }
  if (!out.contains("total_bytes")) {
    if (error != nullptr) *error = "meminfo: no readable MemTotal line";
    return std::nullopt;
  }
  if (!hugepages.empty()) out["hugepages"] = std::move(hugepages);
  return out;
}

}  // namespace dpustor::agent::dpu
