// The hardware layer of a virtio-fs device, in the shape a DPU's emulation gives it (NVIDIA
// SNAP / DOCA DevEmu virtio-fs, IBM DPFS's HAL) and vhost-user gives it alike: per device
// and per queue, a request is the driver's device-readable buffers, its device-writable
// buffers and an asynchronous completion. Queue 0 is the high-priority queue (FORGET,
// INTERRUPT), queues 1..N carry requests.
//
// A device implementation (vhost-user today, DOCA behind DPUSTOR_DOCA) owns the queues and
// their threads; a VirtioFsHandler (the FUSE engine's adapter) serves the requests. The
// two never see each other's internals: a transport knows no backend, a backend no queue.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "fs/fuse/engine.h"  // Completion

namespace dpustor::fs {

// What a device calls. Handle() runs on the queue's thread; the handler completes each
// request exactly once, from any thread, in any order (Completion::Complete(reply_bytes)).
// The buffers stay valid until then.
class VirtioFsHandler {
 public:
  virtual ~VirtioFsHandler() = default;
  virtual void Handle(uint32_t queue, std::span<const iovec> in, std::span<const iovec> out,
                      Completion* done) = 0;
  // The driver went away (VM powered off, front-end disconnected, device reset) and every
  // request it made has completed: end the FUSE session. The next driver starts with
  // FUSE_INIT.
  virtual void SessionEnded() = 0;
};

// One emulated virtio-fs device (one PCIe function on a DPU, one socket for vhost-user).
class VirtioFsDevice {
 public:
  virtual ~VirtioFsDevice() = default;
  // Begins accepting drivers; Handle() calls start when a driver brings up its queues.
  virtual Status Start() = 0;
  // Stops the queues, waits for every in-flight request to complete, releases the driver.
  // Idempotent.
  virtual void Stop() = 0;
  // False once the device can no longer serve (stopped, or failed for good).
  virtual bool serving() const = 0;
  // Requests handed to the handler and not yet completed.
  virtual size_t inflight() const = 0;
  // Transport-specific state for fsd.shares: connected driver, queues, counters.
  virtual nlohmann::json status() const = 0;
};

}  // namespace dpustor::fs
