#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "fs/vufs/fuse_client.h"

namespace dpustor::fs::vufs {
namespace {

TEST(FuseEncoding, RequestLayout) {
  std::vector<uint8_t> buf(256, 0xff);
  fuse_open_in in{};
  in.flags = 2;
  const size_t n = EncodeFuseRequest(buf, FUSE_CREATE, 42, 1,
                                     {reinterpret_cast<const uint8_t*>(&in), sizeof in}, "name");
  ASSERT_EQ(n, sizeof(fuse_in_header) + sizeof in + 5);
  fuse_in_header h;
  std::memcpy(&h, buf.data(), sizeof h);
  EXPECT_EQ(h.len, n);
  EXPECT_EQ(h.opcode, static_cast<uint32_t>(FUSE_CREATE));
  EXPECT_EQ(h.unique, 42u);
  EXPECT_EQ(h.nodeid, 1u);
  EXPECT_EQ(h.total_extlen, 0);
  EXPECT_EQ(std::memcmp(buf.data() + sizeof h + sizeof in, "name", 5), 0);

  // A write payload in its own buffer counts in len but is not copied.
  const size_t w = EncodeFuseRequest(buf, FUSE_WRITE, 1, 5, {}, {}, 4096);
  std::memcpy(&h, buf.data(), sizeof h);
  EXPECT_EQ(w, sizeof h);
  EXPECT_EQ(h.len, sizeof h + 4096);

  std::vector<uint8_t> small(sizeof(fuse_in_header) + 3);
  EXPECT_EQ(EncodeFuseRequest(small, FUSE_LOOKUP, 1, 1, {}, "abc"), 0u);  // NUL does not fit
}

TEST(FuseEncoding, ReplyChecks) {
  fuse_out_header ok{sizeof(fuse_out_header) + 8, 0, 7};
  auto len = CheckFuseReply(ok, sizeof(fuse_out_header) + 8, 7);
  ASSERT_TRUE(len.ok());
  EXPECT_EQ(*len, 8u);

  fuse_out_header enoent{sizeof(fuse_out_header), -ENOENT, 7};
  auto e = CheckFuseReply(enoent, sizeof(fuse_out_header), 7);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().code, -ENOENT);
  EXPECT_TRUE(IsFuseErrno(e.error()));

  auto protocol = [](fuse_out_header h, uint32_t used, uint64_t unique) {
    auto r = CheckFuseReply(h, used, unique);
    return !r.ok() && !IsFuseErrno(r.error());
  };
  EXPECT_TRUE(protocol(ok, sizeof(fuse_out_header) + 8, 8));  // someone else's reply
  EXPECT_TRUE(protocol(ok, sizeof(fuse_out_header) + 4, 7));  // len != bytes written
  EXPECT_TRUE(protocol(ok, 8, 7));                            // shorter than the header
  EXPECT_TRUE(protocol({16, 5, 7}, 16, 7));                   // positive error
  EXPECT_TRUE(protocol({16, -5000, 7}, 16, 7));               // not an errno
  EXPECT_TRUE(protocol({24, -EIO, 7}, 24, 7));                // error with a payload
}

}  // namespace
}  // namespace dpustor::fs::vufs
