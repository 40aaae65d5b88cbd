// BufferAllocator: hands out aligned byte ranges of one address range (the front-end's guest
// RAM) and takes them back. First fit over a sorted free list; neighbours are merged on
// Free, so a long benchmark that allocates and frees does not fragment. Addresses are
// plain numbers (guest physical addresses); the allocator never touches the memory.
//
// Threading: every method is thread-safe (one mutex); allocation is not on any hot path.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "common/status.h"

namespace dpustor::fs::vufs {

class BufferAllocator {
 public:
  BufferAllocator(uint64_t base, uint64_t size);

  // `len` bytes starting at a multiple of `align` (a power of two). Refuses len == 0 and
  // reports when no free range is large enough.
  Result<uint64_t> Allocate(uint64_t len, uint64_t align = 64);
  // Returns a range Allocate handed out; an error (and no change) for anything else.
  Status Free(uint64_t addr);

  uint64_t free_bytes() const;
  size_t allocations() const;

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, uint64_t> free_;  // start -> length, never adjacent
  std::map<uint64_t, uint64_t> used_;  // start -> length
  uint64_t free_bytes_ = 0;
};

}  // namespace dpustor::fs::vufs
