#include "fs/fsd/fsd_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/json_rpc.h"
#include "fs/backend/backend_url.h"

namespace dpustor::fs::fsd {

namespace {

using nlohmann::json;

constexpr unsigned kMaxThreads = 256;
constexpr uint32_t kMaxPages = 1024;  // the kernel caps this lower (fs.fuse.max_pages_limit)

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

Status ValidateShare(const ShareConfig& s, const std::string& where) {
  if (s.name.empty() || s.name.size() > 64) return Invalid(where + ".name: 1-64 characters");
  for (char c : s.name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return Invalid(where + ".name '" + s.name + "': only letters, digits, '.', '_' and '-'");
  }
  if (s.transport == "vhost-user")
    return Invalid(where + ".transport 'vhost-user' is not built yet (use 'fuse')");
  if (s.transport != "fuse")
    return Invalid(where + ".transport '" + s.transport + "' is unknown (known: fuse)");
  if (s.mount.empty()) return Invalid(where + ".mount: a mount directory is required");
  if (s.mount.front() != '/')
    return Invalid(where + ".mount '" + s.mount + "' must be an absolute path");
  if (s.backend.empty()) return Invalid(where + ".backend: a backend URL is required");
  if (auto url = ParseBackendUrl(s.backend); !url.ok())
    return Invalid(where + ".backend: " + url.error().message);
  if (s.threads == 0 || s.threads > kMaxThreads)
    return Invalid(where + ".threads: 1-" + std::to_string(kMaxThreads));
  if (s.max_pages == 0 || s.max_pages > kMaxPages)
    return Invalid(where + ".max_pages: 1-" + std::to_string(kMaxPages));
  return Status::Ok();
}

}  // namespace

std::string DefaultShareName(std::string_view mount) {
  std::filesystem::path p = std::filesystem::path(mount).lexically_normal();
  std::string name = p.filename().string();
  if (name.empty()) name = p.parent_path().filename().string();
  return name.empty() ? "root" : name;
}

Status ValidateFsdConfig(const FsdConfig& config) {
  if (config.shares.empty()) return Invalid("no shares to serve");
  std::set<std::string> names, mounts;
  for (size_t i = 0; i < config.shares.size(); ++i) {
    const ShareConfig& s = config.shares[i];
    std::string where = "shares[" + std::to_string(i) + "]";
    if (Status st = ValidateShare(s, where); !st.ok()) return st;
    if (!names.insert(s.name).second)
      return Invalid(where + ".name '" + s.name + "' is used by another share");
    std::string mount = std::filesystem::path(s.mount).lexically_normal().string();
    while (mount.size() > 1 && mount.back() == '/') mount.pop_back();
    if (!mounts.insert(mount).second)
      return Invalid(where + ".mount '" + s.mount + "' is used by another share");
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
    const json& j = (*shares)[i];
    std::string where = "shares[" + std::to_string(i) + "]";
    if (!j.is_object()) return Invalid(where + ": expected an object");
    if (Status s = RejectUnknown(j, where,
                                 {"name", "transport", "mount", "backend", "threads", "read_only",
                                  "writeback", "max_pages", "use_fusermount"});
        !s.ok())
      return s.error();
    ShareConfig share;
    for (Status s : {ReadField(j, where, "name", &share.name),
                     ReadField(j, where, "transport", &share.transport),
                     ReadField(j, where, "mount", &share.mount),
                     ReadField(j, where, "backend", &share.backend),
                     ReadField(j, where, "threads", &share.threads),
                     ReadField(j, where, "read_only", &share.read_only),
                     ReadField(j, where, "writeback", &share.writeback),
                     ReadField(j, where, "max_pages", &share.max_pages),
                     ReadField(j, where, "use_fusermount", &share.use_fusermount)}) {
      if (!s.ok()) return s.error();
    }
    if (!j.contains("name")) return Invalid(where + ".name: required");
    config.shares.push_back(std::move(share));
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
