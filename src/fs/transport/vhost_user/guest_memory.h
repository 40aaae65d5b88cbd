// GuestMemory: the guest's RAM as a vhost-user back-end sees it. Built from a
// SET_MEM_TABLE-style description (one file descriptor per region plus the region's guest
// physical address, size, front-end user address and mmap offset), it maps every region
// and translates guest addresses into host spans. A translation succeeds only when the
// whole range lies inside one region; everything else (gaps, straddling two regions,
// address wrap-around) is an error, so a hostile guest cannot make us touch other memory.
//
// Ownership: owns the mappings and unmaps them on destruction; does not own the fds (the
// caller may close them once Map() returned). Every span handed out is valid only while
// the GuestMemory lives.
//
// Threading: immutable after Map(); every const method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/status.h"

namespace dpustor::fs::vhost_user {

// One region as the front-end describes it (VhostUserMemoryRegion).
struct MemoryRegionDesc {
  uint64_t guest_phys_addr = 0;
  uint64_t memory_size = 0;
  uint64_t userspace_addr = 0;  // where the front-end (QEMU) has it in its address space
  uint64_t mmap_offset = 0;     // where the region starts inside its fd
};

// One mapped region.
struct GuestRegion {
  uint64_t gpa = 0;
  uint64_t size = 0;
  uint64_t uaddr = 0;
  uint64_t mmap_offset = 0;
  uint8_t* host = nullptr;  // the region's first byte (mapping base + mmap_offset)
  void* map_base = nullptr;
  size_t map_len = 0;
};

class GuestMemory {
 public:
  // Upper bound on regions (vhost-user's VHOST_USER_MAX_RAM_SLOTS is 512).
  static constexpr size_t kMaxRegions = 512;

  // Maps `regions[i]` from `fds[i]` (shared, read-write). Refuses empty or overflowing
  // regions, regions overlapping in guest physical or user address space, and a count
  // mismatch. On error nothing stays mapped.
  static Result<std::unique_ptr<GuestMemory>> Map(std::span<const MemoryRegionDesc> regions,
                                                  std::span<const int> fds);

  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // [gpa, gpa + len) as host bytes; an error unless it lies entirely inside one region.
  // len == 0 is refused (there is nothing to translate).
  Result<std::span<uint8_t>> Translate(uint64_t gpa, uint64_t len) const;
  // The same for front-end user addresses (vring addresses from SET_VRING_ADDR).
  Result<std::span<uint8_t>> TranslateUser(uint64_t uaddr, uint64_t len) const;

  // True when the host range [p, p + len) lies inside one mapped region.
  bool Contains(const void* p, size_t len) const;

  std::span<const GuestRegion> regions() const { return regions_; }

 private:
  GuestMemory() = default;
  std::vector<GuestRegion> regions_;
};

}  // namespace dpustor::fs::vhost_user
