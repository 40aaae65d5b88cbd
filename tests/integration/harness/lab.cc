#include "harness/lab.h"

#include <filesystem>
#include <sstream>

#include "cli/http_client.h"

namespace dpustor::testing {

std::string Bin(const std::string& relative) {
  return std::string(DPUSTOR_BINARY_DIR) + "/" + relative;
}
std::string SourcePath(const std::string& relative) {
  return std::string(DPUSTOR_SOURCE_DIR) + "/" + relative;
}

void CephSuite::Start(const std::string& prefix, const std::vector<std::string>& rbd_pools) {
  dir_ = std::make_unique<TempDir>(prefix);
  lab_ = std::make_unique<CephLab>(*dir_ / "ceph");
  if (!lab_->Start(std::chrono::seconds(120), &error_)) {
    if (error_.empty()) error_ = "Ceph did not start";
    return;
  }
  for (const std::string& pool : rbd_pools) {
    auto created = lab_->Ceph({"osd", "pool", "create", pool, "8"});
    auto init = lab_->Rbd({"pool", "init", pool});
    for (const auto* r : {&created, &init}) {
      if (!r->ok() || (*r)->exit_code != 0) {
        error_ = "pool " + pool + ": " + (r->ok() ? (*r)->err : r->error().message);
        return;
      }
    }
  }
}

void CephSuite::Stop() {
  lab_.reset();  // stops the cluster before its directory goes
  dir_.reset();
}

bool CephLab::Start(std::chrono::seconds timeout, std::string* error) {
  std::vector<std::string> argv = {"bash", SourcePath("scripts/lab/ceph.sh"), dir_};
  if (cephfs_) argv.push_back("--cephfs");
  script_ = ChildProcess(argv, dir_ + ".log");
  bool ready = WaitFor(
      [&] { return std::filesystem::exists(dir_ + "/ready") || !script_.running(); }, timeout);
  if (!ready || !std::filesystem::exists(dir_ + "/ready")) {
    *error = "ceph lab did not become ready:\n" + script_.Log();
    return false;
  }
  std::istringstream env(ReadFile(dir_ + "/env"));
  std::string line;
  while (std::getline(env, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\''))
      value = value.substr(1, value.size() - 2);
    env_[line.substr(0, eq)] = value;
  }
  for (const char* key : {"CEPH_CONF", "CEPH_KEYRING", "CEPH_FSID"}) {
    if (!env_.count(key)) {
      *error = std::string("ceph lab env lacks ") + key;
      return false;
    }
  }
  return true;
}

Result<ProcessResult> CephLab::Ceph(std::vector<std::string> args) const {
  args.insert(args.begin(), {"ceph", "--conf", conf(), "--keyring", keyring()});
  ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  return RunProcess(args, options);
}

Result<ProcessResult> CephLab::Rbd(std::vector<std::string> args) const {
  args.insert(args.begin(), {"rbd", "--conf", conf(), "--keyring", keyring()});
  ProcessOptions options;
  options.timeout = std::chrono::seconds(60);
  return RunProcess(args, options);
}

nlohmann::json GetJson(const std::string& server, const std::string& path) {
  auto r = cli::HttpGet(server, path, std::chrono::seconds(5));
  if (!r.ok() || r->status != 200) return nullptr;
  return nlohmann::json::parse(r->body, nullptr, false);
}

}  // namespace dpustor::testing
