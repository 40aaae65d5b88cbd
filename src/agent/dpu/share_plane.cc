#include "agent/dpu/share_plane.h"

#include <filesystem>

#include "common/json_rpc.h"
#include "snap/snap_volume_ops.h"

namespace dpustor::agent::dpu {

namespace {

using json = nlohmann::json;

constexpr std::uint32_t kQueueSize = 256;

std::string ShareOf(const std::string& object) {
  return snap::IsOwnedName(object) ? object.substr(snap::kOwnedPrefix.size()) : "";
}

// A counter from a stat result under any of `keys`; null when none is a number.
json Counter(const json& stat, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = stat.find(k);
    if (it != stat.end() && it->is_number_unsigned()) return *it;
  }
  return nullptr;
}

}  // namespace

// --- SNAP --------------------------------------------------------------------------------

Result<std::map<std::string, HeldShare>> SnapSharePlane::List(
    const std::map<std::string, const ShareSpec*>& want) {
  auto devices = ops_.ListDevices();
  if (!devices.ok()) return devices.error();
  auto fsdevs = ops_.ListFsdevs();
  if (!fsdevs.ok()) return fsdevs.error();
  auto functions = ops_.ListFunctions();
  if (!functions.ok()) return functions.error();

  std::map<std::string, HeldShare> out;
  for (const auto& d : *devices) {
    std::string share = ShareOf(d.name);
    if (share.empty()) continue;
    HeldShare& h = out[share];
    h.ready = d.started;
    h.info = {{"device", d.name}, {"fsdev", d.fsdev}, {"vuid", d.vuid}, {"tag", d.tag}};
    auto w = want.find(share);
    if (w == want.end() || !w->second) continue;
    const ShareSpec& s = *w->second;
    auto nfs = ParseNfsBackend(s.backend);
    const snap::SnapFsdev* fsdev = nullptr;
    for (const auto& f : *fsdevs)
      if (f.name == d.fsdev) fsdev = &f;
    std::string vuid;
    for (const auto& f : *functions)
      if (f.pf_index == s.pf_index) vuid = f.vuid;
    if (d.tag != s.tag) {
      h.detail = "device " + d.name + " has tag " + d.tag;
    } else if (d.num_request_queues != s.request_queues) {
      h.detail = "device " + d.name + " has another number of request queues";
    } else if (d.fsdev != d.name || !fsdev || !nfs || fsdev->server != nfs->server ||
               fsdev->exportname != nfs->exportname) {
      h.detail = "device " + d.name + " serves another fsdev or export";
    } else if (vuid.empty() || d.vuid != vuid) {
      h.detail = "device " + d.name + " is not on VIRTIO_FS pf " + std::to_string(s.pf_index);
    } else if (!d.started) {
      h.detail = "device " + d.name + " is not started";
    } else {
      h.matches = true;
    }
  }
  // An fsdev left without its device (a bring-up cut short) belongs to its share too.
  for (const auto& f : *fsdevs) {
    std::string share = ShareOf(f.name);
    if (share.empty() || out.count(share)) continue;
    out[share].detail = "fsdev " + f.name + " without a device";
    out[share].info = {{"fsdev", f.name}};
  }
  return out;
}

Status SnapSharePlane::Create(const ShareSpec& spec) {
  auto nfs = ParseNfsBackend(spec.backend);
  if (!nfs) return Error{rpc::kInvalidParams, "SNAP's virtio-fs serves only nfs:// backends"};
  auto functions = ops_.ListFunctions();
  if (!functions.ok()) return functions.error();
  const snap::SnapFsFunction* fn = nullptr;
  std::string have;
  for (const auto& f : *functions) {
    if (f.pf_index == spec.pf_index) fn = &f;
    have += (have.empty() ? "pf " : ", pf ") + std::to_string(f.pf_index);
  }
  std::string name = snap::OwnedName(spec.name);
  if (!fn)
    return Error{rpc::kNotFound, "this DPU has no VIRTIO_FS emulation function at pf " +
                                     std::to_string(spec.pf_index) +
                                     " (it has: " + (have.empty() ? "none" : have) + ")"};
  if (!fn->device.empty() && fn->device != name)
    return Error{rpc::kBusy, "VIRTIO_FS pf " + std::to_string(spec.pf_index) +
                                 " already carries device " + fn->device};
  Status s = ops_.EnsureTransport();
  if (s.ok()) s = ops_.CreateNfsFsdev(name, nfs->server, nfs->exportname);
  if (s.ok()) s = ops_.CreateDevice(name, spec.tag, name, spec.request_queues, kQueueSize);
  if (s.ok()) s = ops_.BindDevice(name, fn->vuid);
  if (s.ok()) s = ops_.StartDevice(name);
  if (!s.ok()) Remove(spec.name);  // leave nothing half made
  return s;
}

Status SnapSharePlane::Remove(const std::string& share) {
  std::string name = snap::OwnedName(share);
  auto devices = ops_.ListDevices();
  if (!devices.ok()) return devices.error();
  for (const auto& d : *devices) {
    if (d.name != name) continue;
    if (d.started)
      if (Status s = ops_.StopDevice(name); !s.ok()) return s;
    if (Status s = ops_.DestroyDevice(name); !s.ok()) return s;
  }
  auto fsdevs = ops_.ListFsdevs();
  if (!fsdevs.ok()) return fsdevs.error();
  for (const auto& f : *fsdevs)
    if (f.name == name)
      if (Status s = ops_.DeleteFsdev(name, f.module); !s.ok()) return s;
  return Status::Ok();
}

json SnapSharePlane::Counters(const std::string& share) {
  auto stat = ops_.DeviceStat(snap::OwnedName(share));
  if (!stat.ok() || !stat->is_object()) return nullptr;
  return {{"requests", Counter(*stat, {"requests", "num_requests", "total_requests"})},
          {"errors", Counter(*stat, {"errors", "num_errors"})},
          {"bytes_read", Counter(*stat, {"bytes_read", "read_bytes"})},
          {"bytes_written", Counter(*stat, {"bytes_written", "write_bytes"})}};
}

// --- dpustor-fsd --------------------------------------------------------------------------

Result<json> FsdSharePlane::Call(const std::string& method, const json& params) {
  if (!client_) {
    auto c = rpc::RpcClient::Connect("unix:" + socket_, timeout_);
    if (!c.ok())
      return Error{c.error().code, "dpustor-fsd at " + socket_ + ": " + c.error().message};
    client_ = std::move(*c);
  }
  auto r = client_->Call(method, params, timeout_);
  if (!r.ok()) {
    if (r.error().code == rpc::kConnectionClosed || r.error().code == rpc::kTimeout)
      client_.reset();
    return Error{r.error().code, method + ": " + r.error().message};
  }
  return r;
}

std::string FsdSharePlane::SocketPath(const std::string& share) const {
  return (std::filesystem::path(vhost_dir_) / (share + ".sock")).string();
}

json FsdSharePlane::Config(const ShareSpec& s) const {
  return {{"name", snap::OwnedName(s.name)},
          {"backend", s.backend},
          {"transport", "vhost-user"},
          {"socket", SocketPath(s.name)},
          {"tag", s.tag},
          {"request_queues", s.request_queues},
          {"read_only", s.read_only},
          {"squash", s.squash},
          {"anon_uid", s.anon_uid},
          {"anon_gid", s.anon_gid}};
}

Result<std::map<std::string, HeldShare>> FsdSharePlane::List(
    const std::map<std::string, const ShareSpec*>& want) {
  auto shares = Call("fsd.shares", nullptr);
  if (!shares.ok()) return shares.error();
  std::map<std::string, HeldShare> out;
  if (!shares->is_array()) return Error{rpc::kFailed, "fsd.shares: expected an array"};
  for (const auto& sh : *shares) {
    std::string share = ShareOf(sh.value("name", ""));
    if (share.empty()) continue;
    HeldShare& h = out[share];
    h.ready = sh.value("state", "") == "serving";
    h.info = {{"fsd_share", sh["name"]}, {"socket", sh.value("socket", "")}};
    if (sh.contains("device")) h.info["device"] = sh["device"];
    auto w = want.find(share);
    if (w == want.end() || !w->second) continue;
    const json config = Config(*w->second);
    for (const auto& [key, value] : config.items()) {
      if (!sh.contains(key) || sh[key] != value) {
        h.detail = "fsd share " + sh.value("name", "") + " has another " + key;
        break;
      }
    }
    if (h.detail.empty() && !h.ready)
      h.detail = "fsd share " + sh.value("name", "") + " is " + sh.value("state", "?");
    h.matches = h.detail.empty();
  }
  return out;
}

Status FsdSharePlane::Create(const ShareSpec& spec) {
  ++mutations_;
  auto r = Call("fsd.share_create", Config(spec));
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status FsdSharePlane::Remove(const std::string& share) {
  ++mutations_;
  auto r = Call("fsd.share_delete", {{"name", snap::OwnedName(share)}});
  if (!r.ok() && r.error().code != rpc::kNotFound) return r.error();
  return Status::Ok();
}

json FsdSharePlane::Counters(const std::string& share) {
  auto r = Call("fsd.stats", {{"name", snap::OwnedName(share)}});
  if (!r.ok() || !r->is_object()) return nullptr;
  const json& list = (*r)["shares"];
  if (!list.is_array() || list.empty() || !list[0].is_object()) return nullptr;
  const json& totals = list[0].value("totals", json::object());
  return {{"requests", Counter(totals, {"count"})},
          {"errors", Counter(totals, {"errors"})},
          {"inflight", Counter(list[0], {"inflight"})}};
}

}  // namespace dpustor::agent::dpu
