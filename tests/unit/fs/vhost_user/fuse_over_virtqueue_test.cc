// A FUSE request carried by a virtqueue chain: popped from guest memory, served by the
// Engine, answered in guest memory and returned through the used ring.
#include <gtest/gtest.h>
#include <linux/fuse.h>

#include <cstdint>
#include <cstring>

#include "fs/fuse/backend.h"
#include "fs/fuse/engine.h"
#include "fs/transport/vhost_user/virtqueue.h"
#include "test_driver.h"

namespace dpustor::fs::vhost_user {
namespace {

using namespace testing;  // NOLINT

class NullBackend : public Backend {};

// Returns the chain to the queue when the engine finishes it.
class UsedCompletion : public Completion {
 public:
  UsedCompletion(Virtqueue& q, uint16_t head) : q_(q), head_(head) {}
  void Complete(size_t reply_bytes) override {
    ++calls;
    bytes = reply_bytes;
    status = q_.PushUsed(head_, static_cast<uint32_t>(reply_bytes));
  }
  int calls = 0;
  size_t bytes = 0;
  Status status;

 private:
  Virtqueue& q_;
  uint16_t head_;
};

TEST(FuseOverVirtqueueTest, InitRequestRoundTrip) {
  auto mem = MakeGuestMemory();
  ASSERT_TRUE(mem);
  TestDriver d(*mem, 8);

  // The request: header in region A, arguments in region B.
  fuse_init_in init{};
  init.major = FUSE_KERNEL_VERSION;
  init.minor = FUSE_KERNEL_MINOR_VERSION;
  init.max_readahead = 128 * 1024;
  fuse_in_header h{};
  h.len = sizeof h + sizeof init;
  h.opcode = FUSE_INIT;
  h.unique = 77;
  const uint64_t hdr_gpa = kGpaA + 600 * 1024, args_gpa = kGpaB + 12345;
  d.Put(hdr_gpa, h);
  d.Put(args_gpa, init);
  // The reply buffers: the out header in C, the rest in A, pre-filled so writes show.
  const uint64_t out_hdr_gpa = kGpaC + 64, out_body_gpa = kGpaA + 700 * 1024;
  std::memset(d.Host(out_hdr_gpa, sizeof(fuse_out_header)), 0xAA, sizeof(fuse_out_header));
  std::memset(d.Host(out_body_gpa, 4096), 0xAA, 4096);

  d.SetDesc(6, hdr_gpa, sizeof h, kDescFNext, 1);
  d.SetDesc(1, args_gpa, sizeof init, kDescFNext, 3);
  d.SetDesc(3, out_hdr_gpa, sizeof(fuse_out_header), kDescFWrite | kDescFNext, 0);
  d.SetDesc(0, out_body_gpa, 4096, kDescFWrite);
  d.MakeAvail(6);

  auto q = Virtqueue::Create(*mem, d.Config(true, true));
  ASSERT_TRUE(q.ok()) << q.error().message;
  auto r = (*q)->PopChain();
  ASSERT_TRUE(r.ok() && r->has_value());
  const Chain& chain = **r;

  NullBackend backend;
  Engine engine(backend, EngineOptions{});
  UsedCompletion done(**q, chain.head);
  engine.Process(chain.in, chain.out, &done);
  ASSERT_EQ(done.calls, 1);  // INIT with this backend answers inline
  ASSERT_TRUE(done.status.ok());
  EXPECT_TRUE(engine.initialized());

  auto out_h = d.Get<fuse_out_header>(out_hdr_gpa);
  EXPECT_EQ(out_h.error, 0);
  EXPECT_EQ(out_h.unique, 77u);
  EXPECT_EQ(out_h.len, done.bytes);
  EXPECT_GT(done.bytes, sizeof(fuse_out_header));
  auto out = d.Get<fuse_init_out>(out_body_gpa);
  EXPECT_EQ(out.major, FUSE_KERNEL_VERSION);
  EXPECT_GT(out.max_write, 0u);

  EXPECT_EQ(d.UsedIdx(), 1);
  EXPECT_EQ(d.UsedElem(0), std::make_pair(6u, static_cast<uint32_t>(done.bytes)));
  EXPECT_TRUE((*q)->NeedsNotify());
}

}  // namespace
}  // namespace dpustor::fs::vhost_user
