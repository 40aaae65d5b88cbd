// Deployment is the manager's record of one SNAP deployment (docs/protocol.md, "SNAP
// deployment"): the spec the operator asked for, the target (one DPU or a named DPU group),
// the generation deploy.apply carries, and what deletion or a group change still has to
// remove. DpuGroup names a set of DPUs. Both are plain values whose JSON documents are the
// SQLite rows. The functions below are pure: parsing with errors that name the field, what
// each DPU should hold, what an agent reported, and when to (re)send deploy.apply.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dpustor::manager {

using json = nlohmann::json;

struct Deployment {
  std::string name;
  std::string dpu;    // the target: one DPU ...
  std::string group;  // ... or a named group (exactly one is set)
  json spec;          // deploy.apply's `deployment`, defaults filled in
  // Changes whenever what a DPU should hold changes (spec, group membership), so a newer
  // apply always supersedes an older one on the agent; the same spec keeps it.
  std::int64_t generation = 0;
  bool deleting = false;
  std::int64_t removal_generation = 0;           // generation of the `null` sent on deletion
  std::vector<std::string> removing;             // deletion: DPUs yet to confirm the removal
  std::map<std::string, std::int64_t> released;  // DPUs that left the group -> their `null`
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;

  std::string Target() const { return dpu.empty() ? "group/" + group : "dpu/" + dpu; }
};

json ToJson(const Deployment& d);
Deployment DeploymentFromJson(const json& j);

// A POST body: {name, dpu | group, flavour?, image, version, cpu_mask?, ...}. Throws
// rpc::CallError (kInvalidParams) naming the field, e.g. 'firmware.NVME_EMULATION_ENABLE'.
Deployment ParseDeployment(const json& body);

struct DpuGroup {
  std::string name;
  std::vector<std::string> dpus;  // sorted, unique
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
};

json ToJson(const DpuGroup& g);
DpuGroup GroupFromJson(const json& j);
// {name, dpus: [...]}; throws rpc::CallError naming the field.
DpuGroup ParseGroup(const json& body);

// The DPUs a deployment applies to now (a group that does not exist applies to none).
std::vector<std::string> TargetDpus(const Deployment& d,
                                    const std::map<std::string, DpuGroup>& groups);

// What one DPU should hold: a deployment's spec, or `null` (remove) when the deployment is
// being deleted or the DPU left its group.
struct DpuDesired {
  std::string deployment;
  std::int64_t generation = 0;
  json spec;  // null: remove
};
std::map<std::string, DpuDesired> DesiredByDpu(const std::map<std::string, Deployment>& deployments,
                                               const std::map<std::string, DpuGroup>& groups);

// The `deployment` section of a DPU's status, or the detail of a deploy.phase event.
struct DeployObserved {
  bool present = false;  // false: the agent holds no deployment (section null or absent)
  std::string deployment;
  std::int64_t generation = -1;
  std::string version, flavour, phase, state, message;
  json since;  // as the agent reported it
  json previous = nullptr;
  json running = nullptr;  // {version, image, generation}: what serves now (after a rollback)
  json history = json::array();
};
DeployObserved ObservedFromSection(const json& section);

// The agent took the desired generation (it may still be working on it).
bool Taken(const DpuDesired& want, const DeployObserved& seen);
// The DPU reached what it should hold: `ready` at the generation, or removed.
bool Reached(const DpuDesired& want, const DeployObserved& seen);

// When to send deploy.apply: the agent is connected and either it has not been sent this
// generation since it (re)connected, or it has not taken it and `retry` passed since the
// last send (`sent` empty: nothing sent in this session). An agent that answered the
// generation with an error (it refused the spec) is not asked again until the generation
// changes or it reconnects.
struct Sent {
  std::int64_t generation = 0;
  std::chrono::steady_clock::time_point at;
  bool refused = false;
};
bool ShouldSend(const DpuDesired& want, const std::optional<DeployObserved>& seen,
                const std::optional<Sent>& sent, bool online,
                std::chrono::steady_clock::time_point now, std::chrono::milliseconds retry);

// States that stop a deployment without it being ready; --wait ends on them.
bool TerminalNotReady(const std::string& state);

}  // namespace dpustor::manager
