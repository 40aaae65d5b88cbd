#include "manager/deployment_service.h"

#include <algorithm>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "common/agent_protocol.h"
#include "common/params.h"

namespace dpustor::manager {

namespace {

using Steady = std::chrono::steady_clock;

constexpr const char* kApplyMethod = "deploy.apply";
constexpr const char* kPhaseEvent = "deploy.phase";

std::string DeploymentSubject(const std::string& name) {
  return "deployment/" + name;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

DeploymentService::DeploymentService(Store& store, Inventory& inventory, EventLog& events,
                                     AgentService& agents, DeploymentServiceOptions options)
    : store_(store), inventory_(inventory), events_(events), agents_(agents), options_(options) {
  for (const auto& doc : store_.LoadGroups()) {
    DpuGroup g = GroupFromJson(doc);
    groups_[g.name] = std::move(g);
  }
  for (const auto& doc : store_.LoadDeployments()) {
    Deployment d = DeploymentFromJson(doc);
    last_generation_ = std::max({last_generation_, d.generation, d.removal_generation});
    for (const auto& [dpu, gen] : d.released) last_generation_ = std::max(last_generation_, gen);
    deployments_[d.name] = std::move(d);
  }
}

DeploymentService::~DeploymentService() {
  Stop();
}

void DeploymentService::Start() {
  loop_.Start([this](std::unique_lock<std::mutex>&) { Pass(); });
}

void DeploymentService::Stop() {
  loop_.Stop();
}

void DeploymentService::Publish(const News& news) {
  for (const auto& [subject, type, message, detail] : news)
    events_.Add(subject, type, message, detail);
}

// Wall-clock milliseconds, kept increasing: a generation must outgrow every earlier one sent
// to the same DPU, whichever deployment sent it.
std::int64_t DeploymentService::NextGeneration() {
  last_generation_ = std::max(last_generation_ + 1, NowMs());
  return last_generation_;
}

Status DeploymentService::Save(Deployment& d) {
  d.updated_ms = NowMs();
  return store_.PutDeployment(d.name, ToJson(d));
}

std::string DeploymentService::Conflict(const std::string& dpu, const std::string& name) const {
  for (const auto& [other, d] : deployments_) {
    if (other == name) continue;
    if (d.deleting) {
      if (Contains(d.removing, dpu))
        return "dpu '" + dpu + "' is still being cleared by deployment '" + other +
               "' (being deleted)";
      continue;
    }
    if (Contains(TargetDpus(d, groups_), dpu))
      return "dpu '" + dpu + "' is already targeted by deployment '" + other + "' (" + d.Target() +
             ")";
    if (d.released.count(dpu))
      return "dpu '" + dpu + "' is still being cleared by deployment '" + other + "'";
  }
  return "";
}

Result<json> DeploymentService::Apply(const json& body, bool* created) {
  Deployment d;
  try {
    d = ParseDeployment(body);
  } catch (const rpc::CallError& e) {
    return e.error();
  }
  if (!d.dpu.empty()) {
    auto rec = inventory_.Get(d.dpu);
    if (!rec || rec->kind != protocol::kKindDpu)
      return Error{rpc::kNotFound, "no DPU named '" + d.dpu + "'"};
  }
  News news;
  json view;
  {
    std::lock_guard lock(mu_);
    if (!d.group.empty() && !groups_.count(d.group))
      return Error{rpc::kNotFound, "no DPU group named '" + d.group + "'"};
    auto it = deployments_.find(d.name);
    if (it != deployments_.end()) {
      Deployment& old = it->second;
      if (old.deleting)
        return Error{rpc::kAlreadyExists, "deployment '" + d.name + "' is being deleted"};
      if (old.Target() != d.Target())
        return Error{rpc::kAlreadyExists, "deployment '" + d.name + "' targets " + old.Target() +
                                              ", not " + d.Target() +
                                              "; delete it first to move it"};
      if (old.spec == d.spec) {  // the same spec again: nothing to do
        *created = false;
        return View(old);
      }
    }
    for (const auto& dpu : TargetDpus(d, groups_))
      if (std::string why = Conflict(dpu, d.name); !why.empty())
        return Error{rpc::kAlreadyExists, why};
    *created = it == deployments_.end();
    std::string message;
    if (*created) {
      d.created_ms = NowMs();
      d.generation = NextGeneration();
      message = "SNAP " + d.spec["flavour"].get<std::string>() + " " +
                d.spec["version"].get<std::string>() + " to " + d.Target();
    } else {
      Deployment& old = it->second;
      message = "SNAP " + old.spec["version"].get<std::string>() + " -> " +
                d.spec["version"].get<std::string>() + " (" + d.spec["image"].get<std::string>() +
                ") on " + d.Target();
      d.created_ms = old.created_ms;
      d.released = old.released;
      d.generation = NextGeneration();
    }
    if (auto st = Save(d); !st.ok()) return st.error();
    deployments_[d.name] = d;
    news.emplace_back(DeploymentSubject(d.name),
                      *created ? "deployment.requested" : "deployment.updated", message,
                      json{{"generation", d.generation}});
    view = View(d);
  }
  Publish(news);
  Kick();
  return view;
}

Result<json> DeploymentService::Delete(const std::string& name, bool force) {
  News news;
  json view;
  {
    std::lock_guard lock(mu_);
    auto it = deployments_.find(name);
    if (it == deployments_.end())
      return Error{rpc::kNotFound, "no deployment named '" + name + "'"};
    Deployment& d = it->second;
    if (!d.deleting) {
      Deployment next = d;
      std::set<std::string> dpus;
      for (const auto& dpu : TargetDpus(d, groups_)) dpus.insert(dpu);
      for (const auto& [dpu, gen] : d.released) dpus.insert(dpu);
      next.deleting = true;
      next.removal_generation = NextGeneration();
      next.released.clear();
      next.removing.clear();
      // A DPU that never registered never got the spec: nothing to remove there.
      for (const auto& dpu : dpus)
        if (inventory_.Get(dpu)) next.removing.push_back(dpu);
      if (auto st = Save(next); !st.ok()) return st.error();
      d = std::move(next);
      news.emplace_back(DeploymentSubject(name), "deployment.delete_requested",
                        "remove SNAP from " + (d.removing.empty()
                                                   ? std::string("no DPU")
                                                   : std::to_string(d.removing.size()) + " DPU(s)"),
                        json{{"generation", d.removal_generation}, {"dpus", d.removing}});
    }
    view = View(d);
    if (force) {
      d.removing.clear();
      view["state"] = "deleted";
    }
    Settle(news);
  }
  Publish(news);
  Kick();
  return view;
}

json DeploymentService::List() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [n, d] : deployments_) out.push_back(View(d));
  return out;
}

Result<json> DeploymentService::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = deployments_.find(name);
  if (it == deployments_.end()) return Error{rpc::kNotFound, "no deployment named '" + name + "'"};
  return View(it->second);
}

Result<json> DeploymentService::PutGroup(const json& body, bool* created) {
  DpuGroup g;
  try {
    g = ParseGroup(body);
  } catch (const rpc::CallError& e) {
    return e.error();
  }
  News news;
  json out;
  {
    std::lock_guard lock(mu_);
    auto it = groups_.find(g.name);
    *created = it == groups_.end();
    if (!*created && it->second.dpus == g.dpus) return ToJson(it->second);
    std::vector<std::string> old = *created ? std::vector<std::string>{} : it->second.dpus;
    // Deployments on this group: the new members must be free, and every member gets a new
    // generation so whoever joins or leaves is told (the same spec is a no-op on the others).
    std::vector<Deployment> changed;
    for (const auto& [name, d] : deployments_) {
      if (d.deleting || d.group != g.name) continue;
      for (const auto& dpu : g.dpus)
        if (std::string why = Conflict(dpu, name); !why.empty())
          return Error{rpc::kAlreadyExists, why};
      Deployment next = d;
      next.generation = NextGeneration();
      for (const auto& dpu : old)
        if (!Contains(g.dpus, dpu) && inventory_.Get(dpu)) next.released[dpu] = next.generation;
      for (const auto& dpu : g.dpus) next.released.erase(dpu);
      changed.push_back(std::move(next));
    }
    g.created_ms = *created ? NowMs() : it->second.created_ms;
    g.updated_ms = NowMs();
    if (auto st = store_.PutGroup(g.name, ToJson(g)); !st.ok()) return st.error();
    groups_[g.name] = g;
    for (auto& d : changed) {
      Save(d);
      news.emplace_back(DeploymentSubject(d.name), "deployment.updated",
                        "group " + g.name + " now has " + std::to_string(g.dpus.size()) + " DPU(s)",
                        json{{"generation", d.generation}, {"dpus", g.dpus}});
      deployments_[d.name] = std::move(d);
    }
    std::string members;
    for (const auto& dpu : g.dpus) members += (members.empty() ? "" : ", ") + dpu;
    news.emplace_back("group/" + g.name, *created ? "group.created" : "group.updated",
                      "DPUs: " + members, nullptr);
    out = ToJson(g);
  }
  Publish(news);
  Kick();
  return out;
}

Result<json> DeploymentService::DeleteGroup(const std::string& name) {
  json out;
  {
    std::lock_guard lock(mu_);
    auto it = groups_.find(name);
    if (it == groups_.end()) return Error{rpc::kNotFound, "no DPU group named '" + name + "'"};
    for (const auto& [n, d] : deployments_)
      if (!d.deleting && d.group == name)
        return Error{rpc::kBusy, "group '" + name + "' is used by deployment '" + n + "'"};
    if (auto st = store_.DeleteGroup(name); !st.ok()) return st.error();
    out = ToJson(it->second);
    groups_.erase(it);
  }
  events_.Add("group/" + name, "group.deleted", "deleted");
  return out;
}

json DeploymentService::Groups() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [n, g] : groups_) {
    json j = ToJson(g);
    for (const auto& [dn, d] : deployments_)
      if (d.group == n && !d.deleting) j["deployment"] = dn;
    out.push_back(std::move(j));
  }
  return out;
}

Result<json> DeploymentService::Group(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = groups_.find(name);
  if (it == groups_.end()) return Error{rpc::kNotFound, "no DPU group named '" + name + "'"};
  json j = ToJson(it->second);
  for (const auto& [dn, d] : deployments_)
    if (d.group == name && !d.deleting) j["deployment"] = dn;
  return j;
}

json DeploymentService::DpuView(const std::string& dpu, const DpuDesired& want) const {
  auto rec = inventory_.Get(dpu);
  bool online = rec && rec->state == kOnline;
  json j = {{"dpu", dpu},
            {"agent", rec ? rec->state : "unknown"},
            {"desired_generation", want.generation},
            {"generation", nullptr},
            {"phase", ""},
            {"state", "pending"},
            {"message", ""},
            {"version", nullptr},
            {"flavour", nullptr},
            {"since", nullptr},
            {"previous", nullptr},
            {"running", nullptr},
            {"history", json::array()}};
  auto seen = observed_.find(dpu);
  if (seen != observed_.end() && seen->second.present) {
    const DeployObserved& o = seen->second;
    j["generation"] = o.generation;
    j["phase"] = o.phase;
    j["version"] = o.version.empty() ? json(nullptr) : json(o.version);
    j["flavour"] = o.flavour.empty() ? json(nullptr) : json(o.flavour);
    j["since"] = o.since;
    j["previous"] = o.previous;
    j["running"] = o.running;
    j["history"] = o.history;
  }
  if (auto err = apply_errors_.find(dpu);
      err != apply_errors_.end() && err->second.first == want.generation) {
    j["state"] = "failed";
    j["message"] = err->second.second;
    return j;
  }
  DeployObserved none;
  const DeployObserved& o = seen != observed_.end() ? seen->second : none;
  if (Reached(want, o) && want.spec.is_null()) {
    j["state"] = "removed";
    j["message"] = o.message;
  } else if (o.present && o.generation == want.generation) {
    j["state"] = o.state;
    j["message"] = o.message;
    // Ready at this generation means this spec's SNAP runs, whatever report comes next.
    if (o.state == "ready" && j["version"].is_null()) j["version"] = want.spec.value("version", "");
  } else if (!online) {
    j["message"] = rec ? "agent " + rec->state + ": " + rec->state_reason
                       : "no agent of this name has registered yet";
  } else {
    j["message"] = "waiting for the agent to take generation " + std::to_string(want.generation);
    if (o.present && !o.state.empty())
      j["message"] = j["message"].get<std::string>() + " (it reports " + o.state +
                     " at generation " + std::to_string(o.generation) + ")";
  }
  return j;
}

json DeploymentService::View(const Deployment& d) const {
  json j = {{"name", d.name},
            {"target", d.Target()},
            {"dpu", d.dpu.empty() ? json(nullptr) : json(d.dpu)},
            {"group", d.group.empty() ? json(nullptr) : json(d.group)},
            {"flavour", d.spec.value("flavour", "")},
            {"version", d.spec.value("version", "")},
            {"image", d.spec.value("image", "")},
            {"spec", d.spec},
            {"generation", d.deleting ? d.removal_generation : d.generation},
            {"deleting", d.deleting},
            {"created_ms", d.created_ms},
            {"updated_ms", d.updated_ms}};
  json dpus = json::array();
  std::string summary, bad;
  bool all_ready = true, any_deploying = false;
  for (const auto& [dpu, want] : DesiredByDpu({{d.name, d}}, groups_)) {
    json v = DpuView(dpu, want);
    std::string state = v["state"];
    std::string phase = v["phase"];
    summary += (summary.empty() ? "" : " ") + dpu + "=" + state +
               (state == "deploying" && !phase.empty() ? "/" + phase : "");
    if (TerminalNotReady(state) && bad.empty()) bad = state;
    if (state != (want.spec.is_null() ? "removed" : "ready")) all_ready = false;
    if (state == "deploying" || state == "removing") any_deploying = true;
    dpus.push_back(std::move(v));
  }
  std::string state = d.deleting      ? "deleting"
                      : !bad.empty()  ? bad
                      : dpus.empty()  ? "pending"
                      : all_ready     ? "ready"
                      : any_deploying ? "deploying"
                                      : "pending";
  j["state"] = state;
  j["dpus"] = std::move(dpus);
  j["summary"] = summary.empty() ? "-" : summary;
  return j;
}

void DeploymentService::AgentRegistered(const std::string& name, const std::string& kind) {
  if (kind != protocol::kKindDpu) return;
  {
    std::lock_guard lock(mu_);
    sent_.erase(name);
    apply_errors_.erase(name);
  }
  Kick();
}

void DeploymentService::DpuReported(const std::string& dpu, const json& status) {
  auto it = status.find("deployment");
  if (it == status.end()) return;  // an agent without a deployer
  News news;
  {
    std::lock_guard lock(mu_);
    Observe(dpu, ObservedFromSection(*it), false, news);
    Settle(news);
  }
  Publish(news);
}

bool DeploymentService::AgentEvent(const std::string& name, const std::string& kind,
                                   const std::string& type, const json& detail) {
  if (kind != protocol::kKindDpu || type != kPhaseEvent) return false;
  News news;
  {
    std::lock_guard lock(mu_);
    DeployObserved seen = ObservedFromSection(detail);
    // An event carries the phase, not the whole section: keep what the last report said.
    if (auto it = observed_.find(name); it != observed_.end() && it->second.present) {
      DeployObserved merged = it->second;
      if (merged.generation != seen.generation) {  // the report described another generation
        merged.version.clear();
        merged.running = nullptr;
      }
      merged.deployment = seen.deployment.empty() ? merged.deployment : seen.deployment;
      merged.generation = seen.generation;
      merged.phase = seen.phase;
      merged.state = seen.state;
      merged.message = seen.message;
      if (!seen.version.empty()) merged.version = seen.version;
      if (!seen.running.is_null()) merged.running = seen.running;
      seen = std::move(merged);
    }
    Observe(name, seen, true, news);
    Settle(news);
  }
  Publish(news);
  Kick();
  return true;
}

void DeploymentService::Observe(const std::string& dpu, const DeployObserved& seen, bool from_event,
                                News& news) {
  observed_[dpu] = seen;
  if (!seen.present || seen.state.empty()) return;
  // Each phase transition once, whether an event or a report showed it first.
  auto key = std::make_tuple(seen.generation, seen.phase, seen.state);
  auto& done = recorded_[dpu];
  if (!done.insert(key).second) return;
  // Reports only fill in transitions whose events were lost (e.g. across a reconnect);
  // a report never records a phase older than one already seen.
  auto last = last_state_.find(dpu);
  if (!from_event && last != last_state_.end() && last->second.first > seen.generation) return;
  bool new_state =
      last == last_state_.end() || last->second != std::pair(seen.generation, seen.state);
  last_state_[dpu] = {seen.generation, seen.state};
  if (done.size() > 256) done.clear();  // bounded; old generations are never seen again
  std::string type = new_state ? "deployment." + seen.state : "deployment.phase";
  std::string message = dpu + ": " + (seen.phase.empty() ? "-" : seen.phase) + " (" + seen.state +
                        ")" + (seen.message.empty() ? "" : ": " + seen.message);
  json detail = {
      {"dpu", dpu},          {"deployment", seen.deployment}, {"generation", seen.generation},
      {"phase", seen.phase}, {"state", seen.state},           {"message", seen.message}};
  news.emplace_back("dpu/" + dpu, type, message, detail);
  if (!seen.deployment.empty())
    news.emplace_back(DeploymentSubject(seen.deployment), type, message, detail);
}

void DeploymentService::Settle(News& news) {
  for (auto it = deployments_.begin(); it != deployments_.end();) {
    Deployment& d = it->second;
    auto reached = [&](const std::string& dpu, std::int64_t gen) {
      auto o = observed_.find(dpu);
      DeployObserved none;
      return Reached(DpuDesired{d.name, gen, nullptr}, o == observed_.end() ? none : o->second) &&
             o != observed_.end();
    };
    bool changed = false;
    if (d.deleting) {
      auto before = d.removing.size();
      std::erase_if(d.removing,
                    [&](const std::string& dpu) { return reached(dpu, d.removal_generation); });
      if (d.removing.empty()) {
        store_.DeleteDeployment(d.name);
        news.emplace_back(DeploymentSubject(d.name), "deployment.deleted", "removed from every DPU",
                          nullptr);
        it = deployments_.erase(it);
        continue;
      }
      changed = before != d.removing.size();
    } else {
      changed = std::erase_if(d.released, [&](const auto& entry) {
                  return reached(entry.first, entry.second);
                }) > 0;
    }
    if (changed) Save(d);
    ++it;
  }
}

Result<json> DeploymentService::CallAgent(const std::string& agent, const std::string& method,
                                          json params, std::chrono::milliseconds timeout) {
  return loop_.Call(agents_, agent, method, std::move(params), timeout);
}

void DeploymentService::Pass() {
  {
    auto now = Steady::now();
    for (auto& [dpu, want] : DesiredByDpu(deployments_, groups_)) {
      if (busy_dpus_.count(dpu)) continue;
      auto rec = inventory_.Get(dpu);
      auto seen = observed_.find(dpu);
      auto sent = sent_.find(dpu);
      if (!ShouldSend(want, seen == observed_.end() ? std::nullopt : std::optional(seen->second),
                      sent == sent_.end() ? std::nullopt : std::optional(sent->second),
                      rec && rec->kind == protocol::kKindDpu && rec->state == kOnline, now,
                      options_.retry_interval))
        continue;
      loop_.PostFor(busy_dpus_, dpu, [this, dpu, want] { ApplyDpu(dpu, want); });
    }
  }
}

void DeploymentService::ApplyDpu(const std::string& dpu, DpuDesired want) {
  json params = {{"generation", want.generation}, {"deployment", want.spec}};
  auto at = Steady::now();
  auto r = CallAgent(dpu, kApplyMethod, params, options_.apply_timeout);
  News news;
  {
    std::lock_guard lock(mu_);
    Sent sent{want.generation, at, false};
    if (r.ok()) {
      apply_errors_.erase(dpu);
    } else if (r.error().code == rpc::kTimeout || r.error().code == rpc::kConnectionClosed) {
      spdlog::warn("deploy.apply on {}: {} (retrying)", dpu, r.error().message);
    } else {
      // The agent answered: it will refuse this generation again, so wait for a new one.
      sent.refused = true;
      std::string why = "deploy.apply refused by " + dpu + ": " + r.error().message;
      auto& err = apply_errors_[dpu];
      if (err != std::pair(want.generation, why)) {
        err = {want.generation, why};
        json detail = {{"dpu", dpu},
                       {"deployment", want.deployment},
                       {"generation", want.generation},
                       {"code", r.error().code}};
        news.emplace_back("dpu/" + dpu, "deployment.failed", why, detail);
        news.emplace_back(DeploymentSubject(want.deployment), "deployment.failed", why, detail);
      }
    }
    sent_[dpu] = sent;
  }
  Publish(news);
}

}  // namespace dpustor::manager
