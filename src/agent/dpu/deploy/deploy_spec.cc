#include "agent/dpu/deploy/deploy_spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/json_rpc.h"
#include "common/params.h"

namespace dpustor::agent::dpu::deploy {

namespace {

using json = nlohmann::json;

rpc::CallError Bad(const std::string& field, const std::string& problem) {
  return rpc::ParamError(field, problem);
}

bool AllOf(const std::string& s, int (*pred)(int), const std::string& extra) {
  return std::all_of(s.begin(), s.end(), [&](unsigned char c) {
    return pred(c) || extra.find(static_cast<char>(c)) != std::string::npos;
  });
}

bool ValidName(const std::string& s) {
  return !s.empty() && s.size() <= 63 && AllOf(s, std::isalnum, "._-");
}

// Container image references: registry/path:tag[@digest]; no spaces or shell/YAML oddities.
bool ValidImage(const std::string& s) {
  return !s.empty() && s.size() <= 255 && std::isalnum(static_cast<unsigned char>(s[0])) &&
         AllOf(s, std::isalnum, "._-/:@+");
}

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
}

std::string String(const json& j, const std::string& field) {
  if (!j.is_string()) throw Bad(field, "expected a string");
  return j.get<std::string>();
}

std::int64_t Integer(const json& j, const std::string& field, std::int64_t lo, std::int64_t hi) {
  if (!j.is_number_integer()) throw Bad(field, "expected an integer");
  if (j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
    throw Bad(field, "must be at most " + std::to_string(hi));
  auto v = j.get<std::int64_t>();
  if (v < lo) throw Bad(field, "must be at least " + std::to_string(lo));
  if (v > hi) throw Bad(field, "must be at most " + std::to_string(hi));
  return v;
}

std::map<std::string, std::string> StringMap(const json& j, const std::string& field,
                                             bool firmware_keys) {
  if (!j.is_object()) throw Bad(field, "expected an object");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    std::string f = field + "." + key;
    if (firmware_keys) {
      if (key.empty() || !AllOf(key, std::isupper, "0123456789_"))
        throw Bad(f, "firmware keys are mlxconfig names ([A-Z0-9_]+)");
    } else if (key.empty() || std::isdigit(static_cast<unsigned char>(key[0])) ||
               !AllOf(key, std::isalnum, "_")) {
      throw Bad(f, "environment names are [A-Za-z_][A-Za-z0-9_]*");
    }
    std::string v = String(value, f);
    if (firmware_keys ? (v.empty() || !AllOf(v, std::isalnum, "_()"))
                      : (!Printable(v) || v.size() > 4096))
      throw Bad(f, firmware_keys ? "expected a value such as \"1\" or \"True\""
                                 : "expected printable text of at most 4096 bytes");
    out[key] = v;
  }
  return out;
}

DeploySpec Decode(const json& j, const std::string& path) {
  if (!j.is_object()) throw Bad(path, "expected an object or null");
  static const std::set<std::string> kKnown = {
      "name",         "flavour",        "image",           "version",     "cpu_mask",
      "hugepages_2m", "memory_request", "memory_limit",    "cpu_request", "cpu_limit",
      "rpc_init",     "firmware",       "ready_timeout_s", "env"};
  for (const auto& [key, _] : j.items())
    if (!kKnown.count(key)) throw Bad(path + "." + key, "unknown parameter");
  auto field = [&](const char* key) { return path + "." + key; };
  // Absent and null are the same: the default.
  auto has = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };

  DeploySpec s;
  if (!has("name")) throw Bad(field("name"), "required");
  s.name = String(j["name"], field("name"));
  if (!ValidName(s.name)) throw Bad(field("name"), "expected 1-63 of [A-Za-z0-9._-]");
  if (has("flavour")) {
    std::string f = String(j["flavour"], field("flavour"));
    if (f == "snap4")
      s.flavour = Flavour::kSnap4;
    else if (f == "snap3")
      s.flavour = Flavour::kSnap3;
    else
      throw Bad(field("flavour"), "expected \"snap4\" or \"snap3\"");
  }
  if (has("image")) {
    s.image = String(j["image"], field("image"));
    if (!ValidImage(s.image))
      throw Bad(field("image"), "expected a container image reference (registry/name:tag)");
  } else if (s.flavour == Flavour::kSnap4) {
    throw Bad(field("image"), "required for flavour snap4");
  }
  if (!has("version")) throw Bad(field("version"), "required");
  s.version = String(j["version"], field("version"));
  if (s.version.empty() || s.version.size() > 128 || !AllOf(s.version, std::isalnum, "._-+~"))
    throw Bad(field("version"), "expected 1-128 of [A-Za-z0-9._-+~]");
  if (has("cpu_mask")) {
    s.cpu_mask = String(j["cpu_mask"], field("cpu_mask"));
    bool ok = s.cpu_mask.size() > 2 && s.cpu_mask.size() <= 66 && s.cpu_mask.starts_with("0x") &&
              AllOf(s.cpu_mask.substr(2), std::isdigit, "abcdef") &&
              s.cpu_mask.find_first_not_of("0x") != std::string::npos;
    if (!ok) throw Bad(field("cpu_mask"), "expected a non-zero core mask 0x[0-9a-f]+");
  }
  if (has("hugepages_2m"))
    s.hugepages_2m = Integer(j["hugepages_2m"], field("hugepages_2m"), 0, 1 << 20);
  for (auto [key, target] : {std::pair{"memory_request", &s.memory_request},
                             std::pair{"memory_limit", &s.memory_limit}}) {
    if (!has(key)) continue;
    *target = String(j[key], field(key));
    auto bytes = ParseQuantity(*target);
    if (!bytes || *bytes == 0)
      throw Bad(field(key), "expected a memory quantity such as \"2Gi\" or \"512Mi\"");
  }
  if (*ParseQuantity(s.memory_request) > *ParseQuantity(s.memory_limit))
    throw Bad(field("memory_request"), "must not exceed memory_limit (" + s.memory_limit + ")");
  if (has("cpu_request"))
    s.cpu_request = static_cast<int>(Integer(j["cpu_request"], field("cpu_request"), 1, 1024));
  if (has("cpu_limit"))
    s.cpu_limit = static_cast<int>(Integer(j["cpu_limit"], field("cpu_limit"), 1, 1024));
  if (s.cpu_request > s.cpu_limit)
    throw Bad(field("cpu_request"),
              "must not exceed cpu_limit (" + std::to_string(s.cpu_limit) + ")");
  if (has("rpc_init")) {
    const json& lines = j["rpc_init"];
    if (!lines.is_array()) throw Bad(field("rpc_init"), "expected an array of strings");
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::string f = field("rpc_init") + "[" + std::to_string(i) + "]";
      std::string line = String(lines[i], f);
      // One RPC per line: a line break inside would split it into two.
      if (line.empty() || !Printable(line) || line.size() > 4096)
        throw Bad(f, "expected one RPC line (printable, no line breaks)");
      s.rpc_init.push_back(line);
    }
  }
  if (has("firmware")) s.firmware = StringMap(j["firmware"], field("firmware"), true);
  if (has("ready_timeout_s"))
    s.ready_timeout_s =
        static_cast<int>(Integer(j["ready_timeout_s"], field("ready_timeout_s"), 1, 86400));
  if (has("env")) {
    s.env = StringMap(j["env"], field("env"), false);
    // These are the deployer's: a second definition would silently override it.
    for (const char* own : {"APP_ARGS", "SNAP_RPC_INIT_CONF", "SNAP_SPDK_SOCK"})
      if (s.env.count(own)) throw Bad(field("env") + "." + own, "set by the deployer");
  }
  return s;
}

}  // namespace

const char* FlavourName(Flavour f) {
  return f == Flavour::kSnap4 ? "snap4" : "snap3";
}

std::optional<std::uint64_t> ParseQuantity(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  std::uint64_t n = std::stoull(text.substr(0, digits));
  std::string unit = text.substr(digits);
  static const std::map<std::string, std::uint64_t> kUnits = {{"", 1},
                                                              {"Ki", 1ull << 10},
                                                              {"Mi", 1ull << 20},
                                                              {"Gi", 1ull << 30},
                                                              {"Ti", 1ull << 40},
                                                              {"k", 1000},
                                                              {"M", 1000000},
                                                              {"G", 1000000000},
                                                              {"T", 1000000000000ull}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) return std::nullopt;
  if (n > (std::uint64_t{1} << 50) / it->second) return std::nullopt;  // beyond any DPU
  return n * it->second;
}

Result<DeploySpec> ParseDeploySpec(const json& spec, const std::string& field) {
  try {
    return Decode(spec, field);
  } catch (const rpc::CallError& e) {
    return e.error();
  }
}

Result<DeployRequest> ParseDeployRequest(const json& params) {
  try {
    if (!params.is_object())
      throw rpc::CallError(rpc::kInvalidParams, "invalid params: expected an object");
    rpc::Params p(params);
    p.RejectUnknown({"generation", "deployment"});
    DeployRequest r;
    r.generation = p.Required<std::int64_t>("generation");
    if (r.generation < 0) throw Bad("generation", "must be at least 0");
    if (!p.Has("deployment")) throw Bad("deployment", "required (null removes)");
    if (!params["deployment"].is_null()) r.deployment = Decode(params["deployment"], "deployment");
    return r;
  } catch (const rpc::CallError& e) {
    return e.error();
  }
}

json ToJson(const DeploySpec& s) {
  json j = {{"name", s.name},
            {"flavour", FlavourName(s.flavour)},
            {"version", s.version},
            {"cpu_mask", s.cpu_mask},
            {"hugepages_2m", s.hugepages_2m},
            {"memory_request", s.memory_request},
            {"memory_limit", s.memory_limit},
            {"cpu_request", s.cpu_request},
            {"cpu_limit", s.cpu_limit},
            {"rpc_init", s.rpc_init},
            {"firmware", s.firmware},
            {"ready_timeout_s", s.ready_timeout_s},
            {"env", s.env}};
  if (!s.image.empty()) j["image"] = s.image;
  return j;
}

std::string RpcInitText(const DeploySpec& spec) {
  std::string text;
  for (const auto& line : spec.rpc_init) text += line + "\n";
  return text;
}

}  // namespace dpustor::agent::dpu::deploy
