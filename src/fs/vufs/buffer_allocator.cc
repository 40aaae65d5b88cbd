#include "fs/vufs/buffer_allocator.h"

#include <string>

#include "common/json_rpc.h"

namespace dpustor::fs::vufs {

BufferAllocator::BufferAllocator(uint64_t base, uint64_t size) {
  if (size > 0) free_.emplace(base, size);
  free_bytes_ = size;
}

Result<uint64_t> BufferAllocator::Allocate(uint64_t len, uint64_t align) {
  if (len == 0) return Error{rpc::kInvalidParams, "allocation of 0 bytes"};
  if (align == 0 || (align & (align - 1)) != 0)
    return Error{rpc::kInvalidParams, "alignment " + std::to_string(align) + " not a power of two"};
  std::lock_guard lock(mu_);
  for (auto it = free_.begin(); it != free_.end(); ++it) {
    const uint64_t start = it->first, end = it->first + it->second;
    const uint64_t at = (start + align - 1) & ~(align - 1);
    if (at < start || at > end || end - at < len) continue;
    free_.erase(it);
    if (at > start) free_.emplace(start, at - start);
    if (at + len < end) free_.emplace(at + len, end - (at + len));
    used_.emplace(at, len);
    free_bytes_ -= len;
    return at;
  }
  return Error{rpc::kBusy, "guest memory exhausted: no free range of " + std::to_string(len) +
                               " bytes (" + std::to_string(free_bytes_) + " bytes free in total)"};
}

Status BufferAllocator::Free(uint64_t addr) {
  std::lock_guard lock(mu_);
  auto u = used_.find(addr);
  if (u == used_.end())
    return Error{rpc::kInvalidParams, "free of " + std::to_string(addr) + ": not allocated"};
  uint64_t start = u->first, len = u->second;
  used_.erase(u);
  free_bytes_ += len;
  // Merge with the free range after and the one before, if they touch.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + len) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(start, len);
  return Status::Ok();
}

uint64_t BufferAllocator::free_bytes() const {
  std::lock_guard lock(mu_);
  return free_bytes_;
}

size_t BufferAllocator::allocations() const {
  std::lock_guard lock(mu_);
  return used_.size();
}

}  // namespace dpustor::fs::vufs
