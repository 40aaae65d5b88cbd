#include "fs/transport/vhost_user/virtqueue.h"

#include <endian.h>

#include <atomic>
#include <cstring>
#include <string>

#include "common/json_rpc.h"

namespace dpustor::fs::vhost_user {
namespace {

// Avail ring: flags, idx, ring[size], used_event. Used ring: flags, idx, ring[size] of
// {id, len}, avail_event.
constexpr size_t kAvailRingOff = 4;
constexpr size_t kUsedRingOff = 4;
constexpr size_t kUsedElemSize = 8;

uint16_t* U16(uint8_t* p) {
  return reinterpret_cast<uint16_t*>(p);
}
uint32_t* U32(uint8_t* p) {
  return reinterpret_cast<uint32_t*>(p);
}

uint16_t LoadRelaxed16(uint8_t* p) {
  return le16toh(std::atomic_ref<uint16_t>(*U16(p)).load(std::memory_order_relaxed));
}
uint16_t LoadAcquire16(uint8_t* p) {
  return le16toh(std::atomic_ref<uint16_t>(*U16(p)).load(std::memory_order_acquire));
}
void StoreRelaxed16(uint8_t* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*U16(p)).store(htole16(v), std::memory_order_relaxed);
}
void StoreRelease16(uint8_t* p, uint16_t v) {
  std::atomic_ref<uint16_t>(*U16(p)).store(htole16(v), std::memory_order_release);
}
void StoreRelaxed32(uint8_t* p, uint32_t v) {
  std::atomic_ref<uint32_t>(*U32(p)).store(htole32(v), std::memory_order_relaxed);
}

// Reads one descriptor exactly once: the copy is what gets checked and used, whatever the
// guest writes meanwhile (the compiler barrier forbids re-reading guest memory).
VringDesc ReadDesc(const uint8_t* table, uint32_t i) {
  VringDesc d;
  std::memcpy(&d, table + static_cast<size_t>(i) * sizeof(VringDesc), sizeof d);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  d.addr = le64toh(d.addr);
  d.len = le32toh(d.len);
  d.flags = le16toh(d.flags);
  d.next = le16toh(d.next);
  return d;
}

bool Aligned(const void* p, uintptr_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

}  // namespace

Result<std::unique_ptr<Virtqueue>> Virtqueue::Create(const GuestMemory& memory,
                                                     const VirtqueueConfig& c) {
  if (c.size == 0 || c.size > kMaxQueueSize || (c.size & (c.size - 1)) != 0)
    return rpc::InvalidParams("virtqueue size " + std::to_string(c.size) +
                              " is not a power of two <= 32768");
  if (c.desc_uaddr % 16 || c.avail_uaddr % 2 || c.used_uaddr % 4)
    return rpc::InvalidParams("virtqueue ring addresses misaligned");
  if (c.indirect && (c.max_indirect == 0 || c.max_indirect > kMaxQueueSize))
    return rpc::InvalidParams("virtqueue indirect table bound out of range");
  const uint64_t n = c.size;
  auto desc = memory.TranslateUser(c.desc_uaddr, n * sizeof(VringDesc));
  if (!desc) return rpc::InvalidParams("virtqueue descriptor table: " + desc.error().message);
  auto avail = memory.TranslateUser(c.avail_uaddr, kAvailRingOff + 2 * n + 2);
  if (!avail) return rpc::InvalidParams("virtqueue available ring: " + avail.error().message);
  auto used = memory.TranslateUser(c.used_uaddr, kUsedRingOff + kUsedElemSize * n + 2);
  if (!used) return rpc::InvalidParams("virtqueue used ring: " + used.error().message);
  if (!Aligned(avail->data(), 2) || !Aligned(used->data(), 4))
    return rpc::InvalidParams("virtqueue rings misaligned in host memory");

  std::unique_ptr<Virtqueue> q(new Virtqueue());
  q->mem_ = &memory;
  q->size_ = c.size;
  q->desc_ = desc->data();
  q->avail_ = avail->data();
  q->used_ = used->data();
  q->event_idx_ = c.event_idx;
  q->indirect_ = c.indirect;
  q->max_indirect_ = c.max_indirect;
  q->max_chain_bytes_ = c.max_chain_bytes;
  q->last_avail_idx_ = c.last_avail_idx;
  q->used_idx_ = LoadAcquire16(q->used_ + 2);
  return q;
}

Error Virtqueue::Break(std::string what) {
  broken_ = true;
  return rpc::InvalidParams("virtqueue broken: " + what);
}

Result<std::optional<Chain>> Virtqueue::PopChain() {
  if (broken_) return rpc::InvalidParams("virtqueue broken");
  uint16_t avail_idx = LoadAcquire16(avail_ + 2);
  if (avail_idx == last_avail_idx_) {
    if (!event_idx_) return std::optional<Chain>();
    // Ask for a kick on the next buffer, then look again: the driver may have added one
    // before it could see the new avail_event.
    SetAvailEvent(last_avail_idx_);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = LoadAcquire16(avail_ + 2);
    if (avail_idx == last_avail_idx_) return std::optional<Chain>();
  }
  const uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_idx_);
  if (pending > size_)
    return Break("available index moved by " + std::to_string(pending) + " > queue size");

  const uint32_t slot = last_avail_idx_ & (size_ - 1);
  const uint16_t head = LoadRelaxed16(avail_ + kAvailRingOff + 2 * static_cast<size_t>(slot));
  if (head >= size_) return Break("head index " + std::to_string(head) + " out of range");

  Chain chain;
  chain.head = head;
  Status s = WalkChain(head, &chain);
  if (!s) return Break(s.error().message);

  ++last_avail_idx_;
  if (event_idx_) SetAvailEvent(last_avail_idx_);
  return std::optional<Chain>(std::move(chain));
}

Status Virtqueue::WalkChain(uint16_t head, Chain* chain) {
  const uint8_t* table = desc_;
  uint32_t table_size = size_;
  uint32_t budget = size_;  // descriptors this table may still yield (loop detection)
  bool in_indirect = false;
  bool seen_writable = false;
  uint32_t idx = head;
  for (bool first = true;; first = false) {
    if (idx >= table_size)
      return rpc::InvalidParams("descriptor index " + std::to_string(idx) + " out of range");
    if (budget == 0) return rpc::InvalidParams("descriptor chain loops or exceeds its table");
    --budget;
    VringDesc d = ReadDesc(table, idx);

    if (d.flags & kDescFIndirect) {
      if (!indirect_)
        return rpc::InvalidParams("indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
      if (in_indirect) return rpc::InvalidParams("nested indirect descriptor");
      if (!first) return rpc::InvalidParams("indirect descriptor not at the head of its chain");
      if (d.flags & kDescFNext) return rpc::InvalidParams("indirect descriptor with NEXT");
      if (d.len == 0 || d.len % sizeof(VringDesc) != 0)
        return rpc::InvalidParams("indirect table length " + std::to_string(d.len) +
                                  " not a multiple of 16");
      const uint32_t entries = d.len / sizeof(VringDesc);
      if (entries > max_indirect_)
        return rpc::InvalidParams("indirect table of " + std::to_string(entries) +
                                  " entries too large");
      auto t = mem_->Translate(d.addr, d.len);
      if (!t) return rpc::InvalidParams("indirect table: " + t.error().message);
      table = t->data();
      table_size = entries;
      budget = entries;
      in_indirect = true;
      idx = 0;
      continue;
    }

    Status s = AddBuffer(d, &seen_writable, chain);
    if (!s) return s;
    if (!(d.flags & kDescFNext)) return Status::Ok();
    idx = d.next;
  }
}

Status Virtqueue::AddBuffer(const VringDesc& d, bool* seen_writable, Chain* chain) {
  const bool writable = d.flags & kDescFWrite;
  if (!writable && *seen_writable)
    return rpc::InvalidParams("device-readable descriptor after a writable one");
  if (writable) *seen_writable = true;
  if (d.len == 0) return Status::Ok();  // nothing to map; still counted against the budget
  const uint64_t total = chain->in_bytes + chain->out_bytes + d.len;
  if (total > max_chain_bytes_)
    return rpc::InvalidParams("descriptor chain longer than the byte bound");
  auto span = mem_->Translate(d.addr, d.len);
  if (!span) return rpc::InvalidParams("descriptor buffer: " + span.error().message);
  iovec v{span->data(), span->size()};
  if (writable) {
    chain->out.push_back(v);
    chain->out_bytes += d.len;
  } else {
    chain->in.push_back(v);
    chain->in_bytes += d.len;
  }
  return Status::Ok();
}

Status Virtqueue::PushUsed(uint16_t head, uint32_t len) {
  if (broken_) return rpc::InvalidParams("virtqueue broken");
  if (head >= size_)
    return rpc::InvalidParams("used head " + std::to_string(head) + " out of range");
  const uint32_t slot = used_idx_ & (size_ - 1);
  uint8_t* elem = used_ + kUsedRingOff + kUsedElemSize * static_cast<size_t>(slot);
  StoreRelaxed32(elem, head);
  StoreRelaxed32(elem + 4, len);
  ++used_idx_;
  StoreRelease16(used_ + 2, used_idx_);
  return Status::Ok();
}

bool Virtqueue::NeedsNotify() {
  // The used index store must be visible before we read what the driver asked for.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) return !(LoadRelaxed16(avail_) & kAvailFNoInterrupt);
  const uint16_t old = signalled_used_;
  const bool valid = signalled_used_valid_;
  signalled_used_ = used_idx_;
  signalled_used_valid_ = true;
  if (!valid) return true;
  const uint16_t used_event =
      LoadRelaxed16(avail_ + kAvailRingOff + 2 * static_cast<size_t>(size_));
  return VringNeedEvent(used_event, used_idx_, old);
}

void Virtqueue::SetAvailEvent(uint16_t idx) {
  if (!event_idx_) return;
  StoreRelaxed16(used_ + kUsedRingOff + kUsedElemSize * static_cast<size_t>(size_), idx);
}

}  // namespace dpustor::fs::vhost_user
