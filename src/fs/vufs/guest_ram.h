// GuestRam: the guest's RAM as the front-end (QEMU's role) owns it. One memfd, mapped
// shared; guest physical address 0 is the first byte of the mapping, and the mapping's own
// address is the "user address" vhost-user messages carry (SET_MEM_TABLE, SET_VRING_ADDR).
// Rings and data buffers are carved out of it with Allocate/Free.
//
// Ownership: owns the memfd and the mapping; every GuestBuffer is valid while it lives.
// Threading: Allocate/Free are thread-safe; the bytes are shared with the back-end.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "common/unique_fd.h"
#include "fs/vufs/buffer_allocator.h"

namespace dpustor::fs::vufs {

// One range of guest memory: where the back-end finds it (gpa) and where we do (host).
struct GuestBuffer {
  uint64_t gpa = 0;
  uint8_t* host = nullptr;
  uint64_t len = 0;
};

class GuestRam {
 public:
  // `bytes` is rounded up to whole pages.
  static Result<std::unique_ptr<GuestRam>> Create(uint64_t bytes);
  ~GuestRam();
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  Result<GuestBuffer> Allocate(uint64_t len, uint64_t align = 64);
  Status Free(const GuestBuffer& buffer);

  int fd() const { return fd_.get(); }
  uint64_t size() const { return size_; }
  uint8_t* host(uint64_t gpa) const { return base_ + gpa; }
  uint64_t user_addr(uint64_t gpa) const { return reinterpret_cast<uintptr_t>(base_) + gpa; }
  const BufferAllocator& allocator() const { return allocator_; }

 private:
  GuestRam(UniqueFd fd, uint8_t* base, uint64_t size);
  UniqueFd fd_;
  uint8_t* base_;
  uint64_t size_;
  BufferAllocator allocator_;
};

}  // namespace dpustor::fs::vufs
