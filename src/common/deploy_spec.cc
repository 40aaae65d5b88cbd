#include "common/deploy_spec.h"

#include <algorithm>
#include <cctype>

#include "common/json_rpc.h"
#include "common/names.h"
#include "common/params.h"

namespace dpustor::protocol {

namespace {

using json = nlohmann::json;
using rpc::ParamError;

bool AllOf(std::string_view s, int (*pred)(int), std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](unsigned char c) {
    return pred(c) || extra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// Printable ASCII; `spaces` allows ' ' too. Values reach files and command lines on the DPU.
bool Printable(std::string_view s, bool spaces) {
  return std::all_of(s.begin(), s.end(), [spaces](unsigned char c) {
    return (c > 0x20 && c < 0x7f) || (spaces && c == ' ');
  });
}

// Container image references: registry/path:tag[@digest]; no spaces or shell/YAML oddities.
bool ValidImage(const std::string& s) {
  return !s.empty() && s.size() <= 255 && std::isalnum(static_cast<unsigned char>(s[0])) &&
         AllOf(s, std::isalnum, "._-/:@+");
}

bool FirmwareKey(const std::string& k) {
  return !k.empty() && k.size() <= 64 && AllOf(k, std::isupper, "0123456789_");
}

bool FirmwareValue(const std::string& v) {
  return !v.empty() && v.size() <= 64 && AllOf(v, std::isalnum, "_.()-");
}

bool EnvKey(const std::string& k) {
  return !k.empty() && k.size() <= 128 && !std::isdigit(static_cast<unsigned char>(k[0])) &&
         AllOf(k, std::isalnum, "_");
}

bool EnvValue(const std::string& v) {
  return v.size() <= 4096 && Printable(v, true);
}

std::string String(const json& j, const std::string& field) {
  if (!j.is_string()) throw ParamError(field, "expected a string");
  return j.get<std::string>();
}

std::int64_t Integer(const json& j, const std::string& field, std::int64_t lo, std::int64_t hi,
                     const std::string& range) {
  if (!j.is_number_integer()) throw ParamError(field, "expected an integer");
  bool ok = !(j.is_number_unsigned() && j.get<std::uint64_t>() > static_cast<std::uint64_t>(hi));
  std::int64_t v = ok ? j.get<std::int64_t>() : 0;
  if (!ok || v < lo || v > hi) throw ParamError(field, range);
  return v;
}

// {KEY: "VALUE"} with keys and values checked by the given predicates.
std::map<std::string, std::string> StringMap(const json& j, const std::string& field,
                                             std::size_t max_entries,
                                             bool (*key_ok)(const std::string&),
                                             const char* key_rule,
                                             bool (*value_ok)(const std::string&),
                                             const char* value_rule) {
  if (!j.is_object()) throw ParamError(field, "expected an object of strings");
  if (j.size() > max_entries)
    throw ParamError(field, "at most " + std::to_string(max_entries) + " entries");
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    std::string name = field + "." + key;
    if (!key_ok(key)) throw ParamError(name, std::string("the key must be ") + key_rule);
    std::string v = String(value, name);
    if (!value_ok(v)) throw ParamError(name, std::string("the value must be ") + value_rule);
    out[key] = v;
  }
  return out;
}

}  // namespace

const char* FlavourName(Flavour f) {
  return f == Flavour::kSnap4 ? "snap4" : "snap3";
}

DeploySpec DecodeDeploySpec(const json& j, const std::string& path,
                            std::initializer_list<std::string_view> also) {
  if (!j.is_object())
    throw path.empty() ? rpc::CallError(rpc::kInvalidParams, "invalid params: expected an object")
                       : ParamError(path, "expected an object");
  auto field = [&](std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  };
  static constexpr std::string_view kKnown[] = {
      "name",         "flavour",        "image",           "version",     "cpu_mask",
      "hugepages_2m", "memory_request", "memory_limit",    "cpu_request", "cpu_limit",
      "rpc_init",     "firmware",       "ready_timeout_s", "env"};
  for (const auto& [key, _] : j.items()) {
    if (std::find(std::begin(kKnown), std::end(kKnown), key) == std::end(kKnown) &&
        std::find(also.begin(), also.end(), key) == also.end())
      throw ParamError(field(key), "unknown parameter");
  }
  auto has = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };

  DeploySpec s;
  if (!has("name")) throw ParamError(field("name"), "required");
  s.name = String(j["name"], field("name"));
  CheckName(field("name"), s.name);
  if (has("flavour")) {
    std::string f = String(j["flavour"], field("flavour"));
    if (f != "snap4" && f != "snap3")
      throw ParamError(field("flavour"),
                       "must be \"snap4\" (DOCA SNAP container) or \"snap3\" (mlnx_snap service)");
    s.flavour = f == "snap4" ? Flavour::kSnap4 : Flavour::kSnap3;
  }
  if (has("image")) s.image = String(j["image"], field("image"));
  if (s.flavour == Flavour::kSnap4 && !has("image")) throw ParamError(field("image"), "required");
  if ((!s.image.empty() || s.flavour == Flavour::kSnap4) && !ValidImage(s.image))
    throw ParamError(field("image"),
                     "a container image reference such as "
                     "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0");
  if (!has("version")) throw ParamError(field("version"), "required");
  s.version = String(j["version"], field("version"));
  if (s.version.empty() || s.version.size() > 63 || !AllOf(s.version, std::isalnum, "._+~-"))
    throw ParamError(field("version"), "1-63 of [A-Za-z0-9._+~-]");

  if (has("cpu_mask")) {
    s.cpu_mask = String(j["cpu_mask"], field("cpu_mask"));
    bool ok = s.cpu_mask.size() > 2 && s.cpu_mask.size() <= 66 && s.cpu_mask.starts_with("0x") &&
              AllOf(s.cpu_mask.substr(2), std::isdigit, "abcdef");
    if (!ok)
      throw ParamError(field("cpu_mask"),
                       "a core mask such as 0xff (0x and 1-64 lower-case hex digits)");
    if (s.cpu_mask.find_first_not_of('0', 2) == std::string::npos)
      throw ParamError(field("cpu_mask"), "selects no core");
  }
  if (has("hugepages_2m"))
    s.hugepages_2m = Integer(j["hugepages_2m"], field("hugepages_2m"), 0, 1 << 20,
                             "must be from 0 to 1048576 (2 MiB pages)");
  for (auto [key, target] : {std::pair{"memory_request", &s.memory_request},
                             std::pair{"memory_limit", &s.memory_limit}}) {
    if (!has(key)) continue;
    *target = String(j[key], field(key));
    auto bytes = ParseQuantity(*target);
    if (!bytes || *bytes == 0)
      throw ParamError(field(key), "a memory quantity such as 2Gi, 512Mi or 4G");
  }
  if (*ParseQuantity(s.memory_request) > *ParseQuantity(s.memory_limit))
    throw ParamError(field("memory_request"), "is more than memory_limit (" + s.memory_limit + ")");
  const std::string cores = "must be from 1 to 1024 cores";
  if (has("cpu_request"))
    s.cpu_request =
        static_cast<int>(Integer(j["cpu_request"], field("cpu_request"), 1, 1024, cores));
  s.cpu_limit = std::max(s.cpu_limit, s.cpu_request);
  if (has("cpu_limit"))
    s.cpu_limit = static_cast<int>(Integer(j["cpu_limit"], field("cpu_limit"), 1, 1024, cores));
  if (s.cpu_request > s.cpu_limit)
    throw ParamError(field("cpu_request"),
                     "is more than cpu_limit (" + std::to_string(s.cpu_limit) + ")");
  if (has("rpc_init")) {
    const json& lines = j["rpc_init"];
    if (!lines.is_array()) throw ParamError(field("rpc_init"), "expected an array of strings");
    if (lines.size() > 1024) throw ParamError(field("rpc_init"), "at most 1024 lines");
    for (std::size_t i = 0; i < lines.size(); ++i) {
      std::string f = field("rpc_init") + "[" + std::to_string(i) + "]";
      std::string line = String(lines[i], f);
      // One RPC per line: a line break inside would split it into two.
      if (line.empty() || line.size() > 4096 || !Printable(line, true) || line[0] == ' ')
        throw ParamError(f, "one SNAP RPC line: 1-4096 printable characters, no line breaks");
      s.rpc_init.push_back(line);
    }
  }
  if (has("firmware"))
    s.firmware = StringMap(j["firmware"], field("firmware"), 64, FirmwareKey, "[A-Z0-9_]{1,64}",
                           FirmwareValue, "1-64 of [A-Za-z0-9_.()-]");
  if (has("ready_timeout_s"))
    s.ready_timeout_s = static_cast<int>(Integer(j["ready_timeout_s"], field("ready_timeout_s"), 1,
                                                 86400, "must be from 1 to 86400 seconds"));
  if (has("env")) {
    s.env = StringMap(j["env"], field("env"), 256, EnvKey, "[A-Za-z_][A-Za-z0-9_]*", EnvValue,
                      "up to 4096 printable characters");
    // These are the deployer's: a second definition would silently override it.
    if (s.env.count("APP_ARGS")) throw ParamError(field("env.APP_ARGS"), "set by cpu_mask");
    if (s.env.count("SNAP_RPC_INIT_CONF"))
      throw ParamError(field("env.SNAP_RPC_INIT_CONF"), "set by rpc_init");
    if (s.env.count("SNAP_SPDK_SOCK"))
      throw ParamError(field("env.SNAP_SPDK_SOCK"), "set by the DPU agent (its --snap-socket)");
  }
  return s;
}

Result<DeploySpec> ParseDeploySpec(const json& j, const std::string& path) {
  try {
    return DecodeDeploySpec(j, path);
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
    if (r.generation < 0) throw ParamError("generation", "must be at least 0");
    if (!p.Has("deployment")) throw ParamError("deployment", "required (null removes)");
    if (!params["deployment"].is_null())
      r.deployment = DecodeDeploySpec(params["deployment"], "deployment");
    return r;
  } catch (const rpc::CallError& e) {
    return e.error();
  }
}

json ToJson(const DeploySpec& s) {
  return {{"name", s.name},
          {"flavour", FlavourName(s.flavour)},
          {"image", s.image},
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
}

std::optional<std::uint64_t> ParseQuantity(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  std::uint64_t n = std::stoull(text.substr(0, digits));
  static const std::map<std::string, std::uint64_t> kUnits = {{"", 1},
                                                              {"Ki", 1ull << 10},
                                                              {"Mi", 1ull << 20},
                                                              {"Gi", 1ull << 30},
                                                              {"Ti", 1ull << 40},
                                                              {"k", 1000},
                                                              {"M", 1000000},
                                                              {"G", 1000000000},
                                                              {"T", 1000000000000ull}};
  auto it = kUnits.find(text.substr(digits));
  if (it == kUnits.end()) return std::nullopt;
  if (n > (std::uint64_t{1} << 50) / it->second) return std::nullopt;  // beyond any DPU
  return n * it->second;
}

}  // namespace dpustor::protocol
