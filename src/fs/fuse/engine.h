// The FUSE engine: decodes raw FUSE requests, negotiates FUSE_INIT, dispatches to a
// Backend and encodes the replies. Written once; every transport (/dev/fuse, vhost-user,
// a DPU's emulated virtio-fs queues) hands it requests in the shape a virtqueue delivers.
//
// Threading: Process() may be called concurrently from any number of transport threads.
// Completions run on whichever thread the backend replies from. The Engine must outlive
// every request it accepted (a transport drains its queues before destroying it).
#pragma once

#include <sys/uio.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "fs/fuse/backend.h"
#include "fs/fuse/op_stats.h"

namespace dpustor::fs {

// Where a transport learns that a request it handed over is finished.
class Completion {
 public:
  virtual ~Completion() = default;
  // `reply_bytes` bytes of the device-writable buffers hold the reply (fuse_out_header
  // first); 0 means the request takes no reply (FORGET, BATCH_FORGET, INTERRUPT).
  virtual void Complete(size_t reply_bytes) = 0;
};

// Whose credentials the backend sees (NFS-style squashing, per share).
enum class Squash { kNone, kRoot, kAll };  // kRoot: uid/gid 0 become anon; kAll: everyone

struct EngineOptions {
  uint32_t max_pages = 256;      // 1 MiB requests with 4 KiB pages
  bool writeback_cache = false;  // offered only if the backend allows it too
  double attr_timeout = 1.0;     // seconds, used by backends through their options
  bool read_only = false;        // refuse every modifying operation with EROFS
  Squash squash = Squash::kNone;
  uint32_t anon_uid = 65534;
  uint32_t anon_gid = 65534;
};

class Engine {
 public:
  Engine(Backend& backend, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Serves one request. `in`: device-readable buffers (fuse_in_header, arguments, write
  // payload), `out`: device-writable buffers for the reply. The buffers must stay valid
  // until done->Complete(), which runs exactly once: before Process returns or later, on
  // another thread. Malformed requests are answered with an error (EINVAL / EIO) when
  // their header can be read, otherwise completed with 0 bytes; never a crash.
  void Process(std::span<const iovec> in, std::span<const iovec> out, Completion* done);

  // The driver is gone (a VM powered off, a virtio-fs device was reset) and every request
  // it made has completed: ends the backend session as FUSE_DESTROY would, so what it held
  // (open files, inode references) is released. The next driver starts with FUSE_INIT.
  void EndSession();

  // Requests in flight (accepted, not yet completed).
  size_t inflight() const;
  // Per-opcode counters and latency histograms since start.
  const OpStats& stats() const { return stats_; }
  // True after a successful FUSE_INIT and until DESTROY.
  bool initialized() const;

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
  OpStats stats_;
};

}  // namespace dpustor::fs
