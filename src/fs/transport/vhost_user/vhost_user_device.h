// VhostUserFsDevice: a virtio-fs device served over a vhost-user Unix socket (QEMU's
// vhost-user-fs-pci, Cloud Hypervisor, dpustor-vufs-bench). It listens on the socket,
// serves one front-end at a time through a Session, and when that front-end leaves (VM
// powered off, QEMU killed) stops its queues, waits for its requests, tells the handler
// the session ended and waits for the next one: a new VM attaches without a restart.
// A second front-end connecting while one is attached is refused (closed at once).
//
// Threading: Start/Stop from one controlling thread; one connection thread inside, plus
// the Session's queue threads; serving()/inflight()/status() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/transport/vhost_user/session.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs::vhost_user {

struct VhostUserOptions {
  std::string socket_path;  // created by Start(); a stale socket file is replaced
  SessionOptions session;
  // Longest a front-end may take to finish a message it began, or to take our reply.
  std::chrono::milliseconds message_timeout{5000};
};

class VhostUserFsDevice : public VirtioFsDevice {
 public:
  VhostUserFsDevice(VirtioFsHandler& handler, VhostUserOptions options);
  ~VhostUserFsDevice() override;  // Stop()

  // Binds and listens. Refuses a path that exists and is not a socket, or a socket some
  // process still listens on.
  Status Start() override;
  // Disconnects the front-end (its queues stop, its requests complete), closes and removes
  // the socket. Idempotent.
  void Stop() override;
  bool serving() const override { return serving_.load(); }
  size_t inflight() const override;
  // {socket, connected, sessions, queues: [...]}
  nlohmann::json status() const override;

 private:
  void Run();
  void Serve(UniqueFd conn);

  VirtioFsHandler& handler_;
  const VhostUserOptions options_;
  UniqueFd listen_;
  UniqueFd wake_;  // eventfd: Stop() wakes the connection thread
  std::thread thread_;
  std::atomic<bool> serving_{false};
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sessions_{0};
  mutable std::mutex mu_;  // guards session_ for the status readers
  std::unique_ptr<Session> session_;
};

}  // namespace dpustor::fs::vhost_user
