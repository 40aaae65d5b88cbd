// Enrollment tokens: read from a file (first line, surrounding whitespace dropped) and
// compared in constant time, so a token never appears in logs or on a command line.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace dpustor {

Result<std::string> ReadTokenFile(const std::string& path);
bool TokensEqual(std::string_view a, std::string_view b);

}  // namespace dpustor
