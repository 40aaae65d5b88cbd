// The driver side (DriverRing) against the project's device side (vhost_user::Virtqueue),
// both on the same memfd, the device through its own GuestMemory mapping as a back-end has.
#include "fs/vufs/driver_ring.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/json_rpc.h"
#include "fs/transport/vhost_user/guest_memory.h"
#include "fs/transport/vhost_user/virtqueue.h"

namespace dpustor::fs::vufs {
namespace {

namespace vu = dpustor::fs::vhost_user;

class DriverRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ram = GuestRam::Create(4 << 20);
    ASSERT_TRUE(ram.ok());
    ram_ = std::move(*ram);
    vu::MemoryRegionDesc region{0, ram_->size(), ram_->user_addr(0), 0};
    const int fd = ram_->fd();
    auto mem = vu::GuestMemory::Map({&region, 1}, {&fd, 1});
    ASSERT_TRUE(mem.ok()) << mem.error().message;
    mem_ = std::move(*mem);
  }

  void Start(DriverRingOptions o) {
    auto ring = DriverRing::Create(*ram_, o);
    ASSERT_TRUE(ring.ok()) << ring.error().message;
    ring_ = std::move(*ring);
    vu::VirtqueueConfig c;
    c.size = o.size;
    c.desc_uaddr = ram_->user_addr(ring_->desc_gpa());
    c.avail_uaddr = ram_->user_addr(ring_->avail_gpa());
    c.used_uaddr = ram_->user_addr(ring_->used_gpa());
    c.event_idx = o.event_idx;
    c.indirect = o.indirect;
    c.last_avail_idx = o.first_index;
    auto vq = vu::Virtqueue::Create(*mem_, c);
    ASSERT_TRUE(vq.ok()) << vq.error().message;
    device_ = std::move(*vq);
  }

  GuestBuffer Buffer(const std::string& text, uint64_t len = 0) {
    auto b = ram_->Allocate(len ? len : text.size(), 64);
    EXPECT_TRUE(b.ok());
    std::memcpy(b->host, text.data(), text.size());
    return *b;
  }

  vu::Chain Pop() {
    auto c = device_->PopChain();
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    EXPECT_TRUE(c.ok() && c->has_value());
    return c.ok() && c->has_value() ? std::move(**c) : vu::Chain{};
  }

  std::unique_ptr<GuestRam> ram_;
  std::unique_ptr<vu::GuestMemory> mem_;
  std::unique_ptr<DriverRing> ring_;
  std::unique_ptr<vu::Virtqueue> device_;
};

std::string Str(const iovec& v) {
  return {static_cast<const char*>(v.iov_base), v.iov_len};
}

TEST_F(DriverRingTest, ChainRoundTrip) {
  Start({.size = 8});
  GuestBuffer req = Buffer("request"), payload = Buffer("payload"), reply = Buffer("", 32);
  Segment r[] = {{req.gpa, 7}, {payload.gpa, 7}};
  Segment w[] = {{reply.gpa, 32}};
  auto head = ring_->Submit(r, w);
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_EQ(ring_->free_descriptors(), 5u);
  EXPECT_TRUE(ring_->NeedsKick());

  vu::Chain c = Pop();
  EXPECT_EQ(c.head, *head);
  ASSERT_EQ(c.in.size(), 2u);
  ASSERT_EQ(c.out.size(), 1u);
  EXPECT_EQ(Str(c.in[0]), "request");
  EXPECT_EQ(Str(c.in[1]), "payload");
  EXPECT_EQ(c.out_bytes, 32u);
  std::memcpy(c.out[0].iov_base, "answer", 6);
  ASSERT_TRUE(device_->PushUsed(c.head, 6).ok());

  auto used = ring_->PopUsed();
  ASSERT_TRUE(used.ok() && used->has_value());
  EXPECT_EQ((*used)->head, *head);
  EXPECT_EQ((*used)->len, 6u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(reply.host), 6), "answer");
  EXPECT_EQ(ring_->free_descriptors(), 8u);
  EXPECT_EQ(ring_->in_flight(), 0u);
  auto none = ring_->PopUsed();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

// Fill the ring, complete out of order, fill it again: the free list survives.
TEST_F(DriverRingTest, FullRingAndOutOfOrderCompletion) {
  Start({.size = 16});
  GuestBuffer b = Buffer("x", 64);
  for (int round = 0; round < 3; ++round) {
    std::vector<uint16_t> heads;
    for (;;) {
      Segment r[] = {{b.gpa, 8}};
      Segment w[] = {{b.gpa + 8, 8}, {b.gpa + 16, 8}};
      auto h = ring_->Submit(r, w);
      if (!h.ok()) {
        EXPECT_EQ(h.error().code, rpc::kBusy);
        break;
      }
      heads.push_back(*h);
    }
    ASSERT_EQ(heads.size(), 5u);  // 16 descriptors / 3 per chain
    std::vector<vu::Chain> chains;
    for (size_t i = 0; i < heads.size(); ++i) chains.push_back(Pop());
    for (size_t i = chains.size(); i-- > 0;)
      ASSERT_TRUE(device_->PushUsed(chains[i].head, static_cast<uint32_t>(i)).ok());
    for (size_t i = chains.size(); i-- > 0;) {
      auto u = ring_->PopUsed();
      ASSERT_TRUE(u.ok() && u->has_value());
      EXPECT_EQ((*u)->head, chains[i].head);
      EXPECT_EQ((*u)->len, i);
    }
    EXPECT_EQ(ring_->free_descriptors(), 16u);
  }
}

TEST_F(DriverRingTest, IndirectChainUsesOneDescriptor) {
  Start({.size = 4, .indirect = true, .max_indirect = 8});
  GuestBuffer a = Buffer("aa"), b2 = Buffer("bbb"), out = Buffer("", 16);
  Segment r[] = {{a.gpa, 2}, {b2.gpa, 3}};
  Segment w[] = {{out.gpa, 8}, {out.gpa + 8, 8}};
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring_->Submit(r, w).ok());
  EXPECT_EQ(ring_->free_descriptors(), 0u);
  vu::Chain c = Pop();
  ASSERT_EQ(c.in.size(), 2u);
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(Str(c.in[1]), "bbb");
  ASSERT_TRUE(device_->PushUsed(c.head, 16).ok());
  ASSERT_TRUE(ring_->PopUsed().ok());
  EXPECT_EQ(ring_->free_descriptors(), 1u);
  Segment too_many[9];
  for (auto& s : too_many) s = {a.gpa, 1};
  EXPECT_FALSE(ring_->Submit(too_many, {}).ok());
}

TEST_F(DriverRingTest, RefusesBadChains) {
  Start({.size = 4});
  GuestBuffer a = Buffer("a");
  EXPECT_FALSE(ring_->Submit({}, {}).ok());
  Segment zero[] = {{a.gpa, 0}};
  EXPECT_FALSE(ring_->Submit(zero, {}).ok());
  Segment five[5] = {{a.gpa, 1}, {a.gpa, 1}, {a.gpa, 1}, {a.gpa, 1}, {a.gpa, 1}};
  auto full = ring_->Submit(five, {});
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, rpc::kBusy);
  EXPECT_EQ(ring_->free_descriptors(), 4u);
  EXPECT_EQ(ring_->avail_idx(), 0u);
}

// A device naming a head that is not in flight, or claiming more bytes than the chain can
// hold, breaks the ring instead of corrupting it.
TEST_F(DriverRingTest, HostileUsedEntriesBreakTheRing) {
  Start({.size = 8});
  GuestBuffer a = Buffer("a", 16);
  Segment r[] = {{a.gpa, 1}};
  Segment w[] = {{a.gpa + 8, 8}};
  auto head = ring_->Submit(r, w);
  ASSERT_TRUE(head.ok());
  vu::Chain c = Pop();
  ASSERT_TRUE(device_->PushUsed(static_cast<uint16_t>(c.head + 1), 0).ok());
  auto u = ring_->PopUsed();
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("not in flight"), std::string::npos) << u.error().message;
  EXPECT_TRUE(ring_->broken());
  EXPECT_FALSE(ring_->Submit(r, w).ok());

  Start({.size = 8});
  ASSERT_TRUE(ring_->Submit(r, w).ok());
  c = Pop();
  ASSERT_TRUE(device_->PushUsed(c.head, 9).ok());  // 8 writable bytes
  u = ring_->PopUsed();
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("exceeds"), std::string::npos) << u.error().message;
}

// EVENT_IDX: the driver kicks only when the device's avail_event asks for it, and the device
// calls only when used_event asks for it.
TEST_F(DriverRingTest, EventIdxSuppressesKicksAndCalls) {
  Start({.size = 8, .event_idx = true});
  GuestBuffer a = Buffer("a", 16);
  Segment r[] = {{a.gpa, 1}};
  auto submit = [&] { ASSERT_TRUE(ring_->Submit(r, {}).ok()); };

  submit();
  EXPECT_TRUE(ring_->NeedsKick());   // avail_event 0: the device waits for entry 0
  EXPECT_FALSE(ring_->NeedsKick());  // nothing new since
  vu::Chain c1 = Pop();              // the device now asks for a kick at entry 1
  submit();
  submit();
  EXPECT_TRUE(ring_->NeedsKick());  // entry 1 went in
  submit();
  EXPECT_FALSE(ring_->NeedsKick());  // the device has not caught up: no kick needed
  vu::Chain c2 = Pop(), c3 = Pop(), c4 = Pop();
  auto idle = device_->PopChain();  // nothing left; asks for a kick at entry 4
  ASSERT_TRUE(idle.ok());
  EXPECT_FALSE(idle->has_value());
  submit();
  EXPECT_TRUE(ring_->NeedsKick());

  // Calls: armed at used index 0, so the first completion calls, the next does not.
  EXPECT_TRUE(ring_->EnableInterrupts());
  ASSERT_TRUE(device_->PushUsed(c1.head, 0).ok());
  EXPECT_TRUE(device_->NeedsNotify());
  ASSERT_TRUE(device_->PushUsed(c2.head, 0).ok());
  EXPECT_FALSE(device_->NeedsNotify());
  // Re-arming with completions pending says "do not sleep".
  EXPECT_FALSE(ring_->EnableInterrupts());
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(ring_->PopUsed().ok());
  EXPECT_TRUE(ring_->EnableInterrupts());  // used_event = 2
  ASSERT_TRUE(device_->PushUsed(c3.head, 0).ok());
  EXPECT_TRUE(device_->NeedsNotify());
  ASSERT_TRUE(device_->PushUsed(c4.head, 0).ok());
  EXPECT_FALSE(device_->NeedsNotify());
}

// Without EVENT_IDX: the flags do the job.
TEST_F(DriverRingTest, FlagsWithoutEventIdx) {
  Start({.size = 8});
  GuestBuffer a = Buffer("a", 16);
  Segment r[] = {{a.gpa, 1}};
  ASSERT_TRUE(ring_->Submit(r, {}).ok());
  EXPECT_TRUE(ring_->NeedsKick());
  vu::Chain c = Pop();
  ring_->DisableInterrupts();
  ASSERT_TRUE(device_->PushUsed(c.head, 0).ok());
  EXPECT_FALSE(device_->NeedsNotify());
  EXPECT_FALSE(ring_->EnableInterrupts());  // a completion is already there
  ASSERT_TRUE(ring_->Submit(r, {}).ok());
  c = Pop();
  ASSERT_TRUE(device_->PushUsed(c.head, 0).ok());
  EXPECT_TRUE(device_->NeedsNotify());
}

// Indexes wrap at 65536: start both sides just below it and run chains across the wrap,
// checking every kick/call decision and every used entry.
TEST_F(DriverRingTest, EventIdxAcrossIndexWrap) {
  Start({.size = 4, .event_idx = true, .first_index = 65533});
  GuestBuffer a = Buffer("a", 64);
  // The device's queue thread looks once when it starts, which publishes avail_event.
  auto first = device_->PopChain();
  ASSERT_TRUE(first.ok() && !first->has_value());
  for (uint32_t i = 0; i < 12; ++i) {
    Segment r[] = {{a.gpa, 1}};
    Segment w[] = {{a.gpa + 8, 4}};
    auto h = ring_->Submit(r, w);
    ASSERT_TRUE(h.ok()) << i;
    // The device popped everything before and is waiting for exactly this entry.
    EXPECT_TRUE(ring_->NeedsKick()) << i;
    vu::Chain c = Pop();
    EXPECT_EQ(c.head, *h);
    auto idle = device_->PopChain();
    ASSERT_TRUE(idle.ok() && !idle->has_value());
    ASSERT_TRUE(ring_->EnableInterrupts());
    ASSERT_TRUE(device_->PushUsed(c.head, i % 5).ok());
    EXPECT_TRUE(device_->NeedsNotify()) << i;
    auto u = ring_->PopUsed();
    ASSERT_TRUE(u.ok() && u->has_value()) << i;
    EXPECT_EQ((*u)->head, *h);
    EXPECT_EQ((*u)->len, i % 5);
  }
  EXPECT_EQ(ring_->avail_idx(), static_cast<uint16_t>(65533 + 12));
  EXPECT_EQ(ring_->last_used_idx(), static_cast<uint16_t>(65533 + 12));
  EXPECT_EQ(device_->used_idx(), ring_->last_used_idx());
}

}  // namespace
}  // namespace dpustor::fs::vufs
