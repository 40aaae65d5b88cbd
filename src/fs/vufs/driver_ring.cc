#include "fs/vufs/driver_ring.h"

#include <endian.h>

#include <atomic>
#include <cstring>

#include "common/json_rpc.h"
#include "fs/transport/vhost_user/virtqueue.h"

namespace dpustor::fs::vufs {
namespace {

namespace vu = dpustor::fs::vhost_user;

// Split ring offsets (VIRTIO 1.x 2.7): avail = flags, idx, ring[n], used_event;
// used = flags, idx, ring[n] of {id, len}, avail_event.
constexpr uint16_t kUsedFNoNotify = 1;

uint16_t* U16(uint8_t* p) {
  return reinterpret_cast<uint16_t*>(p);
}

uint16_t Load16(uint8_t* p, std::memory_order order) {
  return le16toh(std::atomic_ref<uint16_t>(*U16(p)).load(order));
}
void Store16(uint8_t* p, uint16_t v, std::memory_order order) {
  std::atomic_ref<uint16_t>(*U16(p)).store(htole16(v), order);
}

void WriteDesc(uint8_t* table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags,
               uint16_t next) {
  vu::VringDesc d{htole64(addr), htole32(len), htole16(flags), htole16(next)};
  std::memcpy(table + 16ull * i, &d, sizeof d);
}

}  // namespace

Result<std::unique_ptr<DriverRing>> DriverRing::Create(GuestRam& ram, const DriverRingOptions& o) {
  if (o.size == 0 || o.size > vu::kMaxQueueSize || (o.size & (o.size - 1)) != 0)
    return Error{rpc::kInvalidParams,
                 "queue size " + std::to_string(o.size) + " is not a power of two <= 32768"};
  if (o.indirect && (o.max_indirect == 0 || o.max_indirect > vu::kMaxQueueSize))
    return Error{rpc::kInvalidParams, "indirect table size out of range"};
  std::unique_ptr<DriverRing> r(new DriverRing(ram, o));
  const uint64_t n = o.size;
  const uint64_t avail_off = 16 * n;
  const uint64_t used_off = (avail_off + 6 + 2 * n + 63) & ~uint64_t{63};
  auto rings = ram.Allocate(used_off + 6 + 8 * n, 4096);
  if (!rings) return rings.error();
  r->rings_ = *rings;
  std::memset(rings->host, 0, rings->len);
  r->desc_gpa_ = rings->gpa;
  r->avail_gpa_ = rings->gpa + avail_off;
  r->used_gpa_ = rings->gpa + used_off;
  if (o.indirect) {
    auto tables = ram.Allocate(16 * n * o.max_indirect, 4096);
    if (!tables) return tables.error();
    r->indirect_tables_ = *tables;
  }
  Store16(r->avail() + 2, o.first_index, std::memory_order_release);
  Store16(r->used() + 2, o.first_index, std::memory_order_release);
  return r;
}

DriverRing::DriverRing(GuestRam& ram, const DriverRingOptions& o)
    : ram_(ram),
      size_(o.size),
      event_idx_(o.event_idx),
      indirect_(o.indirect),
      max_indirect_(o.max_indirect),
      next_free_(o.size),
      chain_len_(o.size, 0),
      chain_writable_(o.size, 0),
      free_count_(o.size),
      avail_idx_(o.first_index),
      kicked_idx_(o.first_index),
      last_used_(o.first_index) {
  for (uint32_t i = 0; i < size_; ++i) next_free_[i] = static_cast<uint16_t>((i + 1) % size_);
}

DriverRing::~DriverRing() {
  if (rings_.len) (void)ram_.Free(rings_);
  if (indirect_tables_.len) (void)ram_.Free(indirect_tables_);
}

Error DriverRing::Break(std::string what) {
  if (broken_.empty()) broken_ = what;
  return Error{rpc::kFailed, "virtqueue broken: " + what};
}

Result<uint16_t> DriverRing::Submit(std::span<const Segment> readable,
                                    std::span<const Segment> writable) {
  if (!broken_.empty()) return Error{rpc::kFailed, "virtqueue broken: " + broken_};
  const size_t count = readable.size() + writable.size();
  if (count == 0) return Error{rpc::kInvalidParams, "empty chain"};
  uint64_t writable_bytes = 0;
  for (const Segment& s : readable)
    if (s.len == 0) return Error{rpc::kInvalidParams, "zero-length segment"};
  for (const Segment& s : writable) {
    if (s.len == 0) return Error{rpc::kInvalidParams, "zero-length segment"};
    writable_bytes += s.len;
  }
  const bool use_indirect = indirect_ && count > 1;
  if (use_indirect && count > max_indirect_)
    return Error{rpc::kInvalidParams,
                 "chain of " + std::to_string(count) + " segments exceeds the indirect table"};
  const uint32_t needed = use_indirect ? 1 : static_cast<uint32_t>(count);
  if (needed > free_count_)
    return Error{rpc::kBusy,
                 "virtqueue full (" + std::to_string(free_count_) + " free descriptors)"};

  const uint16_t head = free_head_;
  auto flags_of = [&](size_t i) {
    uint16_t f = i >= readable.size() ? vu::kDescFWrite : 0;
    if (i + 1 < count) f |= vu::kDescFNext;
    return f;
  };
  auto segment = [&](size_t i) {
    return i < readable.size() ? readable[i] : writable[i - readable.size()];
  };
  if (use_indirect) {
    uint8_t* table = indirect_tables_.host + 16ull * max_indirect_ * head;
    for (size_t i = 0; i < count; ++i) {
      const Segment s = segment(i);
      WriteDesc(table, static_cast<uint32_t>(i), s.gpa, s.len, flags_of(i),
                static_cast<uint16_t>(i + 1));
    }
    WriteDesc(desc(), head, indirect_tables_.gpa + 16ull * max_indirect_ * head,
              static_cast<uint32_t>(16 * count), vu::kDescFIndirect, 0);
    free_head_ = next_free_[head];
  } else {
    uint16_t idx = head;
    for (size_t i = 0; i < count; ++i) {
      const Segment s = segment(i);
      const uint16_t next = next_free_[idx];
      WriteDesc(desc(), idx, s.gpa, s.len, flags_of(i), i + 1 < count ? next : 0);
      idx = next;
    }
    free_head_ = idx;
  }
  free_count_ -= needed;
  chain_len_[head] = static_cast<uint16_t>(needed);
  chain_writable_[head] = writable_bytes;
  ++in_flight_;

  // Ring entry first, then the index with release ordering: the device must see the chain
  // complete once it sees the index.
  Store16(avail() + 4 + 2ull * (avail_idx_ & (size_ - 1)), head, std::memory_order_relaxed);
  ++avail_idx_;
  Store16(avail() + 2, avail_idx_, std::memory_order_release);
  return head;
}

bool DriverRing::NeedsKick() {
  // The index store must be visible before we read what the device asked for.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = kicked_idx_;
  kicked_idx_ = avail_idx_;
  if (old == avail_idx_) return false;
  if (!event_idx_) return !(Load16(used(), std::memory_order_relaxed) & kUsedFNoNotify);
  const uint16_t avail_event = Load16(used() + 4 + 8ull * size_, std::memory_order_relaxed);
  return vu::VringNeedEvent(avail_event, avail_idx_, old);
}

Result<std::optional<UsedElem>> DriverRing::PopUsed() {
  if (!broken_.empty()) return Error{rpc::kFailed, "virtqueue broken: " + broken_};
  const uint16_t used_idx = Load16(used() + 2, std::memory_order_acquire);
  if (used_idx == last_used_) return std::optional<UsedElem>();
  const uint16_t pending = static_cast<uint16_t>(used_idx - last_used_);
  if (pending > in_flight_)
    return Break("used index moved by " + std::to_string(pending) + " with " +
                 std::to_string(in_flight_) + " chains in flight");
  uint8_t* elem = used() + 4 + 8ull * (last_used_ & (size_ - 1));
  uint32_t id, len;
  std::memcpy(&id, elem, 4);
  std::memcpy(&len, elem + 4, 4);
  id = le32toh(id);
  len = le32toh(len);
  if (id >= size_ || chain_len_[id] == 0)
    return Break("used entry names head " + std::to_string(id) + ", which is not in flight");
  if (len > chain_writable_[id])
    return Break("used length " + std::to_string(len) + " exceeds the chain's " +
                 std::to_string(chain_writable_[id]) + " writable bytes");
  ++last_used_;

  // Give the chain's descriptors back: a direct chain was taken in free-list order, so
  // following next_free_ from the head finds its last descriptor.
  const uint16_t head = static_cast<uint16_t>(id);
  uint16_t last = head;
  for (uint16_t i = 1; i < chain_len_[head]; ++i) last = next_free_[last];
  next_free_[last] = free_head_;
  free_head_ = head;
  free_count_ += chain_len_[head];
  chain_len_[head] = 0;
  chain_writable_[head] = 0;
  --in_flight_;
  return std::optional<UsedElem>(UsedElem{head, len});
}

bool DriverRing::EnableInterrupts() {
  if (event_idx_)
    Store16(avail() + 4 + 2ull * size_, last_used_, std::memory_order_relaxed);
  else
    Store16(avail(), 0, std::memory_order_relaxed);
  // used_event / flags must be visible before we look at the used index once more.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return Load16(used() + 2, std::memory_order_acquire) == last_used_;
}

void DriverRing::DisableInterrupts() {
  if (!event_idx_) Store16(avail(), vu::kAvailFNoInterrupt, std::memory_order_relaxed);
}

}  // namespace dpustor::fs::vufs
