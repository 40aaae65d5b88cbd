// Virtqueue: chains, indirect tables, hostile rings, the used ring and notification rules.
#include "fs/transport/vhost_user/virtqueue.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "test_driver.h"

namespace dpustor::fs::vhost_user {
namespace {

using namespace testing;  // NOLINT

// Buffers live away from the rings: region A from 512 KiB, B and C anywhere.
constexpr uint64_t kBufA = kGpaA + 512 * 1024;

class VirtqueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mem_ = MakeGuestMemory();
    ASSERT_TRUE(mem_);
    driver_ = std::make_unique<TestDriver>(*mem_, 16);
  }
  std::unique_ptr<Virtqueue> Queue(bool event_idx = false, bool indirect = false) {
    auto q = Virtqueue::Create(*mem_, driver_->Config(event_idx, indirect));
    EXPECT_TRUE(q.ok()) << (q.ok() ? "" : q.error().message);
    return q.ok() ? std::move(*q) : nullptr;
  }
  void ExpectIov(const iovec& v, uint64_t gpa, size_t len) {
    EXPECT_EQ(v.iov_base, driver_->Host(gpa, len)) << "gpa " << gpa;
    EXPECT_EQ(v.iov_len, len);
  }
  // Offers chain `head` and expects PopChain to refuse it and break the queue.
  void ExpectBroken(uint16_t head, bool indirect = false) {
    auto q = Queue(false, indirect);
    ASSERT_TRUE(q);
    driver_->MakeAvail(head);
    auto r = q->PopChain();
    EXPECT_FALSE(r.ok());
    EXPECT_TRUE(q->broken());
    EXPECT_EQ(q->last_avail_idx(), 0);
    EXPECT_FALSE(q->PopChain().ok());  // stays broken
    EXPECT_FALSE(q->PushUsed(head, 0).ok());
  }

  std::unique_ptr<GuestMemory> mem_;
  std::unique_ptr<TestDriver> driver_;
};

TEST_F(VirtqueueTest, EmptyQueuePopsNothing) {
  auto q = Queue();
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_FALSE(q->broken());
}

TEST_F(VirtqueueTest, ChainAcrossRegions) {
  // Readable A, B, C then writable C, A; descriptor indices out of order.
  driver_->SetDesc(5, kBufA, 40, kDescFNext, 2);
  driver_->SetDesc(2, kGpaB + 100, 4096, kDescFNext, 11);
  driver_->SetDesc(11, kGpaC + kRegionSize - 16, 16, kDescFNext, 0);
  driver_->SetDesc(0, kGpaC, 256, kDescFWrite | kDescFNext, 15);
  driver_->SetDesc(15, kBufA + 8192, 8192, kDescFWrite);
  driver_->MakeAvail(5);
  auto q = Queue();
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r->has_value());
  const Chain& c = **r;
  EXPECT_EQ(c.head, 5);
  ASSERT_EQ(c.in.size(), 3u);
  ASSERT_EQ(c.out.size(), 2u);
  ExpectIov(c.in[0], kBufA, 40);
  ExpectIov(c.in[1], kGpaB + 100, 4096);
  ExpectIov(c.in[2], kGpaC + kRegionSize - 16, 16);
  ExpectIov(c.out[0], kGpaC, 256);
  ExpectIov(c.out[1], kBufA + 8192, 8192);
  EXPECT_EQ(c.in_bytes, 40u + 4096 + 16);
  EXPECT_EQ(c.out_bytes, 256u + 8192);
  EXPECT_EQ(q->last_avail_idx(), 1);
  auto empty = q->PopChain();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST_F(VirtqueueTest, ZeroLengthDescriptorsAreSkipped) {
  driver_->SetDesc(0, 0xdeadbeef00, 0, kDescFNext, 1);  // no buffer, address never used
  driver_->SetDesc(1, kGpaB, 8, 0);
  driver_->MakeAvail(0);
  auto q = Queue();
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value());
  ASSERT_EQ((*r)->in.size(), 1u);
  ExpectIov((*r)->in[0], kGpaB, 8);
}

TEST_F(VirtqueueTest, ChainAsLongAsTheQueue) {
  for (uint16_t i = 0; i < 16; ++i)
    driver_->SetDesc(i, kGpaB + 64ull * i, 64, i < 15 ? kDescFNext : 0, i + 1);
  driver_->MakeAvail(0);
  auto q = Queue();
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value()) << (r.ok() ? "" : r.error().message);
  EXPECT_EQ((*r)->in.size(), 16u);
}

TEST_F(VirtqueueTest, SeveralChainsAcrossAvailIndexWrap) {
  driver_->SetAvailIdx(65534);
  auto q = Queue();
  EXPECT_EQ(q->last_avail_idx(), 65534);
  for (uint16_t i = 0; i < 5; ++i) {
    driver_->SetDesc(i, kGpaB + 512ull * i, 100 + i, kDescFWrite);
    driver_->MakeAvail(i);
  }
  for (uint16_t i = 0; i < 5; ++i) {
    auto r = q->PopChain();
    ASSERT_TRUE(r.ok() && r->has_value());
    EXPECT_EQ((*r)->head, i);
    ASSERT_EQ((*r)->out.size(), 1u);
    ExpectIov((*r)->out[0], kGpaB + 512ull * i, 100 + i);
  }
  EXPECT_EQ(q->last_avail_idx(), 3);
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST_F(VirtqueueTest, SetLastAvailIdxResumes) {
  driver_->SetDesc(3, kGpaB, 8, 0);
  driver_->MakeAvail(3);
  driver_->MakeAvail(3);
  auto q = Queue();
  q->SetLastAvailIdx(1);  // the first one was served before a reconnect
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(q->last_avail_idx(), 2);
  EXPECT_FALSE(q->PopChain()->has_value());
}

TEST_F(VirtqueueTest, IndirectTable) {
  const uint64_t table = kGpaC + 4096;
  driver_->SetDescAt(table, 0, kBufA, 48, kDescFNext, 2);
  driver_->SetDescAt(table, 2, kGpaB, 80, kDescFNext, 1);
  driver_->SetDescAt(table, 1, kGpaC + 8192, 4096, kDescFWrite | kDescFNext, 3);
  driver_->SetDescAt(table, 3, kGpaB + 8192, 16, kDescFWrite);
  driver_->SetDesc(7, table, 4 * 16, kDescFIndirect);
  driver_->MakeAvail(7);
  auto q = Queue(false, true);
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value()) << (r.ok() ? "" : r.error().message);
  const Chain& c = **r;
  EXPECT_EQ(c.head, 7);
  ASSERT_EQ(c.in.size(), 2u);
  ASSERT_EQ(c.out.size(), 2u);
  ExpectIov(c.in[0], kBufA, 48);
  ExpectIov(c.in[1], kGpaB, 80);
  ExpectIov(c.out[0], kGpaC + 8192, 4096);
  ExpectIov(c.out[1], kGpaB + 8192, 16);
}

TEST_F(VirtqueueTest, IndirectTableLongerThanTheQueue) {
  const uint64_t table = kGpaB;
  for (uint16_t i = 0; i < 100; ++i)
    driver_->SetDescAt(table, i, kGpaC + 100ull * i, 100, i < 99 ? kDescFNext : 0, i + 1);
  driver_->SetDesc(0, table, 100 * 16, kDescFIndirect);
  driver_->MakeAvail(0);
  auto q = Queue(false, true);
  auto r = q->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value()) << (r.ok() ? "" : r.error().message);
  EXPECT_EQ((*r)->in.size(), 100u);
}

// --- hostile rings -------------------------------------------------------------------

TEST_F(VirtqueueTest, BufferInTheHole) {
  driver_->SetDesc(0, kGpaA + kRegionSize + 10, 10, 0);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, BufferStraddlingTwoRegions) {
  driver_->SetDesc(0, kGpaC - 8, 16, 0);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, BufferWrappingTheAddressSpace) {
  driver_->SetDesc(0, UINT64_MAX - 7, 16, 0);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, NextIndexOutOfRange) {
  driver_->SetDesc(0, kGpaB, 16, kDescFNext, 16);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, HeadOutOfRange) {
  ExpectBroken(16);
}

TEST_F(VirtqueueTest, Loop) {
  driver_->SetDesc(0, kGpaB, 16, kDescFNext, 1);
  driver_->SetDesc(1, kGpaB, 16, kDescFNext, 0);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, SelfLoop) {
  driver_->SetDesc(4, kGpaB, 16, kDescFWrite | kDescFNext, 4);
  ExpectBroken(4);
}

TEST_F(VirtqueueTest, ReadableAfterWritable) {
  driver_->SetDesc(0, kGpaB, 16, kDescFWrite | kDescFNext, 1);
  driver_->SetDesc(1, kGpaB + 16, 16, 0);
  ExpectBroken(0);
}

TEST_F(VirtqueueTest, ChainTooManyBytes) {
  VirtqueueConfig c = driver_->Config();
  c.max_chain_bytes = 1000;
  driver_->SetDesc(0, kGpaB, 600, kDescFNext, 1);
  driver_->SetDesc(1, kGpaC, 600, kDescFWrite);
  driver_->MakeAvail(0);
  auto q = Virtqueue::Create(*mem_, c);
  ASSERT_TRUE(q.ok());
  EXPECT_FALSE((*q)->PopChain().ok());
  EXPECT_TRUE((*q)->broken());
}

TEST_F(VirtqueueTest, IndirectNotNegotiated) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, 0, 0);
  driver_->SetDesc(0, kGpaB, 16, kDescFIndirect);
  ExpectBroken(0, /*indirect=*/false);
}

TEST_F(VirtqueueTest, IndirectZeroLength) {
  driver_->SetDesc(0, kGpaB, 0, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectLengthNotMultipleOf16) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, 0, 0);
  driver_->SetDesc(0, kGpaB, 24, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectTableTooLarge) {
  driver_->SetDesc(0, kGpaB, 1025 * 16, kDescFIndirect);  // bound is 1024 entries
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectTableHuge) {
  driver_->SetDesc(0, kGpaB, 0xfffffff0u, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectTableOutsideMemory) {
  driver_->SetDesc(0, kGpaC - 16, 32, kDescFIndirect);  // straddles B and C
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, NestedIndirect) {
  driver_->SetDescAt(kGpaB + 4096, 0, kGpaC, 16, 0, 0);
  driver_->SetDescAt(kGpaB, 0, kGpaB + 4096, 16, kDescFIndirect, 0);
  driver_->SetDesc(0, kGpaB, 16, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectWithNext) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, 0, 0);
  driver_->SetDesc(0, kGpaB, 16, kDescFIndirect | kDescFNext, 1);
  driver_->SetDesc(1, kGpaC, 16, kDescFWrite);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectAfterDirectDescriptor) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, 0, 0);
  driver_->SetDesc(0, kGpaC, 16, kDescFNext, 1);
  driver_->SetDesc(1, kGpaB, 16, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectNextOutOfTable) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, kDescFNext, 2);  // table has 2 entries
  driver_->SetDescAt(kGpaB, 1, kGpaC, 16, 0, 0);
  driver_->SetDesc(0, kGpaB, 32, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, IndirectLoop) {
  driver_->SetDescAt(kGpaB, 0, kGpaC, 16, kDescFNext, 1);
  driver_->SetDescAt(kGpaB, 1, kGpaC, 16, kDescFNext, 0);
  driver_->SetDesc(0, kGpaB, 32, kDescFIndirect);
  ExpectBroken(0, true);
}

TEST_F(VirtqueueTest, AvailIndexJumpsPastQueueSize) {
  driver_->SetDesc(0, kGpaB, 16, 0);
  auto q = Queue();
  driver_->SetAvailIdx(17);
  EXPECT_FALSE(q->PopChain().ok());
  EXPECT_TRUE(q->broken());
}

TEST_F(VirtqueueTest, AvailIndexMovingBackwards) {
  driver_->SetAvailIdx(10);
  auto q = Queue();
  driver_->SetAvailIdx(9);  // 65535 entries "available"
  EXPECT_FALSE(q->PopChain().ok());
  EXPECT_TRUE(q->broken());
}

TEST_F(VirtqueueTest, FullQueueIsFine) {
  for (uint16_t i = 0; i < 16; ++i) {
    driver_->SetDesc(i, kGpaB + 16ull * i, 16, 0);
    driver_->MakeAvail(i);
  }
  auto q = Queue();
  for (int i = 0; i < 16; ++i) {
    auto r = q->PopChain();
    ASSERT_TRUE(r.ok() && r->has_value());
  }
  EXPECT_FALSE(q->PopChain()->has_value());
}

TEST_F(VirtqueueTest, CreateChecksConfig) {
  auto bad = [&](std::function<void(VirtqueueConfig&)> edit) {
    VirtqueueConfig c = driver_->Config();
    edit(c);
    return !Virtqueue::Create(*mem_, c).ok();
  };
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.size = 0; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.size = 24; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.size = 65536; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.desc_uaddr += 8; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.avail_uaddr += 1; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.used_uaddr += 2; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.desc_uaddr = kGpaB; }));  // a gpa, not a uaddr
  EXPECT_TRUE(bad([](VirtqueueConfig& c) { c.used_uaddr = kUserA + kRegionSize - 16; }));
  EXPECT_TRUE(bad([](VirtqueueConfig& c) {
    c.indirect = true;
    c.max_indirect = 0;
  }));
  EXPECT_FALSE(bad([](VirtqueueConfig&) {}));
  // The largest queue fits in region A.
  TestDriver big(*mem_, kMaxQueueSize);
  EXPECT_TRUE(Virtqueue::Create(*mem_, big.Config()).ok());
}

// --- used ring and notifications --------------------------------------------------------

TEST_F(VirtqueueTest, PushUsedPublishesElementAndIndex) {
  auto q = Queue();
  ASSERT_TRUE(q->PushUsed(3, 1234).ok());
  ASSERT_TRUE(q->PushUsed(9, 0).ok());
  EXPECT_EQ(driver_->UsedIdx(), 2);
  EXPECT_EQ(driver_->UsedElem(0), std::make_pair(3u, 1234u));
  EXPECT_EQ(driver_->UsedElem(1), std::make_pair(9u, 0u));
  EXPECT_FALSE(q->PushUsed(16, 0).ok());
  EXPECT_EQ(driver_->UsedIdx(), 2);
}

TEST_F(VirtqueueTest, PushUsedContinuesFromRingAndWraps) {
  driver_->SetUsedIdx(65535);
  auto q = Queue();
  EXPECT_EQ(q->used_idx(), 65535);
  ASSERT_TRUE(q->PushUsed(1, 11).ok());
  ASSERT_TRUE(q->PushUsed(2, 22).ok());
  EXPECT_EQ(driver_->UsedIdx(), 1);
  EXPECT_EQ(driver_->UsedElem(65535), std::make_pair(1u, 11u));  // slot 15
  EXPECT_EQ(driver_->UsedElem(0), std::make_pair(2u, 22u));
}

TEST_F(VirtqueueTest, NotifyHonoursNoInterruptWithoutEventIdx) {
  auto q = Queue();
  ASSERT_TRUE(q->PushUsed(0, 0).ok());
  EXPECT_TRUE(q->NeedsNotify());
  driver_->SetAvailFlags(kAvailFNoInterrupt);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());
  EXPECT_FALSE(q->NeedsNotify());
  driver_->SetAvailFlags(0);
  EXPECT_TRUE(q->NeedsNotify());
}

TEST_F(VirtqueueTest, NotifyWithEventIdx) {
  auto q = Queue(/*event_idx=*/true);
  driver_->SetAvailFlags(kAvailFNoInterrupt);  // ignored with EVENT_IDX
  driver_->SetUsedEvent(0);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // used 0 -> 1
  EXPECT_TRUE(q->NeedsNotify());        // first decision always notifies
  driver_->SetUsedEvent(3);             // "interrupt me once entry 3 is used"
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 2
  EXPECT_FALSE(q->NeedsNotify());
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 3
  EXPECT_FALSE(q->NeedsNotify());
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 4: crossed used_event 3
  EXPECT_TRUE(q->NeedsNotify());
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 5, used_event still 3: already signalled
  EXPECT_FALSE(q->NeedsNotify());
  driver_->SetUsedEvent(5);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 6 with several at once
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 7
  EXPECT_TRUE(q->NeedsNotify());
}

TEST_F(VirtqueueTest, NotifyWithEventIdxAcrossWrap) {
  driver_->SetUsedIdx(65533);
  auto q = Queue(true);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 65534
  EXPECT_TRUE(q->NeedsNotify());
  driver_->SetUsedEvent(65535);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 65535
  EXPECT_FALSE(q->NeedsNotify());
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 0: crossed 65535
  EXPECT_TRUE(q->NeedsNotify());
  driver_->SetUsedEvent(1);
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 1
  EXPECT_FALSE(q->NeedsNotify());
  ASSERT_TRUE(q->PushUsed(0, 0).ok());  // -> 2
  EXPECT_TRUE(q->NeedsNotify());
}

TEST(VringNeedEventTest, Formula) {
  EXPECT_TRUE(VringNeedEvent(0, 1, 0));
  EXPECT_FALSE(VringNeedEvent(1, 1, 0));
  EXPECT_TRUE(VringNeedEvent(5, 10, 0));
  EXPECT_FALSE(VringNeedEvent(10, 10, 0));
  EXPECT_TRUE(VringNeedEvent(65535, 0, 65535));
  EXPECT_TRUE(VringNeedEvent(65535, 2, 65534));
  EXPECT_FALSE(VringNeedEvent(2, 2, 65534));
  EXPECT_FALSE(VringNeedEvent(3, 3, 3));  // nothing new
}

TEST_F(VirtqueueTest, AvailEventFollowsPops) {
  for (uint16_t i = 0; i < 3; ++i) {
    driver_->SetDesc(i, kGpaB, 8, 0);
    driver_->MakeAvail(i);
  }
  auto q = Queue(true);
  ASSERT_TRUE(q->PopChain()->has_value());
  EXPECT_EQ(driver_->AvailEvent(), 1);
  ASSERT_TRUE(q->PopChain()->has_value());
  ASSERT_TRUE(q->PopChain()->has_value());
  EXPECT_EQ(driver_->AvailEvent(), 3);
  EXPECT_FALSE(q->PopChain()->has_value());
  EXPECT_EQ(driver_->AvailEvent(), 3);
  q->SetAvailEvent(7);
  EXPECT_EQ(driver_->AvailEvent(), 7);
}

TEST_F(VirtqueueTest, NoAvailEventWithoutEventIdx) {
  auto q = Queue(false);
  q->SetAvailEvent(7);
  EXPECT_EQ(driver_->AvailEvent(), 0);
}

}  // namespace
}  // namespace dpustor::fs::vhost_user
