// Test helpers for the vhost-user building blocks: guest memory made of memfd regions (the
// way QEMU shares guest RAM), and a tiny driver that lays out and fills a split virtqueue
// exactly as a guest would. Single-threaded; owned by the test that creates them.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include "fs/transport/vhost_user/guest_memory.h"
#include "fs/transport/vhost_user/virtqueue.h"

namespace dpustor::fs::vhost_user::testing {

// Guest physical layout: A [0, 1 MiB), a 1 MiB hole, B [2 MiB, 3 MiB), C [3 MiB, 4 MiB).
// B and C are adjacent in guest memory but separate mappings, so nothing may straddle them.
// User addresses are unrelated to guest addresses, as in QEMU.
inline constexpr uint64_t kMiB = 1 << 20;
inline constexpr uint64_t kGpaA = 0;
inline constexpr uint64_t kGpaB = 2 * kMiB;
inline constexpr uint64_t kGpaC = 3 * kMiB;
inline constexpr uint64_t kRegionSize = kMiB;
inline constexpr uint64_t kUserA = 0x7f0000000000;
inline constexpr uint64_t kUserB = 0x7f0100000000;
inline constexpr uint64_t kUserC = 0x7f0200000000;

inline int MakeMemfd(const char* name, uint64_t bytes) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(ftruncate(fd, static_cast<off_t>(bytes)), 0);
  return fd;
}

inline std::vector<MemoryRegionDesc> ThreeRegionTable() {
  return {
      {kGpaA, kRegionSize, kUserA, 0},
      {kGpaB, kRegionSize, kUserB, 4096},  // B sits 4 KiB into its fd
      {kGpaC, kRegionSize, kUserC, 0},
  };
}

// Maps the three regions; the fds are closed again (the mappings keep the memory).
inline std::unique_ptr<GuestMemory> MakeGuestMemory() {
  std::vector<MemoryRegionDesc> table = ThreeRegionTable();
  std::vector<int> fds;
  for (const auto& r : table) fds.push_back(MakeMemfd("guest", r.mmap_offset + r.memory_size));
  auto mem = GuestMemory::Map(table, fds);
  for (int fd : fds) close(fd);
  EXPECT_TRUE(mem.ok()) << (mem.ok() ? "" : mem.error().message);
  return mem.ok() ? std::move(*mem) : nullptr;
}

inline uint64_t UserOf(uint64_t gpa) {
  if (gpa >= kGpaC) return kUserC + (gpa - kGpaC);
  if (gpa >= kGpaB) return kUserB + (gpa - kGpaB);
  return kUserA + gpa;
}

// The driver side of one split ring placed in region A at kRingGpa.
class TestDriver {
 public:
  static constexpr uint64_t kRingGpa = 0x1000;

  TestDriver(const GuestMemory& mem, uint32_t size) : mem_(mem), size_(size) {
    desc_ = kRingGpa;
    avail_ = desc_ + 16ull * size;
    used_ = (avail_ + 6 + 2ull * size + 3) & ~3ull;
  }

  VirtqueueConfig Config(bool event_idx = false, bool indirect = false) const {
    VirtqueueConfig c;
    c.size = size_;
    c.desc_uaddr = UserOf(desc_);
    c.avail_uaddr = UserOf(avail_);
    c.used_uaddr = UserOf(used_);
    c.event_idx = event_idx;
    c.indirect = indirect;
    c.last_avail_idx = base_idx_;  // where the device starts: the last SetAvailIdx
    return c;
  }

  uint8_t* Host(uint64_t gpa, uint64_t len = 1) const {
    auto s = mem_.Translate(gpa, len);
    EXPECT_TRUE(s.ok()) << "gpa " << gpa;
    return s.ok() ? s->data() : nullptr;
  }
  template <class T>
  void Put(uint64_t gpa, T v) const {
    std::memcpy(Host(gpa, sizeof v), &v, sizeof v);
  }
  template <class T>
  T Get(uint64_t gpa) const {
    T v;
    std::memcpy(&v, Host(gpa, sizeof v), sizeof v);
    return v;
  }

  // Descriptor `i` of the table at `table` (the ring's own table by default).
  void SetDescAt(uint64_t table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
                 uint16_t next = 0) const {
    VringDesc d{addr, len, flags, next};
    Put(table + 16ull * i, d);
  }
  void SetDesc(uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) const {
    SetDescAt(desc_, i, addr, len, flags, next);
  }

  // Offers chain `head`: ring entry first, then the index (release), as a driver must.
  void MakeAvail(uint16_t head) {
    Put<uint16_t>(avail_ + 4 + 2ull * (avail_idx_ % size_), head);
    ++avail_idx_;
    PublishAvailIdx();
  }
  void SetAvailIdx(uint16_t idx) {
    avail_idx_ = idx;
    base_idx_ = idx;
    PublishAvailIdx();
  }
  void SetRingEntry(uint32_t slot, uint16_t head) const {
    Put<uint16_t>(avail_ + 4 + 2ull * slot, head);
  }
  void SetAvailFlags(uint16_t f) const { Put<uint16_t>(avail_, f); }
  void SetUsedEvent(uint16_t v) const { Put<uint16_t>(avail_ + 4 + 2ull * size_, v); }
  void SetUsedIdx(uint16_t v) const { Put<uint16_t>(used_ + 2, v); }

  uint16_t UsedIdx() const { return Get<uint16_t>(used_ + 2); }
  std::pair<uint32_t, uint32_t> UsedElem(uint16_t idx) const {
    uint64_t at = used_ + 4 + 8ull * (idx % size_);
    return {Get<uint32_t>(at), Get<uint32_t>(at + 4)};
  }
  uint16_t AvailEvent() const { return Get<uint16_t>(used_ + 4 + 8ull * size_); }

  uint64_t desc_gpa() const { return desc_; }
  uint32_t size() const { return size_; }

 private:
  void PublishAvailIdx() {
    std::atomic_ref<uint16_t>(*reinterpret_cast<uint16_t*>(Host(avail_ + 2, 2)))
        .store(avail_idx_, std::memory_order_release);
  }

  const GuestMemory& mem_;
  uint32_t size_;
  uint64_t desc_, avail_, used_;
  uint16_t avail_idx_ = 0;
  uint16_t base_idx_ = 0;
};

}  // namespace dpustor::fs::vhost_user::testing
