// ParseBackendUrl: the syntax of every backend URL, whether or not that backend is built in
// (OpenBackend in backend_registry.cc says which ones are). Accepted forms:
//   local:/abs/dir[?k=v...] the directory is taken literally (no percent-decoding), so any
//                           path a shell can name works; relative paths are refused. A '?'
//                           starts options only when all that follows is k=v pairs with
//                           lower-case keys, so a directory named "a?b" stays a path
//   memory:[?k=v...]
//   nfs://host[:port]/export/path[?version=3&nfsport=N&mountport=N]
//                           host may be [v6]; path and query are percent-decoded; the port
//                           in the authority lands in query["port"]
#include <cctype>
#include <string>

#include "common/json_rpc.h"
#include "fs/backend/backend_url.h"

namespace dpustor::fs {

namespace {

// One line per URL form; kept in step with the registry's table of openers.
constexpr std::string_view kKnownSchemes = "local:/dir, memory:, nfs://host/export";

Error Bad(std::string_view text, const std::string& why) {
  return Error{rpc::kInvalidParams, "backend URL '" + std::string(text) + "': " + why};
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding; '+' stays '+' (this is not form encoding).
Result<std::string> PercentDecode(std::string_view url, std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    int hi = i + 1 < s.size() ? HexValue(s[i + 1]) : -1;
    int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) return Bad(url, "bad percent escape in '" + std::string(s) + "'");
    if (hi == 0 && lo == 0) return Bad(url, "%00 is not allowed");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Status ParseQuery(std::string_view url, std::string_view query, BackendUrl* out) {
  if (query.empty()) return Status::Ok();
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string_view pair =
        query.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    size_t eq = pair.find('=');
    auto key = PercentDecode(url, pair.substr(0, eq));
    if (!key.ok()) return key.error();
    if (key->empty()) return Bad(url, "query has an empty parameter name");
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = PercentDecode(url, pair.substr(eq + 1));
      if (!v.ok()) return v.error();
      value = std::move(*v);
    }
    if (!out->query.emplace(*key, std::move(value)).second)
      return Bad(url, "query parameter '" + *key + "' given twice");
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return Status::Ok();
}

// "k=v" or "k=v&k2=v2" with keys of [a-z_]: what a local: URL's options look like.
bool LooksLikeOptions(std::string_view q) {
  if (q.empty()) return false;
  size_t start = 0;
  while (start <= q.size()) {
    size_t amp = q.find('&', start);
    std::string_view pair = q.substr(start, amp == std::string_view::npos ? q.npos : amp - start);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) return false;
    for (char c : pair.substr(0, eq))
      if (!(c >= 'a' && c <= 'z') && c != '_') return false;
    if (pair.find('/') != std::string_view::npos) return false;
    if (amp == std::string_view::npos) break;
    start = amp + 1;
  }
  return true;
}

Status ParseLocal(std::string_view url, std::string_view rest, BackendUrl* out) {
  // `local:///dir` is the same as `local:/dir` (the URL-shaped spelling users try first).
  if (rest.starts_with("///")) rest.remove_prefix(2);
  if (rest.empty()) return Bad(url, "local: needs a directory, e.g. local:/srv/share");
  if (rest.front() != '/')
    return Bad(url, "local: needs an absolute directory, not '" + std::string(rest) + "'");
  if (rest.find('\0') != std::string_view::npos) return Bad(url, "NUL in the path");
  if (size_t q = rest.find('?');
      q != std::string_view::npos && LooksLikeOptions(rest.substr(q + 1))) {
    if (Status s = ParseQuery(url, rest.substr(q + 1), out); !s.ok()) return s;
    rest = rest.substr(0, q);
  }
  std::string path(rest);
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  out->path = std::move(path);
  return Status::Ok();
}

Status ParseMemory(std::string_view url, std::string_view rest, BackendUrl* out) {
  if (rest.empty()) return Status::Ok();
  if (rest.front() != '?') return Bad(url, "memory: takes no path, only ?options");
  return ParseQuery(url, rest.substr(1), out);
}

Status ParseNfs(std::string_view url, std::string_view rest, BackendUrl* out) {
  if (!rest.starts_with("//")) return Bad(url, "expected nfs://host/export");
  rest.remove_prefix(2);
  size_t query_at = rest.find('?');
  std::string_view query =
      query_at == std::string_view::npos ? std::string_view{} : rest.substr(query_at + 1);
  rest = rest.substr(0, query_at);
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);

  std::string_view host = authority;
  std::string_view port;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return Bad(url, "unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return Bad(url, "expected :port after the [IPv6] host");
      port = after.substr(1);
    }
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return Bad(url, "nfs:// needs a server host");
  if (host.find('@') != std::string_view::npos)
    return Bad(url, "user names in nfs:// URLs are not supported");
  for (char c : host) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':')
      return Bad(url, "bad character '" + std::string(1, c) + "' in the host");
  }
  out->host = std::string(host);
  if (authority.find(':') != std::string_view::npos && !authority.starts_with('[') && port.empty())
    return Bad(url, "empty port after ':'");
  if (!port.empty()) {
    unsigned value = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || value > 65535)
        return Bad(url, "bad port '" + std::string(port) + "'");
      value = value * 10 + (c - '0');
    }
    if (value == 0 || value > 65535) return Bad(url, "bad port '" + std::string(port) + "'");
    out->query["port"] = std::to_string(value);
  }
  if (path.empty()) return Bad(url, "nfs:// needs an export path, e.g. nfs://server/export");
  auto decoded = PercentDecode(url, path);
  if (!decoded.ok()) return decoded.error();
  out->path = std::move(*decoded);
  std::map<std::string, std::string> from_authority = std::move(out->query);
  out->query.clear();
  if (Status s = ParseQuery(url, query, out); !s.ok()) return s;
  for (auto& [key, value] : from_authority) {
    if (!out->query.emplace(key, value).second)
      return Bad(url, "the port is given both after the host and as ?port=");
  }
  return Status::Ok();
}

struct UrlForm {
  std::string_view scheme;
  Status (*parse)(std::string_view url, std::string_view rest, BackendUrl* out);
};

constexpr UrlForm kForms[] = {
    {"local", ParseLocal},
    {"memory", ParseMemory},
    {"nfs", ParseNfs},
};

}  // namespace

Result<BackendUrl> ParseBackendUrl(std::string_view text) {
  if (text.empty()) return Bad(text, "empty; known backends: " + std::string(kKnownSchemes));
  size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0)
    return Bad(text, "no scheme; known backends: " + std::string(kKnownSchemes));
  std::string scheme;
  for (char c : text.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.')
      return Bad(text, "no scheme; known backends: " + std::string(kKnownSchemes));
    scheme.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  for (const UrlForm& form : kForms) {
    if (form.scheme != scheme) continue;
    BackendUrl url;
    url.text = std::string(text);
    url.scheme = scheme;
    if (Status s = form.parse(text, text.substr(colon + 1), &url); !s.ok()) return s.error();
    return url;
  }
  return Bad(text,
             "unknown backend '" + scheme + "'; known backends: " + std::string(kKnownSchemes));
}

}  // namespace dpustor::fs
