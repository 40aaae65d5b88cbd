// Captured /proc, /sys and tool outputs under tests/unit/dpu/fixtures, for the parser tests.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "agent/dpu/host_status.h"

namespace dpustor::agent::dpu {

inline std::string FixturePath(const std::string& name) {
  std::string path = DPUSTOR_SOURCE_DIR "/tests/unit/dpu/fixtures/";
  return path.append(name);
}

// The fixture's text; a missing fixture fails the test.
inline std::string Fixture(const std::string& name) {
  std::string error;
  auto text = ReadTextFile(FixturePath(name), &error);
  EXPECT_TRUE(text.has_value()) << error;
  return text.value_or("");
}

}  // namespace dpustor::agent::dpu
