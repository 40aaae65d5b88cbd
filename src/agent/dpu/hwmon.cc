#include "agent/dpu/hwmon.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "agent/dpu/host_status.h"

namespace dpustor::agent::dpu {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxAttributeBytes = 4096;

// "hwmon12" with prefix "hwmon" -> 12; nullopt when the rest is not a plain number.
std::optional<unsigned> NumberAfter(std::string_view s, std::string_view prefix,
                                    std::string_view suffix = {}) {
  if (s.size() <= prefix.size() + suffix.size() || s.substr(0, prefix.size()) != prefix ||
      s.substr(s.size() - suffix.size()) != suffix) {
    return std::nullopt;
  }
  const std::string_view digits = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return value;
}

std::optional<std::string> ReadAttribute(const fs::path& path) {
  auto text = ReadTextFile(path.string(), nullptr, kMaxAttributeBytes);
  if (!text) return std::nullopt;
  return ParseSingleLine(*text);
}

// Millidegrees ("54000\n") -> degrees.
std::optional<double> ReadMillidegrees(const fs::path& path) {
  const auto text = ReadAttribute(path);
  if (!text) return std::nullopt;
  std::int64_t milli = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), milli);
  if (ec != std::errc() || ptr != text->data() + text->size()) return std::nullopt;
  return static_cast<double>(milli) / 1000.0;
}

// Numbered entries of `dir` whose names are prefix<N>suffix, sorted by N.
std::vector<std::pair<unsigned, std::string>> NumberedEntries(const fs::path& dir,
                                                              std::string_view prefix,
                                                              std::string_view suffix) {
  std::vector<std::pair<unsigned, std::string>> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (auto n = NumberAfter(name, prefix, suffix)) out.emplace_back(*n, std::move(name));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

nlohmann::json ReadHwmonTemperatures(const std::string& sys_root) {
  nlohmann::json result = nlohmann::json::array();
  try {
    const fs::path class_dir = fs::path(sys_root) / "class" / "hwmon";
    for (const auto& [hwmon_no, hwmon_name] : NumberedEntries(class_dir, "hwmon", "")) {
      const fs::path dir = class_dir / hwmon_name;
      const std::string chip = ReadAttribute(dir / "name").value_or(hwmon_name);
      for (const auto& [temp_no, input_name] : NumberedEntries(dir, "temp", "_input")) {
        const std::string sensor = "temp" + std::to_string(temp_no);
        const auto celsius = ReadMillidegrees(dir / input_name);
        if (!celsius) continue;
        nlohmann::json entry = {{"chip", chip}, {"hwmon", hwmon_name}, {"sensor", sensor}};
        const auto label = ReadAttribute(dir / (sensor + "_label"));
        entry["label"] = label ? nlohmann::json(*label) : nlohmann::json(nullptr);
        entry["celsius"] = *celsius;
        if (auto crit = ReadMillidegrees(dir / (sensor + "_crit"))) entry["crit_celsius"] = *crit;
        if (auto max = ReadMillidegrees(dir / (sensor + "_max"))) entry["max_celsius"] = *max;
        result.push_back(std::move(entry));
      }
    }
  } catch (const std::exception&) {
    // Allocation failure or a filesystem oddity: report what was gathered so far.
  }
  return result;
}

}  // namespace dpustor::agent::dpu
