// JsonFramer splits a byte stream into complete top-level JSON values. It accepts the
// project's newline-delimited JSON and also values that are simply concatenated, because
// SNAP's JSON-RPC socket promises no framing. Each byte is scanned once.
// Not thread-safe: one framer per connection, used from that connection's strand.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace dpustor {

class JsonFramer {
 public:
  explicit JsonFramer(std::size_t max_message_bytes) : max_(max_message_bytes) {}

  // Appends bytes and moves every value completed by them into `out`, in order.
  // Fails when a value would exceed the maximum size or when the stream holds something that
  // cannot start a JSON object or array; the framer cannot resynchronise after that, so the
  // caller should answer with an error and close the stream.
  Status Feed(std::string_view bytes, std::vector<std::string>& out);

  // Bytes of a value received but not yet complete.
  std::size_t pending_bytes() const { return buf_.size(); }

 private:
  std::size_t max_;
  std::string buf_;        // bytes of the value being assembled
  std::size_t depth_ = 0;  // nesting of {} and [] outside strings
  bool in_string_ = false;
  bool escape_ = false;
  bool failed_ = false;
};

}  // namespace dpustor
