#include "common/process.h"

#include <gtest/gtest.h>

namespace dpustor {
namespace {

using namespace std::chrono_literals;

TEST(RunProcess, CapturesOutputAndExitCode) {
  auto r = RunProcess({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_code, 3);
}

TEST(RunProcess, MissingCommandIsAClearError) {
  auto r = RunProcess({"dpustor-no-such-command"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("dpustor-no-such-command"), std::string::npos);
}

TEST(RunProcess, TimeoutKillsTheCommand) {
  ProcessOptions o;
  o.timeout = 200ms;
  auto start = std::chrono::steady_clock::now();
  auto r = RunProcess({"sleep", "30"}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(RunProcess, OutputLimit) {
  ProcessOptions o;
  o.max_output_bytes = 1000;
  auto r = RunProcess({"sh", "-c", "head -c 100000 /dev/zero"}, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("limit"), std::string::npos);
}

TEST(RunProcess, ExtraEnvironment) {
  ProcessOptions o;
  o.extra_env = {"DPUSTOR_TEST_VAR=hello"};
  auto r = RunProcess({"sh", "-c", "printf %s \"$DPUSTOR_TEST_VAR\""}, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->out, "hello");
}

}  // namespace
}  // namespace dpustor
