#include "manager/deployment.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "common/deploy_spec.h"
#include "common/json_rpc.h"
#include "common/names.h"
#include "common/params.h"

namespace dpustor::manager {

using rpc::ParamError;
using rpc::Params;

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
  // Everything but the target is deploy.apply's spec, checked by the agent's own rules.
  protocol::DeploySpec spec = protocol::DecodeDeploySpec(body, "", {"dpu", "group"});
  Deployment d;
  d.name = spec.name;
  d.dpu = p.Get<std::string>("dpu", "");
  d.group = p.Get<std::string>("group", "");
  if (d.dpu.empty() == d.group.empty())
    throw ParamError(d.dpu.empty() ? "dpu" : "group",
                     "give exactly one target: a DPU (dpu) or a DPU group (group)");
  if (!d.dpu.empty()) protocol::CheckName("dpu", d.dpu);
  if (!d.group.empty()) protocol::CheckName("group", d.group);
  d.spec = protocol::ToJson(spec);
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
  protocol::CheckName("name", g.name);
  json dpus = p.Required<json>("dpus");
  if (!dpus.is_array() || dpus.empty()) throw ParamError("dpus", "a non-empty array of DPU names");
  if (dpus.size() > 10000) throw ParamError("dpus", "at most 10000 DPUs");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < dpus.size(); ++i) {
    std::string field = "dpus[" + std::to_string(i) + "]";
    if (!dpus[i].is_string()) throw ParamError(field, "expected a string");
    auto name = dpus[i].get<std::string>();
    protocol::CheckName(field, name);
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
  auto str = [&](const char* key) { return rpc::StringField(section, key); };
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
