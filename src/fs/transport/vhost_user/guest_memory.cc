#include "fs/transport/vhost_user/guest_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"

namespace dpustor::fs::vhost_user {
namespace {

// [start, start + size) with size > 0 and no wrap: true when `addr`/`len` lies inside.
bool Inside(uint64_t start, uint64_t size, uint64_t addr, uint64_t len) {
  if (addr < start) return false;
  uint64_t off = addr - start;
  if (off >= size) return false;
  return len <= size - off;
}

bool Overlap(uint64_t a, uint64_t a_size, uint64_t b, uint64_t b_size) {
  // Both ranges are known not to wrap.
  return a < b + b_size && b < a + a_size;
}

}  // namespace

Result<std::unique_ptr<GuestMemory>> GuestMemory::Map(std::span<const MemoryRegionDesc> regions,
                                                      std::span<const int> fds) {
  if (regions.size() != fds.size())
    return rpc::InvalidParams("memory table: region and fd counts differ");
  if (regions.size() > kMaxRegions) return rpc::InvalidParams("memory table: too many regions");
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemoryRegionDesc& r = regions[i];
    const std::string at = "memory region " + std::to_string(i) + ": ";
    if (r.memory_size == 0) return rpc::InvalidParams(at + "empty");
    if (r.guest_phys_addr + r.memory_size < r.guest_phys_addr ||
        r.guest_phys_addr + r.memory_size == 0)
      return rpc::InvalidParams(at + "guest physical range wraps");
    if (r.userspace_addr + r.memory_size < r.userspace_addr ||
        r.userspace_addr + r.memory_size == 0)
      return rpc::InvalidParams(at + "user address range wraps");
    if (r.mmap_offset + r.memory_size < r.mmap_offset)
      return rpc::InvalidParams(at + "mmap offset wraps");
    if (fds[i] < 0) return rpc::InvalidParams(at + "no file descriptor");
    for (size_t j = 0; j < i; ++j) {
      const MemoryRegionDesc& o = regions[j];
      if (Overlap(r.guest_phys_addr, r.memory_size, o.guest_phys_addr, o.memory_size))
        return rpc::InvalidParams(at + "overlaps region " + std::to_string(j) + " in guest memory");
      if (Overlap(r.userspace_addr, r.memory_size, o.userspace_addr, o.memory_size))
        return rpc::InvalidParams(at + "overlaps region " + std::to_string(j) +
                                  " in user addresses");
    }
  }

  std::unique_ptr<GuestMemory> mem(new GuestMemory());
  mem->regions_.reserve(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) {
    const MemoryRegionDesc& r = regions[i];
    // Touching a mapping beyond the end of its file raises SIGBUS: the file must hold the
    // whole region. Guest RAM is a memfd, a /dev/shm or a hugetlbfs file: regular files.
    struct stat st;
    if (fstat(fds[i], &st) != 0 || !S_ISREG(st.st_mode))
      return rpc::InvalidParams("memory region " + std::to_string(i) +
                                ": not a regular file or memfd");
    if (static_cast<uint64_t>(st.st_size) < r.mmap_offset + r.memory_size)
      return rpc::InvalidParams("memory region " + std::to_string(i) +
                                ": extends past the end of its file");
    // A front-end could still shrink an unsealed file later; QEMU seals its memfds.
    int seals = fcntl(fds[i], F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK))
      spdlog::debug("vhost-user: memory region {} is not sealed against shrinking", i);
    // Map from offset 0 so that an mmap_offset that is not page aligned still works.
    size_t map_len = static_cast<size_t>(r.mmap_offset + r.memory_size);
    void* base = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
    if (base == MAP_FAILED) {
      int err = errno;
      return Error{rpc::kFailed,
                   "memory region " + std::to_string(i) + ": mmap: " + std::strerror(err)};
    }
    GuestRegion g;
    g.gpa = r.guest_phys_addr;
    g.size = r.memory_size;
    g.uaddr = r.userspace_addr;
    g.mmap_offset = r.mmap_offset;
    g.map_base = base;
    g.map_len = map_len;
    g.host = static_cast<uint8_t*>(base) + r.mmap_offset;
    mem->regions_.push_back(g);  // from here on the destructor unmaps it
  }
  return mem;
}

GuestMemory::~GuestMemory() {
  for (const GuestRegion& r : regions_) munmap(r.map_base, r.map_len);
}

Result<std::span<uint8_t>> GuestMemory::Translate(uint64_t gpa, uint64_t len) const {
  if (len == 0) return rpc::InvalidParams("empty guest range");
  for (const GuestRegion& r : regions_) {
    if (Inside(r.gpa, r.size, gpa, len)) return std::span<uint8_t>(r.host + (gpa - r.gpa), len);
  }
  return rpc::InvalidParams("guest range not inside one memory region");
}

Result<std::span<uint8_t>> GuestMemory::TranslateUser(uint64_t uaddr, uint64_t len) const {
  if (len == 0) return rpc::InvalidParams("empty user range");
  for (const GuestRegion& r : regions_) {
    if (Inside(r.uaddr, r.size, uaddr, len))
      return std::span<uint8_t>(r.host + (uaddr - r.uaddr), len);
  }
  return rpc::InvalidParams("user address range not inside one memory region");
}

bool GuestMemory::Contains(const void* p, size_t len) const {
  uint64_t a = reinterpret_cast<uintptr_t>(p);
  for (const GuestRegion& r : regions_) {
    if (Inside(reinterpret_cast<uintptr_t>(r.host), r.size, a, len)) return true;
  }
  return false;
}

}  // namespace dpustor::fs::vhost_user
