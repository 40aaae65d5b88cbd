#include "agent/dpu/system_status.h"

#include <exception>
#include <functional>
#include <optional>
#include <utility>

#include "agent/dpu/host_status.h"
#include "agent/dpu/hwmon.h"
#include "agent/dpu/meminfo.h"
#include "common/process.h"

namespace dpustor::agent::dpu {
namespace {

using nlohmann::json;

// Keeps stderr excerpts in error strings short and printable (valid UTF-8 for JSON).
std::string FirstLine(const std::string& text, std::size_t max_chars = 200) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > max_chars) line = line.substr(0, max_chars) + "...";
  for (char& c : line) {
    if (c < 0x20 || c > 0x7e) c = '?';
  }
  return line;
}

// Runs one piece of collection; a failure (returned message or exception) becomes an entry in
// `errors` prefixed with `what`, and the piece's value becomes `fallback`.
json Guard(const char* what, std::vector<std::string>& errors, json fallback,
           const std::function<std::optional<json>(std::string*)>& piece) {
  std::string error;
  try {
    if (auto value = piece(&error)) return std::move(*value);
  } catch (const std::exception& e) {
    error = std::string("unexpected exception: ") + e.what();
  } catch (...) {
    error = "unexpected exception";
  }
  errors.push_back(std::string(what) + ": " + (error.empty() ? "failed" : error));
  return fallback;
}

// Reads `path` and hands its text to `parse`.
template <class Parse>
std::optional<json> ReadAndParse(const std::string& path, std::string* error, Parse parse) {
  const auto text = ReadTextFile(path, error);
  if (!text) return std::nullopt;
  auto value = parse(*text, error);
  if (!value) return std::nullopt;
  return json(std::move(*value));
}

}  // namespace

json SystemStatusCollector::Collect() {
  std::vector<std::string> errors;
  json out = json::object();
  const std::string& proc = paths_.proc_root;

  out["cpu"] = Guard("cpu", errors, nullptr, [&](std::string* error) -> std::optional<json> {
    const auto text = ReadTextFile(proc + "/stat", error);
    if (!text) return std::nullopt;
    const auto stat = ParseProcStat(*text, error);
    if (!stat) return std::nullopt;
    return cpu_usage_.Sample(*stat);
  });
  out["memory"] = Guard("memory", errors, nullptr, [&](std::string* error) {
    return ReadAndParse(proc + "/meminfo", error, ParseMeminfo);
  });
  out["load"] = Guard("load", errors, nullptr, [&](std::string* error) {
    return ReadAndParse(proc + "/loadavg", error, ParseLoadavg);
  });
  out["uptime_s"] = Guard("uptime", errors, nullptr, [&](std::string* error) {
    return ReadAndParse(proc + "/uptime", error, ParseUptime);
  });
  out["hostname"] = Guard("hostname", errors, nullptr, [&](std::string* error) {
    return ReadAndParse(proc + "/sys/kernel/hostname", error, ParseSingleLine);
  });
  out["kernel"] = Guard("kernel", errors, nullptr, [&](std::string* error) {
    return ReadAndParse(proc + "/sys/kernel/osrelease", error, ParseSingleLine);
  });
  out["temperatures"] = Guard("temperatures", errors, json::array(), [&](std::string*) {
    return std::optional<json>(ReadHwmonTemperatures(paths_.sys_root));
  });
  out["links"] = CollectLinks(errors);
  out["errors"] = errors;
  return out;
}

json SystemStatusCollector::CollectLinks(std::vector<std::string>& errors) {
  const auto sampled_at = LinkRates::Clock::now();
  return Guard("links", errors, json::array(), [&](std::string* error) -> std::optional<json> {
    if (paths_.ip_command.empty()) {
      *error = "no ip command configured";
      return std::nullopt;
    }
    ProcessOptions options;
    options.timeout = command_timeout_;
    options.max_output_bytes = 16 << 20;
    auto run = RunProcess(paths_.ip_command, options);
    if (!run.ok()) {
      *error = run.error().message;
      return std::nullopt;
    }
    if (run->exit_code != 0) {
      *error = paths_.ip_command[0] + " exited with status " + std::to_string(run->exit_code);
      if (!run->err.empty()) *error += ": " + FirstLine(run->err);
      return std::nullopt;
    }
    auto links = ParseIpLinks(run->out, error);
    if (!links) return std::nullopt;
    return link_rates_.Sample(*links, sampled_at);
  });
}

}  // namespace dpustor::agent::dpu
