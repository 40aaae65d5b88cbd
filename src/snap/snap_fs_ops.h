// SnapFsOps drives DOCA SNAP's Virtio-fs service (BlueField-3 only, beta since DOCA 2.8): the
// typed calls the DPU agent's share reconciler needs, with the method names in one table
// (kVirtioFsMethods in snap_fs_ops.cc; names NVIDIA does not document are marked there).
// Bring-up: EnsureTransport (transport "DOCA", the emulation manager, transport start; each
// tolerates "File exists", so a second pass changes nothing) -> CreateNfsFsdev ->
// CreateDevice -> BindDevice (to a VIRTIO_FS function's vuid) -> StartDevice. Teardown:
// StopDevice -> DestroyDevice -> DeleteFsdev.
//
// Blocking, like SnapClient; not thread-safe (one caller at a time on a SnapClient no one else
// uses concurrently). Errors name the SNAP method. Every call but the read-only ones counts
// as a mutation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "snap/snap_client.h"

namespace dpustor::snap {

struct SnapFsDevice {
  std::string name;
  std::string tag;
  std::string fsdev;
  std::uint32_t num_request_queues = 0;
  std::uint32_t queue_size = 0;
  std::string vuid;  // the function it is bound to, "" if none
  bool started = false;
};

struct SnapFsdev {
  std::string name;
  std::string module;  // "nfs", "aio", ...
  std::string server;  // nfs
  std::string exportname;
};

struct SnapFsFunction {
  int pf_index = 0;
  std::string vuid;
  std::string device;  // the device bound to it, "" if none
};

class SnapFsOps {
 public:
  explicit SnapFsOps(SnapClient& client, std::string emulation_manager = "mlx5_0");
  SnapFsOps(const SnapFsOps&) = delete;
  SnapFsOps& operator=(const SnapFsOps&) = delete;

  // Whether SNAP serves virtio-fs: rpc_get_methods lists virtio_fs_device_create. Fails only
  // when SNAP cannot be asked.
  Result<bool> Available();

  Result<std::vector<SnapFsDevice>> ListDevices();
  Result<std::vector<SnapFsdev>> ListFsdevs();
  // The VIRTIO_FS physical functions (emulation_function_list).
  Result<std::vector<SnapFsFunction>> ListFunctions();
  // virtio_fs_device_get_stat's result as SNAP gives it.
  Result<nlohmann::json> DeviceStat(const std::string& device);

  Status EnsureTransport();
  Status CreateNfsFsdev(const std::string& name, const std::string& server,
                        const std::string& exportname);
  Status DeleteFsdev(const std::string& name, const std::string& module);
  Status CreateDevice(const std::string& name, const std::string& tag, const std::string& fsdev,
                      std::uint32_t num_request_queues, std::uint32_t queue_size);
  Status BindDevice(const std::string& name, const std::string& vuid);
  Status StartDevice(const std::string& name);
  Status StopDevice(const std::string& name);
  Status DestroyDevice(const std::string& name);

  int mutations() const { return mutations_; }

 private:
  Result<nlohmann::json> Read(const std::string& method, const nlohmann::json& params = nullptr);
  Result<nlohmann::json> Mutate(const std::string& method, const nlohmann::json& params);

  SnapClient& client_;
  std::string manager_;
  int mutations_ = 0;
};

}  // namespace dpustor::snap
