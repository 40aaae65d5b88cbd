// The names operators give objects (volumes, shares, deployments, groups, DPUs): they end up
// in SNAP object names, file names and command lines on the DPU and the Ceph node, so they
// are kept plain. One rule for the manager and every agent.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "common/params.h"

namespace dpustor::protocol {

inline constexpr const char* kNameRule =
    "1-63 characters of letters, digits, '-', '_', '.', not starting with '-' or '.'";

inline bool IsName(std::string_view v) {
  return !v.empty() && v.size() <= 63 && v[0] != '-' && v[0] != '.' &&
         std::all_of(v.begin(), v.end(), [](unsigned char c) {
           return std::isalnum(c) || c == '-' || c == '_' || c == '.';
         });
}

// Throws rpc::ParamError naming `field` unless `value` is a name.
inline void CheckName(std::string_view field, std::string_view value) {
  if (!IsName(value)) throw rpc::ParamError(field, kNameRule);
}

}  // namespace dpustor::protocol
