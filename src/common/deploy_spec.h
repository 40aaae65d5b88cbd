// DeploySpec is what deploy.apply asks of a DPU (docs/protocol.md, "SNAP deployment"): which
// SNAP to run, with what resources, init RPCs and firmware settings. The manager decodes an
// operator's request with the same rules the DPU agent applies to deploy.apply, so whatever
// the manager accepts, the agent accepts too. Decoding is strict: unknown keys, wrong types
// and bad values are refused with kInvalidParams naming the field (e.g.
// "deployment.cpu_mask"), so a bad request changes nothing. Absent and null fields take the
// defaults below. Plain values; pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::protocol {

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
  int cpu_limit = 16;  // absent: 16, or cpu_request when that is larger
  std::vector<std::string> rpc_init;
  std::map<std::string, std::string> firmware;  // mlxconfig KEY -> wanted value
  int ready_timeout_s = 300;
  std::map<std::string, std::string> env;  // extra container environment

  bool operator==(const DeploySpec&) const = default;
};

// One spec object. `path` prefixes the field names in errors ("" for none); keys in `also`
// are let through for the caller to read (the manager's target, say). Throws rpc::CallError.
DeploySpec DecodeDeploySpec(const nlohmann::json& j, const std::string& path,
                            std::initializer_list<std::string_view> also = {});
// The same, as a Result.
Result<DeploySpec> ParseDeploySpec(const nlohmann::json& j, const std::string& path = "deployment");
// The spec as the protocol spells it, every field present (ParseDeploySpec(ToJson(s)) == s).
nlohmann::json ToJson(const DeploySpec& spec);

// deploy.apply's params: {"generation": N >= 0, "deployment": spec | null (remove)}.
struct DeployRequest {
  std::int64_t generation = 0;
  std::optional<DeploySpec> deployment;  // nullopt: remove
};
Result<DeployRequest> ParseDeployRequest(const nlohmann::json& params);

// A Kubernetes memory quantity ("512Mi", "4Gi", "1G", "1048576") in bytes; nullopt if it is
// not one. Only the forms a memory limit is written in are accepted.
std::optional<std::uint64_t> ParseQuantity(const std::string& text);

}  // namespace dpustor::protocol
