// Fleet simulates many DPU agents in one process: one TCP connection per agent, each an
// rpc::RpcConnection on its own strand of a shared io_context, saying agent.hello and then
// sending agent.report on a fixed cadence (period 1/rate, random phase per agent so the
// load is spread evenly). Report-to-ack latency, acks and errors are counted only while a
// measurement window is open.
// Thread-safety: ConnectAll, BeginWindow, EndWindow, Snapshot and Shutdown are called from
// one controlling thread; the agents run on the io threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "common/endpoint.h"
#include "histogram.h"

namespace dpustor::bench {

struct FleetOptions {
  net::Endpoint manager;
  std::string token;
  int agents = 1000;
  double rate = 1.0;  // reports per second per agent
  unsigned threads = 1;
  int batch = 200;  // connections in flight at once while connecting
  std::size_t payload_bytes = 0;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds call_timeout{10000};
  std::string name_prefix = "bench-dpu-";
};

struct ConnectResult {
  int registered = 0;
  int failed = 0;
  double seconds = 0;
  std::string first_error;
};

struct WindowStats {
  std::uint64_t acked = 0;
  std::uint64_t errors = 0;   // failed or refused reports
  std::uint64_t skipped = 0;  // due while the previous report was still unanswered
  std::uint64_t disconnects = 0;
  std::uint64_t lat_p50_us = 0, lat_p90_us = 0, lat_p99_us = 0, lat_p999_us = 0, lat_max_us = 0;
  std::uint64_t lag_p99_us = 0, lag_max_us = 0;  // report timer firing late (client load)
  int connected = 0;                             // agents connected at the end
  std::string first_error;
};

class Fleet {
 public:
  explicit Fleet(FleetOptions options);
  ~Fleet();
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Starts the io threads, then connects every agent, `batch` at a time, each batch
  // waiting for its hellos to be answered. Stops early when `interrupted` turns true.
  // `progress`, if set, is called about every five seconds with the state so far.
  ConnectResult ConnectAll(const std::atomic<bool>& interrupted,
                           const std::function<void(const ConnectResult&)>& progress = {});

  void BeginWindow();
  void EndWindow();
  WindowStats Snapshot() const;

  // Closes every connection and joins the io threads.
  void Shutdown();

  std::size_t payload_bytes() const { return payload_size_; }

 private:
  class Agent;
  class Handler;
  friend class Agent;

  void OnRegistered(bool ok, const std::string& why);
  void NoteError(const std::string& why);
  bool measuring() const { return measuring_.load(std::memory_order_relaxed); }

  FleetOptions options_;
  std::chrono::nanoseconds period_;
  std::size_t payload_size_ = 0;
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
  std::vector<std::shared_ptr<Agent>> agents_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int done_ = 0;  // agents whose hello finished (either way)
  int failed_ = 0;
  std::string first_connect_error_;
  std::string first_error_;

  std::atomic<bool> measuring_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> acked_{0}, errors_{0}, skipped_{0}, disconnects_{0};
  std::atomic<int> connected_{0};
  LatencyHistogram latency_;
  LatencyHistogram lag_;
};

}  // namespace dpustor::bench
