#include "agent/dpu/meminfo.h"

#include <charconv>
#include <cstdint>
#include <limits>
#include <system_error>

namespace dpustor::agent::dpu {
namespace {

constexpr std::string_view kSpace = " \t\r\v\f";

std::string_view Trim(std::string_view s) {
  const auto begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const auto end = s.find_last_not_of(kSpace);
  return s.substr(begin, end - begin + 1);
}

std::optional<std::uint64_t> ParseU64(std::string_view s) {
  std::uint64_t value = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (s.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

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
    const auto kb = ParseU64(Trim(v.substr(0, v.size() - 2)));
    if (!kb || *kb > std::numeric_limits<std::uint64_t>::max() / 1024) return std::nullopt;
    return *kb * 1024;
  }
  return ParseU64(v);
}

}  // namespace

std::optional<nlohmann::json> ParseMeminfo(std::string_view text, std::string* error) {
  nlohmann::json out = nlohmann::json::object();
  nlohmann::json hugepages = nlohmann::json::object();
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
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
