#include "common/endpoint.h"

#include <gtest/gtest.h>

namespace dpustor::net {
namespace {

TEST(Endpoint, ParsesTcpAndUnix) {
  auto a = ParseEndpoint("127.0.0.1:7000");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->is_unix);
  EXPECT_EQ(ToString(a->address), "127.0.0.1:7000");
  auto b = ParseEndpoint("[::1]:80");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ToString(b->address), "[::1]:80");
  auto c = ParseEndpoint("unix:/tmp/x.sock");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->is_unix);
  EXPECT_EQ(ToString(c->address), "unix:/tmp/x.sock");
  auto d = ParseEndpoint("/var/tmp/spdk.sock");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->is_unix);
  auto e = ParseEndpoint("localhost:9");
  ASSERT_TRUE(e.ok());
}

TEST(Endpoint, RejectsBadInput) {
  for (const char* bad : {"", "nocolon", "1.2.3.4:", "1.2.3.4:99999", "1.2.3.4:12x", ":80",
                          "unix:", "no-such-host.invalid:80"}) {
    EXPECT_FALSE(ParseEndpoint(bad).ok()) << bad;
  }
  EXPECT_FALSE(ParseEndpoint("unix:/" + std::string(200, 'a')).ok());
}

}  // namespace
}  // namespace dpustor::net
