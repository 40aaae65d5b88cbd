// Share: one served file system in dpustor-fsd: its Backend, the Engine in front of it and
// the transport (a /dev/fuse mount) in front of that. Owned by the daemon's main loop.
// Threading: Open/Stop from the main thread; the ShareView methods from any thread.
// `on_stopped` runs once, on a transport thread, when the transport stops serving.
#pragma once

#include <functional>
#include <memory>

#include "common/status.h"
#include "fs/fsd/control_methods.h"
#include "fs/fsd/fsd_config.h"
#include "fs/fuse/backend.h"
#include "fs/fuse/engine.h"
#include "fs/transport/devfuse/devfuse_transport.h"

namespace dpustor::fs::fsd {

class Share : public ShareView {
 public:
  // Opens the backend, then mounts. On failure nothing stays open or mounted.
  static Result<std::unique_ptr<Share>> Open(const ShareConfig& config,
                                             std::function<void()> on_stopped);
  ~Share() override;  // Stop()
  // Unmounts, waits for the transport's threads and in-flight requests. Idempotent.
  void Stop();

  const ShareConfig& config() const override { return config_; }
  bool serving() const override;
  size_t inflight() const override { return engine_->inflight(); }
  bool initialized() const override { return engine_->initialized(); }
  nlohmann::json op_stats() const override { return engine_->stats().ToJson(); }

 private:
  explicit Share(ShareConfig config) : config_(std::move(config)) {}

  ShareConfig config_;
  // Destroyed in reverse: the transport stops before the engine, the engine before the
  // backend it calls.
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<devfuse::DevFuseTransport> transport_;
};

}  // namespace dpustor::fs::fsd
