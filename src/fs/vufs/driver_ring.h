// DriverRing: the driver (guest) side of one VIRTIO 1.x split virtqueue, laid out in
// GuestRam: descriptor table, available ring (+ used_event) and used ring (+ avail_event),
// and with INDIRECT_DESC one indirect table per head. Submit() turns readable then
// writable segments into a chain and makes it available; NeedsKick() says whether the
// device asked to be notified (EVENT_IDX: avail_event, else VRING_USED_F_NO_NOTIFY);
// PopUsed() collects completions; EnableInterrupts() asks for a call before sleeping.
//
// The device is not trusted: a used entry naming a head that is not in flight, a length
// beyond the chain's writable bytes or a used index running ahead breaks the ring (every
// later call fails) instead of corrupting the free list.
//
// Ownership: allocates its memory from the GuestRam (which must outlive it) and frees it
// on destruction. Threading: not thread-safe; one owner thread per ring.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "fs/vufs/guest_ram.h"

namespace dpustor::fs::vufs {

// One buffer of a chain, in guest physical addresses.
struct Segment {
  uint64_t gpa = 0;
  uint32_t len = 0;
};

// One completion: the chain's head and the bytes the device wrote.
struct UsedElem {
  uint16_t head = 0;
  uint32_t len = 0;
};

struct DriverRingOptions {
  uint32_t size = 256;         // a power of two, 1..32768
  bool event_idx = false;      // VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;       // use indirect tables for chains of 2+ segments
  uint32_t max_indirect = 64;  // segments in one indirect table
  uint16_t first_index = 0;    // avail/used index to start from (SET_VRING_BASE)
};

class DriverRing {
 public:
  static Result<std::unique_ptr<DriverRing>> Create(GuestRam& ram, const DriverRingOptions& o);
  ~DriverRing();
  DriverRing(const DriverRing&) = delete;
  DriverRing& operator=(const DriverRing&) = delete;

  // Makes a chain of `readable` then `writable` segments available (index published with
  // release ordering). kBusy when the ring lacks free descriptors; refuses an empty chain,
  // zero-length segments and more segments than an indirect table holds.
  Result<uint16_t> Submit(std::span<const Segment> readable, std::span<const Segment> writable);

  // Whether the device wants a kick for what was submitted since the last call.
  bool NeedsKick();

  // The next completion, or nullopt when the device has not used anything new.
  Result<std::optional<UsedElem>> PopUsed();

  // Asks for a call on the next completion; returns false when a completion is already
  // there (do not sleep: PopUsed first).
  bool EnableInterrupts();
  // Tells the device no calls are needed (polling); with EVENT_IDX a stale used_event
  // already means that, so only the flag changes.
  void DisableInterrupts();

  uint64_t desc_gpa() const { return desc_gpa_; }
  uint64_t avail_gpa() const { return avail_gpa_; }
  uint64_t used_gpa() const { return used_gpa_; }
  uint32_t size() const { return size_; }
  uint32_t free_descriptors() const { return free_count_; }
  uint32_t in_flight() const { return in_flight_; }
  uint16_t avail_idx() const { return avail_idx_; }
  uint16_t last_used_idx() const { return last_used_; }
  bool broken() const { return !broken_.empty(); }

 private:
  DriverRing(GuestRam& ram, const DriverRingOptions& o);
  Error Break(std::string what);
  uint8_t* desc() const { return ram_.host(desc_gpa_); }
  uint8_t* avail() const { return ram_.host(avail_gpa_); }
  uint8_t* used() const { return ram_.host(used_gpa_); }

  GuestRam& ram_;
  uint32_t size_;
  bool event_idx_;
  bool indirect_;
  uint32_t max_indirect_;
  GuestBuffer rings_{};
  GuestBuffer indirect_tables_{};
  uint64_t desc_gpa_ = 0, avail_gpa_ = 0, used_gpa_ = 0;

  // Host-side bookkeeping only: the device can read the descriptors but never steers it.
  std::vector<uint16_t> next_free_;       // free-list links
  std::vector<uint16_t> chain_len_;       // descriptors held by each in-flight head, 0 if none
  std::vector<uint64_t> chain_writable_;  // writable bytes of each in-flight head
  uint16_t free_head_ = 0;
  uint32_t free_count_ = 0;
  uint32_t in_flight_ = 0;
  uint16_t avail_idx_ = 0;
  uint16_t kicked_idx_ = 0;  // avail_idx_ when NeedsKick last looked
  uint16_t last_used_ = 0;
  std::string broken_;
};

}  // namespace dpustor::fs::vufs
