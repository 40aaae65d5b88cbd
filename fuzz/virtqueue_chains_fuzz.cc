// Fuzzes the split virtqueue against a hostile driver: guest memory of 1-3 memfd regions
// (sizes, gaps in guest physical space, mmap offsets and user addresses from the input),
// rings at input-chosen (aligned or not) addresses, descriptor tables, indirect tables and
// ring indices written by the input, EVENT_IDX / INDIRECT_DESC and the bounds from the
// input, then PopChain / PushUsed / NeedsNotify / SetAvailEvent in an input-driven order.
//
// Input: [region count][per region: u16 size, offset byte, gap byte][queue size byte]
// [feature byte][u16 last_avail_idx][3 ring addresses] then operations, see Op below.
//
// Invariants (abort on violation): every iovec of a chain lies inside guest memory
// (GuestMemory::Contains and the layout the input chose), is non-empty, and is exactly the
// buffer its descriptor names, in chain order with the readable ones first; in_bytes and
// out_bytes are the sums and stay within the chain bound; a popped chain advances
// last_avail_idx by one; a failed pop leaves the queue broken, and a broken queue stays
// broken (pops and pushes refused) until it is created again; PushUsed writes exactly the
// used element and index; NeedsNotify and SetAvailEvent do what VIRTIO says. Each memfd
// ends where its region ends, so reading a page past a region faults.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "fs/transport/vhost_user/guest_memory.h"
#include "fs/transport/vhost_user/virtqueue.h"
#include "fuzz_input.h"

namespace {

using namespace dpustor::fs::vhost_user;

constexpr int kMaxRegions = 3;
constexpr int kMaxOps = 512;
int memfds[kMaxRegions];

using Input = FuzzInput;

struct Layout {
  std::vector<MemoryRegionDesc> regions;

  // An address inside (or just past) a region, or a raw one.
  uint64_t Gpa(Input& in) const {
    unsigned r = in.U8();
    if (r >= 0xf0) return in.U64();
    const MemoryRegionDesc& g = regions[r % regions.size()];
    return g.guest_phys_addr + in.U32() % (g.memory_size + 32);
  }
  uint64_t User(Input& in, uint64_t align) const {
    unsigned r = in.U8();
    if (r >= 0xf0) return in.U64();
    const MemoryRegionDesc& g = regions[r % regions.size()];
    uint64_t off = in.U32() % (g.memory_size + 32);
    if (!(r & 0x80)) off &= ~(align - 1);
    return g.userspace_addr + off;
  }
};

// The host bytes [gpa, gpa + len) by the input's own layout; nullptr when not in one region.
uint8_t* Host(const Layout& layout, const GuestMemory& mem, uint64_t gpa, uint64_t len) {
  for (size_t i = 0; i < layout.regions.size(); ++i) {
    const MemoryRegionDesc& r = layout.regions[i];
    if (gpa >= r.guest_phys_addr && gpa - r.guest_phys_addr < r.memory_size &&
        len <= r.memory_size - (gpa - r.guest_phys_addr))
      return mem.regions()[i].host + (gpa - r.guest_phys_addr);
  }
  return nullptr;
}

bool InsideLayout(const Layout& layout, const GuestMemory& mem, const iovec& v) {
  const uint8_t* p = static_cast<const uint8_t*>(v.iov_base);
  for (size_t i = 0; i < layout.regions.size(); ++i) {
    const uint8_t* h = mem.regions()[i].host;
    if (p >= h && v.iov_len <= layout.regions[i].memory_size &&
        static_cast<uint64_t>(p - h) <= layout.regions[i].memory_size - v.iov_len)
      return true;
  }
  return false;
}

VringDesc LoadDesc(const uint8_t* table, uint32_t i) {
  VringDesc d;
  std::memcpy(&d, table + 16ull * i, sizeof d);
  return d;
}

uint16_t Load16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
void Store16(uint8_t* p, uint16_t v) {
  std::memcpy(p, &v, 2);
}

struct Fuzz {
  Fuzz(const Layout& l, const GuestMemory& m, const VirtqueueConfig& c,
       std::unique_ptr<Virtqueue> q)
      : layout(l), mem(m), config(c), vq(std::move(q)) {}

  const Layout& layout;
  const GuestMemory& mem;
  VirtqueueConfig config;
  std::unique_ptr<Virtqueue> vq;
  uint8_t* desc = nullptr;  // the rings where the input placed them
  uint8_t* avail = nullptr;
  uint8_t* used = nullptr;
  uint16_t avail_idx = 0;  // the driver's next available index
  std::vector<Chain> pending;
  uint16_t signalled = 0;  // NeedsNotify model
  bool signalled_valid = false;

  uint8_t* AvailEvent() const { return used + 4 + 8ull * config.size; }
  uint8_t* UsedEvent() const { return avail + 4 + 2ull * config.size; }

  // A chain PopChain returned must be exactly what its descriptors say: walk them again,
  // without the checks (they passed), and compare buffer by buffer.
  void CheckChain(const Chain& c) {
    if (c.head >= config.size) abort();
    uint64_t in_bytes = 0, out_bytes = 0;
    for (const auto* list : {&c.in, &c.out}) {
      for (const iovec& v : *list) {
        if (v.iov_len == 0 || !mem.Contains(v.iov_base, v.iov_len)) abort();
        if (!InsideLayout(layout, mem, v)) abort();
        (list == &c.in ? in_bytes : out_bytes) += v.iov_len;
      }
    }
    if (in_bytes != c.in_bytes || out_bytes != c.out_bytes) abort();
    if (in_bytes + out_bytes > config.max_chain_bytes) abort();

    std::vector<iovec> expect_in, expect_out;
    const uint8_t* table = desc;
    uint32_t entries = config.size, idx = c.head;
    bool writable_seen = false;
    for (uint32_t steps = 0;; ++steps) {
      if (idx >= entries || steps > config.size + config.max_indirect) abort();
      VringDesc d = LoadDesc(table, idx);
      if (d.flags & kDescFIndirect) {
        table = Host(layout, mem, d.addr, d.len);
        if (!table) abort();
        entries = d.len / 16;
        idx = 0;
        continue;
      }
      const bool w = d.flags & kDescFWrite;
      if (!w && writable_seen) abort();  // readable after writable was accepted
      writable_seen |= w;
      if (d.len) {
        uint8_t* h = Host(layout, mem, d.addr, d.len);
        if (!h) abort();
        (w ? expect_out : expect_in).push_back({h, d.len});
      }
      if (!(d.flags & kDescFNext)) break;
      idx = d.next;
    }
    auto same = [](const std::vector<iovec>& a, const std::vector<iovec>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (a[i].iov_base != b[i].iov_base || a[i].iov_len != b[i].iov_len) return false;
      return true;
    };
    if (!same(expect_in, c.in) || !same(expect_out, c.out)) abort();
  }

  void Pop() {
    const bool was_broken = vq->broken();
    const uint16_t before = vq->last_avail_idx();
    const uint16_t old_event = Load16(AvailEvent());
    auto r = vq->PopChain();
    if (!r.ok()) {
      if (!vq->broken() || vq->last_avail_idx() != before) abort();
      return;
    }
    if (was_broken || vq->broken()) abort();
    if (!r->has_value()) {
      if (vq->last_avail_idx() != before) abort();
      if (config.event_idx && Load16(AvailEvent()) != before) abort();
      return;
    }
    if (vq->last_avail_idx() != static_cast<uint16_t>(before + 1)) abort();
    if (config.event_idx && Load16(AvailEvent()) != vq->last_avail_idx()) abort();
    // The walk reads guest memory as PopChain saw it: undo its avail_event store meanwhile
    // (a hostile layout may put the used ring over a descriptor table).
    const uint16_t new_event = Load16(AvailEvent());
    Store16(AvailEvent(), old_event);
    CheckChain(**r);
    Store16(AvailEvent(), new_event);
    if (pending.size() < 4096) pending.push_back(std::move(**r));
  }

  void Push(uint16_t head, uint32_t len) {
    const bool broken = vq->broken();
    const uint16_t u = vq->used_idx();
    auto s = vq->PushUsed(head, len);
    if (broken || head >= config.size) {
      if (s.ok() || vq->used_idx() != u) abort();
      return;
    }
    if (!s.ok() || vq->used_idx() != static_cast<uint16_t>(u + 1)) abort();
    const uint8_t* elem = used + 4 + 8ull * (u & (config.size - 1));
    if (Load32(elem) != head || Load32(elem + 4) != len) abort();
    if (Load16(used + 2) != vq->used_idx()) abort();
  }

  void NeedsNotify() {
    bool expect;
    if (!config.event_idx) {
      expect = !(Load16(avail) & kAvailFNoInterrupt);
    } else {
      expect = !signalled_valid || VringNeedEvent(Load16(UsedEvent()), vq->used_idx(), signalled);
      signalled = vq->used_idx();
      signalled_valid = true;
    }
    if (vq->NeedsNotify() != expect) abort();
  }

  void SetAvailEvent(uint16_t idx) {
    const uint16_t old = Load16(AvailEvent());
    vq->SetAvailEvent(idx);
    if (Load16(AvailEvent()) != (config.event_idx ? idx : old)) abort();
  }

  // As after GET_VRING_BASE / SET_VRING_BASE: a new queue on the same rings.
  bool Recreate(uint16_t base) {
    config.last_avail_idx = base;
    auto q = Virtqueue::Create(mem, config);
    if (!q.ok()) return false;
    vq = std::move(*q);
    if (vq->broken() || vq->last_avail_idx() != base || vq->used_idx() != Load16(used + 2)) abort();
    signalled_valid = false;
    return true;
  }

  void WriteDesc(uint8_t* table, uint32_t i, Input& in) {
    VringDesc d;
    d.addr = layout.Gpa(in);
    unsigned l = in.U16();
    d.len = (l & 0x8000) ? in.U32() : (l & 0x7fff);
    unsigned f = in.U8();
    d.flags = static_cast<uint16_t>((f & 0x80) ? f | (in.U8() << 8) : (f & 7));
    d.next = static_cast<uint16_t>(in.U16());
    std::memcpy(table + 16ull * i, &d, sizeof d);
  }
};

void MakeLayout(Input& in, Layout* layout) {
  const int n = 1 + in.U8() % kMaxRegions;
  uint64_t gpa_end = 0, user_end = 0x7f0000000000;
  for (int i = 0; i < n; ++i) {
    unsigned size_code = in.U16(), off = in.U8(), gap = in.U8();
    MemoryRegionDesc r;
    r.memory_size = ((size_code & 0x3f) + 1) * 4096ull - ((size_code >> 6) & 0xff);
    r.mmap_offset = (off & 3) * 4096ull + ((off & 4) ? (off >> 3) & 0xf : 0);
    // 0xff: at the very top of the address space; otherwise after a gap of `gap` pages.
    r.guest_phys_addr = gap == 0xff ? 0 - r.memory_size - 1 : gpa_end + gap * 4096ull;
    r.userspace_addr = (off & 0x80) ? user_end : user_end + (1ull << 32);
    gpa_end = r.guest_phys_addr + r.memory_size;
    user_end = r.userspace_addr + r.memory_size;
    // The file ends where the region ends: a read a page past it faults.
    if (::ftruncate(memfds[i], 0) != 0 ||
        ::ftruncate(memfds[i], static_cast<off_t>(r.mmap_offset + r.memory_size)) != 0)
      abort();
    layout->regions.push_back(r);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  for (int& fd : memfds) {
    fd = ::memfd_create("guest", MFD_CLOEXEC);
    if (fd < 0) abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  Layout layout;
  MakeLayout(in, &layout);
  auto mapped =
      GuestMemory::Map(layout.regions, std::span<const int>(memfds, layout.regions.size()));
  if (!mapped.ok()) return 0;
  const GuestMemory& mem = **mapped;

  // Queue size byte: a power of two up to 16384, or (>= 0xf0) a raw u16.
  VirtqueueConfig config;
  unsigned qs = in.U8();
  config.size = qs >= 0xf0 ? in.U16() : 1u << (qs % 15);
  // Features: bit 0 EVENT_IDX, bit 1 INDIRECT_DESC, bits 2-3 indirect table bound, bits
  // 4-5 chain byte bound.
  unsigned f = in.U8();
  static const uint32_t kMaxIndirect[] = {1024, 1, 4, kMaxQueueSize + 1};
  static const uint64_t kMaxBytes[] = {64u << 20, 64, 4096, UINT64_MAX};
  config.event_idx = f & 1;
  config.indirect = f & 2;
  config.max_indirect = kMaxIndirect[(f >> 2) & 3];
  config.max_chain_bytes = kMaxBytes[(f >> 4) & 3];
  config.last_avail_idx = static_cast<uint16_t>(in.U16());
  config.desc_uaddr = layout.User(in, 16);
  config.avail_uaddr = layout.User(in, 2);
  config.used_uaddr = layout.User(in, 4);
  auto q = Virtqueue::Create(mem, config);
  if (!q.ok()) return 0;

  const uint64_t n = config.size;
  Fuzz fz(layout, mem, config, std::move(*q));
  fz.desc = mem.TranslateUser(config.desc_uaddr, 16 * n)->data();
  fz.avail = mem.TranslateUser(config.avail_uaddr, 6 + 2 * n)->data();
  fz.used = mem.TranslateUser(config.used_uaddr, 6 + 8 * n)->data();
  fz.avail_idx = config.last_avail_idx;
  if (fz.vq->last_avail_idx() != config.last_avail_idx) abort();

  // Op byte % 12: 0 poke [gpa][u8 len][bytes], 1 ring descriptor [u16 index][descriptor],
  // 2 indirect table entry [gpa][u8 index][descriptor], 3 make available [u16 head],
  // 4 set the available index [u16], 5 PopChain, 6 PushUsed a popped chain [u8 which]
  // [u8 length mode], 7 PushUsed [u16 head][u32 length], 8 NeedsNotify, 9 SetAvailEvent
  // [u16], 10 ring flags/event fields [u8 which][u16 value], 11 re-create [u8 keep][u16].
  // Descriptor: [gpa][u16 length, bit 15: a u32 follows][flags byte, bit 7: a second
  // flags byte follows][u16 next]. Gpa: [region byte][u32 offset], or 0xf0+ then a u64.
  for (int op = 0; op < kMaxOps && in.left > 0; ++op) {
    switch (in.U8() % 12) {
      case 0: {
        uint64_t gpa = layout.Gpa(in);
        size_t len = std::min<size_t>(in.U8() + 1, in.left);
        uint8_t* h = len ? Host(layout, mem, gpa, len) : nullptr;
        if (h) std::memcpy(h, in.p, len);
        in.p += len;
        in.left -= len;
        break;
      }
      case 1:
        fz.WriteDesc(fz.desc, in.U16() % n, in);
        break;
      case 2: {
        uint64_t gpa = layout.Gpa(in);
        unsigned i = in.U8();
        if (uint8_t* h = Host(layout, mem, gpa + 16ull * i, 16)) {
          fz.WriteDesc(h - 16ull * i, i, in);
        } else {
          fz.WriteDesc(fz.desc, i % n, in);
        }
        break;
      }
      case 3:
        Store16(fz.avail + 4 + 2 * (fz.avail_idx % n), static_cast<uint16_t>(in.U16()));
        Store16(fz.avail + 2, ++fz.avail_idx);
        break;
      case 4:
        fz.avail_idx = static_cast<uint16_t>(in.U16());
        Store16(fz.avail + 2, fz.avail_idx);
        break;
      case 5:
        fz.Pop();
        break;
      case 6: {
        unsigned which = in.U8(), mode = in.U8();
        if (fz.pending.empty()) break;
        size_t i = which % fz.pending.size();
        const Chain& c = fz.pending[i];
        uint32_t len = mode & 1 ? static_cast<uint32_t>(c.out_bytes) : mode;
        fz.Push(c.head, len);
        fz.pending.erase(fz.pending.begin() + static_cast<long>(i));
        break;
      }
      case 7: {
        uint16_t head = static_cast<uint16_t>(in.U16());
        fz.Push(head, in.U32());
        break;
      }
      case 8:
        fz.NeedsNotify();
        break;
      case 9:
        fz.SetAvailEvent(static_cast<uint16_t>(in.U16()));
        break;
      case 10: {
        unsigned which = in.U8() % 4;
        uint16_t v = static_cast<uint16_t>(in.U16());
        uint8_t* at[] = {fz.avail, fz.UsedEvent(), fz.used, fz.used + 2};
        Store16(at[which], v);
        break;
      }
      default: {
        unsigned keep = in.U8();
        uint16_t base = static_cast<uint16_t>(in.U16());
        if (!fz.Recreate(keep & 1 ? fz.vq->last_avail_idx() : base)) return 0;
        break;
      }
    }
  }
  return 0;
}
