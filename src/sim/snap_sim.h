// SnapSim serves a simulated SNAP over JSON-RPC on a Unix socket: a SimState, the method table
// of one dialect, and an RpcServer. It is dpustor's one stand-in for BlueField hardware and
// says so (spdk_get_version reports "simulator": true; its log lines say "simulator").
//
// Threading: every request runs on one strand, so SimState needs no locks whatever number of
// threads run the io_context (dpustor-snap-sim runs one). Listen() and Stop() must be called
// from a thread running the io_context or while it is not running.
// Lifetime: destroy SnapSim only after the io_context has stopped running.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "common/rpc_connection.h"
#include "common/status.h"
#include "sim/rbd_opener.h"
#include "sim/sim_methods.h"
#include "sim/sim_state.h"

namespace dpustor::sim {

struct SnapSimOptions {
  Dialect dialect = Dialect::kSnap4;
  SimConfig config;
  rpc::ConnectionOptions connection;
};

class SnapSim {
 public:
  // REQUIRES: ValidateSimConfig(options.config).ok()
  SnapSim(boost::asio::io_context& ioc, SnapSimOptions options, std::unique_ptr<RbdOpener> rbd);
  SnapSim(const SnapSim&) = delete;
  SnapSim& operator=(const SnapSim&) = delete;
  ~SnapSim();

  // Starts serving on `socket_path` (a path or "unix:PATH"). A stale socket file is replaced;
  // a live one is not.
  Status Listen(const std::string& socket_path);
  // Stops accepting, removes the socket file and closes every connection.
  void Stop();

  Dialect dialect() const;
  // The methods served, sorted (what rpc_get_methods answers).
  std::vector<std::string> MethodNames() const;

 private:
  struct Rep;
  std::shared_ptr<Rep> rep_;
};

// The complete table a simulator of `dialect` serves: the dialect's SNAP methods, the SPDK
// bdev methods (with `virtio_fs`, SNAP-4's virtio-fs methods too), then rpc_get_methods and
// spdk_get_version.
SimMethodTable BuildMethodTable(Dialect dialect, bool virtio_fs = false);

}  // namespace dpustor::sim
