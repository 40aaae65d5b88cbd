#include "common/json_framer.h"

#include "common/json_rpc.h"

namespace dpustor {

namespace {
bool IsSpace(char c) {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}
}  // namespace

Status JsonFramer::Feed(std::string_view bytes, std::vector<std::string>& out) {
  if (failed_) return Error{rpc::kParseError, "stream already failed"};
  for (char c : bytes) {
    if (depth_ == 0) {
      // Between values only whitespace may appear; a value must be an object or array
      // (JSON-RPC messages and batches), which is what makes the end detectable.
      if (IsSpace(c)) continue;
      if (c != '{' && c != '[') {
        failed_ = true;
        return Error{rpc::kParseError, "invalid JSON: unexpected byte outside a message"};
      }
    }
    if (buf_.size() >= max_) {
      failed_ = true;
      return Error{rpc::kInvalidRequest,
                   "message exceeds the maximum of " + std::to_string(max_) + " bytes"};
    }
    buf_.push_back(c);
    if (in_string_) {
      if (escape_) {
        escape_ = false;
      } else if (c == '\\') {
        escape_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        break;
      case '{':
      case '[':
        ++depth_;
        break;
      case '}':
      case ']':
        if (--depth_ == 0) {
          out.push_back(std::move(buf_));
          buf_.clear();
        }
        break;
      default:
        break;
    }
  }
  return Status::Ok();
}

}  // namespace dpustor
