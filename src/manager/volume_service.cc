#include "manager/volume_service.h"

#include <future>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>

#include "common/agent_protocol.h"
#include "common/names.h"
#include "common/params.h"

namespace dpustor::manager {

namespace {

using Steady = std::chrono::steady_clock;
using rpc::CallError;
using rpc::Params;

std::string VolumeSubject(const std::string& name) {
  return "volume/" + name;
}

std::uint64_t CheckSize(const Params& p) {
  auto size = p.Required<std::uint64_t>("size_bytes");
  if (size == 0 || size % 512 != 0)
    throw rpc::ParamError("size_bytes", "must be a positive multiple of 512");
  return size;
}

Error ToError(const CallError& e) {
  return e.error();
}

std::int64_t MsSince(Steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now() - t).count();
}

}  // namespace

VolumeService::VolumeService(Store& store, Inventory& inventory, EventLog& events,
                             AgentService& agents, VolumeServiceOptions options)
    : store_(store), inventory_(inventory), events_(events), agents_(agents), options_(options) {
  for (const auto& doc : store_.LoadVolumes()) {
    Volume v = VolumeFromJson(doc);
    volumes_[v.name] = std::move(v);
  }
}

VolumeService::~VolumeService() {
  Stop();
}

void VolumeService::Start() {
  loop_.Start([this](std::unique_lock<std::mutex>&) { Pass(); });
}

void VolumeService::Stop() {
  loop_.Stop();
}

Status VolumeService::Save(Volume& v) {
  v.updated_ms = NowMs();
  return store_.PutVolume(v.name, ToJson(v));
}

Result<json> VolumeService::Create(const json& body) {
  Volume v;
  try {
    Params p(body);
    p.RejectUnknown({"name", "cluster", "pool", "size_bytes", "image"});
    v.name = p.Required<std::string>("name");
    v.cluster = p.Required<std::string>("cluster");
    v.pool = p.Required<std::string>("pool");
    v.image = p.Get<std::string>("image", v.name);
    v.size_bytes = CheckSize(p);
    protocol::CheckName("name", v.name);
    protocol::CheckName("pool", v.pool);
    protocol::CheckName("image", v.image);
  } catch (const CallError& e) {
    return ToError(e);
  }
  auto cluster = inventory_.Get(v.cluster);
  if (!cluster || cluster->kind != protocol::kKindCeph)
    return Error{rpc::kNotFound, "no Ceph cluster named '" + v.cluster + "'"};
  {
    std::lock_guard lock(mu_);
    if (auto it = volumes_.find(v.name); it != volumes_.end()) {
      const Volume& old = it->second;
      if (old.cluster == v.cluster && old.pool == v.pool && old.image == v.image &&
          old.size_bytes == v.size_bytes && !old.deleting)
        return VolumeView(old);  // the same request again: nothing to do
      return Error{rpc::kAlreadyExists, "volume '" + v.name + "' already exists"};
    }
    for (const auto& [n, other] : volumes_)
      if (other.cluster == v.cluster && other.pool == v.pool && other.image == v.image)
        return Error{rpc::kAlreadyExists,
                     "image " + v.pool + "/" + v.image + " already belongs to volume '" + n + "'"};
    v.created_ms = NowMs();
    if (auto st = Save(v); !st.ok()) return st.error();
    volumes_[v.name] = v;
  }
  events_.Add(VolumeSubject(v.name), "volume.requested",
              "create " + v.pool + "/" + v.image + " (" + std::to_string(v.size_bytes) +
                  " bytes) on " + v.cluster);
  Kick();
  return VolumeView(v);
}

Result<json> VolumeService::Mutate(const std::string& name,
                                   const std::function<Status(Volume&)>& change) {
  json view;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return Error{rpc::kNotFound, "no volume named '" + name + "'"};
    Volume copy = it->second;
    if (auto st = change(copy); !st.ok()) return st.error();
    if (auto st = Save(copy); !st.ok()) return st.error();
    it->second = copy;
    view = VolumeView(copy);
  }
  Kick();
  return view;
}

Result<json> VolumeService::Attach(const std::string& name, const json& body) {
  VolumeAttachment a;
  try {
    Params p(body);
    p.RejectUnknown({"dpu", "protocol", "pf_index", "vf_index", "nsid"});
    a.dpu = p.Required<std::string>("dpu");
    a.protocol = p.Get<std::string>("protocol", "nvme");
    a.pf_index = p.Get<int>("pf_index", 0);
    a.vf_index = p.Optional<int>("vf_index");
    a.nsid = p.Get<int>("nsid", 1);
    if (a.protocol != "nvme" && a.protocol != "virtio-blk")
      throw rpc::ParamError("protocol", "must be \"nvme\" or \"virtio-blk\"");
    if (a.pf_index < 0) throw rpc::ParamError("pf_index", "must be >= 0");
    if (a.vf_index && *a.vf_index < 0) throw rpc::ParamError("vf_index", "must be >= 0");
    if (a.nsid < 1) throw rpc::ParamError("nsid", "must be >= 1");
  } catch (const CallError& e) {
    return ToError(e);
  }
  auto dpu = inventory_.Get(a.dpu);
  if (!dpu || dpu->kind != protocol::kKindDpu)
    return Error{rpc::kNotFound, "no DPU named '" + a.dpu + "'"};
  auto r = Mutate(name, [&](Volume& v) -> Status {
    if (v.deleting) return Error{rpc::kBusy, "volume '" + name + "' is being deleted"};
    if (v.attach && *v.attach == a) return Status::Ok();
    if (v.attach)
      return Error{rpc::kBusy,
                   "volume '" + name + "' is attached to " + v.attach->dpu + "; detach it first"};
    for (const auto& [n, other] : volumes_) {
      if (n != name && other.attach && other.attach->dpu == a.dpu &&
          other.attach->pf_index == a.pf_index && other.attach->vf_index == a.vf_index)
        return Error{rpc::kBusy,
                     "that function of " + a.dpu + " already carries volume '" + n + "'"};
    }
    v.attach = a;
    v.attach_state.clear();
    v.attach_error.clear();
    return Status::Ok();
  });
  if (r.ok()) {
    std::lock_guard lock(mu_);
    dirty_dpus_.insert(a.dpu);
  }
  if (r.ok())
    events_.Add(VolumeSubject(name), "volume.attach_requested",
                "attach to " + a.dpu + " as " + a.protocol + " on pf " +
                    std::to_string(a.pf_index) +
                    (a.vf_index ? " vf " + std::to_string(*a.vf_index) : ""));
  return r;
}

Result<json> VolumeService::Detach(const std::string& name) {
  std::string dpu;
  auto r = Mutate(name, [&](Volume& v) -> Status {
    if (!v.attach) return Status::Ok();
    dpu = v.attach->dpu;
    v.attach.reset();
    v.attach_state.clear();
    v.attach_error.clear();
    return Status::Ok();
  });
  if (r.ok() && !dpu.empty()) {
    {
      std::lock_guard lock(mu_);
      dirty_dpus_.insert(dpu);
    }
    events_.Add(VolumeSubject(name), "volume.detach_requested", "detach from " + dpu);
  }
  return r;
}

Result<json> VolumeService::Resize(const std::string& name, const json& body) {
  std::uint64_t size = 0;
  try {
    Params p(body);
    p.RejectUnknown({"size_bytes"});
    size = CheckSize(p);
  } catch (const CallError& e) {
    return ToError(e);
  }
  auto r = Mutate(name, [&](Volume& v) -> Status {
    if (size < v.size_bytes)
      return Error{rpc::kInvalidParams, "shrinking a volume is not supported (" +
                                            std::to_string(v.size_bytes) + " -> " +
                                            std::to_string(size) + " bytes)"};
    v.size_bytes = size;
    return Status::Ok();
  });
  if (r.ok())
    events_.Add(VolumeSubject(name), "volume.resize_requested", std::to_string(size) + " bytes");
  return r;
}

Result<json> VolumeService::Snapshot(const std::string& name, const json& body) {
  std::string snap;
  try {
    Params p(body);
    p.RejectUnknown({"name"});
    snap = p.Required<std::string>("name");
    protocol::CheckName("name", snap);
  } catch (const CallError& e) {
    return ToError(e);
  }
  return Mutate(name, [&](Volume& v) -> Status {
    if (std::find(v.snapshots.begin(), v.snapshots.end(), snap) == v.snapshots.end())
      v.snapshots.push_back(snap);
    return Status::Ok();
  });
}

Result<json> VolumeService::Delete(const std::string& name, bool force) {
  auto r = Mutate(name, [&](Volume& v) -> Status {
    bool attached = v.attach || !v.observed_dpu.empty();
    if (attached && !force)
      return Error{rpc::kBusy, "volume '" + name + "' is attached to " +
                                   (v.attach ? v.attach->dpu : v.observed_dpu) +
                                   "; detach it first or delete with force"};
    v.deleting = true;
    return Status::Ok();
  });
  if (r.ok()) events_.Add(VolumeSubject(name), "volume.delete_requested", force ? "forced" : "");
  return r;
}

json VolumeService::List() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [n, v] : volumes_) out.push_back(VolumeView(v));
  return out;
}

Result<json> VolumeService::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(name);
  if (it == volumes_.end()) return Error{rpc::kNotFound, "no volume named '" + name + "'"};
  return VolumeView(it->second);
}

void VolumeService::AgentRegistered(const std::string& name, const std::string& kind) {
  // A (re)connected DPU gets its full spec at once: it may have missed changes, or hold
  // leftovers of attachments deleted while it was away.
  if (kind == protocol::kKindDpu) {
    std::lock_guard lock(mu_);
    dirty_dpus_.insert(name);
    next_try_.erase("d/" + name);
  }
  Kick();
}

void VolumeService::DpuReported(const std::string& dpu, const json& status) {
  auto it = status.find("attachments");
  if (it == status.end() || !it->is_object()) return;
  auto list_it = it->find("attachments");
  if (list_it == it->end() || !list_it->is_array()) return;
  const json& list = *list_it;
  std::map<std::string, json> seen;
  for (const auto& a : list)
    if (a.is_object() && a.contains("volume") && a["volume"].is_string()) seen[a["volume"]] = a;
  std::lock_guard lock(mu_);
  for (auto& [name, v] : volumes_) {
    auto s = seen.find(name);
    bool here = s != seen.end();
    if (here && (v.observed_dpu != dpu || v.attach_state != s->second.value("state", ""))) {
      v.observed_dpu = dpu;
      v.attach_state = s->second.value("state", "");
      v.attach_error = s->second.value("error", "");
      Save(v);
    } else if (!here && v.observed_dpu == dpu) {
      v.observed_dpu.clear();
      v.attach_state.clear();
      Save(v);
    }
  }
}

Result<json> VolumeService::CallAgent(const std::string& agent, const std::string& method,
                                      json params, std::chrono::milliseconds timeout) {
  return loop_.Call(agents_, agent, method, std::move(params), timeout);
}

void VolumeService::Pass() {
  {
    auto now = Steady::now();
    auto due = [&](const std::string& key) {
      auto it = next_try_.find(key);
      return it == next_try_.end() || it->second <= now;
    };
    for (auto& [name, v] : volumes_) {
      bool needs = v.deleting || !v.created || v.observed_size != v.size_bytes ||
                   v.snapshots_created.size() != v.snapshots.size();
      if (v.attach && v.created && !v.deleting && v.State() != "attached" &&
          due("d/" + v.attach->dpu))
        dirty_dpus_.insert(v.attach->dpu);
      if (!v.attach && !v.observed_dpu.empty() && due("d/" + v.observed_dpu))
        dirty_dpus_.insert(v.observed_dpu);
      if (!needs || !due("v/" + name)) continue;
      loop_.PostFor(busy_volumes_, name, [this, name] { ReconcileVolume(name); });
    }
    // Periodic re-apply corrects drift (someone changed SNAP by hand, SNAP restarted).
    for (const auto& r : inventory_.List(protocol::kKindDpu))
      if (r.state == kOnline && due("d/" + r.name)) dirty_dpus_.insert(r.name);
    for (auto it = dirty_dpus_.begin(); it != dirty_dpus_.end();) {
      const std::string dpu = *it;
      if (loop_.PostFor(busy_dpus_, dpu, [this, dpu] { ApplyDpu(dpu); })) {
        it = dirty_dpus_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

void VolumeService::ReconcileVolume(const std::string& name) {
  Volume v;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return;
    v = it->second;
  }
  auto started = Steady::now();
  auto fail = [&](const std::string& step, const Error& e) {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(name);
    if (it == volumes_.end()) return;
    bool changed = it->second.error != step + ": " + e.message;
    it->second.error = step + ": " + e.message;
    it->second.ceph_ms += MsSince(started);
    Save(it->second);
    next_try_["v/" + name] = Steady::now() + options_.retry_interval;
    if (changed) events_.Add(VolumeSubject(name), "volume." + step + "_failed", e.message);
  };
  json target = {{"pool", v.pool}, {"image", v.image}};

  if (v.deleting) {
    if (v.attach || !v.observed_dpu.empty()) {
      // Forced delete of an attached volume: detach first, delete once the DPU let go.
      std::lock_guard lock(mu_);
      auto& live = volumes_[name];
      std::string dpu = live.attach ? live.attach->dpu : live.observed_dpu;
      live.attach.reset();
      Save(live);
      dirty_dpus_.insert(dpu);
      next_try_["v/" + name] = Steady::now() + std::chrono::milliseconds(200);
      return;
    }
    auto r = CallAgent(v.cluster, "rbd.delete", target, options_.ceph_timeout);
    if (!r.ok()) return fail("delete", r.error());
    {
      std::lock_guard lock(mu_);
      volumes_.erase(name);
      store_.DeleteVolume(name);
      next_try_.erase("v/" + name);
    }
    events_.Add(VolumeSubject(name), "volume.deleted",
                "image " + v.pool + "/" + v.image + " removed from " + v.cluster);
    return;
  }

  if (!v.created || v.observed_size != v.size_bytes) {
    json params = target;
    params["size_bytes"] = v.size_bytes;
    auto r = CallAgent(v.cluster, v.created ? "rbd.resize" : "rbd.create", params,
                       options_.ceph_timeout);
    if (!r.ok() && !v.created && r.error().code == rpc::kAlreadyExists) {
      // The image exists with another size: a resize that was cut short before the crash.
      auto info = CallAgent(v.cluster, "rbd.info", target, options_.ceph_timeout);
      if (info.ok() && (*info)["size_bytes"].get<std::uint64_t>() < v.size_bytes)
        r = CallAgent(v.cluster, "rbd.resize", params, options_.ceph_timeout);
    }
    if (!r.ok()) return fail(v.created ? "resize" : "create", r.error());
    std::string what = v.created ? "volume.resized" : "volume.created";
    {
      std::lock_guard lock(mu_);
      auto it = volumes_.find(name);
      if (it == volumes_.end()) return;
      it->second.created = true;
      it->second.observed_size = v.size_bytes;
      it->second.error.clear();
      it->second.ceph_ms += MsSince(started);
      Save(it->second);
      next_try_.erase("v/" + name);
      if (it->second.attach) dirty_dpus_.insert(it->second.attach->dpu);  // sizes follow
    }
    events_.Add(VolumeSubject(name), what,
                v.pool + "/" + v.image + " is " + std::to_string(v.size_bytes) + " bytes");
    Kick();
  }

  for (const auto& snap : v.snapshots) {
    if (std::find(v.snapshots_created.begin(), v.snapshots_created.end(), snap) !=
        v.snapshots_created.end())
      continue;
    json params = target;
    params["snapshot"] = snap;
    auto r = CallAgent(v.cluster, "rbd.snapshot", params, options_.ceph_timeout);
    if (!r.ok()) return fail("snapshot", r.error());
    {
      std::lock_guard lock(mu_);
      auto it = volumes_.find(name);
      if (it == volumes_.end()) return;
      it->second.snapshots_created.push_back(snap);
      Save(it->second);
    }
    events_.Add(VolumeSubject(name), "volume.snapshot", v.pool + "/" + v.image + "@" + snap);
  }
}

Result<json> VolumeService::ClusterCredentials(const std::string& cluster, const std::string& dpu,
                                               const std::set<std::string>& pools) {
  std::lock_guard lock(creds_mu_);
  auto& c = creds_[cluster];
  if (c.info.is_null()) {
    auto info = CallAgent(cluster, "ceph.cluster_info", json::object(), options_.ceph_timeout);
    if (!info.ok()) return info.error();
    c.info = *info;
  }
  auto& entry = c.keys[dpu];
  if (entry.first != pools || entry.second.is_null()) {
    // One cephx user per DPU, allowed exactly the pools of its volumes in this cluster.
    json params = {{"client", "dpustor." + dpu}, {"pools", pools}};
    auto key = CallAgent(cluster, "ceph.client_key", params, options_.ceph_timeout);
    if (!key.ok()) return key.error();
    entry = {pools, *key};
  }
  return json{{"fsid", c.info["fsid"]},
              {"mon_host", c.info["mon_host"]},
              {"user_id", entry.second["user_id"]},
              {"key", entry.second["key"]}};
}

void VolumeService::ApplyDpu(const std::string& dpu) {
  auto started = Steady::now();
  std::vector<Volume> mine;
  {
    std::lock_guard lock(mu_);
    for (const auto& [n, v] : volumes_)
      if (v.attach && v.attach->dpu == dpu && v.created && !v.deleting) mine.push_back(v);
  }
  std::map<std::string, std::set<std::string>> pools;  // cluster -> pools
  for (const auto& v : mine) pools[v.cluster].insert(v.pool);

  auto retry_later = [&](const std::string& why) {
    std::lock_guard lock(mu_);
    next_try_["d/" + dpu] = Steady::now() + options_.retry_interval;
    for (const auto& v : mine) {
      auto it = volumes_.find(v.name);
      if (it == volumes_.end() || it->second.attach_error == why) continue;
      it->second.attach_error = why;
      Save(it->second);
      events_.Add(VolumeSubject(v.name), "volume.attach_failed", why);
    }
  };

  json clusters = json::object();
  for (const auto& [cluster, ps] : pools) {
    auto creds = ClusterCredentials(cluster, dpu, ps);
    // Without credentials the spec would drop these attachments and the DPU would tear
    // them down: better not to apply at all until the cluster answers.
    if (!creds.ok())
      return retry_later("cephx credentials from " + cluster + ": " + creds.error().message);
    clusters[cluster] = *creds;
  }
  json attachments = json::array();
  for (const auto& v : mine) {
    attachments.push_back(
        {{"volume", v.name},
         {"cluster", v.cluster},
         {"pool", v.pool},
         {"image", v.image},
         {"protocol", v.attach->protocol},
         {"pf_index", v.attach->pf_index},
         {"vf_index", v.attach->vf_index ? json(*v.attach->vf_index) : json(nullptr)},
         {"nsid", v.attach->nsid}});
  }
  json spec = {{"generation", NowMs()}, {"clusters", clusters}, {"attachments", attachments}};
  auto r = CallAgent(dpu, "spec.apply", spec, options_.apply_timeout);
  if (!r.ok()) return retry_later("spec.apply on " + dpu + ": " + r.error().message);

  std::map<std::string, json> observed;
  if ((*r)["attachments"].is_array())
    for (const auto& a : (*r)["attachments"])
      if (a.contains("volume") && a["volume"].is_string()) observed[a["volume"]] = a;
  auto took = MsSince(started);
  std::vector<std::tuple<std::string, std::string, std::string>> news;  // volume, type, msg
  {
    std::lock_guard lock(mu_);
    bool all_attached = true;
    for (auto& [name, v] : volumes_) {
      auto o = observed.find(name);
      if (o != observed.end()) {
        std::string state = o->second.value("state", "");
        std::string error = o->second.value("error", "");
        if (state != "attached") all_attached = false;
        bool changed = v.observed_dpu != dpu || v.attach_state != state || v.attach_error != error;
        v.observed_dpu = dpu;
        v.attach_state = state;
        v.attach_error = error;
        v.apply_ms = took;
        if (changed && state == "attached") {
          v.attached_ms = NowMs();
          news.emplace_back(name, "volume.attached", "attached to " + dpu);
        } else if (changed && state == "failed") {
          news.emplace_back(name, "volume.attach_failed", error);
        }
        if (changed) Save(v);
      } else if (v.observed_dpu == dpu) {
        v.observed_dpu.clear();
        v.attach_state.clear();
        v.attach_error.clear();
        Save(v);
        news.emplace_back(name, "volume.detached", "detached from " + dpu);
      }
    }
    next_try_["d/" + dpu] =
        Steady::now() + (all_attached ? options_.reapply_interval : options_.retry_interval);
  }
  for (const auto& [name, type, msg] : news) events_.Add(VolumeSubject(name), type, msg);
  Kick();
}

}  // namespace dpustor::manager
