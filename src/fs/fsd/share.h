// Share: one served file system in dpustor-fsd: its Backend, the Engine in front of it and
// the transport in front of that: a /dev/fuse mount, or a virtio-fs device (vhost-user
// socket) whose queues feed the engine through an EngineHandler. Owned by the daemon's
// control thread.
// Threading: Open/Stop from the control thread; the ShareView methods from any thread.
// `on_stopped` runs once, on a transport thread, when a fuse mount stops serving by itself.
#pragma once

#include <functional>
#include <memory>

#include "common/status.h"
#include "fs/fsd/control_methods.h"
#include "fs/fsd/fsd_config.h"
#include "fs/fuse/backend.h"
#include "fs/fuse/engine.h"
#include "fs/transport/devfuse/devfuse_transport.h"
#include "fs/transport/engine_handler.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs::fsd {

class Share : public ShareView {
 public:
  // Opens the backend, then mounts or starts the device. On failure nothing stays open,
  // mounted or listening.
  static Result<std::unique_ptr<Share>> Open(const ShareConfig& config,
                                             std::function<void()> on_stopped);
  ~Share() override;  // Stop()
  // Unmounts or stops the device, waits for the transport's threads and in-flight
  // requests. Idempotent.
  void Stop();

  const ShareConfig& config() const override { return config_; }
  bool serving() const override;
  size_t inflight() const override { return engine_->inflight(); }
  bool initialized() const override { return engine_->initialized(); }
  nlohmann::json op_stats() const override { return engine_->stats().ToJson(); }
  nlohmann::json device() const override;

 private:
  explicit Share(ShareConfig config) : config_(std::move(config)) {}
  Status StartTransport(std::function<void()> on_stopped);

  ShareConfig config_;
  // Destroyed in reverse: the transport stops before the engine, the engine before the
  // backend it calls.
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<devfuse::DevFuseTransport> fuse_;  // transport "fuse"
  std::unique_ptr<EngineHandler> handler_;           // transport "vhost-user"
  std::unique_ptr<VirtioFsDevice> device_;
};

}  // namespace dpustor::fs::fsd
