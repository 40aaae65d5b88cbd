#include "agent/dpu/share_reconciler.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"
#include "common/params.h"

namespace dpustor::agent::dpu {

using json = nlohmann::json;

Result<ShareSetSpec> ParseShareSpec(const json& params) {
  try {
    if (!params.is_object())
      throw rpc::CallError(rpc::kInvalidParams, "invalid params: expected an object");
    rpc::Params p(params);
    p.RejectUnknown({"generation", "shares"});
    ShareSetSpec spec;
    spec.generation = p.Required<std::int64_t>("generation");
    if (spec.generation < 0) throw rpc::ParamError("generation", "must not be negative");
    json shares = p.Required<json>("shares");
    if (!shares.is_array()) throw rpc::ParamError("shares", "expected an array");
    std::set<std::string> names, tags;
    for (std::size_t i = 0; i < shares.size(); ++i) {
      std::string path = "shares[" + std::to_string(i) + "]";
      ShareSpec s = protocol::DecodeShareSpec(shares[i], path);
      if (!names.insert(s.name).second)
        throw rpc::ParamError(path + ".name", "'" + s.name + "' is given twice");
      if (!tags.insert(s.tag).second)
        throw rpc::ParamError(path + ".tag", "'" + s.tag + "' is used by two shares");
      spec.shares.push_back(std::move(s));
    }
    return spec;
  } catch (const rpc::CallError& e) {
    return e.error();
  }
}

ShareReconciler::ShareReconciler(snap::SnapClient& snap, ShareReconcilerOptions options)
    : options_(std::move(options)), snap_plane_(snap, options_.emulation_manager) {
  if (!options_.fsd_socket.empty())
    fsd_plane_ = std::make_unique<FsdSharePlane>(options_.fsd_socket, options_.fsd_vhost_dir,
                                                 options_.fsd_timeout);
}

json ShareReconciler::spec_generation() const {
  std::lock_guard lock(state_mu_);
  return last_spec_ ? json(last_spec_->generation) : json(nullptr);
}

int ShareReconciler::mutations() const {
  return snap_plane_.mutations() + (fsd_plane_ ? fsd_plane_->mutations() : 0);
}

Result<json> ShareReconciler::Apply(const json& params) {
  auto spec = ParseShareSpec(params);
  if (!spec.ok()) return spec.error();
  std::lock_guard lock(apply_mu_);
  json result = Converge(*spec, /*mutate=*/true, {});
  std::lock_guard state(state_mu_);
  last_spec_ = *spec;
  last_errors_.clear();
  for (const auto& s : result["shares"])
    if (s["state"] == "failed" && s.contains("error")) last_errors_[s["name"]] = s["error"];
  last_result_ = result;
  return result;
}

json ShareReconciler::Observed() {
  std::unique_lock lock(apply_mu_, std::try_to_lock);
  std::unique_lock state(state_mu_);
  if (!lock.owns_lock()) {
    if (!last_result_.is_null()) return last_result_;
    return {{"generation", nullptr}, {"shares", json::array()}};
  }
  ShareSetSpec spec = last_spec_.value_or(ShareSetSpec{});
  auto errors = last_errors_;
  state.unlock();
  json out = Converge(spec, /*mutate=*/false, errors);
  if (!last_spec_) out["generation"] = nullptr;
  return out;
}

json ShareReconciler::Converge(const ShareSetSpec& spec, bool mutate,
                               std::map<std::string, std::string> errors) {
  std::string snap_missing;  // why SNAP's virtio-fs cannot be used, "" when it can
  auto available = snap_plane_.Available();
  if (!available.ok()) {
    snap_missing = "SNAP: " + available.error().message;
  } else if (!*available) {
    snap_missing = "this DPU's SNAP has no virtio-fs (DOCA SNAP virtio-fs on a BlueField-3)";
  }
  // Which plane serves each share.
  std::map<std::string, SharePlane*> plane_of;
  std::map<SharePlane*, std::map<std::string, const ShareSpec*>> wanted;
  for (const auto& s : spec.shares) {
    bool snap = s.data_plane == "snap" ||
                (s.data_plane == "auto" && snap_missing.empty() && SnapCanServe(s));
    if (snap && !snap_missing.empty()) {
      errors.emplace(s.name, snap_missing);
      continue;
    }
    if (!snap && !fsd_plane_) {
      errors.emplace(s.name, "this DPU agent has no dpustor-fsd (start it with --fsd-socket)");
      continue;
    }
    SharePlane* p = snap ? static_cast<SharePlane*>(&snap_plane_) : fsd_plane_.get();
    plane_of[s.name] = p;
    wanted[p][s.name] = &s;
  }

  std::vector<SharePlane*> planes;
  if (snap_missing.empty()) planes.push_back(&snap_plane_);
  if (fsd_plane_) planes.push_back(fsd_plane_.get());
  std::map<SharePlane*, std::map<std::string, HeldShare>> held;
  std::map<std::string, std::string> removal_errors;  // unwanted shares that stay
  std::vector<std::string> plane_errors;
  for (SharePlane* p : planes) {
    auto& want = wanted[p];
    auto list = p->List(want);
    if (!list.ok()) {
      for (const auto& [name, _] : want) errors.emplace(name, list.error().message);
      plane_errors.push_back(std::string(p->name()) + ": " + list.error().message);
      continue;
    }
    if (mutate) {
      bool changed = false;
      for (const auto& [name, h] : *list) {
        if (want.count(name) && h.matches) continue;
        changed = true;
        if (Status s = p->Remove(name); !s.ok()) {
          spdlog::warn("share.apply: share {}: cannot remove from {}: {}", name, p->name(),
                       s.error().message);
          (want.count(name) ? errors : removal_errors)
              .emplace(name, "cannot remove: " + s.error().message);
        } else {
          spdlog::info("share.apply: removed share {} from {} ({})", name, p->name(),
                       want.count(name) ? h.detail : "no longer wanted here");
        }
      }
      for (const auto& [name, s] : want) {
        auto h = list->find(name);
        if ((h != list->end() && h->second.matches) || errors.count(name)) continue;
        changed = true;
        if (Status st = p->Create(*s); !st.ok()) {
          spdlog::warn("share.apply: share {}: {}", name, st.error().message);
          errors.emplace(name, st.error().message);
        } else {
          spdlog::info("share.apply: created share {} on {} (tag {})", name, p->name(), s->tag);
        }
      }
      if (changed) list = p->List(want);
      if (!list.ok()) {
        for (const auto& [name, _] : want) errors.emplace(name, list.error().message);
        continue;
      }
    }
    held[p] = std::move(*list);
  }

  json shares = json::array();
  for (const auto& s : spec.shares) {
    json entry = {{"name", s.name},       {"state", "failed"},     {"tag", s.tag},
                  {"backend", s.backend}, {"data_plane", nullptr}, {"counters", nullptr}};
    auto pit = plane_of.find(s.name);
    if (pit != plane_of.end()) {
      SharePlane* p = pit->second;
      entry["data_plane"] = p->name();
      auto& on = held[p];
      auto h = on.find(s.name);
      if (h != on.end()) {
        for (const auto& [k, v] : h->second.info.items()) entry[k] = v;
        if (h->second.matches) {
          entry["state"] = "ready";
          entry["counters"] = p->Counters(s.name);
        } else if (!errors.count(s.name)) {
          errors[s.name] = "incomplete: " + h->second.detail;
        }
      } else if (!errors.count(s.name)) {
        errors[s.name] = "not created yet";
      }
    }
    if (entry["state"] == "failed") entry["error"] = errors[s.name];
    shares.push_back(std::move(entry));
  }
  // Held by a plane, wanted nowhere there: still being removed.
  for (auto& [p, on] : held) {
    for (const auto& [name, h] : on) {
      auto pit = plane_of.find(name);
      if (pit != plane_of.end() && pit->second == p) continue;
      json entry = {{"name", name}, {"state", "removing"}, {"data_plane", p->name()}};
      if (auto e = removal_errors.find(name); e != removal_errors.end()) entry["error"] = e->second;
      shares.push_back(std::move(entry));
    }
  }
  json out = {{"generation", spec.generation}, {"shares", std::move(shares)}};
  if (!plane_errors.empty()) out["errors"] = plane_errors;
  return out;
}

}  // namespace dpustor::agent::dpu
