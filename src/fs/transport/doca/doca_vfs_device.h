// DocaVfsDevice: a virtio-fs PCIe function emulated by a BlueField through DOCA DevEmu
// Virtio-fs (the hardware layer SNAP's own virtio-fs service sits on). The host's virtio-fs
// driver sees a real PCIe device; its requests arrive as DOCA requests whose buffers live in
// host memory. Each request is copied into a local buffer with DOCA DMA, handed to the
// VirtioFsHandler as plain iovecs (the engine's shape, as with vhost-user), and the reply is
// copied back before the request is completed. Host memory is never touched directly, and
// a request whose buffers exceed the local buffer is completed with 0 bytes.
//
// One progress thread per device polls DOCA's progress engine (DPFS's model: one polling
// thread per device); completions from handler threads are queued to it.
//
// Built only with DPUSTOR_DOCA (the DOCA SDK present); see docs/doca.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs::doca {

struct DocaVfsOptions {
  std::string manager;  // the emulation manager device, e.g. "mlx5_0"
  std::string vuid;     // the VIRTIO_FS emulated function (emulation_function_list)
  std::string tag;      // <= 36 bytes
  uint32_t request_queues = 1;
  uint32_t queue_size = 256;
  uint32_t max_request_bytes = (1u << 20) + 4096;  // max_pages * 4 KiB + headers
};

class DocaVfsDevice : public VirtioFsDevice {
 public:
  DocaVfsDevice(VirtioFsHandler& handler, DocaVfsOptions options);
  ~DocaVfsDevice() override;  // Stop()

  // Opens the manager and the function's representor, creates and starts the device and
  // its IO context, and starts the progress thread.
  Status Start() override;
  void Stop() override;
  bool serving() const override;
  size_t inflight() const override;
  nlohmann::json status() const override;

  struct Rep;  // the DOCA objects and the progress thread's state (doca_vfs_device.cc)

 private:
  std::unique_ptr<Rep> rep_;
};

}  // namespace dpustor::fs::doca
