#include "manager/share_service.h"

#include <algorithm>
#include <cctype>
#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "common/agent_protocol.h"
#include "common/params.h"

namespace dpustor::manager {

namespace {

using Steady = std::chrono::steady_clock;
using rpc::CallError;
using rpc::Params;
using News = std::vector<std::tuple<std::string, std::string, std::string>>;

std::string ShareSubject(const std::string& name) {
  return "share/" + name;
}

}  // namespace

ShareService::ShareService(Store& store, Inventory& inventory, EventLog& events,
                           AgentService& agents, ShareServiceOptions options)
    : store_(store), inventory_(inventory), events_(events), agents_(agents), options_(options) {
  for (const auto& doc : store_.LoadShares()) {
    Share s = ShareFromJson(doc);
    shares_[s.name] = std::move(s);
  }
}

ShareService::~ShareService() {
  Stop();
}

void ShareService::Start() {
  loop_.Start([this](std::unique_lock<std::mutex>&) { Pass(); });
}

void ShareService::Stop() {
  loop_.Stop();
}

Status ShareService::Save(Share& s) {
  s.updated_ms = NowMs();
  return store_.PutShare(s.name, ToJson(s));
}

Result<json> ShareService::Create(const json& body) {
  Share s;
  try {
    Params p(body);
    static_cast<protocol::ShareSpec&>(s) = protocol::DecodeShareSpec(body, "", {"dpu"});
    s.dpu = p.Required<std::string>("dpu");
  } catch (const CallError& e) {
    return e.error();
  }
  auto dpu = inventory_.Get(s.dpu);
  if (!dpu || dpu->kind != protocol::kKindDpu)
    return Error{rpc::kNotFound, "no DPU named '" + s.dpu + "'"};
  {
    std::lock_guard lock(mu_);
    if (auto it = shares_.find(s.name); it != shares_.end()) {
      const Share& old = it->second;
      if (old.dpu == s.dpu && old.Desired() == s.Desired() && !old.deleting)
        return ShareView(old);  // the same request again: nothing to do
      return Error{rpc::kAlreadyExists, "share '" + s.name + "' already exists" +
                                            (old.deleting ? " (being deleted)" : "")};
    }
    for (const auto& [n, other] : shares_) {
      if (other.dpu != s.dpu) continue;
      if (other.tag == s.tag)
        return Error{rpc::kAlreadyExists,
                     "tag '" + s.tag + "' is already used on " + s.dpu + " by share '" + n + "'"};
      if (s.data_plane == "snap" && other.data_plane == "snap" && other.pf_index == s.pf_index)
        return Error{rpc::kBusy, "VIRTIO_FS pf " + std::to_string(s.pf_index) + " of " + s.dpu +
                                     " already carries share '" + n + "'"};
    }
    s.created_ms = NowMs();
    if (auto st = Save(s); !st.ok()) return st.error();
    shares_[s.name] = s;
    dirty_dpus_.insert(s.dpu);
    next_try_.erase(s.dpu);
  }
  events_.Add(ShareSubject(s.name), "share.requested",
              "share " + s.backend + " on " + s.dpu + " as tag " + s.tag + " (data plane " +
                  s.data_plane + ")");
  Kick();
  return ShareView(s);
}

Result<json> ShareService::Delete(const std::string& name) {
  json view;
  std::string dpu;
  {
    std::lock_guard lock(mu_);
    auto it = shares_.find(name);
    if (it == shares_.end()) return Error{rpc::kNotFound, "no share named '" + name + "'"};
    if (it->second.deleting) return ShareView(it->second);
    it->second.deleting = true;
    if (auto st = Save(it->second); !st.ok()) {
      it->second.deleting = false;
      return st.error();
    }
    dpu = it->second.dpu;
    dirty_dpus_.insert(dpu);
    next_try_.erase(dpu);
    view = ShareView(it->second);
  }
  events_.Add(ShareSubject(name), "share.delete_requested", "remove from " + dpu);
  Kick();
  return view;
}

json ShareService::List() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [n, s] : shares_) out.push_back(ShareView(s));
  return out;
}

Result<json> ShareService::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = shares_.find(name);
  if (it == shares_.end()) return Error{rpc::kNotFound, "no share named '" + name + "'"};
  return ShareView(it->second);
}

void ShareService::AgentRegistered(const std::string& name, const std::string& kind) {
  if (kind != protocol::kKindDpu) return;
  {
    std::lock_guard lock(mu_);
    dirty_dpus_.insert(name);
    next_try_.erase(name);
  }
  Kick();
}

void ShareService::DpuReported(const std::string& dpu, const json& status) {
  auto it = status.find("shares");
  if (it == status.end() || !it->is_object()) return;
  auto list = it->find("shares");
  if (list == it->end() || !list->is_array()) return;
  News news;
  {
    std::lock_guard lock(mu_);
    // A report collected before the last apply answered would undo what it recorded.
    auto gen = it->find("generation");
    auto applied = applied_.find(dpu);
    if (gen != it->end() && gen->is_number_integer() && applied != applied_.end() &&
        gen->get<std::int64_t>() < applied->second)
      return;
    Observe(dpu, *list, news);
  }
  for (const auto& [name, type, msg] : news) events_.Add(ShareSubject(name), type, msg);
}

void ShareService::Observe(const std::string& dpu, const json& list, News& news) {
  std::map<std::string, json> seen;
  for (const auto& e : list)
    if (e.is_object() && e.contains("name") && e["name"].is_string()) seen[e["name"]] = e;
  for (auto it = shares_.begin(); it != shares_.end();) {
    Share& s = it->second;
    if (s.dpu != dpu) {
      ++it;
      continue;
    }
    auto o = seen.find(s.name);
    if (s.deleting) {
      if (o == seen.end()) {
        store_.DeleteShare(s.name);
        news.emplace_back(s.name, "share.deleted", "removed from " + dpu);
        it = shares_.erase(it);
        continue;
      }
      std::string error = o->second.value("error", "");
      if (error != s.error) {
        s.error = error;
        Save(s);
      }
      ++it;
      continue;
    }
    std::string state = o == seen.end() ? "" : o->second.value("state", "");
    if (state == "removing") state = "";  // held elsewhere; the next apply moves it
    std::string error = o == seen.end() ? "" : o->second.value("error", "");
    json plane = o == seen.end() ? json(nullptr) : o->second.value("data_plane", json(nullptr));
    if (o != seen.end()) s.counters = o->second.value("counters", json(nullptr));
    bool changed = state != s.observed_state || error != s.error;
    s.observed_state = state;
    s.error = error;
    s.observed_plane = plane.is_string() ? plane.get<std::string>() : "";
    if (changed) {
      if (state == "ready") {
        s.ready_ms = NowMs();
        news.emplace_back(
            s.name, "share.ready",
            "ready on " + dpu + " through " + s.observed_plane + " (tag " + s.tag + ")");
      } else if (state == "failed") {
        news.emplace_back(s.name, "share.failed", error);
      }
      Save(s);
    }
    if (state != "ready") dirty_dpus_.insert(dpu);
    ++it;
  }
}

Result<json> ShareService::CallAgent(const std::string& agent, const std::string& method,
                                     json params, std::chrono::milliseconds timeout) {
  return loop_.Call(agents_, agent, method, std::move(params), timeout);
}

void ShareService::Pass() {
  {
    auto now = Steady::now();
    auto due = [&](const std::string& dpu) {
      auto it = next_try_.find(dpu);
      return it == next_try_.end() || it->second <= now;
    };
    std::set<std::string> with_shares;
    for (const auto& [n, s] : shares_) with_shares.insert(s.dpu);
    for (const auto& r : inventory_.List(protocol::kKindDpu))
      if (r.state == kOnline && with_shares.count(r.name) && due(r.name))
        dirty_dpus_.insert(r.name);
    for (auto it = dirty_dpus_.begin(); it != dirty_dpus_.end();) {
      const std::string dpu = *it;
      auto rec = inventory_.Get(dpu);
      if (!due(dpu) || !rec || rec->state != kOnline ||
          !loop_.PostFor(busy_dpus_, dpu, [this, dpu] { ApplyDpu(dpu); })) {
        ++it;
        continue;
      }
      it = dirty_dpus_.erase(it);
    }
  }
}

void ShareService::ApplyDpu(const std::string& dpu) {
  json list = json::array();
  {
    std::lock_guard lock(mu_);
    for (const auto& [n, s] : shares_)
      if (s.dpu == dpu && !s.deleting) list.push_back(s.Desired());
  }
  json spec = {{"generation", NowMs()}, {"shares", list}};
  auto r = CallAgent(dpu, "share.apply", spec, options_.apply_timeout);
  News news;
  {
    std::lock_guard lock(mu_);
    if (!r.ok()) {
      next_try_[dpu] = Steady::now() + options_.retry_interval;
      std::string why = "share.apply on " + dpu + ": " + r.error().message;
      for (auto& [n, s] : shares_) {
        if (s.dpu != dpu || s.deleting || s.error == why) continue;
        s.error = why;
        s.observed_state = "failed";
        Save(s);
        news.emplace_back(n, "share.failed", why);
      }
    } else {
      applied_[dpu] = spec["generation"].get<std::int64_t>();
      const json& observed = (*r)["shares"];
      Observe(dpu, observed.is_array() ? observed : json::array(), news);
      bool all_ready = true;
      for (const auto& [n, s] : shares_)
        if (s.dpu == dpu && (s.deleting || s.observed_state != "ready")) all_ready = false;
      if (all_ready) dirty_dpus_.erase(dpu);
      next_try_[dpu] =
          Steady::now() + (all_ready ? options_.reapply_interval : options_.retry_interval);
    }
  }
  for (const auto& [name, type, msg] : news) events_.Add(ShareSubject(name), type, msg);
  Kick();
}

}  // namespace dpustor::manager
