// Logging setup shared by every dpustor program: spdlog to stderr with the program's name,
// a level from the command line ("trace".."off").
#pragma once

#include <string>

namespace dpustor {

// Returns false (and keeps "info") when `level` is not a known level name.
bool InitLogging(const std::string& program, const std::string& level);

}  // namespace dpustor
