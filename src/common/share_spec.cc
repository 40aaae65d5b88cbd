#include "common/share_spec.h"

#include <algorithm>
#include <cctype>

#include "common/names.h"
#include "common/params.h"

namespace dpustor::protocol {

namespace {

using json = nlohmann::json;

bool Printable(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

bool Digits(const std::string& s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

}  // namespace

std::string CheckBackendUrl(const std::string& url) {
  if (url == "memory:") return "";
  if (url.starts_with("local:")) {
    std::string dir = url.substr(6);
    if (!dir.starts_with("/") || !Printable(dir))
      return "a local: backend names an absolute directory (local:/srv/share)";
    return "";
  }
  if (url.starts_with("nfs://")) {
    std::string rest = url.substr(6);
    std::string query;
    if (auto q = rest.find('?'); q != std::string::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    auto slash = rest.find('/');
    if (slash == 0 || slash == std::string::npos || !Printable(rest))
      return "an nfs:// backend names a server and an export path (nfs://HOST/EXPORT)";
    std::size_t start = 0;
    while (!query.empty() && start <= query.size()) {
      auto end = std::min(query.find('&', start), query.size());
      std::string pair = query.substr(start, end - start);
      auto eq = pair.find('=');
      std::string key = pair.substr(0, eq),
                  value = eq == std::string::npos ? "" : pair.substr(eq + 1);
      if (key == "version") {
        if (value != "3") return "nfs:// backends speak NFSv3 only (version=3)";
      } else if (key == "nfsport" || key == "mountport") {
        if (!Digits(value)) return "'" + key + "' must be a port number";
      } else {
        return "unknown nfs:// option '" + key + "' (known: version, nfsport, mountport)";
      }
      start = end + 1;
    }
    return "";
  }
  return "'" + url + "' is not a backend URL (local:/DIR, memory: or nfs://HOST/EXPORT)";
}

std::optional<NfsTarget> ParseNfsBackend(const std::string& url) {
  constexpr std::string_view kScheme = "nfs://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  std::string rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find('?'));
  auto slash = rest.find('/');
  if (slash == 0 || slash == std::string::npos) return std::nullopt;
  return NfsTarget{rest.substr(0, slash), rest.substr(slash)};
}

bool SnapCanServe(const ShareSpec& s) {
  return ParseNfsBackend(s.backend).has_value() && !s.read_only && s.squash == "none";
}

ShareSpec DecodeShareSpec(const json& j, const std::string& path,
                          std::initializer_list<std::string_view> also) {
  if (!j.is_object())
    throw path.empty() ? rpc::CallError(rpc::kInvalidParams, "invalid params: expected an object")
                       : rpc::ParamError(path, "expected an object");
  auto field = [&](const char* key) { return path.empty() ? key : path + "." + key; };
  rpc::Params p(j, path);
  p.RejectUnknown({"name", "backend", "tag", "pf_index", "read_only", "squash", "anon_uid",
                   "anon_gid", "request_queues", "data_plane"},
                  also);
  ShareSpec s;
  s.name = p.Required<std::string>("name");
  s.backend = p.Required<std::string>("backend");
  s.tag = p.Required<std::string>("tag");
  s.pf_index = p.Get<int>("pf_index", 0);
  s.read_only = p.Get<bool>("read_only", false);
  s.squash = p.Get<std::string>("squash", "none");
  s.anon_uid = p.Get<std::uint32_t>("anon_uid", s.anon_uid);
  s.anon_gid = p.Get<std::uint32_t>("anon_gid", s.anon_gid);
  s.request_queues = p.Get<std::uint32_t>("request_queues", 1);
  s.data_plane = p.Get<std::string>("data_plane", "auto");

  CheckName(field("name"), s.name);
  if (std::string why = CheckBackendUrl(s.backend); !why.empty())
    throw rpc::ParamError(field("backend"), why);
  if (s.tag.empty() || s.tag.size() > 36 || !Printable(s.tag))
    throw rpc::ParamError(field("tag"), "1-36 printable characters without spaces");
  if (s.pf_index < 0 || s.pf_index > 65535)
    throw rpc::ParamError(field("pf_index"), "must be from 0 to 65535");
  if (s.squash != "none" && s.squash != "root" && s.squash != "all")
    throw rpc::ParamError(field("squash"), "must be \"none\", \"root\" or \"all\"");
  // (uid_t)-1 means "unchanged" to chown(2): never an owner.
  if (s.anon_uid == 0xFFFFFFFFu || s.anon_gid == 0xFFFFFFFFu)
    throw rpc::ParamError(field(s.anon_uid == 0xFFFFFFFFu ? "anon_uid" : "anon_gid"),
                          "4294967295 is not a valid id");
  if (s.request_queues < 1 || s.request_queues > 64)
    throw rpc::ParamError(field("request_queues"), "must be from 1 to 64");
  if (s.data_plane != "auto" && s.data_plane != "snap" && s.data_plane != "fsd")
    throw rpc::ParamError(field("data_plane"), "must be \"auto\", \"snap\" or \"fsd\"");
  if (s.data_plane == "snap" && !ParseNfsBackend(s.backend))
    throw rpc::ParamError(field("data_plane"), "SNAP's virtio-fs serves only nfs:// backends");
  if (s.data_plane == "snap" && !SnapCanServe(s))
    throw rpc::ParamError(field("data_plane"),
                          "SNAP's virtio-fs has no read-only or squash option; use fsd");
  return s;
}

json ToJson(const ShareSpec& s) {
  return {{"name", s.name},
          {"backend", s.backend},
          {"tag", s.tag},
          {"pf_index", s.pf_index},
          {"read_only", s.read_only},
          {"squash", s.squash},
          {"anon_uid", s.anon_uid},
          {"anon_gid", s.anon_gid},
          {"request_queues", s.request_queues},
          {"data_plane", s.data_plane}};
}

}  // namespace dpustor::protocol
