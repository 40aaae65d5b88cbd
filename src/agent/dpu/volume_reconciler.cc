#include "agent/dpu/volume_reconciler.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"
#include "common/params.h"

namespace dpustor::agent::dpu {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using snap::FunctionAddress;
using snap::OwnedName;
using snap::OwnedNqn;
using snap::SnapObjects;

constexpr std::uint32_t kBlockSize = 512;
constexpr const char* kModelNumber = "dpustor RBD volume";

const char* ProtocolName(AttachProtocol p) {
  return p == AttachProtocol::kNvme ? "nvme" : "virtio-blk";
}

// The function type SnapClient reports for a protocol.
const char* FunctionType(AttachProtocol p) {
  return p == AttachProtocol::kNvme ? "nvme" : "virtio_blk";
}

const char* FunctionKind(AttachProtocol p) {
  return p == AttachProtocol::kNvme ? "NVMe" : "virtio-blk";
}

// --- spec decoding ---------------------------------------------------------------------------

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 100 || s[0] == '-' || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '_' || c == '-';
  });
}

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

void RejectUnknown(const json& obj, const std::string& path,
                   std::initializer_list<const char*> known) {
  for (const auto& [key, _] : obj.items()) {
    bool found = false;
    for (const char* k : known) found = found || key == k;
    if (!found) throw rpc::ParamError(Join(path, key), "unknown parameter");
  }
}

const json& Member(const json& obj, const std::string& path, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) throw rpc::ParamError(Join(path, key), "required");
  return *it;
}

std::string String(const json& obj, const std::string& path, const char* key) {
  const json& v = Member(obj, path, key);
  if (!v.is_string()) throw rpc::ParamError(Join(path, key), "expected a string");
  return v.get<std::string>();
}

std::string Name(const json& obj, const std::string& path, const char* key) {
  std::string s = String(obj, path, key);
  if (!ValidName(s))
    throw rpc::ParamError(Join(path, key),
                          "must be 1-100 characters of [A-Za-z0-9._-], not starting with '-' or "
                          "'.'");
  return s;
}

std::int64_t Integer(const json& v, const std::string& field, std::int64_t min, std::int64_t max) {
  if (!v.is_number_integer()) throw rpc::ParamError(field, "expected an integer");
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(max))
    throw rpc::ParamError(field, "must be at most " + std::to_string(max));
  std::int64_t i = v.get<std::int64_t>();
  if (i < min) throw rpc::ParamError(field, "must be at least " + std::to_string(min));
  if (i > max) throw rpc::ParamError(field, "must be at most " + std::to_string(max));
  return i;
}

// Printable ASCII only: the value goes into a config file line.
std::string LineValue(const json& obj, const std::string& path, const char* key,
                      const char* allowed_extra, std::size_t max_len) {
  std::string s = String(obj, path, key);
  if (s.empty() || s.size() > max_len)
    throw rpc::ParamError(Join(path, key),
                          "must be 1-" + std::to_string(max_len) + " characters long");
  for (unsigned char c : s) {
    bool ok = allowed_extra == nullptr ? (c >= 0x20 && c < 0x7f)
                                       : (std::isalnum(c) || std::strchr(allowed_extra, c));
    if (!ok || c == 0) throw rpc::ParamError(Join(path, key), "contains a character not allowed");
  }
  return s;
}

VolumeSpec DecodeSpec(const json& params) {
  if (!params.is_object())
    throw rpc::CallError(rpc::kInvalidParams, "invalid params: expected an object");
  RejectUnknown(params, "", {"generation", "clusters", "attachments"});
  VolumeSpec spec;
  spec.generation = Integer(Member(params, "", "generation"), "generation", 0, INT64_MAX);

  const json& clusters = Member(params, "", "clusters");
  if (!clusters.is_object()) throw rpc::ParamError("clusters", "expected an object");
  for (const auto& [name, c] : clusters.items()) {
    std::string path = "clusters." + name;
    if (!ValidName(name))
      throw rpc::ParamError(path,
                            "a cluster name must be 1-100 characters of [A-Za-z0-9._-], "
                            "not starting with '-' or '.'");
    if (!c.is_object()) throw rpc::ParamError(path, "expected an object");
    RejectUnknown(c, path, {"fsid", "mon_host", "user_id", "key"});
    ClusterSpec cs;
    cs.name = name;
    cs.fsid = LineValue(c, path, "fsid", "-", 64);
    cs.mon_host = LineValue(c, path, "mon_host", nullptr, 4096);
    cs.user_id = Name(c, path, "user_id");
    cs.key = LineValue(c, path, "key", "+/=", 256);
    spec.clusters[name] = std::move(cs);
  }

  const json& attachments = Member(params, "", "attachments");
  if (!attachments.is_array()) throw rpc::ParamError("attachments", "expected an array");
  std::set<std::string> volumes;
  std::set<std::pair<AttachProtocol, FunctionAddress>> functions;
  for (std::size_t i = 0; i < attachments.size(); ++i) {
    const json& a = attachments[i];
    std::string path = "attachments[" + std::to_string(i) + "]";
    if (!a.is_object()) throw rpc::ParamError(path, "expected an object");
    RejectUnknown(
        a, path,
        {"volume", "cluster", "pool", "image", "protocol", "pf_index", "vf_index", "nsid"});
    AttachmentSpec as;
    as.volume = Name(a, path, "volume");
    as.cluster = Name(a, path, "cluster");
    as.pool = Name(a, path, "pool");
    as.image = Name(a, path, "image");
    std::string protocol = String(a, path, "protocol");
    if (protocol == "nvme") {
      as.protocol = AttachProtocol::kNvme;
    } else if (protocol == "virtio-blk") {
      as.protocol = AttachProtocol::kVirtioBlk;
    } else {
      throw rpc::ParamError(Join(path, "protocol"), "must be \"nvme\" or \"virtio-blk\"");
    }
    as.function.pf_index =
        static_cast<int>(Integer(Member(a, path, "pf_index"), Join(path, "pf_index"), 0, 65535));
    if (auto vf = a.find("vf_index"); vf != a.end() && !vf->is_null())
      as.function.vf_index = static_cast<int>(Integer(*vf, Join(path, "vf_index"), 0, 65535));
    if (auto nsid = a.find("nsid"); nsid != a.end() && !nsid->is_null()) {
      as.nsid = static_cast<std::uint32_t>(Integer(*nsid, Join(path, "nsid"), 1, 0xFFFFFFFE));
    } else if (as.protocol == AttachProtocol::kNvme) {
      throw rpc::ParamError(Join(path, "nsid"), "required for protocol \"nvme\"");
    }
    if (!spec.clusters.count(as.cluster))
      throw rpc::ParamError(Join(path, "cluster"), "'" + as.cluster + "' is not in clusters");
    if (!volumes.insert(as.volume).second)
      throw rpc::ParamError(Join(path, "volume"), "'" + as.volume + "' is attached twice");
    if (!functions.insert({as.protocol, as.function}).second)
      throw rpc::ParamError(path, std::string(FunctionKind(as.protocol)) + " " +
                                      snap::Describe(as.function) + " carries two attachments");
    spec.attachments.push_back(std::move(as));
  }
  return spec;
}

// --- files -----------------------------------------------------------------------------------

Error FileError(const std::string& what, const fs::path& path, int err) {
  return Error{rpc::kFailed, what + " " + path.string() + ": " + std::strerror(err)};
}

// Writes `content` to `path` with mode 0600 through a temporary file and a rename, unless the
// file already holds exactly that with that mode. `changed` tells which.
Status WriteSecretFile(const fs::path& path, const std::string& content, bool* changed) {
  *changed = false;
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 07777) == 0600) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream existing;
    existing << in.rdbuf();
    if (in && existing.str() == content) return Status::Ok();
  }
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return FileError("cannot create", tmp, errno);
  Status status;
  if (::fchmod(fd, 0600) != 0) status = FileError("cannot chmod", tmp, errno);
  std::size_t done = 0;
  while (status.ok() && done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) status = FileError("cannot write", tmp, errno);
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  if (status.ok() && ::fsync(fd) != 0) status = FileError("cannot sync", tmp, errno);
  if (::close(fd) != 0 && status.ok()) status = FileError("cannot close", tmp, errno);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    status = FileError("cannot rename to", path, errno);
  if (!status.ok()) {
    ::unlink(tmp.c_str());
    return status;
  }
  int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  *changed = true;
  return Status::Ok();
}

std::uint64_t Fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// An NVMe serial number (at most 20 ASCII characters) stable per volume.
std::string SerialNumber(const std::string& volume) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "DPUSTOR%012llx",
                static_cast<unsigned long long>(Fnv1a(volume) & 0xFFFFFFFFFFFFull));
  return buf;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// --- reading SNAP's objects per volume --------------------------------------------------------

bool BdevMatches(const snap::SnapBdev& b, const AttachmentSpec& a) {
  return b.driver == "rbd" && b.pool == a.pool && b.image == a.image &&
         b.cluster == OwnedName(a.cluster);
}

const snap::SnapBdev* BdevOf(const SnapObjects& o, const std::string& volume) {
  for (const auto& b : o.bdevs)
    if (snap::VolumeOf(b) == volume) return &b;
  return nullptr;
}

const snap::SnapSubsystem* SubsystemOf(const SnapObjects& o, const std::string& volume) {
  for (const auto& s : o.subsystems)
    if (snap::VolumeOf(s) == volume) return &s;
  return nullptr;
}

// One attachment as SNAP holds it: what the result reports, and what is missing.
// The result entry of an attachment when SNAP's state could not be read.
json FailedEntry(const AttachmentSpec& a, const std::string& error) {
  return {{"volume", a.volume},
          {"state", "failed"},
          {"bdev", nullptr},
          {"controller", nullptr},
          {"size_bytes", nullptr},
          {"protocol", ProtocolName(a.protocol)},
          {"pf_index", a.function.pf_index},
          {"vf_index", a.function.vf_index ? json(*a.function.vf_index) : json(nullptr)},
          {"error", error}};
}

json DescribeVolume(const std::string& volume, const SnapObjects& o, const AttachmentSpec* want) {
  const snap::SnapBdev* bdev = BdevOf(o, volume);
  const snap::SnapSubsystem* sub = SubsystemOf(o, volume);
  std::vector<const snap::SnapNvmeController*> nvme;
  for (const auto& c : o.nvme_controllers)
    if (snap::VolumeOf(c) == volume) nvme.push_back(&c);
  std::vector<const snap::SnapVirtioBlkController*> vblk;
  for (const auto& c : o.virtio_blk_controllers)
    if (snap::VolumeOf(c) == volume) vblk.push_back(&c);

  std::optional<AttachProtocol> protocol;
  if (want) {
    protocol = want->protocol;
  } else if (sub || !nvme.empty()) {
    protocol = AttachProtocol::kNvme;
  } else if (!vblk.empty()) {
    protocol = AttachProtocol::kVirtioBlk;
  }

  std::string bdev_name = OwnedName(volume);
  json entry = {{"volume", volume},
                {"state", "attached"},
                {"bdev", bdev ? json(bdev->name) : json(nullptr)},
                {"controller", nullptr},
                {"size_bytes", bdev ? json(bdev->size_bytes) : json(nullptr)},
                {"protocol", protocol ? json(ProtocolName(*protocol)) : json(nullptr)},
                {"pf_index", nullptr},
                {"vf_index", nullptr}};
  std::vector<std::string> missing;
  if (!bdev) {
    missing.push_back("no bdev " + bdev_name);
  } else if (bdev->driver != "rbd") {
    missing.push_back("bdev " + bdev_name + " is a " + bdev->driver + " bdev, not rbd");
  } else if (want && !BdevMatches(*bdev, *want)) {
    missing.push_back("bdev " + bdev_name + " opens " + bdev->pool + "/" + bdev->image + " of " +
                      bdev->cluster + ", not " + want->pool + "/" + want->image);
  }
  auto place = [&](const std::optional<FunctionAddress>& f) {
    if (!f) return;
    entry["pf_index"] = f->pf_index;
    entry["vf_index"] = f->vf_index ? json(*f->vf_index) : json(nullptr);
  };
  auto on_wanted_function = [&](const std::optional<FunctionAddress>& f) {
    return !want || (f && *f == want->function);
  };
  std::string where = want ? " on " + snap::Describe(want->function) : "";

  if (!protocol) {
    missing.push_back("no controller");
  } else if (*protocol == AttachProtocol::kNvme) {
    std::string nqn = OwnedNqn(volume);
    entry["nqn"] = nqn;
    const snap::SnapNamespace* ns = nullptr;
    if (!sub) {
      missing.push_back("no subsystem " + nqn);
    } else {
      for (const auto& n : sub->namespaces)
        if (n.bdev == bdev_name && (!want || n.nsid == want->nsid)) ns = &n;
      if (!ns)
        missing.push_back("no namespace " + (want ? std::to_string(want->nsid) + " " : "") +
                          "with bdev " + bdev_name + " in " + nqn);
    }
    const snap::SnapNvmeController* ctrl = nullptr;
    for (const auto* c : nvme)
      if (c->nqn == nqn && on_wanted_function(c->function) &&
          (!ctrl || (ns && Contains(ns->controllers, c->name))))
        ctrl = c;
    if (!ctrl) {
      missing.push_back("no NVMe controller" + where);
    } else {
      entry["controller"] = ctrl->name;
      place(ctrl->function);
      if (ns && !Contains(ns->controllers, ctrl->name))
        missing.push_back("namespace " + std::to_string(ns->nsid) + " is not attached to " +
                          ctrl->name);
      if (ctrl->suspended == true) missing.push_back("controller " + ctrl->name + " is suspended");
    }
  } else {
    const snap::SnapVirtioBlkController* ctrl = nullptr;
    for (const auto* c : vblk)
      if (on_wanted_function(c->function) && (!ctrl || c->bdev == bdev_name)) ctrl = c;
    if (!ctrl) {
      missing.push_back("no virtio-blk controller" + where);
    } else {
      entry["controller"] = ctrl->name;
      place(ctrl->function);
      if (ctrl->bdev != bdev_name)
        missing.push_back("controller " + ctrl->name + " serves " +
                          (ctrl->bdev.empty() ? std::string("no bdev") : "bdev " + ctrl->bdev));
      if (ctrl->suspended == true) missing.push_back("controller " + ctrl->name + " is suspended");
    }
  }
  if (want) place(want->function);
  if (!missing.empty()) {
    std::string text;
    for (const auto& m : missing) text += (text.empty() ? "" : "; ") + m;
    entry["state"] = "failed";
    entry["error"] = "incomplete: " + text;
  }
  return entry;
}

// Every volume SNAP holds objects of, sorted.
std::set<std::string> OwnedVolumes(const SnapObjects& o) {
  std::set<std::string> out;
  for (const auto& b : o.bdevs) out.insert(snap::VolumeOf(b));
  for (const auto& s : o.subsystems) out.insert(snap::VolumeOf(s));
  for (const auto& c : o.nvme_controllers) out.insert(snap::VolumeOf(c));
  for (const auto& c : o.virtio_blk_controllers) out.insert(snap::VolumeOf(c));
  out.erase("");
  return out;
}

}  // namespace

Result<VolumeSpec> ParseVolumeSpec(const json& params) {
  try {
    return DecodeSpec(params);
  } catch (const rpc::CallError& e) {
    return e.error();
  }
}

std::string CephConfText(const ClusterSpec& c) {
  return "[global]\nfsid = " + c.fsid + "\nmon_host = " + c.mon_host + "\n";
}

std::string CephKeyringText(const ClusterSpec& c) {
  return "[client." + c.user_id + "]\n\tkey = " + c.key + "\n";
}

// --- VolumeReconciler ------------------------------------------------------------------------

VolumeReconciler::VolumeReconciler(snap::SnapClient& snap, std::string state_dir)
    : snap_(snap), state_dir_(std::move(state_dir)) {}

std::string VolumeReconciler::CephConfPath(const std::string& cluster) const {
  return (fs::path(state_dir_) / "ceph" / (cluster + ".conf")).string();
}

std::string VolumeReconciler::KeyringPath(const std::string& cluster) const {
  return (fs::path(state_dir_) / "ceph" / (cluster + ".keyring")).string();
}

json VolumeReconciler::spec_generation() const {
  std::lock_guard lock(state_mu_);
  return generation_ ? json(*generation_) : json(nullptr);
}

Result<json> VolumeReconciler::Apply(const json& params) {
  auto spec = ParseVolumeSpec(params);
  if (!spec.ok()) return spec.error();
  std::lock_guard lock(apply_mu_);
  sequence_.fetch_add(1);  // odd: an apply is running
  json result;
  try {
    result = Reconcile(*spec);
  } catch (const std::exception& e) {
    sequence_.fetch_add(1);
    return Error{rpc::kInternalError, std::string("spec.apply: ") + e.what()};
  }
  sequence_.fetch_add(1);
  return result;
}

std::map<std::string, bool> VolumeReconciler::WriteClusterFiles(
    const VolumeSpec& spec, std::map<std::string, std::string>& errors) {
  std::set<std::string> in_use;
  for (const auto& a : spec.attachments) in_use.insert(a.cluster);
  std::map<std::string, bool> changed;
  fs::path dir = fs::path(state_dir_) / "ceph";
  std::error_code ec;
  if (!in_use.empty()) {
    fs::create_directories(dir, ec);
    if (!ec) fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) {
      for (const auto& c : in_use)
        errors[c] = "cannot create " + dir.string() + ": " + ec.message();
      return changed;
    }
  }
  for (const auto& name : in_use) {
    const ClusterSpec& c = spec.clusters.at(name);
    bool conf_changed = false, key_changed = false;
    Status s = WriteSecretFile(CephConfPath(name), CephConfText(c), &conf_changed);
    if (s.ok()) s = WriteSecretFile(KeyringPath(name), CephKeyringText(c), &key_changed);
    if (!s.ok()) {
      errors[name] = s.error().message;
      spdlog::warn("spec.apply: cluster {}: {}", name, s.error().message);
      continue;
    }
    changed[name] = conf_changed || key_changed;
    if (changed[name])
      spdlog::info("spec.apply: wrote {} and {} (client.{})", CephConfPath(name), KeyringPath(name),
                   c.user_id);
  }
  // Files of clusters no attachment uses any more.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    fs::path p = entry.path();
    std::string ext = p.extension().string();
    if (ext != ".conf" && ext != ".keyring" && ext != ".tmp") continue;
    if (ext != ".tmp" && in_use.count(p.stem().string())) continue;
    std::error_code rm;
    if (fs::remove(p, rm)) spdlog::info("spec.apply: removed {}", p.string());
  }
  return changed;
}

json VolumeReconciler::Reconcile(const VolumeSpec& spec) {
  snap::SnapVolumeOps ops(snap_);
  std::map<std::string, std::string> errors;  // volume -> why it failed
  std::vector<std::string> global_errors;     // failed removals of undesired objects
  std::map<std::string, const AttachmentSpec*> want;
  for (const auto& a : spec.attachments) want[a.volume] = &a;

  auto finish = [&](const Result<SnapObjects>& final_objects) {
    json attachments = json::array();
    for (const auto& a : spec.attachments) {
      json entry;
      if (final_objects.ok()) {
        entry = DescribeVolume(a.volume, *final_objects, &a);
      } else {
        entry = FailedEntry(a, final_objects.error().message);
      }
      if (entry["state"] == "failed" && errors.count(a.volume)) entry["error"] = errors[a.volume];
      attachments.push_back(std::move(entry));
    }
    json result = {{"generation", spec.generation}, {"attachments", std::move(attachments)}};
    if (!global_errors.empty()) result["errors"] = global_errors;
    mutations_ += ops.mutations();
    std::lock_guard lock(state_mu_);
    generation_ = spec.generation;
    last_attachments_ = spec.attachments;
    last_errors_.clear();
    for (const auto& a : result["attachments"])
      if (a["state"] == "failed") last_errors_[a["volume"]] = a.value("error", "");
    last_result_ = result;
    return result;
  };

  // Credentials first: they do not depend on SNAP.
  std::map<std::string, std::string> cluster_errors;
  std::map<std::string, bool> files_changed = WriteClusterFiles(spec, cluster_errors);

  if (Status s = ops.Prepare(); !s.ok())
    return finish(Error{s.error().code, "SNAP: " + s.error().message});
  auto read = ops.ReadObjects();
  if (!read.ok()) return finish(read.error());
  const SnapObjects& o = *read;

  // --- what to keep ---------------------------------------------------------------------
  std::set<std::string> bdev_doomed;  // volumes whose bdev goes (unwanted or wrong)
  for (const auto& b : o.bdevs) {
    auto w = want.find(snap::VolumeOf(b));
    if (w == want.end() || !BdevMatches(b, *w->second)) bdev_doomed.insert(snap::VolumeOf(b));
  }
  auto wanted = [&](const std::string& volume, AttachProtocol p) -> const AttachmentSpec* {
    auto w = want.find(volume);
    return w != want.end() && w->second->protocol == p ? w->second : nullptr;
  };
  auto keep_nvme = [&](const snap::SnapNvmeController& c) {
    std::string v = snap::VolumeOf(c);
    const AttachmentSpec* a = wanted(v, AttachProtocol::kNvme);
    return a && !bdev_doomed.count(v) && c.nqn == OwnedNqn(v) && c.function == a->function &&
           (!ops.names_controllers() || c.name == OwnedName(v));
  };
  auto keep_vblk = [&](const snap::SnapVirtioBlkController& c) {
    std::string v = snap::VolumeOf(c);
    const AttachmentSpec* a = wanted(v, AttachProtocol::kVirtioBlk);
    return a && !bdev_doomed.count(v) && c.function == a->function && c.bdev == OwnedName(v) &&
           (!ops.names_controllers() || c.name == OwnedName(v));
  };
  auto keep_subsystem = [&](const snap::SnapSubsystem& s) {
    return wanted(snap::VolumeOf(s), AttachProtocol::kNvme) != nullptr;
  };
  auto keep_namespace = [&](const snap::SnapSubsystem& s, const snap::SnapNamespace& ns) {
    std::string v = snap::VolumeOf(s);
    const AttachmentSpec* a = wanted(v, AttachProtocol::kNvme);
    return a && !bdev_doomed.count(v) && ns.nsid == a->nsid && ns.bdev == OwnedName(v);
  };

  // --- 1. remove, in reverse order ------------------------------------------------------
  std::set<std::string> removed_controllers;
  std::set<std::string> blocked;  // volumes a removal failed for: nothing more is tried
  auto removal_failed = [&](const std::string& volume, const std::string& what, const Error& e) {
    std::string msg = "cannot remove " + what + ": " + e.message;
    spdlog::warn("spec.apply: volume {}: {}", volume, msg);
    blocked.insert(volume);
    if (want.count(volume)) {
      errors.emplace(volume, msg);
    } else {
      global_errors.push_back("volume " + volume + ": " + msg);
    }
  };
  for (const auto& c : o.nvme_controllers) {
    std::string v = snap::VolumeOf(c);
    if (keep_nvme(c) || blocked.count(v)) continue;
    if (Status s = ops.DestroyNvmeController(c.name, c.namespaces); !s.ok()) {
      removal_failed(v, "NVMe controller " + c.name, s.error());
      continue;
    }
    spdlog::info("spec.apply: destroyed NVMe controller {} (volume {})", c.name, v);
    removed_controllers.insert(c.name);
  }
  for (const auto& c : o.virtio_blk_controllers) {
    std::string v = snap::VolumeOf(c);
    if (keep_vblk(c) || blocked.count(v)) continue;
    if (Status s = ops.DestroyVirtioBlkController(c.name); !s.ok()) {
      removal_failed(v, "virtio-blk controller " + c.name, s.error());
      continue;
    }
    spdlog::info("spec.apply: destroyed virtio-blk controller {} (volume {})", c.name, v);
    removed_controllers.insert(c.name);
  }
  // Whether a namespace still exists after the controllers went: where detaching destroys a
  // namespace (SNAP 3), one attached only to removed controllers is gone.
  auto namespace_exists = [&](const snap::SnapNamespace& ns) {
    if (ops.separate_namespaces()) return true;
    for (const auto& c : ns.controllers)
      if (!removed_controllers.count(c)) return true;
    return false;
  };
  for (const auto& sub : o.subsystems) {
    std::string v = snap::VolumeOf(sub);
    for (const auto& ns : sub.namespaces) {
      if (keep_namespace(sub, ns) || blocked.count(v) || !namespace_exists(ns)) continue;
      std::string what = "namespace " + std::to_string(ns.nsid) + " of " + sub.nqn;
      Status s;
      for (const auto& c : ns.controllers)
        if (s.ok() && !removed_controllers.count(c)) s = ops.DetachNamespace(c, ns.nsid);
      if (s.ok()) s = ops.DestroyNamespace(sub.nqn, ns.nsid);
      if (!s.ok()) {
        removal_failed(v, what, s.error());
        continue;
      }
      spdlog::info("spec.apply: removed {} (volume {})", what, v);
    }
  }
  for (const auto& sub : o.subsystems) {
    std::string v = snap::VolumeOf(sub);
    if (keep_subsystem(sub) || blocked.count(v)) continue;
    if (Status s = ops.DestroySubsystem(sub.nqn); !s.ok()) {
      removal_failed(v, "subsystem " + sub.nqn, s.error());
      continue;
    }
    spdlog::info("spec.apply: destroyed subsystem {} (volume {})", sub.nqn, v);
  }
  for (const auto& b : o.bdevs) {
    std::string v = snap::VolumeOf(b);
    if (!bdev_doomed.count(v) || blocked.count(v)) continue;
    if (Status s = ops.DeleteBdev(b.name, b.driver); !s.ok()) {
      removal_failed(v, "bdev " + b.name, s.error());
      continue;
    }
    spdlog::info("spec.apply: deleted bdev {} (volume {})", b.name, v);
  }

  // --- 2. clusters ----------------------------------------------------------------------
  if (ops.has_rbd_module()) {
    for (const auto& [name, changed] : files_changed) {
      snap::RbdClusterRegistration reg{OwnedName(name), CephConfPath(name),
                                       spec.clusters.at(name).user_id, KeyringPath(name)};
      if (Status s = ops.EnsureRbdCluster(reg, changed); !s.ok()) {
        cluster_errors[name] = s.error().message;
        spdlog::warn("spec.apply: cluster {}: {}", name, s.error().message);
      }
    }
  }

  // --- 3. create what is missing, attachment by attachment ------------------------------
  auto kept_nvme_of = [&](const std::string& v) -> const snap::SnapNvmeController* {
    for (const auto& c : o.nvme_controllers)
      if (snap::VolumeOf(c) == v && keep_nvme(c) && !removed_controllers.count(c.name)) return &c;
    return nullptr;
  };
  auto kept_vblk_of = [&](const std::string& v) -> const snap::SnapVirtioBlkController* {
    for (const auto& c : o.virtio_blk_controllers)
      if (snap::VolumeOf(c) == v && keep_vblk(c) && !removed_controllers.count(c.name)) return &c;
    return nullptr;
  };
  auto owner_of = [&](const std::string& controller) -> std::string {
    for (const auto& c : o.nvme_controllers)
      if (c.name == controller) return snap::VolumeOf(c);
    for (const auto& c : o.virtio_blk_controllers)
      if (c.name == controller) return snap::VolumeOf(c);
    return "";
  };

  for (const auto& a : spec.attachments) {
    const std::string& v = a.volume;
    if (errors.count(v)) continue;
    auto fail = [&](const std::string& msg) {
      spdlog::warn("spec.apply: volume {}: {}", v, msg);
      errors.emplace(v, msg);
    };
    if (!ops.has_rbd_module()) {
      fail(snap::kNoRbdModuleError);
      continue;
    }
    if (auto e = cluster_errors.find(a.cluster); e != cluster_errors.end()) {
      fail("Ceph cluster " + a.cluster + ": " + e->second);
      continue;
    }
    // The function must exist and carry no controller but this volume's own.
    const snap::SnapFunction* fn = o.FindFunction(FunctionType(a.protocol), a.function);
    if (!fn) {
      std::string have;
      for (const auto& f : o.functions)
        if (f.type == FunctionType(a.protocol))
          have += (have.empty() ? "" : ", ") + snap::Describe(f.address);
      fail(std::string("this DPU has no ") + FunctionKind(a.protocol) + " emulation function at " +
           snap::Describe(a.function) + " (it has: " + (have.empty() ? "none" : have) + ")");
      continue;
    }
    const snap::SnapNvmeController* nvme = kept_nvme_of(v);
    const snap::SnapVirtioBlkController* vblk = kept_vblk_of(v);
    if (!fn->controller.empty() && !removed_controllers.count(fn->controller) &&
        !(nvme && nvme->name == fn->controller) && !(vblk && vblk->name == fn->controller)) {
      std::string owner = owner_of(fn->controller);
      if (owner.empty()) {
        fail(std::string(FunctionKind(a.protocol)) + " " + snap::Describe(a.function) +
             " already carries controller " + fn->controller +
             ", which dpustor does not own; remove it or attach the volume to another function");
      } else {
        fail(std::string(FunctionKind(a.protocol)) + " " + snap::Describe(a.function) +
             " still carries controller " + fn->controller + " of volume " + owner);
      }
      continue;
    }

    std::string bdev = OwnedName(v);
    if (!BdevOf(o, v) || bdev_doomed.count(v)) {
      if (Status s = ops.CreateRbdBdev(bdev, OwnedName(a.cluster), a.pool, a.image, kBlockSize);
          !s.ok()) {
        fail("cannot create bdev " + bdev + ": " + s.error().message);
        continue;
      }
      spdlog::info("spec.apply: created bdev {} ({}/{} of {})", bdev, a.pool, a.image, a.cluster);
    }

    if (a.protocol == AttachProtocol::kVirtioBlk) {
      if (!vblk) {
        auto name = ops.CreateVirtioBlkController(bdev, a.function, bdev);
        if (!name.ok()) {
          fail("cannot create virtio-blk controller on " + snap::Describe(a.function) + ": " +
               name.error().message);
          continue;
        }
        spdlog::info("spec.apply: created virtio-blk controller {} on {} with bdev {}", *name,
                     snap::Describe(a.function), bdev);
      } else if (vblk->suspended == true) {
        if (Status s = ops.ResumeVirtioBlkController(vblk->name); !s.ok()) {
          fail("cannot resume virtio-blk controller " + vblk->name + ": " + s.error().message);
          continue;
        }
        spdlog::info("spec.apply: resumed virtio-blk controller {}", vblk->name);
      }
      continue;
    }

    // NVMe: subsystem -> namespace -> controller (suspended) -> attach -> resume.
    std::string nqn = OwnedNqn(v);
    const snap::SnapSubsystem* sub = SubsystemOf(o, v);
    if (!sub) {
      if (Status s = ops.CreateSubsystem(nqn, SerialNumber(v), kModelNumber); !s.ok()) {
        fail("cannot create subsystem " + nqn + ": " + s.error().message);
        continue;
      }
      spdlog::info("spec.apply: created subsystem {}", nqn);
    }
    const snap::SnapNamespace* ns = nullptr;
    if (sub)
      for (const auto& n : sub->namespaces)
        if (keep_namespace(*sub, n) && namespace_exists(n)) ns = &n;
    if (!ns && ops.separate_namespaces()) {
      if (Status s = ops.CreateNamespace(nqn, a.nsid, bdev); !s.ok()) {
        fail("cannot create namespace " + std::to_string(a.nsid) + " in " + nqn + ": " +
             s.error().message);
        continue;
      }
      spdlog::info("spec.apply: created namespace {} of {} on bdev {}", a.nsid, nqn, bdev);
    }
    std::string ctrl;
    bool resume = false;
    if (nvme) {
      ctrl = nvme->name;
      resume = nvme->suspended == true;
    } else {
      auto name = ops.CreateNvmeController(bdev, nqn, a.function, /*suspended=*/true);
      if (!name.ok()) {
        fail("cannot create NVMe controller on " + snap::Describe(a.function) + ": " +
             name.error().message);
        continue;
      }
      ctrl = *name;
      resume = true;
      spdlog::info("spec.apply: created NVMe controller {} on {} (suspended)", ctrl,
                   snap::Describe(a.function));
    }
    // A new controller has nothing attached, even one named as a removed one was.
    if (!nvme || !ns || !Contains(ns->controllers, ctrl)) {
      if (Status s = ops.AttachNamespace(ctrl, a.nsid, bdev); !s.ok()) {
        fail("cannot attach namespace " + std::to_string(a.nsid) + " to " + ctrl + ": " +
             s.error().message);
        continue;
      }
      spdlog::info("spec.apply: attached namespace {} to {}", a.nsid, ctrl);
    }
    if (resume && ops.can_suspend_nvme()) {
      if (Status s = ops.ResumeNvmeController(ctrl); !s.ok()) {
        fail("cannot resume NVMe controller " + ctrl + ": " + s.error().message);
        continue;
      }
      spdlog::info("spec.apply: resumed NVMe controller {}", ctrl);
    }
  }

  // --- 4. read back; let go of clusters nothing uses --------------------------------------
  auto after = ops.ReadObjects();
  if (after.ok() && ops.has_rbd_module()) {
    auto clusters = ops.ListRbdClusters();
    for (const auto& c : clusters.ok() ? *clusters : std::vector<snap::RbdClusterRegistration>{}) {
      if (!snap::IsOwnedName(c.name) ||
          spec.clusters.count(c.name.substr(snap::kOwnedPrefix.size())))
        continue;
      bool used = false;
      for (const auto& b : after->bdevs) used = used || b.cluster == c.name;
      if (used) continue;
      if (Status s = ops.UnregisterRbdCluster(c.name); !s.ok()) {
        global_errors.push_back("cannot unregister Ceph cluster " + c.name + ": " +
                                s.error().message);
        continue;
      }
      spdlog::info("spec.apply: unregistered Ceph cluster {}", c.name);
    }
  }
  return finish(after);
}

json VolumeReconciler::Observed() {
  std::lock_guard lock(apply_mu_);
  snap::SnapVolumeOps ops(snap_);
  auto objects = ops.ReadObjects();
  std::lock_guard state(state_mu_);
  return BuildObserved(objects);
}

json VolumeReconciler::ObservedFrom(const json& snap_status, std::uint64_t sequence_before) {
  std::lock_guard lock(state_mu_);
  bool raced = sequence_before % 2 == 1 || sequence_.load() != sequence_before;
  if (raced && !last_result_.is_null()) return last_result_;
  return BuildObserved(snap::ParseSnapObjects(snap_status));
}

json VolumeReconciler::BuildObserved(const Result<SnapObjects>& objects) const {
  json attachments = json::array();
  std::set<std::string> listed;
  for (const auto& a : last_attachments_) {
    listed.insert(a.volume);
    json entry;
    if (objects.ok()) {
      entry = DescribeVolume(a.volume, *objects, &a);
    } else {
      entry = FailedEntry(a, objects.error().message);
    }
    if (entry["state"] == "failed" && objects.ok())
      if (auto e = last_errors_.find(a.volume); e != last_errors_.end()) entry["error"] = e->second;
    attachments.push_back(std::move(entry));
  }
  if (objects.ok()) {
    for (const auto& v : OwnedVolumes(*objects))
      if (!listed.count(v)) attachments.push_back(DescribeVolume(v, *objects, nullptr));
  }
  json out = {{"generation", generation_ ? json(*generation_) : json(nullptr)},
              {"attachments", std::move(attachments)}};
  if (!objects.ok()) out["error"] = objects.error().message;
  return out;
}

}  // namespace dpustor::agent::dpu
