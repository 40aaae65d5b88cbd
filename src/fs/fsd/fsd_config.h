// What dpustor-fsd serves: shares, each one backend URL exposed through one transport at
// one place (a mount directory for "fuse", a socket + tag for "vhost-user"), from the
// command line, a JSON config file or fsd.share_create. Parsing and validation only: a
// config that passes here names known transports and parseable backend URLs, has no
// duplicate names, mount points or sockets, and nothing has been mounted or opened yet.
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
  std::string name;                // [A-Za-z0-9._-], shown as the mount's source
  std::string transport = "fuse";  // "fuse", "vhost-user" or "doca" (BlueField builds)
  std::string mount;               // absolute directory (fuse)
  std::string socket;              // absolute Unix socket path (vhost-user)
  std::string tag;                 // what the guest mounts, 1-36 bytes (vhost-user, doca)
  std::string manager;             // emulation manager device, e.g. "mlx5_0" (doca)
  std::string function;            // VUID of the VIRTIO_FS emulated function (doca)
  std::string backend;             // backend URL, see fs/backend/backend_url.h
  unsigned threads = 4;            // fuse workers
  uint32_t request_queues = 1;     // vhost-user request queues offered (+1 hiprio queue)
  uint32_t queue_size = 1024;      // largest ring the vhost-user front-end may set up
  bool read_only = false;
  bool writeback = false;
  uint32_t max_pages = 256;
  std::string squash = "none";  // "none", "root" or "all" (see EngineOptions)
  uint32_t anon_uid = 65534;
  uint32_t anon_gid = 65534;
  bool use_fusermount = false;  // mount through fusermount3 even as root

  bool operator==(const ShareConfig&) const = default;
};

struct FsdConfig {
  std::string control_socket;  // empty: no control socket
  std::vector<ShareConfig> shares;
};

// {"control_socket": "...", "shares": [share, ...]}. Unknown keys and wrong types are
// refused with a message naming the key; then ValidateFsdConfig.
Result<FsdConfig> ParseFsdConfig(const nlohmann::json& doc);
Result<FsdConfig> LoadFsdConfigFile(const std::string& path);

// One share object ({"name", "transport", "mount", "socket", "tag", "manager", "function",
// "backend", "threads",
// "request_queues", "queue_size", "read_only", "writeback", "max_pages", "squash",
// "anon_uid", "anon_gid", "use_fusermount"}; `name` and `backend` required), validated.
// `where` prefixes error messages ("shares[2]", "params").
Result<ShareConfig> ParseShareConfig(const nlohmann::json& obj, const std::string& where);
nlohmann::json ShareConfigJson(const ShareConfig& share);

// Whether this build has the DOCA transport (DPUSTOR_DOCA).
bool DocaTransportBuilt();

// Checks one share on its own.
Status ValidateShare(const ShareConfig& share, const std::string& where);
// Checks that `share` can join `others`: no name, mount point or socket used twice.
Status CheckShareConflicts(const std::vector<const ShareConfig*>& others, const ShareConfig& share,
                           const std::string& where);
// Checks every share and the set of shares. A config with no shares needs a control
// socket (shares then come from fsd.share_create).
Status ValidateFsdConfig(const FsdConfig& config);

// The default share name for a mount directory: its last component.
std::string DefaultShareName(std::string_view mount);

}  // namespace dpustor::fs::fsd
