// Backend URLs as users write them: `local:/srv/share`, `memory:`,
// `nfs://host/export?version=3&nfsport=2049&mountport=20048`, `cephfs:...` later.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "fs/fuse/backend.h"

namespace dpustor::fs {

struct BackendUrl {
  std::string text;    // as given (never logged with secrets: backends have none in URLs)
  std::string scheme;  // "local", "memory", "nfs"
  std::string host;    // nfs: server
  std::string path;    // local: directory; nfs: export path
  std::map<std::string, std::string> query;
};

// Parses scheme, host, path and query; refuses what is not a URL with a clear message.
Result<BackendUrl> ParseBackendUrl(std::string_view text);

// Opens the backend the URL names. Every backend is one line in backend_registry.cc.
Result<std::unique_ptr<Backend>> OpenBackend(const BackendUrl& url);

}  // namespace dpustor::fs
