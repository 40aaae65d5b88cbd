#include "common/params.h"

#include <gtest/gtest.h>

#include "common/method_table.h"

namespace dpustor::rpc {
namespace {

std::string FailureOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const CallError& e) {
    EXPECT_EQ(e.code(), kInvalidParams);
    return e.what();
  }
  return "";
}

TEST(Params, TypedFieldsAndErrorsNameTheField) {
  json p = {{"name", "x"}, {"n", 5}, {"neg", -1}, {"flag", true}, {"big", 1ull << 40}};
  Params params(p);
  EXPECT_EQ(params.Required<std::string>("name"), "x");
  EXPECT_EQ(params.Required<std::uint32_t>("n"), 5u);
  EXPECT_EQ(params.Get<bool>("flag", false), true);
  EXPECT_EQ(params.Get<int>("absent", 7), 7);
  EXPECT_EQ(FailureOf([&] { params.Required<std::string>("n"); }),
            "invalid params: 'n': expected a string");
  EXPECT_EQ(FailureOf([&] { params.Required<std::string>("missing"); }),
            "invalid params: 'missing': required");
  EXPECT_EQ(FailureOf([&] { params.Required<std::uint32_t>("neg"); }),
            "invalid params: 'neg': expected a non-negative integer");
  EXPECT_EQ(FailureOf([&] { params.Required<std::uint32_t>("big"); }),
            "invalid params: 'big': out of range");
  EXPECT_EQ(FailureOf([&] { params.Required<int>("flag"); }),
            "invalid params: 'flag': expected an integer");
}

TEST(Params, RejectsNonObjectAndUnknownKeys) {
  EXPECT_FALSE(FailureOf([] { Params p(json::array()); }).empty());
  json p = {{"name", "x"}, {"nmae", "typo"}};
  EXPECT_EQ(FailureOf([&] { Params(p).RejectUnknown({"name"}); }),
            "invalid params: 'nmae': unknown parameter");
}

TEST(Params, NestedObjectsNameFieldsUnderTheirPrefix) {
  json p = {{"tag", 3}, {"extra", 1}};
  Params params(p, "shares[2]");
  EXPECT_EQ(FailureOf([&] { params.Required<std::string>("tag"); }),
            "invalid params: 'shares[2].tag': expected a string");
  EXPECT_EQ(FailureOf([&] { params.Required<std::string>("name"); }),
            "invalid params: 'shares[2].name': required");
  EXPECT_EQ(FailureOf([&] { params.RejectUnknown({"tag"}); }),
            "invalid params: 'shares[2].extra': unknown parameter");
  EXPECT_EQ(FailureOf([&] { params.RejectUnknown({"tag"}, {"extra"}); }), "");
}

TEST(MethodTable, DispatchesAndMapsErrors) {
  struct Ctx {
    int calls = 0;
  } ctx;
  MethodTable<Ctx> table;
  table.Add("add", "adds a and b", [](Ctx& c, const json& params) -> json {
    Params p(params);
    int sum = p.Required<int>("a") + p.Required<int>("b");
    ++c.calls;  // only after decoding succeeded
    return sum;
  });
  table.Add("boom", "throws", [](Ctx&, const json&) -> json { throw std::runtime_error("x"); });

  std::optional<Result<json>> got;
  auto reply = [&](Result<json> r) { got = std::move(r); };
  table.Dispatch(ctx, "add", {{"a", 2}, {"b", 3}}, reply);
  ASSERT_TRUE(got->ok());
  EXPECT_EQ(got->value(), 5);

  table.Dispatch(ctx, "add", {{"a", 2}}, reply);
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->error().code, kInvalidParams);
  EXPECT_EQ(got->error().message, "invalid params: 'b': required");

  table.Dispatch(ctx, "nope", nullptr, reply);
  EXPECT_EQ(got->error().code, kMethodNotFound);

  table.Dispatch(ctx, "boom", nullptr, reply);
  EXPECT_EQ(got->error().code, kInternalError);
  EXPECT_EQ(ctx.calls, 1);
}

}  // namespace
}  // namespace dpustor::rpc
