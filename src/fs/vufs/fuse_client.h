// FuseClient: FUSE requests over one request queue of a Frontend, one at a time, the way
// the guest's virtio-fs driver lays them out: the in header and arguments in one readable
// buffer (the write payload in a second one), the out header in one writable buffer and
// the reply's data in a second one. Typed results, or an Error whose code is -errno for a
// FUSE error reply (IsFuseErrno) and an rpc code for a transport or protocol error.
//
// The encoding helpers below are what dpustor-vufs-bench uses to pipeline requests itself.
//
// Ownership: borrows the Frontend (which must outlive it); owns a scratch area in guest
// memory. Threading: not thread-safe. It is the owner of its request queue while in use;
// Forget() uses queue 0 (high priority), which must have no other user meanwhile.
#pragma once

#include <linux/fuse.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "fs/vufs/frontend.h"

namespace dpustor::fs::vufs {

inline constexpr uint64_t kRootNodeId = FUSE_ROOT_ID;

// FUSE_INIT flags a Linux 6.x guest offers that matter to a back-end serving requests.
inline constexpr uint32_t kDefaultInitFlags =
    FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_MAX_PAGES | FUSE_PARALLEL_DIROPS | FUSE_ATOMIC_O_TRUNC;

// True for errors carrying a FUSE reply's -errno.
inline bool IsFuseErrno(const Error& e) {
  return e.code < 0 && e.code >= -4095;
}

// Writes fuse_in_header + `args` + `name` (NUL-terminated when not empty) to `dst`;
// `trailing` more bytes (a write payload in its own buffer) count in the header's len.
// Returns the bytes written, 0 when `dst` is too small.
size_t EncodeFuseRequest(std::span<uint8_t> dst, uint32_t opcode, uint64_t unique, uint64_t nodeid,
                         std::span<const uint8_t> args, std::string_view name = {},
                         uint32_t trailing = 0);

// Checks the reply to request `unique` whose chain came back with `used_len` bytes written
// and whose first writable buffer holds the fuse_out_header: returns the reply's payload
// length, -errno as an error for an error reply, or a protocol error (unique mismatch,
// len not matching what was written, a short reply).
Result<uint32_t> CheckFuseReply(const fuse_out_header& out, uint32_t used_len, uint64_t unique);

// FUSE opcode names ("FUSE_LOOKUP") for messages.
const char* FuseOpcodeName(uint32_t opcode);

struct FuseCreated {
  fuse_entry_out entry;
  fuse_open_out open;
};

class FuseClient {
 public:
  // `queue` must be a request queue (1..N). `max_io`: the largest read or write.
  static Result<std::unique_ptr<FuseClient>> Create(Frontend& frontend, uint32_t queue,
                                                    uint32_t max_io = 1u << 20);
  ~FuseClient();
  FuseClient(const FuseClient&) = delete;
  FuseClient& operator=(const FuseClient&) = delete;

  // FUSE_INIT with FUSE_KERNEL_VERSION / FUSE_KERNEL_MINOR_VERSION.
  Result<fuse_init_out> Init(uint32_t max_pages = 256, uint32_t flags = kDefaultInitFlags);
  Result<fuse_entry_out> Lookup(uint64_t parent, std::string_view name);
  Result<fuse_attr_out> Getattr(uint64_t nodeid);
  Result<fuse_open_out> Open(uint64_t nodeid, uint32_t flags);
  Result<FuseCreated> Create(uint64_t parent, std::string_view name, uint32_t flags, uint32_t mode);
  Result<std::vector<uint8_t>> Read(uint64_t nodeid, uint64_t fh, uint64_t offset, uint32_t size);
  Result<uint32_t> Write(uint64_t nodeid, uint64_t fh, uint64_t offset,
                         std::span<const uint8_t> data);
  Status Release(uint64_t nodeid, uint64_t fh, uint32_t flags = 0);
  Result<fuse_entry_out> Mkdir(uint64_t parent, std::string_view name, uint32_t mode);
  Status Unlink(uint64_t parent, std::string_view name);
  // FUSE_FORGET on the high-priority queue; it has no reply, the chain just comes back.
  Status Forget(uint64_t nodeid, uint64_t nlookup);

  // One request: args (+ name) and an optional payload in; up to reply_cap bytes out.
  // Returns the reply payload.
  Result<std::vector<uint8_t>> Call(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args,
                                    std::string_view name = {},
                                    std::span<const uint8_t> payload = {},
                                    uint32_t reply_cap = 4096);

  void set_timeout(std::chrono::milliseconds t) { timeout_ = t; }

 private:
  FuseClient(Frontend& frontend, uint32_t queue, uint32_t max_io);
  template <class T>
  Result<T> CallFor(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args,
                    std::string_view name = {});

  Frontend& frontend_;
  uint32_t queue_;
  uint32_t max_io_;
  GuestBuffer header_area_{};  // in header + args + name | out header + small reply
  GuestBuffer data_area_{};    // write payload or read data
  uint64_t unique_ = 0;
  std::chrono::milliseconds timeout_{10000};
};

}  // namespace dpustor::fs::vufs
