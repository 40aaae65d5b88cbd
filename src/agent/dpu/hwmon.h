// Temperature sensors from the Linux hwmon sysfs class (SYS_ROOT/class/hwmon/hwmon*/).
// Threading: ReadHwmonTemperatures only reads files; safe to call from any thread.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dpustor::agent::dpu {

// Walks `sys_root`/class/hwmon/hwmon*/ and returns one entry per readable temp*_input:
//   [{"chip": "mlx5", "hwmon": "hwmon0", "sensor": "temp1", "label": "asic" | null,
//     "celsius": 54.0, "crit_celsius": 105.0, "max_celsius": 95.0}, ...]
// "chip" is the hwmon "name" file (the directory name when that is missing); "label" is the
// temp*_label file, null when absent; crit_celsius/max_celsius appear only when their files
// exist and parse. Values are millidegrees in sysfs and degrees here.
// Ordered by hwmon number, then sensor number. A missing or unreadable directory gives an
// empty array; unreadable or garbage sensor files are skipped. Never throws.
nlohmann::json ReadHwmonTemperatures(const std::string& sys_root);

}  // namespace dpustor::agent::dpu
