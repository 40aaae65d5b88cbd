// Outputs of the real `ceph` and `rbd` tools, captured from a Ceph 16.2 lab cluster, under
// tests/unit/ceph/fixtures.
#pragma once

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace dpustor::agent::ceph {

inline std::string FixturePath(const std::string& name) {
  std::string path = DPUSTOR_SOURCE_DIR "/tests/unit/ceph/fixtures/";
  return path.append(name);
}

inline nlohmann::json Fixture(const std::string& name) {
  std::ifstream in(FixturePath(name));
  return nlohmann::json::parse(in);
}

}  // namespace dpustor::agent::ceph
