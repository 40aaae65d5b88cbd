// SimThread runs a SnapSim on a private io_context and thread: the simulator in-process, for
// tests (of the simulator itself, of the SNAP client, of the DPU agent) that want a real SNAP
// JSON-RPC socket without a separate process.
// Construction starts serving (check status()); destruction stops the simulator, removes the
// socket file and joins the thread. Not copyable; methods are not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

#include "common/status.h"
#include "sim/rbd_opener.h"
#include "sim/snap_sim.h"

namespace dpustor::sim {

class SimThread {
 public:
  // `rbd` null: the real librbd opener.
  SimThread(std::string socket_path, SnapSimOptions options,
            std::unique_ptr<RbdOpener> rbd = nullptr);
  SimThread(const SimThread&) = delete;
  SimThread& operator=(const SimThread&) = delete;
  ~SimThread();

  // Whether Listen succeeded; when not, no thread runs.
  const Status& status() const { return status_; }
  const std::string& socket_path() const { return socket_path_; }

 private:
  std::string socket_path_;
  boost::asio::io_context ioc_;
  std::unique_ptr<SnapSim> sim_;
  Status status_;
  std::thread thread_;
};

}  // namespace dpustor::sim
