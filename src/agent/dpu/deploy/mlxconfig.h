// mlxconfig's text, read and written: the query output of `mlxconfig -d DEV -e q KEYS` (a
// "Device type:" line, then a "Configurations: Default Current Next Boot" table whose values
// look like `True(1)`, `False(0)`, `EMBEDDED_CPU(1)` or `2`, a leading `*` marking a value
// that differs from the default), and the argv of a query and of a set for next boot.
// Pure functions, safe from any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

struct MlxValue {
  std::string default_value;
  std::string current;
  std::string next_boot;
  bool modified = false;  // the '*' mark
};

struct MlxQuery {
  std::string device_type;  // "BlueField3", "BlueField2", ...
  std::string description;
  std::map<std::string, MlxValue> values;
};

// Fails when the text has no "Device type:" line (not mlxconfig's output).
Result<MlxQuery> ParseMlxQuery(std::string_view text);

// Whether an mlxconfig value (`True(1)`, `2`) is what a spec asks for (`1`, `True`, `2`):
// equal as written, equal to the number in parentheses, or to the label before them
// (case-insensitively).
bool MlxValueMatches(const std::string& value, const std::string& wanted);

// What a firmware spec needs, judged from a query.
struct FirmwarePlan {
  std::map<std::string, std::string> to_set;  // next boot differs: set these
  std::vector<std::string> pending;           // next boot right, current not yet
  std::vector<std::string> missing;           // keys the device did not report
};
FirmwarePlan PlanFirmware(const MlxQuery& query, const std::map<std::string, std::string>& want);

std::vector<std::string> MlxQueryArgv(const std::string& mlxconfig, const std::string& device,
                                      const std::vector<std::string>& keys);
std::vector<std::string> MlxSetArgv(const std::string& mlxconfig, const std::string& device,
                                    const std::map<std::string, std::string>& values);

}  // namespace dpustor::agent::dpu::deploy
