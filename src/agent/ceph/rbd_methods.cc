#include "agent/ceph/rbd_methods.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include "common/json_rpc.h"
#include "common/params.h"

namespace dpustor::agent::ceph {

using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxNameLength = 100;
// rbd reads --size as a signed 64-bit byte count.
constexpr std::uint64_t kMaxSizeBytes = (std::uint64_t{1} << 63) - 512;

// A command whose exit status the caller judges; `json` false for rbd's mutating
// subcommands, which have no --format option.
CliRun Judged(int* exit_code, bool json_output = true) {
  CliRun run;
  run.json = json_output;
  run.exit_code = exit_code;
  return run;
}

std::string DecodeName(const rpc::Params& p, std::string_view field) {
  auto name = p.Required<std::string>(field);
  auto problem = NameProblem(name);
  if (!problem.empty()) throw rpc::ParamError(field, problem);
  return name;
}

std::uint64_t DecodeSize(const rpc::Params& p) {
  auto size = p.Required<std::uint64_t>("size_bytes");
  if (size == 0 || size % 512 != 0)
    throw rpc::ParamError("size_bytes",
                          "must be a positive multiple of 512, not " + std::to_string(size));
  if (size > kMaxSizeBytes)
    throw rpc::ParamError("size_bytes", "must be at most " + std::to_string(kMaxSizeBytes));
  return size;
}

std::string ImageName(const std::string& pool, const std::string& image) {
  return "'" + pool + "/" + image + "'";
}

Error PoolNotFound(const std::string& pool) {
  return Error{rpc::kNotFound, "pool '" + pool + "' does not exist"};
}

Error ImageNotFound(const std::string& pool, const std::string& image) {
  return Error{rpc::kNotFound, "image " + ImageName(pool, image) + " does not exist"};
}

// rbd says "rbd: error opening pool 'x': (2) No such file or directory" for a missing pool
// and "rbd: error opening image x: (2) ..." for a missing image, both with exit status 2.
bool PoolMissing(const Error& e) {
  return e.message.find("error opening pool") != std::string::npos;
}

// The error for a command that exited with ENOENT on an image.
Error Missing(const Error& e, const std::string& pool, const std::string& image) {
  return PoolMissing(e) ? PoolNotFound(pool) : ImageNotFound(pool, image);
}

// `command` --pool POOL --image IMAGE `extra`: options rather than "pool/image", so nothing
// in a name is ever parsed as a separator.
std::vector<std::string> ImageArgs(std::vector<std::string> command, const std::string& pool,
                                   const std::string& image,
                                   const std::vector<std::string>& extra = {}) {
  command.insert(command.end(), {"--pool", pool, "--image", image});
  command.insert(command.end(), extra.begin(), extra.end());
  return command;
}

std::uint64_t ImageSize(const json& info) {
  return info.at("size").get<std::uint64_t>();
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator) {
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : separator) + part;
  return out;
}

bool IsProtected(const json& snap) {
  auto it = snap.find("protected");
  if (it == snap.end()) return false;
  return (it->is_string() && *it == "true") || (it->is_boolean() && it->get<bool>());
}

}  // namespace

std::string NameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxNameLength)
    return "must be at most " + std::to_string(kMaxNameLength) + " characters, not " +
           std::to_string(name.size());
  if (name.front() == '-' || name.front() == '.') return "must not start with '-' or '.'";
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (ok) continue;
    auto byte = static_cast<unsigned char>(c);
    char shown[16];
    if (byte > 0x20 && byte < 0x7f) {
      std::snprintf(shown, sizeof shown, "'%c'", c);
    } else {
      std::snprintf(shown, sizeof shown, "byte 0x%02x", byte);
    }
    return std::string("may hold only A-Z a-z 0-9 . _ -, not ") + shown;
  }
  return "";
}

Result<std::string> MonHostFromMonDump(const json& dump) {
  if (!dump.is_object() || !dump.contains("mons") || !dump["mons"].is_array())
    return Error{rpc::kFailed, "'ceph mon dump' printed no monitor list"};
  std::vector<std::pair<std::int64_t, std::string>> groups;  // (rank, "[v2:..,v1:..]")
  for (const auto& mon : dump["mons"]) {
    if (!mon.is_object()) continue;
    std::vector<std::string> addrs;
    if (mon.contains("public_addrs") && mon["public_addrs"].is_object() &&
        mon["public_addrs"].contains("addrvec") && mon["public_addrs"]["addrvec"].is_array()) {
      for (const auto& a : mon["public_addrs"]["addrvec"]) {
        if (!a.is_object() || !a.contains("type") || !a.contains("addr") ||
            !a["type"].is_string() || !a["addr"].is_string())
          continue;
        auto type = a["type"].get<std::string>();
        if (type == "v2" || type == "v1")
          addrs.push_back(type + ":" + a["addr"].get<std::string>());
      }
    }
    if (addrs.empty() && mon.contains("public_addr") && mon["public_addr"].is_string()) {
      // Releases before Nautilus: "IP:PORT/NONCE", messenger v1 only.
      auto addr = mon["public_addr"].get<std::string>();
      addr = addr.substr(0, addr.rfind('/'));
      if (!addr.empty()) addrs.push_back("v1:" + addr);
    }
    if (addrs.empty()) continue;
    std::int64_t rank = mon.contains("rank") && mon["rank"].is_number_integer()
                            ? mon["rank"].get<std::int64_t>()
                            : static_cast<std::int64_t>(groups.size());
    groups.emplace_back(rank, "[" + Join(addrs, ",") + "]");
  }
  if (groups.empty()) return Error{rpc::kFailed, "'ceph mon dump' lists no monitor addresses"};
  std::stable_sort(groups.begin(), groups.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> parts;
  for (auto& [_, group] : groups) parts.push_back(std::move(group));
  return Join(parts, ",");
}

std::string ScrubKeys(std::string text) {
  // A cephx key is base64 of 28 bytes starting with the key type 1 (AES): "AQ" and 38 more
  // characters. A shorter run still gives part of the secret away (a message may have been
  // cut), so any run of 22 or more is scrubbed. (No std::regex: GCC 12 warns inside it.)
  auto base64 = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
  };
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "AQ") == 0) {
      std::size_t end = i + 2;
      while (end < text.size() && base64(text[end])) ++end;
      if (end - i >= 22) {
        for (int pad = 0; pad < 2 && end < text.size() && text[end] == '='; ++pad) ++end;
        out += "<key>";
        i = end;
        continue;
      }
    }
    out += text[i++];
  }
  return out;
}

CephOps::KeyLocks::Guard::Guard(KeyLocks& locks, std::string key)
    : locks_(locks), key_(std::move(key)) {
  std::unique_lock lock(locks_.mu_);
  locks_.cv_.wait(lock, [&] { return locks_.held_.count(key_) == 0; });
  locks_.held_.insert(key_);
}

CephOps::KeyLocks::Guard::~Guard() {
  {
    std::lock_guard lock(locks_.mu_);
    locks_.held_.erase(key_);
  }
  locks_.cv_.notify_all();
}

const std::vector<CephOps::Method>& CephOps::Methods() {
  static const std::vector<Method> methods = {
      {"rbd.create", "create an RBD image of size_bytes (an existing one of that size is fine)"},
      {"rbd.resize", "resize an RBD image (shrinking needs allow_shrink)"},
      {"rbd.snapshot", "take a snapshot of an RBD image (an existing one is fine)"},
      {"rbd.delete", "remove an RBD image and its snapshots (a missing one is fine)"},
      {"rbd.info", "size and snapshots of an RBD image"},
      {"ceph.client_key", "create or update a cephx user allowed exactly these pools; its key"},
      {"ceph.cluster_info", "the cluster's fsid and the mon_host line of a client's ceph.conf"},
  };
  return methods;
}

CephOps::Operation CephOps::Prepare(const std::string& method, const json& params) const {
  rpc::Params p(params);
  std::function<Result<json>()> op;
  if (method == "rbd.create") {
    p.RejectUnknown({"pool", "image", "size_bytes"});
    auto pool = DecodeName(p, "pool");
    auto image = DecodeName(p, "image");
    auto size = DecodeSize(p);
    op = [this, pool, image, size] { return Create(pool, image, size); };
  } else if (method == "rbd.resize") {
    p.RejectUnknown({"pool", "image", "size_bytes", "allow_shrink"});
    auto pool = DecodeName(p, "pool");
    auto image = DecodeName(p, "image");
    auto size = DecodeSize(p);
    bool allow_shrink = p.Get<bool>("allow_shrink", false);
    op = [this, pool, image, size, allow_shrink] {
      return Resize(pool, image, size, allow_shrink);
    };
  } else if (method == "rbd.snapshot") {
    p.RejectUnknown({"pool", "image", "snapshot"});
    auto pool = DecodeName(p, "pool");
    auto image = DecodeName(p, "image");
    auto snapshot = DecodeName(p, "snapshot");
    op = [this, pool, image, snapshot] { return Snapshot(pool, image, snapshot); };
  } else if (method == "rbd.delete") {
    p.RejectUnknown({"pool", "image"});
    auto pool = DecodeName(p, "pool");
    auto image = DecodeName(p, "image");
    op = [this, pool, image] { return Delete(pool, image); };
  } else if (method == "rbd.info") {
    p.RejectUnknown({"pool", "image"});
    auto pool = DecodeName(p, "pool");
    auto image = DecodeName(p, "image");
    op = [this, pool, image] { return Info(pool, image); };
  } else if (method == "ceph.client_key") {
    p.RejectUnknown({"client", "pools"});
    auto client = DecodeName(p, "client");
    if (client.rfind("client.", 0) == 0)
      throw rpc::ParamError("client", "give the id without the 'client.' prefix");
    auto list = p.Required<json>("pools");
    if (!list.is_array() || list.empty())
      throw rpc::ParamError("pools", "expected a non-empty array of pool names");
    std::vector<std::string> pools;
    for (std::size_t i = 0; i < list.size(); ++i) {
      auto field = "pools[" + std::to_string(i) + "]";
      if (!list[i].is_string()) throw rpc::ParamError(field, "expected a string");
      auto name = list[i].get<std::string>();
      auto problem = NameProblem(name);
      if (!problem.empty()) throw rpc::ParamError(field, problem);
      pools.push_back(name);
    }
    std::sort(pools.begin(), pools.end());
    pools.erase(std::unique(pools.begin(), pools.end()), pools.end());
    op = [this, client, pools] { return ClientKey(client, pools); };
  } else if (method == "ceph.cluster_info") {
    p.RejectUnknown({});
    op = [this] { return ClusterInfo(); };
  } else {
    throw rpc::CallError(rpc::kMethodNotFound, "method not found: " + method);
  }
  return [op = std::move(op), method]() -> Result<json> {
    Result<json> r = Error{rpc::kInternalError, "internal error: " + method + " did not run"};
    try {
      r = op();
    } catch (const std::exception& e) {
      // Unexpected output shapes end here (json::at on a missing field and the like).
      r = Error{rpc::kInternalError, "internal error in " + method + ": " + e.what()};
    }
    if (!r.ok()) return Error{r.error().code, ScrubKeys(r.error().message)};
    return r;
  };
}

Result<json> CephOps::Call(const std::string& method, const json& params) const {
  Operation op;
  try {
    op = Prepare(method, params);
  } catch (const rpc::CallError& e) {
    return e.error();
  }
  return op();
}

Result<json> CephOps::RbdInfo(const std::string& pool, const std::string& image) const {
  int status = 0;
  auto info = cli_->Rbd(ImageArgs({"info"}, pool, image), Judged(&status));
  if (!info.ok()) {
    if (status != ENOENT) return info.error();
    if (PoolMissing(info.error())) return PoolNotFound(pool);
    return json(nullptr);
  }
  if (!info->is_object() || !info->contains("size") || !(*info)["size"].is_number_unsigned())
    return Error{rpc::kFailed, "'rbd info' of " + ImageName(pool, image) + " printed no size"};
  return info;
}

Result<json> CephOps::SnapList(const std::string& pool, const std::string& image) const {
  int status = 0;
  auto snaps = cli_->Rbd(ImageArgs({"snap", "ls"}, pool, image), Judged(&status));
  if (!snaps.ok()) return status == ENOENT ? Missing(snaps.error(), pool, image) : snaps.error();
  if (!snaps->is_array())
    return Error{rpc::kFailed,
                 "'rbd snap ls' of " + ImageName(pool, image) + " printed no snapshot list"};
  return snaps;
}

Result<json> CephOps::Create(const std::string& pool, const std::string& image,
                             std::uint64_t size) const {
  KeyLocks::Guard guard(locks_, "image:" + pool + "/" + image);
  auto existing = [&](const json& info) -> Result<json> {
    auto have = ImageSize(info);
    if (have != size)
      return Error{rpc::kAlreadyExists, "image " + ImageName(pool, image) +
                                            " already exists with size " + std::to_string(have) +
                                            " bytes, not the requested " + std::to_string(size) +
                                            " bytes"};
    return json{{"pool", pool}, {"image", image}, {"size_bytes", size}, {"created", false}};
  };
  auto info = RbdInfo(pool, image);
  if (!info.ok()) return info.error();
  if (!info->is_null()) return existing(*info);

  int status = 0;
  // The B suffix makes rbd take the size in bytes, exactly (its default unit is MiB).
  auto created = cli_->Rbd(
      ImageArgs({"create"}, pool, image, {"--size", std::to_string(size) + "B", "--no-progress"}),
      Judged(&status, false));
  if (!created.ok()) {
    if (status == EEXIST) {
      // Created by someone else since `rbd info` (not through this agent): judge it as above.
      auto again = RbdInfo(pool, image);
      if (again.ok() && !again->is_null()) return existing(*again);
    }
    if (status == ENOENT && PoolMissing(created.error())) return PoolNotFound(pool);
    return created.error();
  }
  spdlog::info("rbd.create: created {}/{} with {} bytes", pool, image, size);
  return json{{"pool", pool}, {"image", image}, {"size_bytes", size}, {"created", true}};
}

Result<json> CephOps::Resize(const std::string& pool, const std::string& image, std::uint64_t size,
                             bool allow_shrink) const {
  KeyLocks::Guard guard(locks_, "image:" + pool + "/" + image);
  auto info = RbdInfo(pool, image);
  if (!info.ok()) return info.error();
  if (info->is_null()) return ImageNotFound(pool, image);
  auto have = ImageSize(*info);
  if (have == size) return json{{"size_bytes", size}, {"changed", false}};
  if (size < have && !allow_shrink)
    return rpc::ParamError("size_bytes", std::to_string(size) +
                                             " is smaller than the current size of image " +
                                             ImageName(pool, image) + " (" + std::to_string(have) +
                                             " bytes); shrinking needs allow_shrink")
        .error();
  std::vector<std::string> extra = {"--size", std::to_string(size) + "B", "--no-progress"};
  if (size < have) extra.push_back("--allow-shrink");
  int status = 0;
  auto resized = cli_->Rbd(ImageArgs({"resize"}, pool, image, extra), Judged(&status, false));
  if (!resized.ok())
    return status == ENOENT ? Missing(resized.error(), pool, image) : resized.error();
  spdlog::info("rbd.resize: {}/{} from {} to {} bytes", pool, image, have, size);
  return json{{"size_bytes", size}, {"changed", true}};
}

Result<json> CephOps::Snapshot(const std::string& pool, const std::string& image,
                               const std::string& snapshot) const {
  KeyLocks::Guard guard(locks_, "image:" + pool + "/" + image);
  auto snaps = SnapList(pool, image);
  if (!snaps.ok()) return snaps.error();
  for (const auto& s : *snaps)
    if (s.is_object() && s.value("name", "") == snapshot) return json{{"created", false}};
  int status = 0;
  auto made =
      cli_->Rbd(ImageArgs({"snap", "create"}, pool, image, {"--snap", snapshot, "--no-progress"}),
                Judged(&status, false));
  if (!made.ok()) {
    if (status == EEXIST) return json{{"created", false}};
    return status == ENOENT ? Missing(made.error(), pool, image) : made.error();
  }
  spdlog::info("rbd.snapshot: took {}/{}@{}", pool, image, snapshot);
  return json{{"created", true}};
}

Result<json> CephOps::Delete(const std::string& pool, const std::string& image) const {
  KeyLocks::Guard guard(locks_, "image:" + pool + "/" + image);
  auto info = RbdInfo(pool, image);
  if (!info.ok()) return info.error();
  if (info->is_null()) return json{{"deleted", false}};

  // An image still open (SNAP's librbd, a mapped kernel device) must not lose its snapshots
  // and then fail to go: check the watchers before touching anything.
  int status = 0;
  auto st = cli_->Rbd(ImageArgs({"status"}, pool, image), Judged(&status));
  if (!st.ok()) {
    if (status == ENOENT && !PoolMissing(st.error())) return json{{"deleted", false}};
    return status == ENOENT ? PoolNotFound(pool) : st.error();
  }
  if (st->is_object() && st->contains("watchers") && (*st)["watchers"].is_array() &&
      !(*st)["watchers"].empty()) {
    std::vector<std::string> who;
    for (const auto& w : (*st)["watchers"])
      who.push_back(w.is_object() ? w.value("address", "?") : "?");
    auto n = who.size();
    return Error{rpc::kBusy, "image " + ImageName(pool, image) + " is still open by " +
                                 std::to_string(n) + (n == 1 ? " client" : " clients") +
                                 (n == 1 ? " (watcher " : " (watchers ") + Join(who, ", ") +
                                 "); detach it first"};
  }

  // `rbd snap purge` skips protected snapshots and still exits 0; refuse those up front so
  // nothing is half-removed.
  if (info->value("snapshot_count", std::int64_t{-1}) != 0) {
    auto snaps = SnapList(pool, image);
    if (!snaps.ok()) return snaps.error();
    std::vector<std::string> protected_snaps;
    for (const auto& s : *snaps)
      if (s.is_object() && IsProtected(s)) protected_snaps.push_back(s.value("name", "?"));
    if (!protected_snaps.empty())
      return Error{rpc::kBusy, "image " + ImageName(pool, image) + " has protected snapshots (" +
                                   Join(protected_snaps, ", ") +
                                   "); unprotect them, after flattening or removing their "
                                   "clones, first"};
    if (!snaps->empty()) {
      auto purged = cli_->Rbd(ImageArgs({"snap", "purge"}, pool, image, {"--no-progress"}),
                              Judged(&status, false));
      if (!purged.ok()) return purged.error();
      spdlog::info("rbd.delete: removed {} snapshots of {}/{}", snaps->size(), pool, image);
    }
  }

  auto removed =
      cli_->Rbd(ImageArgs({"rm"}, pool, image, {"--no-progress"}), Judged(&status, false));
  if (!removed.ok()) {
    if (status == ENOENT && !PoolMissing(removed.error())) return json{{"deleted", false}};
    if (status == EBUSY)
      return Error{rpc::kBusy, "image " + ImageName(pool, image) +
                                   " is still open by a client; detach it first (" +
                                   removed.error().message + ")"};
    return removed.error();
  }
  spdlog::info("rbd.delete: removed {}/{}", pool, image);
  return json{{"deleted", true}};
}

Result<json> CephOps::Info(const std::string& pool, const std::string& image) const {
  auto info = RbdInfo(pool, image);
  if (!info.ok()) return info.error();
  if (info->is_null()) return ImageNotFound(pool, image);
  json names = json::array();
  if (info->value("snapshot_count", std::int64_t{-1}) != 0) {
    auto snaps = SnapList(pool, image);
    if (!snaps.ok()) return snaps.error();
    for (const auto& s : *snaps)
      if (s.is_object() && s.contains("name")) names.push_back(s["name"]);
  }
  return json{
      {"pool", pool}, {"image", image}, {"size_bytes", ImageSize(*info)}, {"snapshots", names}};
}

Result<json> CephOps::ClientKey(const std::string& client,
                                const std::vector<std::string>& pools) const {
  KeyLocks::Guard guard(locks_, "client:" + client);
  // Caps naming a missing pool would give a key that opens nothing there: say so now.
  auto existing = cli_->Ceph({"osd", "pool", "ls"});
  if (!existing.ok()) return existing.error();
  if (!existing->is_array()) return Error{rpc::kFailed, "'ceph osd pool ls' printed no pool list"};
  for (const auto& pool : pools)
    if (std::find(existing->begin(), existing->end(), json(pool)) == existing->end())
      return PoolNotFound(pool);

  const std::string entity = "client." + client;
  std::vector<std::string> grants;
  for (const auto& pool : pools) grants.push_back("profile rbd pool=" + pool);
  const std::string osd_caps = Join(grants, ", ");
  const json wanted_caps = {{"mon", "profile rbd"}, {"osd", osd_caps}};

  // `ceph auth get` and `get-or-create` print [{"entity", "key", "caps"}].
  auto entry_of = [&](const json& out) -> Result<json> {
    if (out.is_array())
      for (const auto& e : out)
        if (e.is_object() && e.value("entity", "") == entity && e.contains("key") &&
            e["key"].is_string() && !e["key"].get<std::string>().empty())
          return e;
    return Error{rpc::kFailed, "ceph printed no key for " + entity};
  };

  int status = 0;
  std::string what = "unchanged";
  json entry;
  auto got = cli_->Ceph({"auth", "get", entity}, Judged(&status));
  if (got.ok()) {
    auto e = entry_of(*got);
    if (!e.ok()) return e.error();
    entry = *e;
  } else if (status == ENOENT) {
    auto made = cli_->Ceph({"auth", "get-or-create", entity, "mon", "profile rbd", "osd", osd_caps},
                           Judged(&status));
    if (made.ok()) {
      auto e = entry_of(*made);
      if (!e.ok()) return e.error();
      entry = *e;
      what = "created";
    } else if (status == EINVAL) {
      // Created meanwhile with other caps (get-or-create refuses to change caps).
      got = cli_->Ceph({"auth", "get", entity});
      if (!got.ok()) return got.error();
      auto e = entry_of(*got);
      if (!e.ok()) return e.error();
      entry = *e;
    } else {
      return made.error();
    }
  } else {
    return got.error();
  }

  if (what != "created" && entry.value("caps", json::object()) != wanted_caps) {
    // `auth caps` replaces every cap of the user, so other pools and daemons lose access.
    auto updated = cli_->Ceph({"auth", "caps", entity, "mon", "profile rbd", "osd", osd_caps},
                              Judged(&status));
    if (!updated.ok()) return updated.error();
    what = "caps updated";
  }
  spdlog::info("ceph.client_key: {} {} (pools {})", entity, what, Join(pools, ", "));
  return json{{"user_id", client}, {"key", entry["key"]}};
}

Result<json> CephOps::ClusterInfo() const {
  auto dump = cli_->Ceph({"mon", "dump"});
  if (!dump.ok()) return dump.error();
  auto mon_host = MonHostFromMonDump(*dump);
  if (!mon_host.ok()) return mon_host.error();
  // The monmap carries the cluster's fsid; `ceph fsid` is asked only if it does not.
  std::string fsid = dump->is_object() ? dump->value("fsid", "") : "";
  if (fsid.empty()) {
    auto f = cli_->Ceph({"fsid"});
    if (!f.ok()) return f.error();
    fsid = f->is_object() ? f->value("fsid", "") : "";
    if (fsid.empty()) return Error{rpc::kFailed, "'ceph fsid' printed no fsid"};
  }
  return json{{"fsid", fsid}, {"mon_host", *mon_host}};
}

void RegisterCephMethods(rpc::MethodTable<AgentSession>& table,
                         std::shared_ptr<const CephCli> cli) {
  // The pool lives as long as the table's handlers; queued work holds only the CephOps, so
  // the pool is never destroyed (joined) from one of its own threads.
  struct Runner {
    explicit Runner(std::shared_ptr<const CephCli> cli)
        : ops(std::make_shared<CephOps>(std::move(cli))) {}
    std::shared_ptr<const CephOps> ops;
    boost::asio::thread_pool threads{2};
  };
  auto runner = std::make_shared<Runner>(std::move(cli));
  for (const auto& m : CephOps::Methods()) {
    table.AddAsync(m.name, m.summary,
                   [runner, name = m.name](AgentSession&, const json& params, rpc::Reply reply) {
                     // Bad params throw here and are answered at once by the dispatcher.
                     auto op = runner->ops->Prepare(name, params);
                     boost::asio::post(runner->threads, [ops = runner->ops, op = std::move(op),
                                                         name, reply = std::move(reply)] {
                       auto started = std::chrono::steady_clock::now();
                       auto r = op();
                       auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count();
                       if (r.ok()) {
                         spdlog::debug("{} done in {} ms", name, ms);
                       } else {
                         spdlog::warn("{} failed after {} ms: {}", name, ms, r.error().message);
                       }
                       reply(std::move(r));
                     });
                   });
  }
}

}  // namespace dpustor::agent::ceph
