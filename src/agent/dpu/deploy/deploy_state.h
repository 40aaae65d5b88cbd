// DeployState is what the deployer remembers across agent restarts, kept as JSON in
// <state dir>/state.json (written atomically at every phase transition): the deployment it
// is working on and the phase reached, the deployment that last became ready (with its
// manifest and init file, to roll back to), the nr_hugepages value it found, and the files
// it wrote (with what they held before, so removal deletes only what it created).
// Plain values; the Deployer guards its copy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "agent/dpu/deploy/deploy_spec.h"
#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

// A deployment that reached ready: what was written for it.
struct ReadyDeployment {
  DeploySpec spec;
  std::int64_t generation = 0;
  std::string manifest;   // snap4: the manifest text
  std::string init_conf;  // the RPC init file's text
};

struct DeployState {
  // The request being worked on, or last worked on.
  std::int64_t generation = -1;    // -1: no request ever
  std::string name;                // the deployment's name (kept through its removal)
  std::optional<DeploySpec> spec;  // nullopt: removal
  std::string phase;               // the phase reached (running or where it stopped)
  std::string state;               // deploying, ready, failed, refused, ...
  std::string message;
  std::int64_t since_ms = 0;                         // when `state` was entered
  nlohmann::json history = nlohmann::json::array();  // last 20 {phase, state, message, at}
  nlohmann::json snap_version;                       // spdk_get_version's answer when ready

  std::optional<ReadyDeployment> ready;  // what serves (or served last)
  nlohmann::json previous;               // {version, image} of what ran before, or null
  std::optional<std::int64_t> original_nr_hugepages;
  // Files the deployer wrote: path -> what it held before (nullopt: it did not exist).
  std::map<std::string, std::optional<std::string>> created;
};

nlohmann::json ToJson(const DeployState& state);
Result<DeployState> DeployStateFromJson(const nlohmann::json& j);

// Loads the state file; a missing file is an empty state.
Result<DeployState> LoadDeployState(const std::string& path);
Status SaveDeployState(const std::string& path, const DeployState& state);

}  // namespace dpustor::agent::dpu::deploy
