// DevFuseTransport: serves one share's FUSE mount through the kernel's /dev/fuse. It owns
// the mount and N worker threads; each worker reads requests from its own clone of the
// session fd into a slot (request + reply buffer), hands them to the Engine and goes on
// reading; the Engine's Completion writes the reply to the same fd from whichever thread
// finishes the request. A worker has a bounded pool of slots and blocks when all are in
// flight, which back-pressures the kernel. Knows the Engine, never a backend.
//
// Threading: Start/Stop from one controlling thread; serving()/inflight() from any thread.
// `on_stopped` runs once, on a worker thread, when the last worker has ended (the mount was
// unmounted by Stop() or by someone else).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "fs/fuse/engine.h"
#include "fs/transport/devfuse/fuse_mount.h"

namespace dpustor::fs::devfuse {

struct DevFuseOptions {
  FuseMountOptions mount;  // mount.max_read is derived from max_pages
  unsigned threads = 4;
  uint32_t max_pages = 256;       // what the engine negotiates; sizes every buffer
  unsigned slots_per_thread = 8;  // requests in flight per worker before it stops reading
};

class DevFuseTransport {
 public:
  // Mounts and starts the workers. Fails (and leaves nothing mounted) when the mount fails.
  static Result<std::unique_ptr<DevFuseTransport>> Start(Engine& engine, DevFuseOptions options,
                                                         std::function<void()> on_stopped);
  ~DevFuseTransport();  // Stop()
  DevFuseTransport(const DevFuseTransport&) = delete;
  DevFuseTransport& operator=(const DevFuseTransport&) = delete;

  // Unmounts (lazily) and waits for the workers to end: normally the end of the session
  // makes every read() fail with ENODEV; if files stay open for `grace`, the session is
  // aborted instead. Then waits for in-flight replies. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  bool serving() const { return live_workers_.load() > 0 && !stopping_.load(); }
  size_t inflight() const;
  const std::string& mount_dir() const { return mount_->mount_dir(); }

 private:
  class Worker;
  DevFuseTransport(Engine& engine, DevFuseOptions options, std::function<void()> on_stopped);
  void WorkerEnded();

  Engine& engine_;
  DevFuseOptions options_;
  std::function<void()> on_stopped_;
  std::unique_ptr<FuseMount> mount_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<unsigned> live_workers_{0};
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;  // Stop() finished (controlling thread only)
};

// The read buffer a worker needs for `max_pages`: a full write payload plus room for the
// headers, and never less than the kernel's FUSE_MIN_READ_BUFFER.
size_t RequestBufferSize(uint32_t max_pages);

}  // namespace dpustor::fs::devfuse
