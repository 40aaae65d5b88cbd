#include "sim/sim_thread.h"

#include <future>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

namespace dpustor::sim {

SimThread::SimThread(std::string socket_path, SnapSimOptions options,
                     std::unique_ptr<RbdOpener> rbd)
    : socket_path_(std::move(socket_path)) {
  if (!rbd) rbd = MakeLibrbdOpener();
  sim_ = std::make_unique<SnapSim>(ioc_, std::move(options), std::move(rbd));
  status_ = sim_->Listen(socket_path_);  // the io_context is not running yet
  if (!status_.ok()) return;
  thread_ = std::thread([this] {
    auto work = boost::asio::make_work_guard(ioc_);
    ioc_.run();
  });
}

SimThread::~SimThread() {
  if (thread_.joinable()) {
    std::promise<void> stopped;
    boost::asio::post(ioc_, [&] {
      sim_->Stop();
      stopped.set_value();
    });
    stopped.get_future().wait();
    ioc_.stop();
    thread_.join();
  }
  sim_.reset();
}

}  // namespace dpustor::sim
