// QueueRunner: serves one started virtqueue on a thread of its own. It waits on the
// driver's kick eventfd, pops every available chain and hands it to the VirtioFsHandler;
// completions (from any thread) put the chain on the used ring and signal the call eventfd
// when the driver wants an interrupt. At most queue-size requests are in flight: a driver
// that makes more available without taking used ones back waits, it cannot make us
// allocate without bound. A malformed ring stops this queue only (the error eventfd is
// signalled) and the runner idles until stopped.
//
// Ownership: borrows the GuestMemory (which must outlive the runner) and the handler.
// Threading: Stop/SetEnabled/SetCallFd from the session's thread; the rest is internal.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/transport/vhost_user/virtqueue.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs::vhost_user {

class QueueRunner {
 public:
  // Builds the virtqueue (its rings are checked against guest memory) and starts the
  // thread. `kick` must be an eventfd-like fd; `call` and `err` may be invalid.
  static Result<std::unique_ptr<QueueRunner>> Start(uint32_t index, const GuestMemory& memory,
                                                    const VirtqueueConfig& config,
                                                    VirtioFsHandler& handler, int kick, int call,
                                                    int err, bool enabled);
  ~QueueRunner();  // Stop()

  // Ends the thread and waits until every request handed to the handler has completed.
  // Returns the ring's last available index (for GET_VRING_BASE). Idempotent.
  uint16_t Stop();

  void SetEnabled(bool enabled);
  // The driver may change its interrupt eventfd while the queue runs (QEMU masks/unmasks).
  void SetCallFd(int call);
  void SetErrFd(int err);

  size_t inflight() const { return inflight_.load(std::memory_order_relaxed); }
  nlohmann::json status() const;

 private:
  class Request;
  QueueRunner(uint32_t index, VirtioFsHandler& handler);
  void Run();
  void ServeAvailable();
  void Complete(Request* r, size_t bytes);
  void Fail(const Error& error);

  const uint32_t index_;
  VirtioFsHandler& handler_;
  int kick_ = -1;  // borrowed from the session
  UniqueFd wake_;  // eventfd: Stop() and SetEnabled() wake the thread
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> enabled_{false};
  std::atomic<size_t> inflight_{0};
  std::atomic<uint64_t> requests_{0};

  mutable std::mutex mu_;  // guards everything below; never held across handler calls
  std::condition_variable idle_;
  std::unique_ptr<Virtqueue> vq_;
  std::vector<std::unique_ptr<Request>> requests_pool_;
  std::vector<Request*> free_;
  int call_ = -1;  // borrowed
  int err_ = -1;   // borrowed
  bool broken_ = false;
  bool stopped_ = false;
  uint16_t last_avail_ = 0;
};

}  // namespace dpustor::fs::vhost_user
