#include "fs/fsd/fsd_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json_rpc.h"
#include "fs/backend/backend_url.h"

namespace dpustor::fs::fsd {

namespace {

using nlohmann::json;

constexpr unsigned kMaxThreads = 256;
constexpr uint32_t kMaxPages = 1024;  // the kernel caps this lower (fs.fuse.max_pages_limit)
constexpr size_t kMaxTagBytes = 36;   // virtio-fs config space: tag[36]
constexpr uint32_t kMaxRequestQueues = 64;

Error Invalid(const std::string& message) {
  return Error{rpc::kInvalidParams, message};
}

// One typed field of a JSON object; `where` names the object in messages.
template <class T>
Status ReadField(const json& obj, const std::string& where, const char* key, T* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::Ok();
  const json& v = *it;
  std::string field = where + "." + key;
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) return Invalid(field + ": expected a string");
    *out = v.get<std::string>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) return Invalid(field + ": expected true or false");
    *out = v.get<bool>();
  } else {
    if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0))
      return Invalid(field + ": expected a non-negative integer");
    uint64_t n = v.get<uint64_t>();
    if (n > std::numeric_limits<T>::max()) return Invalid(field + ": out of range");
    *out = static_cast<T>(n);
  }
  return Status::Ok();
}

Status RejectUnknown(const json& obj, const std::string& where,
                     std::initializer_list<std::string_view> known) {
  for (const auto& [key, _] : obj.items()) {
    bool found = false;
    for (auto k : known) found = found || k == key;
    if (!found) return Invalid(where + ": unknown key '" + key + "'");
  }
  return Status::Ok();
}

std::string NormalPath(const std::string& path) {
  std::string p = std::filesystem::path(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

}  // namespace

bool DocaTransportBuilt() {
#ifdef DPUSTOR_HAVE_DOCA
  return true;
#else
  return false;
#endif
}

Status ValidateShare(const ShareConfig& s, const std::string& where) {
  if (s.name.empty() || s.name.size() > 64) return Invalid(where + ".name: 1-64 characters");
  for (char c : s.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return Invalid(where + ".name '" + s.name + "': only letters, digits, '.', '_' and '-'");
  }
  const bool fuse = s.transport == "fuse", vhost = s.transport == "vhost-user",
             doca = s.transport == "doca";
  if (!fuse && !vhost && !doca)
    return Invalid(where + ".transport '" + s.transport +
                   "' is unknown (known: fuse, vhost-user, doca)");
  if (doca && !DocaTransportBuilt())
    return Invalid(where +
                   ".transport 'doca' is not built (configure with -DDPUSTOR_DOCA=ON on "
                   "a BlueField with the DOCA SDK)");
  if (!doca && (!s.manager.empty() || !s.function.empty()))
    return Invalid(where + ": manager and function belong to the doca transport");
  if (fuse) {
    if (s.mount.empty()) return Invalid(where + ".mount: a mount directory is required");
    if (s.mount.front() != '/')
      return Invalid(where + ".mount '" + s.mount + "' must be an absolute path");
    if (!s.socket.empty() || !s.tag.empty())
      return Invalid(where + ": socket and tag belong to the vhost-user transport");
  } else {
    if (vhost && s.socket.empty()) return Invalid(where + ".socket: a socket path is required");
    if (vhost && (s.socket.front() != '/' || s.socket.size() > 107))
      return Invalid(where + ".socket '" + s.socket + "' must be an absolute path (<= 107 bytes)");
    if (doca && !s.socket.empty()) return Invalid(where + ".socket belongs to vhost-user");
    if (doca && (s.manager.empty() || s.function.empty()))
      return Invalid(where + ": the doca transport needs manager and function");
    if (s.tag.empty() || s.tag.size() > kMaxTagBytes)
      return Invalid(where + ".tag: 1-" + std::to_string(kMaxTagBytes) + " bytes");
    for (char c : s.tag) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        return Invalid(where + ".tag: control characters are not allowed");
    }
    if (!s.mount.empty()) return Invalid(where + ".mount belongs to the fuse transport");
    if (s.request_queues == 0 || s.request_queues > kMaxRequestQueues)
      return Invalid(where + ".request_queues: 1-" + std::to_string(kMaxRequestQueues));
    if (s.queue_size == 0 || s.queue_size > 32768 || (s.queue_size & (s.queue_size - 1)))
      return Invalid(where + ".queue_size: a power of two up to 32768");
  }
  if (s.backend.empty()) return Invalid(where + ".backend: a backend URL is required");
  if (auto url = ParseBackendUrl(s.backend); !url.ok())
    return Invalid(where + ".backend: " + url.error().message);
  if (s.threads == 0 || s.threads > kMaxThreads)
    return Invalid(where + ".threads: 1-" + std::to_string(kMaxThreads));
  if (s.max_pages == 0 || s.max_pages > kMaxPages)
    return Invalid(where + ".max_pages: 1-" + std::to_string(kMaxPages));
  if (s.squash != "none" && s.squash != "root" && s.squash != "all")
    return Invalid(where + ".squash '" + s.squash + "': none, root or all");
  return Status::Ok();
}

Status CheckShareConflicts(const std::vector<const ShareConfig*>& others, const ShareConfig& s,
                           const std::string& where) {
  for (const ShareConfig* o : others) {
    if (o->name == s.name)
      return Invalid(where + ".name '" + s.name + "' is used by another share");
    if (!s.mount.empty() && !o->mount.empty() && NormalPath(o->mount) == NormalPath(s.mount))
      return Invalid(where + ".mount '" + s.mount + "' is used by another share");
    if (!s.socket.empty() && !o->socket.empty() && NormalPath(o->socket) == NormalPath(s.socket))
      return Invalid(where + ".socket '" + s.socket + "' is used by another share");
  }
  return Status::Ok();
}

Result<ShareConfig> ParseShareConfig(const json& j, const std::string& where) {
  if (!j.is_object()) return Invalid(where + ": expected an object");
  if (Status s = RejectUnknown(
          j, where,
          {"name", "transport", "mount", "socket", "tag", "manager", "function", "backend",
           "threads", "request_queues", "queue_size", "read_only", "writeback", "max_pages",
           "squash", "anon_uid", "anon_gid", "use_fusermount"});
      !s.ok())
    return s.error();
  ShareConfig share;
  for (Status s :
       {ReadField(j, where, "name", &share.name),
        ReadField(j, where, "transport", &share.transport),
        ReadField(j, where, "mount", &share.mount), ReadField(j, where, "socket", &share.socket),
        ReadField(j, where, "tag", &share.tag), ReadField(j, where, "manager", &share.manager),
        ReadField(j, where, "function", &share.function),
        ReadField(j, where, "backend", &share.backend),
        ReadField(j, where, "threads", &share.threads),
        ReadField(j, where, "request_queues", &share.request_queues),
        ReadField(j, where, "queue_size", &share.queue_size),
        ReadField(j, where, "read_only", &share.read_only),
        ReadField(j, where, "writeback", &share.writeback),
        ReadField(j, where, "max_pages", &share.max_pages),
        ReadField(j, where, "squash", &share.squash),
        ReadField(j, where, "anon_uid", &share.anon_uid),
        ReadField(j, where, "anon_gid", &share.anon_gid),
        ReadField(j, where, "use_fusermount", &share.use_fusermount)}) {
    if (!s.ok()) return s.error();
  }
  if (!j.contains("name")) return Invalid(where + ".name: required");
  if (Status s = ValidateShare(share, where); !s.ok()) return s.error();
  return share;
}

json ShareConfigJson(const ShareConfig& c) {
  json j = {{"name", c.name},           {"transport", c.transport}, {"backend", c.backend},
            {"read_only", c.read_only}, {"writeback", c.writeback}, {"max_pages", c.max_pages},
            {"squash", c.squash},       {"anon_uid", c.anon_uid},   {"anon_gid", c.anon_gid}};
  if (c.transport == "fuse") {
    j["mount"] = c.mount;
    j["threads"] = c.threads;
    j["use_fusermount"] = c.use_fusermount;
  } else {
    if (c.transport == "vhost-user") j["socket"] = c.socket;
    if (c.transport == "doca") j["manager"] = c.manager, j["function"] = c.function;
    j["tag"] = c.tag;
    j["request_queues"] = c.request_queues;
    j["queue_size"] = c.queue_size;
  }
  return j;
}

std::string DefaultShareName(std::string_view mount) {
  std::filesystem::path p = std::filesystem::path(mount).lexically_normal();
  std::string name = p.filename().string();
  if (name.empty()) name = p.parent_path().filename().string();
  return name.empty() ? "root" : name;
}

Status ValidateFsdConfig(const FsdConfig& config) {
  if (config.shares.empty() && config.control_socket.empty())
    return Invalid("no shares to serve (and no control socket to create them through)");
  std::vector<const ShareConfig*> seen;
  for (size_t i = 0; i < config.shares.size(); ++i) {
    const ShareConfig& s = config.shares[i];
    std::string where = "shares[" + std::to_string(i) + "]";
    if (Status st = ValidateShare(s, where); !st.ok()) return st;
    if (Status st = CheckShareConflicts(seen, s, where); !st.ok()) return st;
    seen.push_back(&s);
  }
  return Status::Ok();
}

Result<FsdConfig> ParseFsdConfig(const json& doc) {
  if (!doc.is_object()) return Invalid("config: expected a JSON object");
  if (Status s = RejectUnknown(doc, "config", {"control_socket", "shares"}); !s.ok())
    return s.error();
  FsdConfig config;
  if (Status s = ReadField(doc, "config", "control_socket", &config.control_socket); !s.ok())
    return s.error();
  auto shares = doc.find("shares");
  if (shares == doc.end() || !shares->is_array())
    return Invalid("config.shares: expected an array of shares");
  for (size_t i = 0; i < shares->size(); ++i) {
    auto share = ParseShareConfig((*shares)[i], "shares[" + std::to_string(i) + "]");
    if (!share.ok()) return share.error();
    config.shares.push_back(std::move(*share));
  }
  if (Status s = ValidateFsdConfig(config); !s.ok()) return s.error();
  return config;
}

Result<FsdConfig> LoadFsdConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Invalid("config file " + path + ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Invalid("config file " + path + ": not valid JSON");
  auto config = ParseFsdConfig(doc);
  if (!config.ok()) return Invalid("config file " + path + ": " + config.error().message);
  return config;
}

}  // namespace dpustor::fs::fsd
