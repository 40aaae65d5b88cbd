// What dpustor-fsd serves: shares, each one backend URL exposed through one transport at
// one place, from the command line or a JSON config file. Parsing and validation only: a
// config that passes here names known transports and parseable backend URLs, has no
// duplicate names or mount points, and nothing has been mounted or opened yet.
// Plain values; functions are pure (LoadFsdConfigFile reads the file).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::fs::fsd {

struct ShareConfig {
  std::string name;  // [A-Za-z0-9._-], shown as the mount's source
  std::string transport = "fuse";
  std::string mount;    // absolute directory (fuse transport)
  std::string backend;  // backend URL, see fs/backend/backend_url.h
  unsigned threads = 4;
  bool read_only = false;
  bool writeback = false;
  uint32_t max_pages = 256;
  bool use_fusermount = false;  // mount through fusermount3 even as root
};

struct FsdConfig {
  std::string control_socket;  // empty: no control socket
  std::vector<ShareConfig> shares;
};

// {"control_socket": "...", "shares": [{"name", "transport", "mount", "backend", "threads",
//  "read_only", "writeback", "max_pages", "use_fusermount"}]}. Unknown keys and wrong types
// are refused with a message naming the key; then ValidateFsdConfig.
Result<FsdConfig> ParseFsdConfig(const nlohmann::json& doc);
Result<FsdConfig> LoadFsdConfigFile(const std::string& path);

// Checks every share and the set of shares (see above).
Status ValidateFsdConfig(const FsdConfig& config);

// The default share name for a mount directory: its last component.
std::string DefaultShareName(std::string_view mount);

}  // namespace dpustor::fs::fsd
