#include "agent/dpu/deploy/mlxconfig.h"

#include <algorithm>
#include <cctype>
#include <sstream>

namespace dpustor::agent::dpu::deploy {

namespace {

std::string Trim(std::string_view s) {
  auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

bool IsKey(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isupper(c) || std::isdigit(c) || c == '_' || c == '[' || c == ']' || c == '.';
  });
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

}  // namespace

Result<MlxQuery> ParseMlxQuery(std::string_view text) {
  MlxQuery q;
  bool have_type = false, in_table = false;
  std::istringstream in{std::string(text)};
  for (std::string raw; std::getline(in, raw);) {
    std::string line = Trim(raw);
    if (line.starts_with("Device type:")) {
      q.device_type = Trim(line.substr(12));
      have_type = true;
    } else if (line.starts_with("Description:")) {
      q.description = Trim(line.substr(12));
    } else if (line.starts_with("Configurations:")) {
      in_table = true;
    } else if (in_table && !line.empty()) {
      bool modified = line[0] == '*';
      std::istringstream fields(modified ? line.substr(1) : line);
      std::string key;
      MlxValue v;
      fields >> key >> v.default_value >> v.current >> v.next_boot;
      // Footer lines ("The '*' shows parameters ...") and anything else are not rows.
      if (!IsKey(key) || v.next_boot.empty()) continue;
      v.modified = modified;
      q.values[key] = v;
    }
  }
  if (!have_type) return Error{0, "mlxconfig output has no 'Device type:' line"};
  return q;
}

bool MlxValueMatches(const std::string& value, const std::string& wanted) {
  if (value == wanted) return true;
  auto open = value.find('(');
  if (open == std::string::npos || value.back() != ')') return false;
  std::string label = value.substr(0, open);
  std::string number = value.substr(open + 1, value.size() - open - 2);
  return number == wanted || Lower(label) == Lower(wanted);
}

FirmwarePlan PlanFirmware(const MlxQuery& query, const std::map<std::string, std::string>& want) {
  FirmwarePlan plan;
  for (const auto& [key, value] : want) {
    auto it = query.values.find(key);
    if (it == query.values.end()) {
      plan.missing.push_back(key);
    } else if (!MlxValueMatches(it->second.next_boot, value)) {
      plan.to_set[key] = value;
    } else if (!MlxValueMatches(it->second.current, value)) {
      plan.pending.push_back(key);
    }
  }
  return plan;
}

std::vector<std::string> MlxQueryArgv(const std::string& mlxconfig, const std::string& device,
                                      const std::vector<std::string>& keys) {
  std::vector<std::string> argv = {mlxconfig, "-d", device, "-e", "q"};
  argv.insert(argv.end(), keys.begin(), keys.end());
  return argv;
}

std::vector<std::string> MlxSetArgv(const std::string& mlxconfig, const std::string& device,
                                    const std::map<std::string, std::string>& values) {
  std::vector<std::string> argv = {mlxconfig, "-d", device, "-y", "s"};
  for (const auto& [k, v] : values) argv.push_back(k + "=" + v);
  return argv;
}

}  // namespace dpustor::agent::dpu::deploy
