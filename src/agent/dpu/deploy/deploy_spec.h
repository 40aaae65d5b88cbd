// DeploySpec is what deploy.apply asks of a DPU (docs/protocol.md, "SNAP deployment"): which
// SNAP to run, with what resources, init RPCs and firmware settings. ParseDeployRequest
// decodes and checks deploy.apply's params strictly (unknown keys, wrong types and bad values
// are refused with kInvalidParams naming the field, e.g. "deployment.cpu_mask"), so a bad
// request changes nothing. Plain values; pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

enum class Flavour { kSnap4, kSnap3 };
const char* FlavourName(Flavour f);

struct DeploySpec {
  std::string name;
  Flavour flavour = Flavour::kSnap4;
  std::string image;  // snap4: the container image; snap3: optional, shown only
  std::string version;
  std::string cpu_mask = "0xff";
  std::int64_t hugepages_2m = 2048;
  std::string memory_request = "2Gi";
  std::string memory_limit = "4Gi";
  int cpu_request = 8;
  int cpu_limit = 16;
  std::vector<std::string> rpc_init;
  std::map<std::string, std::string> firmware;  // mlxconfig KEY -> wanted value
  int ready_timeout_s = 300;
  std::map<std::string, std::string> env;  // extra container environment

  bool operator==(const DeploySpec&) const = default;
};

struct DeployRequest {
  std::int64_t generation = 0;
  std::optional<DeploySpec> deployment;  // nullopt: remove
};

// {"generation": N >= 0, "deployment": spec | null}.
Result<DeployRequest> ParseDeployRequest(const nlohmann::json& params);
// One spec object; `field` prefixes the field names in errors.
Result<DeploySpec> ParseDeploySpec(const nlohmann::json& spec,
                                   const std::string& field = "deployment");
// The spec as the protocol spells it (ParseDeploySpec(ToJson(s)) == s).
nlohmann::json ToJson(const DeploySpec& spec);

// A Kubernetes memory quantity ("512Mi", "4Gi", "1G", "1048576") in bytes; nullopt if it is
// not one. Only the forms a memory limit is written in are accepted.
std::optional<std::uint64_t> ParseQuantity(const std::string& text);

// The init RPC file's text: one line per RPC, as SNAP replays it.
std::string RpcInitText(const DeploySpec& spec);

}  // namespace dpustor::agent::dpu::deploy
