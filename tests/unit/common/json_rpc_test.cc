#include "common/json_rpc.h"

#include <gtest/gtest.h>

namespace dpustor::rpc {
namespace {

TEST(Classify, Request) {
  auto m = Classify(json::parse(R"({"jsonrpc":"2.0","id":3,"method":"m","params":{"a":1}})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, Message::Kind::kRequest);
  EXPECT_EQ(m->id, 3);
  EXPECT_EQ(m->method, "m");
  EXPECT_EQ(m->params["a"], 1);
}

TEST(Classify, Notification) {
  auto m = Classify(json::parse(R"({"jsonrpc":"2.0","method":"n"})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, Message::Kind::kNotification);
}

TEST(Classify, ErrorResponse) {
  auto m = Classify(
      json::parse(R"({"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"bad"}})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, Message::Kind::kResponse);
  ASSERT_TRUE(m->error.has_value());
  EXPECT_EQ(m->error->code, -32602);
  EXPECT_EQ(m->error->message, "bad");
}

TEST(Classify, ErrorWithNonNumericCodeDoesNotThrow) {
  auto m = Classify(json::parse(R"({"jsonrpc":"2.0","id":1,"error":{"code":"x"}})"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->error->code, kInternalError);
}

TEST(Classify, RejectsMalformed) {
  const char* bad[] = {
      R"([])",
      R"({"id":1,"method":"m"})",                             // no jsonrpc
      R"({"jsonrpc":"1.0","id":1,"method":"m"})",             // wrong version
      R"({"jsonrpc":"2.0","id":1,"method":5})",               // method not string
      R"({"jsonrpc":"2.0","id":{},"method":"m"})",            // bad id
      R"({"jsonrpc":"2.0","id":1,"method":"m","params":3})",  // scalar params
      R"({"jsonrpc":"2.0","id":1})",                          // neither result nor error
      R"({"jsonrpc":"2.0","id":1,"result":1,"error":{}})",    // both
      R"({"jsonrpc":"2.0","id":1,"error":"e"})",              // error not object
  };
  for (const char* text : bad) {
    json id;
    auto m = Classify(json::parse(text), &id);
    EXPECT_FALSE(m.ok()) << text;
    if (!m.ok()) {
      EXPECT_EQ(m.error().code, kInvalidRequest) << text;
    }
  }
}

TEST(Classify, ReportsIdOfInvalidRequest) {
  json id;
  auto m = Classify(json::parse(R"({"jsonrpc":"2.0","id":9,"method":1})"), &id);
  EXPECT_FALSE(m.ok());
  EXPECT_EQ(id, 9);
}

TEST(Encode, OneLineAndReplacesInvalidUtf8) {
  json m = MakeResult(1, std::string("a\xff"
                                     "b"));
  std::string s = Encode(m);
  EXPECT_EQ(s.back(), '\n');
  EXPECT_EQ(s.find('\n'), s.size() - 1);
  EXPECT_TRUE(json::accept(s));
}

}  // namespace
}  // namespace dpustor::rpc
