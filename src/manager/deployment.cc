#include "manager/deployment.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/params.h"

namespace dpustor::manager {

namespace {

using rpc::ParamError;
using rpc::Params;

bool NameChars(const std::string& v) {
  return std::all_of(v.begin(), v.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.';
  });
}

void CheckName(const std::string& field, const std::string& v) {
  if (v.empty() || v.size() > 63 || v[0] == '-' || v[0] == '.' || !NameChars(v))
    throw ParamError(field,
                     "1-63 characters of letters, digits, '-', '_', '.', not starting with '-' "
                     "or '.'");
}

// Printable ASCII; `spaces` allows ' ' too. Values reach files and command lines on the DPU.
bool Printable(const std::string& s, bool spaces) {
  return std::all_of(s.begin(), s.end(), [spaces](unsigned char c) {
    return (c > 0x20 && c < 0x7f) || (spaces && c == ' ');
  });
}

// A Kubernetes memory quantity such as 2Gi, 512Mi or 4G, in bytes; nullopt if not one.
std::optional<std::uint64_t> Quantity(const std::string& text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return std::nullopt;
  std::uint64_t value = std::stoull(text.substr(0, digits));
  static const std::map<std::string, std::uint64_t> kUnits = {
      {"", 1},     {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30},  {"Ti", 1ull << 40},
      {"k", 1000}, {"M", 1000000},     {"G", 1000000000},  {"T", 1000000000000}};
  auto unit = kUnits.find(text.substr(digits));
  if (unit == kUnits.end()) return std::nullopt;
  if (value > (std::uint64_t{1} << 50) / unit->second) return std::nullopt;  // > 1 PiB
  return value * unit->second;
}

std::string CheckedQuantity(const Params& p, const char* field, const char* fallback) {
  auto v = p.Get<std::string>(field, fallback);
  auto bytes = Quantity(v);
  if (!bytes || *bytes == 0) throw ParamError(field, "a memory quantity such as 2Gi, 512Mi or 4G");
  return v;
}

// {KEY: "VALUE"} with keys and values checked by the given predicates.
json StringMap(const Params& p, const char* field, std::size_t max_entries,
               bool (*key_ok)(const std::string&), const char* key_rule,
               bool (*value_ok)(const std::string&), const char* value_rule) {
  json v = p.Get<json>(field, json::object());
  if (!v.is_object()) throw ParamError(field, "expected an object of strings");
  if (v.size() > max_entries)
    throw ParamError(field, "at most " + std::to_string(max_entries) + " entries");
  for (const auto& [key, value] : v.items()) {
    std::string name = std::string(field) + "." + key;
    if (!key_ok(key)) throw ParamError(name, std::string("the key must be ") + key_rule);
    if (!value.is_string()) throw ParamError(name, "expected a string");
    if (!value_ok(value.get<std::string>()))
      throw ParamError(name, std::string("the value must be ") + value_rule);
  }
  return v;
}

bool FirmwareKey(const std::string& k) {
  return !k.empty() && k.size() <= 64 && std::all_of(k.begin(), k.end(), [](unsigned char c) {
    return std::isupper(c) || std::isdigit(c) || c == '_';
  });
}

bool FirmwareValue(const std::string& v) {
  return !v.empty() && v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '(' || c == ')';
  });
}

bool EnvKey(const std::string& k) {
  return !k.empty() && k.size() <= 128 && !std::isdigit(static_cast<unsigned char>(k[0])) &&
         std::all_of(k.begin(), k.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

bool EnvValue(const std::string& v) {
  return v.size() <= 4096 && Printable(v, true);
}

json ParseSpec(const Params& p, const std::string& name) {
  json spec;
  spec["name"] = name;
  std::string flavour = p.Get<std::string>("flavour", "snap4");
  if (flavour != "snap4" && flavour != "snap3")
    throw ParamError("flavour",
                     "must be \"snap4\" (DOCA SNAP container) or \"snap3\" "
                     "(mlnx_snap service)");
  spec["flavour"] = flavour;
  std::string image =
      flavour == "snap4" ? p.Required<std::string>("image") : p.Get<std::string>("image", "");
  if ((flavour == "snap4" && image.empty()) || image.size() > 255 || !Printable(image, false))
    throw ParamError("image",
                     "a container image reference such as "
                     "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0");
  spec["image"] = image;
  std::string version = p.Required<std::string>("version");
  if (version.empty() || version.size() > 63 || !Printable(version, false))
    throw ParamError("version", "1-63 printable characters without spaces");
  spec["version"] = version;

  std::string mask = p.Get<std::string>("cpu_mask", "0xff");
  bool mask_ok = mask.size() > 2 && mask.size() <= 66 && mask.starts_with("0x") &&
                 std::all_of(mask.begin() + 2, mask.end(), [](unsigned char c) {
                   return std::isdigit(c) || (c >= 'a' && c <= 'f');
                 });
  if (!mask_ok)
    throw ParamError("cpu_mask",
                     "a core mask such as 0xff (0x and 1-64 lower-case "
                     "hex digits)");
  if (mask.find_first_not_of("0", 2) == std::string::npos)
    throw ParamError("cpu_mask", "selects no core");
  spec["cpu_mask"] = mask;

  auto hugepages = p.Get<std::int64_t>("hugepages_2m", 2048);
  if (hugepages < 0 || hugepages > (1 << 20))
    throw ParamError("hugepages_2m", "must be from 0 to 1048576 (2 MiB pages)");
  spec["hugepages_2m"] = hugepages;

  std::string mem_request = CheckedQuantity(p, "memory_request", "2Gi");
  std::string mem_limit = CheckedQuantity(p, "memory_limit", "4Gi");
  if (*Quantity(mem_request) > *Quantity(mem_limit))
    throw ParamError("memory_request", "is more than memory_limit (" + mem_limit + ")");
  spec["memory_request"] = mem_request;
  spec["memory_limit"] = mem_limit;

  auto cpu_request = p.Get<int>("cpu_request", 8);
  auto cpu_limit = p.Get<int>("cpu_limit", std::max(16, cpu_request));
  if (cpu_request < 1 || cpu_request > 1024)
    throw ParamError("cpu_request", "must be from 1 to 1024 cores");
  if (cpu_limit < 1 || cpu_limit > 1024)
    throw ParamError("cpu_limit", "must be from 1 to 1024 cores");
  if (cpu_request > cpu_limit)
    throw ParamError("cpu_request", "is more than cpu_limit (" + std::to_string(cpu_limit) + ")");
  spec["cpu_request"] = cpu_request;
  spec["cpu_limit"] = cpu_limit;

  json init = p.Get<json>("rpc_init", json::array());
  if (!init.is_array()) throw ParamError("rpc_init", "expected an array of strings");
  if (init.size() > 1024) throw ParamError("rpc_init", "at most 1024 lines");
  for (std::size_t i = 0; i < init.size(); ++i) {
    std::string field = "rpc_init[" + std::to_string(i) + "]";
    if (!init[i].is_string()) throw ParamError(field, "expected a string");
    auto line = init[i].get<std::string>();
    if (line.empty() || line.size() > 4096 || !Printable(line, true) || line[0] == ' ')
      throw ParamError(field, "one SNAP RPC line: 1-4096 printable characters, no line breaks");
  }
  spec["rpc_init"] = init;

  spec["firmware"] = StringMap(p, "firmware", 64, FirmwareKey, "[A-Z0-9_]{1,64}", FirmwareValue,
                               "1-64 of [A-Za-z0-9_.()-]");
  auto timeout = p.Get<int>("ready_timeout_s", 300);
  if (timeout < 1 || timeout > 86400)
    throw ParamError("ready_timeout_s", "must be from 1 to 86400 seconds");
  spec["ready_timeout_s"] = timeout;
  json env = StringMap(p, "env", 256, EnvKey, "[A-Za-z_][A-Za-z0-9_]*", EnvValue,
                       "up to 4096 printable characters");
  if (env.contains("APP_ARGS")) throw ParamError("env.APP_ARGS", "set by cpu_mask");
  if (env.contains("SNAP_RPC_INIT_CONF"))
    throw ParamError("env.SNAP_RPC_INIT_CONF", "set by rpc_init");
  if (env.contains("SNAP_SPDK_SOCK"))
    throw ParamError("env.SNAP_SPDK_SOCK", "set by the DPU agent (its --snap-socket)");
  spec["env"] = env;
  return spec;
}

}  // namespace

json ToJson(const Deployment& d) {
  return {{"name", d.name},
          {"dpu", d.dpu},
          {"group", d.group},
          {"spec", d.spec},
          {"generation", d.generation},
          {"deleting", d.deleting},
          {"removal_generation", d.removal_generation},
          {"removing", d.removing},
          {"released", d.released},
          {"created_ms", d.created_ms},
          {"updated_ms", d.updated_ms}};
}

Deployment DeploymentFromJson(const json& j) {
  Deployment d;
  d.name = j.value("name", "");
  d.dpu = j.value("dpu", "");
  d.group = j.value("group", "");
  d.spec = j.value("spec", json::object());
  d.generation = j.value("generation", std::int64_t{0});
  d.deleting = j.value("deleting", false);
  d.removal_generation = j.value("removal_generation", std::int64_t{0});
  d.removing = j.value("removing", std::vector<std::string>{});
  d.released = j.value("released", std::map<std::string, std::int64_t>{});
  d.created_ms = j.value("created_ms", std::int64_t{0});
  d.updated_ms = j.value("updated_ms", std::int64_t{0});
  return d;
}

Deployment ParseDeployment(const json& body) {
  Params p(body);
  p.RejectUnknown({"name", "dpu", "group", "flavour", "image", "version", "cpu_mask",
                   "hugepages_2m", "memory_request", "memory_limit", "cpu_request", "cpu_limit",
                   "rpc_init", "firmware", "ready_timeout_s", "env"});
  Deployment d;
  d.name = p.Required<std::string>("name");
  CheckName("name", d.name);
  d.dpu = p.Get<std::string>("dpu", "");
  d.group = p.Get<std::string>("group", "");
  if (d.dpu.empty() == d.group.empty())
    throw ParamError(d.dpu.empty() ? "dpu" : "group",
                     "give exactly one target: a DPU (dpu) or a DPU group (group)");
  if (!d.dpu.empty()) CheckName("dpu", d.dpu);
  if (!d.group.empty()) CheckName("group", d.group);
  d.spec = ParseSpec(p, d.name);
  return d;
}

json ToJson(const DpuGroup& g) {
  return {{"name", g.name},
          {"dpus", g.dpus},
          {"created_ms", g.created_ms},
          {"updated_ms", g.updated_ms}};
}

DpuGroup GroupFromJson(const json& j) {
  DpuGroup g;
  g.name = j.value("name", "");
  g.dpus = j.value("dpus", std::vector<std::string>{});
  g.created_ms = j.value("created_ms", std::int64_t{0});
  g.updated_ms = j.value("updated_ms", std::int64_t{0});
  return g;
}

DpuGroup ParseGroup(const json& body) {
  Params p(body);
  p.RejectUnknown({"name", "dpus"});
  DpuGroup g;
  g.name = p.Required<std::string>("name");
  CheckName("name", g.name);
  json dpus = p.Required<json>("dpus");
  if (!dpus.is_array() || dpus.empty()) throw ParamError("dpus", "a non-empty array of DPU names");
  if (dpus.size() > 10000) throw ParamError("dpus", "at most 10000 DPUs");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < dpus.size(); ++i) {
    std::string field = "dpus[" + std::to_string(i) + "]";
    if (!dpus[i].is_string()) throw ParamError(field, "expected a string");
    auto name = dpus[i].get<std::string>();
    CheckName(field, name);
    if (!seen.insert(name).second) throw ParamError(field, "'" + name + "' is listed twice");
  }
  g.dpus.assign(seen.begin(), seen.end());
  return g;
}

std::vector<std::string> TargetDpus(const Deployment& d,
                                    const std::map<std::string, DpuGroup>& groups) {
  if (!d.dpu.empty()) return {d.dpu};
  auto it = groups.find(d.group);
  return it == groups.end() ? std::vector<std::string>{} : it->second.dpus;
}

std::map<std::string, DpuDesired> DesiredByDpu(const std::map<std::string, Deployment>& deployments,
                                               const std::map<std::string, DpuGroup>& groups) {
  std::map<std::string, DpuDesired> out;
  for (const auto& [name, d] : deployments) {
    if (d.deleting) {
      for (const auto& dpu : d.removing)
        out.try_emplace(dpu, DpuDesired{name, d.removal_generation, nullptr});
      continue;
    }
    auto targets = TargetDpus(d, groups);
    for (const auto& dpu : targets) out.try_emplace(dpu, DpuDesired{name, d.generation, d.spec});
    for (const auto& [dpu, gen] : d.released)
      if (std::find(targets.begin(), targets.end(), dpu) == targets.end())
        out.try_emplace(dpu, DpuDesired{name, gen, nullptr});
  }
  return out;
}

DeployObserved ObservedFromSection(const json& section) {
  DeployObserved o;
  if (!section.is_object()) return o;
  auto str = [&](const char* key) {
    auto it = section.find(key);
    return it != section.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  o.present = true;
  o.deployment = str("name");
  if (o.deployment.empty()) o.deployment = str("deployment");  // a deploy.phase event's detail
  auto gen = section.find("generation");
  if (gen != section.end() && gen->is_number_integer()) o.generation = gen->get<std::int64_t>();
  o.version = str("version");
  o.flavour = str("flavour");
  o.phase = str("phase");
  o.state = str("state");
  o.message = str("message");
  o.since = section.value("since", json(nullptr));
  o.previous = section.value("previous", json(nullptr));
  o.running = section.value("running", json(nullptr));
  o.history = section.value("history", json::array());
  return o;
}

bool Taken(const DpuDesired& want, const DeployObserved& seen) {
  if (want.spec.is_null() && !seen.present) return true;
  return seen.present && seen.generation >= want.generation;
}

bool Reached(const DpuDesired& want, const DeployObserved& seen) {
  if (want.spec.is_null())
    return !seen.present || (seen.generation >= want.generation && seen.state == "removed");
  return seen.present && seen.generation == want.generation && seen.state == "ready";
}

bool ShouldSend(const DpuDesired& want, const std::optional<DeployObserved>& seen,
                const std::optional<Sent>& sent, bool online,
                std::chrono::steady_clock::time_point now, std::chrono::milliseconds retry) {
  if (!online) return false;
  if (!sent || sent->generation != want.generation) return true;
  if (sent->refused) return false;
  if (seen && Taken(want, *seen)) return false;
  return now - sent->at >= retry;
}

bool TerminalNotReady(const std::string& state) {
  return state == "failed" || state == "refused" || state == "power-cycle-required" ||
         state == "rolled-back";
}

}  // namespace dpustor::manager
