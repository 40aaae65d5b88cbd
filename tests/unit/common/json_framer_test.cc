#include "common/json_framer.h"

#include <gtest/gtest.h>

namespace dpustor {
namespace {

std::vector<std::string> FeedAll(JsonFramer& f, std::string_view bytes) {
  std::vector<std::string> out;
  EXPECT_TRUE(f.Feed(bytes, out).ok());
  return out;
}

TEST(JsonFramer, OneMessagePerLine) {
  JsonFramer f(1024);
  auto out = FeedAll(f, "{\"a\":1}\n{\"b\":2}\n");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], "{\"a\":1}");
  EXPECT_EQ(out[1], "{\"b\":2}");
}

TEST(JsonFramer, PartialReadsAreJoined) {
  JsonFramer f(1024);
  std::string msg = R"({"jsonrpc":"2.0","id":7,"method":"x","params":{"s":"a}b{c"}})";
  std::vector<std::string> out;
  for (char c : msg) ASSERT_TRUE(f.Feed(std::string_view(&c, 1), out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], msg);
  EXPECT_EQ(f.pending_bytes(), 0u);
}

TEST(JsonFramer, ConcatenatedValuesWithoutNewlines) {
  // SNAP writes replies back to back with no delimiter.
  JsonFramer f(1024);
  auto out = FeedAll(f, R"({"x":[1,{"y":"]"}]}[1,2]{"z":"\"}"})");
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[1], "[1,2]");
  EXPECT_EQ(out[2], R"({"z":"\"}"})");
}

TEST(JsonFramer, EscapedBackslashBeforeQuoteEndsString) {
  JsonFramer f(1024);
  auto out = FeedAll(f, R"({"p":"C:\\"}{"q":1})");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], R"({"p":"C:\\"})");
}

TEST(JsonFramer, SplitAcrossReadsKeepsStringState) {
  JsonFramer f(1024);
  std::vector<std::string> out;
  ASSERT_TRUE(f.Feed(R"({"s":"ab\)", out).ok());
  ASSERT_TRUE(f.Feed(R"("}"})", out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], R"({"s":"ab\"}"})");
}

TEST(JsonFramer, OversizeFailsAndStaysFailed) {
  JsonFramer f(16);
  std::vector<std::string> out;
  auto st = f.Feed(R"({"a":"0123456789abcdef"})", out);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("maximum of 16 bytes"), std::string::npos);
  EXPECT_TRUE(out.empty());
  EXPECT_FALSE(f.Feed("{}", out).ok());
}

TEST(JsonFramer, ExactlyMaxSizeIsAccepted) {
  JsonFramer f(8);
  auto out = FeedAll(f, R"({"a":12})");
  ASSERT_EQ(out.size(), 1u);
}

TEST(JsonFramer, GarbageOutsideMessageFails) {
  JsonFramer f(1024);
  std::vector<std::string> out;
  auto st = f.Feed("{\"ok\":1}\nGET / HTTP/1.1\r\n", out);
  EXPECT_EQ(out.size(), 1u);  // the good message before the garbage is still delivered
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, -32700);
}

TEST(JsonFramer, BareScalarIsGarbage) {
  JsonFramer f(1024);
  std::vector<std::string> out;
  EXPECT_FALSE(f.Feed("42\n", out).ok());
}

}  // namespace
}  // namespace dpustor
