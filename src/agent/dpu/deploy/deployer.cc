#include "agent/dpu/deploy/deployer.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <spdlog/spdlog.h>

#include "agent/dpu/deploy/manifest.h"
#include "agent/dpu/deploy/mlxconfig.h"
#include "agent/dpu/deploy/preflight.h"
#include "common/json_rpc.h"
#include "common/process.h"
#include "snap/snap_client.h"

namespace dpustor::agent::dpu::deploy {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kHistory = 20;
constexpr int kSuperseded = 1;  // Error code of a wait given up for a newer request

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::vector<std::string>& Phases(Flavour f) {
  static const std::vector<std::string> kSnap4 = {"preflight", "firmware", "hugepages", "manifest",
                                                  "container", "rpc",      "reapply",   "ready"};
  static const std::vector<std::string> kSnap3 = {"preflight", "firmware", "hugepages", "config",
                                                  "service",   "rpc",      "reapply",   "ready"};
  return f == Flavour::kSnap4 ? kSnap4 : kSnap3;
}

const char* Describe(const std::string& phase) {
  static const std::map<std::string, const char*> kWhat = {
      {"preflight", "checking the DPU model, memory and tools"},
      {"firmware", "checking the firmware settings (mlxconfig -e q)"},
      {"hugepages", "reserving hugepages"},
      {"manifest", "writing the static pod manifest and the RPC init file"},
      {"config", "writing the RPC init file"},
      {"container", "waiting for the SNAP container"},
      {"service", "restarting the SNAP service"},
      {"rpc", "waiting for SNAP's RPC socket (spdk_get_version)"},
      {"reapply", "re-applying the DPU's volumes and shares"},
  };
  auto it = kWhat.find(phase);
  return it == kWhat.end() ? "" : it->second;
}

// "exited with status 2: <stderr>" for a command that ran and failed.
std::string Failure(const std::vector<std::string>& argv, const Result<ProcessResult>& r) {
  if (!r.ok()) return r.error().message;
  std::string err = r->err.empty() ? r->out : r->err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  return "'" + JoinCommand(argv) + "' exited with status " + std::to_string(r->exit_code) +
         (err.empty() ? "" : ": " + err);
}

Result<ProcessResult> RunTool(const std::vector<std::string>& argv,
                              std::chrono::milliseconds timeout) {
  ProcessOptions options;
  options.timeout = timeout;
  return RunProcess(argv, options);
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

Deployer::Deployer(DeployTools tools, DeployHooks hooks)
    : tools_(std::move(tools)), hooks_(std::move(hooks)) {}

Deployer::~Deployer() {
  Stop();
}

Status Deployer::Start() {
  auto loaded = LoadDeployState(tools_.StatePath());
  if (!loaded.ok()) return loaded.error();
  std::lock_guard lock(mu_);
  state_ = std::move(*loaded);
  if (state_.generation >= 0 && (state_.state == "deploying" || state_.state == "removing")) {
    spdlog::info("deploy: resuming generation {} at phase '{}'", state_.generation, state_.phase);
    pending_ = DeployRequest{state_.generation, state_.spec};
    pending_resume_ = true;
  }
  thread_ = std::thread([this] { Loop(); });
  return {};
}

void Deployer::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<json> Deployer::Apply(const json& params) {
  auto request = ParseDeployRequest(params);
  if (!request.ok()) return request.error();
  {
    std::lock_guard lock(mu_);
    auto same = [&](const std::optional<DeployRequest>& r) {
      return r && r->generation == request->generation && r->deployment == request->deployment;
    };
    if (same(running_)) {
      pending_.reset();            // the newest wish is what already runs
    } else if (!same(pending_)) {  // e.g. the interrupted request resumed at Start: kept
      pending_ = *request;
      pending_resume_ = false;
    }
  }
  cv_.notify_all();
  return json{{"accepted", true}, {"generation", request->generation}};
}

json Deployer::Observed() const {
  std::lock_guard lock(mu_);
  if (state_.generation < 0) return nullptr;
  const DeploySpec* spec = state_.spec ? &*state_.spec : nullptr;
  json running = nullptr;
  if (state_.ready)
    running = {{"version", state_.ready->spec.version},
               {"image", state_.ready->spec.image},
               {"generation", state_.ready->generation}};
  return {{"name", state_.name},
          {"generation", state_.generation},
          {"version", spec ? json(spec->version) : json(nullptr)},
          {"flavour", spec ? json(FlavourName(spec->flavour)) : json(nullptr)},
          {"image", spec ? json(spec->image) : json(nullptr)},
          {"phase", state_.phase},
          {"state", state_.state},
          {"message", state_.message},
          {"previous", state_.previous},
          {"running", running},
          {"snap_version", state_.snap_version},
          {"since", state_.since_ms},
          {"history", state_.history}};
}

bool Deployer::WaitIdle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return !pending_ && !running_; });
}

void Deployer::Loop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || pending_.has_value(); });
    if (stop_) return;
    DeployRequest request = *pending_;
    bool resume = pending_resume_;
    pending_.reset();
    running_ = request;
    lock.unlock();
    try {
      Run(request, resume);
    } catch (const std::exception& e) {
      // A bug must not take the agent down; the state says what happened.
      spdlog::error("deploy: {}", e.what());
      std::string phase;
      {
        std::lock_guard guard(mu_);
        phase = state_.phase;
      }
      try {
        Transition(phase, "failed", std::string("internal error: ") + e.what());
      } catch (const std::exception&) {
      }
    }
    lock.lock();
    running_.reset();
    interruptible_ = true;
    cv_.notify_all();
  }
}

bool Deployer::Superseded() const {
  std::lock_guard lock(mu_);
  return stop_ || (interruptible_ && pending_.has_value());
}

bool Deployer::Pause() {
  std::unique_lock lock(mu_);
  auto wanted = [&] { return stop_ || (interruptible_ && pending_.has_value()); };
  cv_.wait_for(lock, tools_.poll_interval, wanted);
  return !wanted();
}

void Deployer::Transition(const std::string& phase, const std::string& state,
                          const std::string& raw_message) {
  // Tools' output may carry bytes that are not UTF-8; JSON (state file, reports) needs it.
  const std::string message =
      json::parse(json(raw_message).dump(-1, ' ', false, json::error_handler_t::replace))
          .get<std::string>();
  json detail;
  {
    std::lock_guard lock(mu_);
    std::int64_t now = NowMs();
    if (state_.state != state) state_.since_ms = now;
    state_.phase = phase;
    state_.state = state;
    state_.message = message;
    state_.history.push_back(
        {{"phase", phase}, {"state", state}, {"message", message}, {"at", now}});
    while (state_.history.size() > kHistory) state_.history.erase(state_.history.begin());
    if (Status s = SaveDeployState(tools_.StatePath(), state_); !s.ok())
      spdlog::error("deploy: cannot save the state: {}", s.error().message);
    detail = {{"deployment", state_.name},
              {"generation", state_.generation},
              {"phase", phase},
              {"state", state},
              {"message", message}};
  }
  spdlog::info("deploy: {} generation {}: {} {}: {}", detail["deployment"].get<std::string>(),
               detail["generation"].get<std::int64_t>(), phase, state, message);
  if (hooks_.on_phase) hooks_.on_phase(detail);
}

bool Deployer::NoOp(const DeployRequest& request) {
  const DeploySpec& spec = *request.deployment;
  {
    std::lock_guard lock(mu_);
    // The very request that already ended where another run would end too.
    bool same = state_.generation == request.generation && state_.spec == spec;
    if (same &&
        (state_.state == "ready" || state_.state == "rolled-back" || state_.state == "refused"))
      return true;
    bool serving = state_.ready && state_.ready->spec == spec &&
                   (state_.state == "ready" || state_.state == "rolled-back");
    if (!serving) return false;
    state_.generation = request.generation;
    state_.spec = spec;
    state_.name = spec.name;
  }
  Transition("ready", "ready",
             "SNAP " + spec.version + " is already deployed as asked: nothing to do");
  return true;
}

void Deployer::Run(const DeployRequest& request, bool resume) {
  if (!request.deployment) {
    Remove(request.generation);
    return;
  }
  const DeploySpec& spec = *request.deployment;
  if (!resume && NoOp(request)) return;
  std::size_t start = 0;
  const auto& phases = Phases(spec.flavour);
  bool resume_rollback = false;
  {
    std::lock_guard lock(mu_);
    resume_rollback = resume && state_.phase == "rollback";
    if (resume) {
      auto it = std::find(phases.begin(), phases.end(), state_.phase);
      if (it != phases.end()) start = static_cast<std::size_t>(it - phases.begin());
    } else {
      state_.generation = request.generation;
      state_.spec = spec;
      state_.name = spec.name;
      state_.snap_version = nullptr;
      if (state_.ready && state_.ready->spec != spec)
        state_.previous = {{"version", state_.ready->spec.version},
                           {"image", state_.ready->spec.image}};
      else if (!state_.ready)
        state_.previous = nullptr;
    }
  }
  // A rollback is finished, not the upgrade it undoes retried.
  if (resume_rollback) {
    NotReady(spec, "the agent stopped during the rollback");
    return;
  }
  // The container and rpc phases share one readiness budget.
  deadline_ = Clock::now() + std::chrono::seconds(spec.ready_timeout_s);
  for (std::size_t i = start; i < phases.size(); ++i) {
    const std::string& phase = phases[i];
    if (Superseded()) return;
    if (phase == "ready") {
      std::string note = reapply_note_;
      {
        std::lock_guard lock(mu_);
        state_.ready = ReadyDeployment{
            spec, request.generation,
            spec.flavour == Flavour::kSnap4 ? Manifest(spec, request.generation) : "",
            RpcInitText(spec)};
      }
      Transition("ready", "ready",
                 "SNAP " + spec.version + " is ready" + (note.empty() ? "" : "; " + note));
      return;
    }
    Transition(phase, "deploying", Describe(phase));
    if (phase == "container" || phase == "service")
      deadline_ = Clock::now() + std::chrono::seconds(spec.ready_timeout_s);
    if (RunPhase(phase, spec, request.generation) != Outcome::kNext) return;
  }
}

Deployer::Outcome Deployer::RunPhase(const std::string& phase, const DeploySpec& spec,
                                     std::int64_t generation) {
  if (phase == "preflight") return Preflight(spec);
  if (phase == "firmware") return Firmware(spec);
  if (phase == "hugepages") {
    Outcome o = Hugepages(spec.hugepages_2m);
    return o == Outcome::kStop ? NotReady(spec, hugepages_error_) : o;
  }
  if (phase == "manifest" || phase == "config") {
    if (Status s = WriteFiles(spec, generation); !s.ok()) return NotReady(spec, s.error().message);
    return Outcome::kNext;
  }
  if (phase == "service") {
    std::vector<std::string> argv = {tools_.systemctl, "restart", tools_.snap3_service};
    auto r = RunTool(argv, tools_.tool_timeout);
    if (!r.ok() || r->exit_code != 0) return NotReady(spec, Failure(argv, r));
    return Outcome::kNext;
  }
  if (phase == "container" || phase == "rpc") {
    Status s = phase == "container" ? AwaitContainer(spec.image) : AwaitRpc();
    if (s.ok()) return Outcome::kNext;
    if (s.error().code == kSuperseded) return Outcome::kSuperseded;
    return NotReady(spec, s.error().message);
  }
  if (phase == "reapply") {
    reapply_note_.clear();
    if (!hooks_.reapply) return Outcome::kNext;
    auto r = hooks_.reapply();
    reapply_note_ = r.ok() ? *r : "re-applying failed: " + r.error().message;
    return Outcome::kNext;
  }
  return Outcome::kNext;
}

Deployer::Outcome Deployer::Preflight(const DeploySpec& spec) {
  PreflightFacts facts;
  std::vector<std::string> keys;
  for (const auto& [k, _] : spec.firmware) keys.push_back(k);
  auto argv = MlxQueryArgv(tools_.mlxconfig, tools_.mst_device, keys);
  auto r = RunTool(argv, tools_.tool_timeout);
  Result<MlxQuery> query = Error{0, ""};
  if (r.ok() && r->exit_code == 0) query = ParseMlxQuery(r->out);
  if (!r.ok() || r->exit_code != 0 || !query.ok()) {
    std::string why = !r.ok() || r->exit_code != 0 ? Failure(argv, r) : query.error().message;
    Transition("preflight", "refused", "cannot tell the DPU model: " + why);
    return Outcome::kStop;
  }
  facts.device_type = query->device_type;
  auto meminfo = ReadFileIfExists(tools_.MeminfoPath());
  Result<std::uint64_t> total = Error{0, "cannot read " + tools_.MeminfoPath()};
  if (meminfo.ok() && *meminfo) total = MemTotalBytes(**meminfo);
  if (!total.ok()) {
    Transition("preflight", "refused", total.error().message);
    return Outcome::kStop;
  }
  facts.mem_total_bytes = *total;
  facts.kubelet_present = FindExecutable(tools_.kubelet).has_value();
  facts.crictl_present = FindExecutable(tools_.crictl).has_value();
  facts.systemctl_present = FindExecutable(tools_.systemctl).has_value();
  if (Status s = deploy::Preflight(spec, facts); !s.ok()) {
    Transition("preflight", "refused", "refused: " + s.error().message);
    return Outcome::kStop;
  }
  return Outcome::kNext;
}

Deployer::Outcome Deployer::Firmware(const DeploySpec& spec) {
  if (spec.firmware.empty()) return Outcome::kNext;
  std::vector<std::string> keys;
  for (const auto& [k, _] : spec.firmware) keys.push_back(k);
  auto argv = MlxQueryArgv(tools_.mlxconfig, tools_.mst_device, keys);
  auto r = RunTool(argv, tools_.tool_timeout);
  if (!r.ok() || r->exit_code != 0) {
    Transition("firmware", "failed", Failure(argv, r));
    return Outcome::kStop;
  }
  auto query = ParseMlxQuery(r->out);
  if (!query.ok()) {
    Transition("firmware", "failed", query.error().message);
    return Outcome::kStop;
  }
  FirmwarePlan plan = PlanFirmware(*query, spec.firmware);
  if (!plan.missing.empty()) {
    Transition("firmware", "refused",
               "the firmware of " + tools_.mst_device + " has no " + Join(plan.missing));
    return Outcome::kStop;
  }
  if (!plan.to_set.empty()) {
    auto set = MlxSetArgv(tools_.mlxconfig, tools_.mst_device, plan.to_set);
    auto s = RunTool(set, tools_.tool_timeout);
    if (!s.ok() || s->exit_code != 0) {
      Transition("firmware", "failed", Failure(set, s));
      return Outcome::kStop;
    }
    std::vector<std::string> kv;
    for (const auto& [k, v] : plan.to_set) kv.push_back(k + "=" + v);
    Transition("firmware", "power-cycle-required",
               "set " + Join(kv) + " for next boot on " + tools_.mst_device +
                   ": power-cycle the host, then apply again");
    return Outcome::kStop;
  }
  if (!plan.pending.empty()) {
    std::vector<std::string> kv;
    for (const auto& k : plan.pending)
      kv.push_back(k + " (current " + query->values[k].current + ", next boot " +
                   query->values[k].next_boot + ")");
    Transition("firmware", "power-cycle-required",
               "firmware change pending: " + Join(kv) + ": power-cycle the host, then apply again");
    return Outcome::kStop;
  }
  return Outcome::kNext;
}

Result<std::int64_t> Deployer::ReadNrHugepages() const {
  auto text = ReadFileIfExists(tools_.NrHugepagesPath());
  if (!text.ok()) return text.error();
  if (!*text) return Error{0, tools_.NrHugepagesPath() + " does not exist"};
  try {
    return static_cast<std::int64_t>(std::stoll(**text));
  } catch (const std::exception&) {
    return Error{0, tools_.NrHugepagesPath() + ": not a number"};
  }
}

Status Deployer::SetNrHugepages(std::int64_t pages) {
  // sysfs takes a plain write; it cannot be renamed into.
  std::ofstream out(tools_.NrHugepagesPath(), std::ios::trunc);
  out << pages << "\n";
  out.close();
  if (!out) return Error{0, "cannot write " + tools_.NrHugepagesPath()};
  auto now = ReadNrHugepages();
  if (!now.ok()) return now.error();
  if (*now != pages)
    return Error{0, "the kernel reserved " + std::to_string(*now) + " of the " +
                        std::to_string(pages) + " hugepages asked (" + tools_.NrHugepagesPath() +
                        ")"};
  return {};
}

Deployer::Outcome Deployer::Hugepages(std::int64_t pages) {
  auto now = ReadNrHugepages();
  if (!now.ok()) {
    hugepages_error_ = now.error().message;
    return Outcome::kStop;
  }
  {
    std::lock_guard lock(mu_);
    if (!state_.original_nr_hugepages) {
      state_.original_nr_hugepages = *now;  // saved before the first change
      if (Status s = SaveDeployState(tools_.StatePath(), state_); !s.ok()) {
        hugepages_error_ = s.error().message;
        return Outcome::kStop;
      }
    }
  }
  if (*now == pages) return Outcome::kNext;
  if (Status s = SetNrHugepages(pages); !s.ok()) {
    hugepages_error_ = s.error().message;
    return Outcome::kStop;
  }
  return Outcome::kNext;
}

std::string Deployer::Manifest(const DeploySpec& spec, std::int64_t generation) const {
  std::filesystem::path socket(tools_.snap_socket);
  ManifestHost host;
  host.conf_dir = tools_.root + tools_.snap_conf_dir;
  host.rpc_dir = socket.parent_path().string();
  host.rpc_socket_name = socket.filename().string();
  return RenderManifest(spec, generation, host);
}

Status Deployer::WriteFiles(const DeploySpec& spec, std::int64_t generation) {
  bool snap3 = spec.flavour == Flavour::kSnap3;
  // The init file first: SNAP reads it when the container starts.
  if (Status s = WriteOwned(tools_.RpcInitPath(snap3), RpcInitText(spec)); !s.ok()) return s;
  if (!snap3) return WriteOwned(tools_.ManifestPath(), Manifest(spec, generation));
  return {};
}

Status Deployer::WriteOwned(const std::string& path, const std::string& text) {
  auto before = ReadFileIfExists(path);
  if (!before.ok()) return before.error();
  if (*before && **before == text) return {};  // unchanged: not rewritten
  {
    std::lock_guard lock(mu_);
    if (!state_.created.count(path)) {
      state_.created[path] = *before;  // remembered before the first write
      if (Status s = SaveDeployState(tools_.StatePath(), state_); !s.ok()) return s;
    }
  }
  return WriteFileAtomic(path, text);
}

Status Deployer::RestoreOwned() {
  std::map<std::string, std::optional<std::string>> created;
  {
    std::lock_guard lock(mu_);
    created = state_.created;
  }
  std::string errors;
  for (const auto& [path, before] : created) {
    Status s = before ? WriteFileAtomic(path, *before) : RemoveFile(path);
    if (!s.ok()) {
      errors += (errors.empty() ? "" : "; ") + s.error().message;
      continue;
    }
    std::lock_guard lock(mu_);
    state_.created.erase(path);
    SaveDeployState(tools_.StatePath(), state_);
  }
  if (!errors.empty()) return Error{0, errors};
  return {};
}

Status Deployer::AwaitContainer(const std::string& image) {
  std::vector<std::string> argv = {tools_.crictl, "ps", "--name", kContainerName, "-o", "json"};
  std::string last = "no container yet";
  // Only a container created after the manifest was written runs it: until the kubelet
  // notices a change (say, of the CPU mask with the same image), the old one still runs.
  std::int64_t not_before_ns = 0;
  struct stat st {};
  if (::stat(tools_.ManifestPath().c_str(), &st) == 0)
    not_before_ns = st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec;
  auto created_after = [&](const json& c) {
    if (!c.contains("createdAt")) return true;  // a crictl that does not say: trust the image
    const json& at = c["createdAt"];
    std::int64_t ns = 0;
    try {
      ns = at.is_string()   ? std::stoll(at.get<std::string>())
           : at.is_number() ? at.get<std::int64_t>()
                            : 0;
    } catch (const std::exception&) {
      return true;
    }
    return ns >= not_before_ns;
  };
  while (true) {
    auto r = RunTool(argv, tools_.tool_timeout);
    if (r.ok() && r->exit_code == 0) {
      json ps = json::parse(r->out, nullptr, false);
      last = "crictl shows no running container of " + image;
      if (ps.is_object() && ps["containers"].is_array()) {
        for (const auto& c : ps["containers"]) {
          // The image tells the new container from the one it replaces.
          if (c.value("state", "") == "CONTAINER_RUNNING" && c.contains("image") &&
              c["image"].is_object() && c["image"].value("image", "") == image && created_after(c))
            return {};
        }
      } else {
        last = "crictl printed no container list";
      }
    } else {
      last = Failure(argv, r);
    }
    if (Clock::now() >= deadline_)
      return Error{0, "the SNAP container (" + image + ") was not running in time: " + last};
    if (!Pause()) return Error{kSuperseded, "superseded"};
  }
}

Status Deployer::AwaitRpc() {
  std::string last;
  while (true) {
    snap::SnapClient client(tools_.snap_socket, std::chrono::milliseconds(2000));
    auto r = client.Call("spdk_get_version");
    if (r.ok()) {
      std::lock_guard lock(mu_);
      state_.snap_version = *r;
      return {};
    }
    last = r.error().message;
    if (Clock::now() >= deadline_)
      return Error{0, "SNAP's RPC socket " + tools_.snap_socket +
                          " did not answer spdk_get_version in time: " + last};
    if (!Pause()) return Error{kSuperseded, "superseded"};
  }
}

Deployer::Outcome Deployer::NotReady(const DeploySpec& spec, const std::string& why) {
  std::optional<ReadyDeployment> old;
  std::string phase;
  {
    std::lock_guard lock(mu_);
    interruptible_ = false;  // a rollback or clean-up is finished before anything else
    old = state_.ready;
    phase = state_.phase;
  }
  if (old && old->spec == spec) {
    // What failed is what was already deployed: nothing to go back to.
    Transition(phase, "failed", why);
    return Outcome::kStop;
  }
  if (!old) {
    // A fresh deployment: take back what it made, so nothing half-made keeps running.
    std::string cleanup;
    if (Status s = RestoreOwned(); !s.ok()) cleanup += "; " + s.error().message;
    std::optional<std::int64_t> original;
    {
      std::lock_guard lock(mu_);
      original = state_.original_nr_hugepages;
    }
    if (original) {
      if (Status s = SetNrHugepages(*original); !s.ok()) cleanup += "; " + s.error().message;
      std::lock_guard lock(mu_);
      state_.original_nr_hugepages.reset();
    }
    Transition(phase, "failed",
               why + "; removed what this deployment wrote" +
                   (cleanup.empty() ? "" : " (clean-up failed" + cleanup + ")"));
    return Outcome::kStop;
  }

  const DeploySpec& back = old->spec;
  std::string upgrade =
      "upgrade to " + spec.version + (spec.image.empty() ? "" : " (" + spec.image + ")");
  Transition("rollback", "deploying", upgrade + " failed: " + why + "; restoring " + back.version);
  Status s;
  if (Status h = SetNrHugepages(back.hugepages_2m); !h.ok())
    spdlog::warn("deploy: rollback: {}", h.error().message);
  bool snap3 = back.flavour == Flavour::kSnap3;
  s = WriteOwned(tools_.RpcInitPath(snap3), old->init_conf);
  if (s.ok() && !snap3) s = WriteOwned(tools_.ManifestPath(), old->manifest);
  if (s.ok() && snap3) {
    std::vector<std::string> argv = {tools_.systemctl, "restart", tools_.snap3_service};
    auto r = RunTool(argv, tools_.tool_timeout);
    if (!r.ok() || r->exit_code != 0) s = Error{0, Failure(argv, r)};
  }
  deadline_ = Clock::now() + std::chrono::seconds(back.ready_timeout_s);
  if (s.ok() && !snap3) s = AwaitContainer(back.image);
  if (s.ok()) s = AwaitRpc();
  if (!s.ok() && s.error().code == kSuperseded) return Outcome::kSuperseded;  // Stop(): resumed
  if (!s.ok()) {
    Transition("rollback", "failed",
               upgrade + " failed: " + why + "; the rollback to " + back.version +
                   " failed too: " + s.error().message);
    return Outcome::kStop;
  }
  std::string note;
  if (hooks_.reapply) {
    auto r = hooks_.reapply();
    note = r.ok() ? "; " + *r : "; re-applying failed: " + r.error().message;
  }
  Transition(
      "rollback", "rolled-back",
      upgrade + " did not become ready: " + why + "; " + back.version + " serves again" + note);
  return Outcome::kStop;
}

void Deployer::Remove(std::int64_t generation) {
  std::optional<ReadyDeployment> ready;
  Flavour flavour = Flavour::kSnap4;
  std::string image;
  bool nothing = false;
  {
    std::lock_guard lock(mu_);
    if (state_.generation == generation && !state_.spec &&
        (state_.state == "removed" || state_.generation < 0))
      return;
    nothing = !state_.ready && state_.created.empty() && !state_.original_nr_hugepages;
    ready = state_.ready;
    if (ready) {
      flavour = ready->spec.flavour;
      image = ready->spec.image;
    } else if (state_.spec) {
      flavour = state_.spec->flavour;
      image = state_.spec->image;
    }
    state_.generation = generation;
    state_.spec.reset();
    state_.snap_version = nullptr;
    interruptible_ = false;
  }
  if (nothing) {
    Transition("remove", "removed", "nothing deployed here");
    return;
  }
  Transition("remove", "removing", "removing the SNAP deployment");
  std::string errors;
  if (Status s = RestoreOwned(); !s.ok()) errors += "; " + s.error().message;
  if (flavour == Flavour::kSnap3) {
    std::vector<std::string> argv = {tools_.systemctl, "stop", tools_.snap3_service};
    auto r = RunTool(argv, tools_.tool_timeout);
    if (!r.ok() || r->exit_code != 0) errors += "; " + Failure(argv, r);
  } else if (!image.empty()) {
    // The kubelet stops the pod once its manifest is gone; wait a little to report it.
    deadline_ = Clock::now() + std::chrono::seconds(ready ? ready->spec.ready_timeout_s : 30);
    std::vector<std::string> argv = {tools_.crictl, "ps", "--name", kContainerName, "-o", "json"};
    while (Clock::now() < deadline_) {
      auto r = RunTool(argv, tools_.tool_timeout);
      json ps = r.ok() && r->exit_code == 0 ? json::parse(r->out, nullptr, false) : json();
      bool running = false;
      if (ps.is_object() && ps["containers"].is_array())
        for (const auto& c : ps["containers"])
          running = running || c.value("state", "") == "CONTAINER_RUNNING";
      if (!running) break;
      if (!Pause()) break;
    }
  }
  std::optional<std::int64_t> original;
  {
    std::lock_guard lock(mu_);
    original = state_.original_nr_hugepages;
  }
  std::string restored;
  if (original) {
    if (Status s = SetNrHugepages(*original); !s.ok())
      errors += "; " + s.error().message;
    else
      restored = "; nr_hugepages back to " + std::to_string(*original);
  }
  {
    std::lock_guard lock(mu_);
    state_.original_nr_hugepages.reset();
    state_.ready.reset();
    state_.previous = nullptr;
  }
  if (!errors.empty()) {
    Transition("remove", "failed", "removal incomplete" + errors);
    return;
  }
  Transition("remove", "removed", "removed the files the deployer wrote" + restored);
}

}  // namespace dpustor::agent::dpu::deploy
