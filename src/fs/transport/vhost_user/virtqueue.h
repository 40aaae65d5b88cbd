// Virtqueue: the device side of one VIRTIO 1.x split virtqueue (descriptor table,
// available ring and used ring, all in guest memory). PopChain() takes the next request
// the driver made available and returns its buffers as host iovecs, device-readable ones
// first (`in`, what Engine::Process reads) then device-writable ones (`out`, where the
// reply goes); PushUsed() hands a chain back; NeedsNotify() says whether the driver wants
// an interrupt (VIRTIO_F_EVENT_IDX or VRING_AVAIL_F_NO_INTERRUPT).
//
// Everything in guest memory is hostile: every index, address, length and flag is checked,
// each descriptor is read exactly once, and a malformed chain yields an error and marks the
// queue broken (PopChain keeps failing until the queue is set up again); never a crash, a
// hang, or an access outside the guest's memory.
//
// Ownership: borrows the GuestMemory, which must outlive the Virtqueue (a new memory table
// means new Virtqueues, carrying last_avail_idx() over). Chains point into guest memory.
//
// Threading: not thread-safe. One owner (the queue's thread, or whoever holds the queue's
// lock) makes every call, PushUsed from completions included.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "fs/transport/vhost_user/guest_memory.h"

namespace dpustor::fs::vhost_user {

// Split ring layout constants (VIRTIO 1.x, 2.7).
inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint32_t kMaxQueueSize = 32768;

// One descriptor as laid out in guest memory (little-endian).
struct VringDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(VringDesc) == 16);

// VIRTIO's vring_need_event: true when `event_idx` lies in [old, new_idx), i.e. the used
// index moved past the entry after which the driver asked for an interrupt.
inline bool VringNeedEvent(uint16_t event_idx, uint16_t new_idx, uint16_t old) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old);
}

struct VirtqueueConfig {
  uint32_t size = 0;  // a power of two, 1..32768
  // Ring addresses as the front-end gives them in SET_VRING_ADDR: its user addresses.
  uint64_t desc_uaddr = 0;
  uint64_t avail_uaddr = 0;
  uint64_t used_uaddr = 0;
  bool event_idx = false;                // VIRTIO_RING_F_EVENT_IDX negotiated
  bool indirect = false;                 // VIRTIO_RING_F_INDIRECT_DESC negotiated
  uint32_t max_indirect = 1024;          // entries in one indirect table
  uint64_t max_chain_bytes = 64u << 20;  // sum of a chain's descriptor lengths
  uint16_t last_avail_idx = 0;           // from SET_VRING_BASE
};

// One request: the head index (to hand back with PushUsed) and its buffers.
struct Chain {
  uint16_t head = 0;
  std::vector<iovec> in;   // device-readable
  std::vector<iovec> out;  // device-writable
  uint64_t in_bytes = 0;
  uint64_t out_bytes = 0;
};

class Virtqueue {
 public:
  // Checks the configuration and translates the three rings (each must lie inside one
  // region and be aligned as VIRTIO requires). Reads the used index from the used ring.
  static Result<std::unique_ptr<Virtqueue>> Create(const GuestMemory& memory,
                                                   const VirtqueueConfig& config);

  // The next available chain; nullopt when the driver made nothing new available. An
  // error marks the queue broken. With EVENT_IDX, also publishes avail_event.
  Result<std::optional<Chain>> PopChain();

  // Returns chain `head` with `len` bytes written to its writable buffers; publishes the
  // used index with release ordering. Refused on a broken queue or for head >= size.
  Status PushUsed(uint16_t head, uint32_t len);

  // Whether the driver wants an interrupt for what PushUsed published since the last call.
  bool NeedsNotify();

  // With EVENT_IDX: asks the driver to kick once it makes `idx` available.
  void SetAvailEvent(uint16_t idx);

  // GET/SET_VRING_BASE.
  uint16_t last_avail_idx() const { return last_avail_idx_; }
  void SetLastAvailIdx(uint16_t idx) { last_avail_idx_ = idx; }
  uint16_t used_idx() const { return used_idx_; }

  bool broken() const { return broken_; }
  uint32_t size() const { return size_; }

 private:
  Virtqueue() = default;
  Error Break(std::string what);
  Status WalkChain(uint16_t head, Chain* chain);
  Status AddBuffer(const VringDesc& d, bool* seen_writable, Chain* chain);

  const GuestMemory* mem_ = nullptr;
  uint32_t size_ = 0;
  uint8_t* desc_ = nullptr;   // size_ descriptors
  uint8_t* avail_ = nullptr;  // flags, idx, ring[size_], used_event
  uint8_t* used_ = nullptr;   // flags, idx, ring[size_] {id, len}, avail_event
  bool event_idx_ = false;
  bool indirect_ = false;
  uint32_t max_indirect_ = 0;
  uint64_t max_chain_bytes_ = 0;
  uint16_t last_avail_idx_ = 0;
  uint16_t used_idx_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
  bool broken_ = false;
};

}  // namespace dpustor::fs::vhost_user
