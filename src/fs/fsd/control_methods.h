// The control socket's methods (fsd.shares, fsd.stats, fsd.version; see docs/protocol.md),
// one registration line each, acting on the shares of one dpustor-fsd. A share is seen
// through ShareView so the methods can be tested without mounts or an engine.
// Threading: Dispatch may run on any thread; ShareView methods are thread-safe.
#pragma once

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/method_table.h"
#include "fs/fsd/fsd_config.h"

namespace dpustor::fs::fsd {

class ShareView {
 public:
  virtual ~ShareView() = default;
  virtual const ShareConfig& config() const = 0;
  virtual bool serving() const = 0;             // the transport still serves requests
  virtual size_t inflight() const = 0;          // requests accepted and not yet answered
  virtual bool initialized() const = 0;         // FUSE_INIT done
  virtual nlohmann::json op_stats() const = 0;  // OpStats::ToJson()
};

struct ControlContext {
  std::vector<const ShareView*> shares;  // fixed once serving starts
};

using ControlMethodTable = rpc::MethodTable<ControlContext>;

ControlMethodTable BuildControlMethodTable();

}  // namespace dpustor::fs::fsd
