// The two data planes a file share can be exposed through on a DPU, behind one small
// interface for the share reconciler (share_reconciler.h):
//  - SnapSharePlane: DOCA SNAP's own virtio-fs (BlueField-3): an NFS fsdev and a virtio-fs
//    device "dpustor-<share>" bound to the VIRTIO_FS function at the share's PF index;
//  - FsdSharePlane: dpustor-fsd's control socket: a share "dpustor-<share>" served as
//    vhost-user-fs on <vhost_dir>/<share>.sock.
// Each owns exactly the objects named "dpustor-..." and never touches anything else.
// Blocking; not thread-safe (the reconciler uses one plane at a time on its own thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/rpc_client.h"
#include "common/share_spec.h"
#include "common/status.h"
#include "snap/snap_fs_ops.h"

namespace dpustor::agent::dpu {

using protocol::NfsTarget;
using protocol::ParseNfsBackend;
using protocol::ShareSpec;
using protocol::SnapCanServe;

// A share as one plane holds it.
struct HeldShare {
  bool matches = false;  // exactly what the spec asks, and serving
  bool ready = false;    // serving (started / "serving")
  std::string detail;    // why it does not match, for errors
  nlohmann::json info;   // what the result reports (device, socket, ...)
};

class SharePlane {
 public:
  virtual ~SharePlane() = default;
  virtual const char* name() const = 0;  // "snap" | "fsd"
  // dpustor's shares this plane holds, by share name; `want` (may be null per share) says
  // what each should be, to judge `matches`.
  virtual Result<std::map<std::string, HeldShare>> List(
      const std::map<std::string, const ShareSpec*>& want) = 0;
  // Creates the share from scratch (whatever was held of it is removed first).
  virtual Status Create(const ShareSpec& spec) = 0;
  virtual Status Remove(const std::string& share) = 0;
  // {requests, errors, bytes_read?, bytes_written?}; null if unavailable.
  virtual nlohmann::json Counters(const std::string& share) = 0;
  virtual int mutations() const = 0;
};

class SnapSharePlane : public SharePlane {
 public:
  SnapSharePlane(snap::SnapClient& snap, std::string emulation_manager)
      : ops_(snap, std::move(emulation_manager)) {}
  // Whether this SNAP serves virtio-fs (probed on every pass: SNAP may have restarted).
  Result<bool> Available() { return ops_.Available(); }
  const char* name() const override { return "snap"; }
  Result<std::map<std::string, HeldShare>> List(
      const std::map<std::string, const ShareSpec*>& want) override;
  Status Create(const ShareSpec& spec) override;
  Status Remove(const std::string& share) override;
  nlohmann::json Counters(const std::string& share) override;
  int mutations() const override { return ops_.mutations(); }

 private:
  snap::SnapFsOps ops_;
};

class FsdSharePlane : public SharePlane {
 public:
  FsdSharePlane(std::string control_socket, std::string vhost_dir,
                std::chrono::milliseconds timeout)
      : socket_(std::move(control_socket)), vhost_dir_(std::move(vhost_dir)), timeout_(timeout) {}
  const char* name() const override { return "fsd"; }
  Result<std::map<std::string, HeldShare>> List(
      const std::map<std::string, const ShareSpec*>& want) override;
  Status Create(const ShareSpec& spec) override;
  Status Remove(const std::string& share) override;
  nlohmann::json Counters(const std::string& share) override;
  int mutations() const override { return mutations_; }

  // The share config fsd.share_create gets for `spec`.
  nlohmann::json Config(const ShareSpec& spec) const;
  std::string SocketPath(const std::string& share) const;

 private:
  Result<nlohmann::json> Call(const std::string& method, const nlohmann::json& params);

  std::string socket_;
  std::string vhost_dir_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<rpc::RpcClient> client_;
  int mutations_ = 0;
};

}  // namespace dpustor::agent::dpu
