#include "agent/ceph/ceph_cli.h"

#include <cctype>
#include <system_error>

#include "common/json_rpc.h"
#include "common/process.h"

namespace dpustor::agent::ceph {

namespace {
// ceph and rbd put the reason on lines of their own ("rbd: error opening pool 'x': (2) No
// such file or directory"); lines that start with a timestamp are librados log noise.
std::string Reason(const std::string& err) {
  std::string reason;
  std::size_t start = 0;
  while (start < err.size()) {
    auto end = err.find('\n', start);
    if (end == std::string::npos) end = err.size();
    auto line = err.substr(start, end - start);
    start = end + 1;
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || std::isdigit(static_cast<unsigned char>(line[first])))
      continue;
    reason += (reason.empty() ? "" : "; ") + line.substr(first);
  }
  if (reason.size() > 500) reason = reason.substr(0, 500) + "...";
  return reason;
}

bool ContainsNoCase(const std::string& text, const std::string& part) {
  auto lower = [](std::string v) {
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  return lower(text).find(lower(part)) != std::string::npos;
}
}  // namespace

std::vector<std::string> CephCli::Command(const std::string& tool,
                                          const std::vector<std::string>& args, bool json) const {
  std::vector<std::string> argv = {tool == "rbd" ? options_.rbd : options_.ceph};
  if (!options_.conf.empty()) argv.insert(argv.end(), {"--conf", options_.conf});
  if (!options_.keyring.empty()) argv.insert(argv.end(), {"--keyring", options_.keyring});
  if (!options_.user.empty()) argv.insert(argv.end(), {"--id", options_.user});
  if (tool == "ceph") {
    // Fail fast when no monitor answers instead of retrying for the default 300 s.
    auto secs = std::max<long>(1, options_.timeout.count() / 1000);
    argv.insert(argv.end(), {"--connect-timeout", std::to_string(secs)});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  if (json) argv.insert(argv.end(), {"--format", "json"});
  return argv;
}

Result<nlohmann::json> CephCli::Ceph(const std::vector<std::string>& args, CliRun run) const {
  return Run("ceph", args, run);
}
Result<nlohmann::json> CephCli::Rbd(const std::vector<std::string>& args, CliRun run) const {
  return Run("rbd", args, run);
}

Result<nlohmann::json> CephCli::Run(const std::string& tool, const std::vector<std::string>& args,
                                    CliRun run) const {
  if (run.exit_code) *run.exit_code = 0;
  std::string what = tool + " " + JoinCommand(args);
  ProcessOptions po;
  po.timeout = options_.timeout;
  auto r = RunProcess(Command(tool, args, run.json), po);
  if (!r.ok()) {
    auto msg = r.error().message;
    bool timed_out = msg.find("timed out") != std::string::npos;
    return Error{timed_out ? rpc::kTimeout : rpc::kFailed,
                 "'" + what + "' " + (timed_out ? "timed out" : "failed: " + msg)};
  }
  if (r->exit_code != 0) {
    if (run.exit_code) *run.exit_code = r->exit_code;
    std::string reason = Reason(r->err);
    if (reason.empty()) reason = "no error output";
    std::string how = r->signal != 0 ? "was killed by signal " + std::to_string(r->signal)
                                     : "exited with status " + std::to_string(r->exit_code);
    // Both tools exit with the errno of the failure, which their last words do not always
    // name (a wrong key: "rbd: couldn't connect to the cluster!", status 13): add it when
    // the reason lacks it. Status 1 is also their generic failure, so it is left alone.
    if (r->signal == 0 && r->exit_code > 1 && r->exit_code < 134) {
      auto name = std::error_code(r->exit_code, std::generic_category()).message();
      if (!ContainsNoCase(reason, name)) how += " (" + name + ")";
    }
    return Error{rpc::kFailed, "'" + what + "' " + how + ": " + reason};
  }
  if (!run.json) return nlohmann::json(nullptr);
  // Some commands print nothing on success (rbd ls of an empty pool prints "[]", but
  // mutating commands print nothing); that is an empty result, not an error.
  if (r->out.find_first_not_of(" \t\r\n") == std::string::npos) return nlohmann::json(nullptr);
  auto parsed = nlohmann::json::parse(r->out, nullptr, false);
  if (parsed.is_discarded())
    return Error{rpc::kFailed, "'" + what + "' printed output that is not JSON"};
  return parsed;
}

}  // namespace dpustor::agent::ceph
