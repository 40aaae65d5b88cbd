// ShareSpec is one file share as share.apply carries it from the manager to a DPU agent
// (docs/protocol.md, "File shares"): the backend to serve, the virtio-fs tag the guest
// mounts, the host function, access options and the data plane. The manager checks an
// operator's request with the same rules the agent applies to share.apply, so whatever the
// manager accepts, the agent accepts too. Plain values; pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpustor::protocol {

struct ShareSpec {
  std::string name;
  std::string backend;  // URL: local:/dir, memory:, nfs://host/export?version=3
  std::string tag;
  int pf_index = 0;
  bool read_only = false;
  std::string squash = "none";  // none | root | all
  std::uint32_t anon_uid = 65534;
  std::uint32_t anon_gid = 65534;
  std::uint32_t request_queues = 1;
  std::string data_plane = "auto";  // auto | snap | fsd
  bool operator==(const ShareSpec&) const = default;
};

// Decodes and checks one share: name (IsName), backend (CheckBackendUrl), tag 1-36 printable
// bytes without spaces, pf_index 0-65535, squash, anon ids, request_queues 1-64, and a
// data_plane "snap" only where SNAP's NFS fsdev can serve it. Throws rpc::CallError
// (kInvalidParams) naming the field, prefixed with `path` ("" for none); keys in `also` are
// let through for the caller to read.
ShareSpec DecodeShareSpec(const nlohmann::json& j, const std::string& path,
                          std::initializer_list<std::string_view> also = {});
// Every field present; DecodeShareSpec(ToJson(s), "") == s.
nlohmann::json ToJson(const ShareSpec& s);

// "" when dpustor-fsd serves `url` (local:/ABS, memory:, nfs://HOST/EXPORT[?version=3&
// nfsport=N&mountport=N]), otherwise why not.
std::string CheckBackendUrl(const std::string& url);

// An nfs:// backend URL split the way SNAP's NFS fsdev takes it; nullopt for other schemes.
struct NfsTarget {
  std::string server;
  std::string exportname;
};
std::optional<NfsTarget> ParseNfsBackend(const std::string& url);

// Whether SNAP's NFS fsdev can serve the share as asked (it has no read-only or squash).
bool SnapCanServe(const ShareSpec& s);

}  // namespace dpustor::protocol
