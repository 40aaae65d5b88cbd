// The control socket's methods (fsd.shares, fsd.stats, fsd.share_create, fsd.share_delete,
// fsd.version; see docs/protocol.md), one registration line each, acting on the shares of
// one dpustor-fsd. A share is seen through ShareView, and made or dropped through the
// context's create/remove functions, so the methods can be tested without mounts or an
// engine. Threading: Dispatch runs on the daemon's control thread, the only one that
// changes the share list; ShareView methods are thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
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
  virtual nlohmann::json device() const = 0;    // transport state (null for fuse)
};

struct ControlContext {
  std::vector<const ShareView*> shares;  // in creation order
  // Opens and starts a validated share that conflicts with none of `shares`, and appends
  // it to `shares`; fails (leaving nothing behind) when it cannot be served.
  std::function<Result<const ShareView*>(const ShareConfig&)> create;
  // Stops the named share, waits for its requests, removes it from `shares`.
  std::function<void(const std::string& name)> remove;
};

using ControlMethodTable = rpc::MethodTable<ControlContext>;

ControlMethodTable BuildControlMethodTable();

}  // namespace dpustor::fs::fsd
