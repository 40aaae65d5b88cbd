#include "common/token.h"

#include <fstream>
#include <sstream>

#include "common/json_rpc.h"

namespace dpustor {

Result<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Error{rpc::kFailed, "cannot read token file " + path};
  std::string line;
  std::getline(in, line);
  auto first = line.find_first_not_of(" \t\r\n");
  auto last = line.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) return Error{rpc::kFailed, "token file " + path + " is empty"};
  return line.substr(first, last - first + 1);
}

bool TokensEqual(std::string_view a, std::string_view b) {
  // Length is not secret; the content comparison touches every byte either way.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

}  // namespace dpustor
