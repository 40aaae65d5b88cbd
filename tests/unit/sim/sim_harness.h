// SimHarness: dpustor-snap-sim in-process on a temporary Unix socket, and a real RpcClient to
// talk to it. Shared by the simulator's and the SNAP client's unit tests.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "common/json_rpc.h"
#include "common/rpc_client.h"
#include "sim/sim_thread.h"

namespace dpustor::sim::testing {

using json = nlohmann::json;
using namespace std::chrono_literals;

// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("dpustor-sim-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class SimHarness {
 public:
  explicit SimHarness(Dialect dialect, SimConfig config = {},
                      std::unique_ptr<RbdOpener> rbd = nullptr)
      : socket_((dir_.path() / "spdk.sock").string()) {
    spdlog::set_level(spdlog::level::warn);  // the simulator logs every failed request
    SnapSimOptions options;
    options.dialect = dialect;
    options.config = config;
    sim_ = std::make_unique<SimThread>(socket_, options, std::move(rbd));
    EXPECT_TRUE(sim_->status().ok()) << sim_->status().error().message;
  }

  const std::string& socket() const { return socket_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // One call on a connection kept for the harness's lifetime.
  Result<json> Call(const std::string& method, const json& params = nullptr) {
    if (!client_) {
      auto c = rpc::RpcClient::Connect("unix:" + socket_, 5s);
      if (!c.ok()) return c.error();
      client_ = std::move(*c);
    }
    return client_->Call(method, params, 5s);
  }

  // The result of a call that must succeed.
  json Ok(const std::string& method, const json& params = nullptr) {
    auto r = Call(method, params);
    EXPECT_TRUE(r.ok()) << method << " " << params.dump() << ": "
                        << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : json();
  }

  // The error of a call that must fail.
  Error Fails(const std::string& method, const json& params = nullptr) {
    auto r = Call(method, params);
    EXPECT_FALSE(r.ok()) << method << " " << params.dump() << " unexpectedly returned "
                         << (r.ok() ? r->dump() : "");
    return r.ok() ? Error{} : r.error();
  }

  // Stops the simulator (removing its socket); later calls fail to connect.
  void Stop() {
    client_.reset();
    sim_.reset();
  }

 private:
  TempDir dir_;
  std::string socket_;
  std::unique_ptr<SimThread> sim_;
  std::unique_ptr<rpc::RpcClient> client_;
};

}  // namespace dpustor::sim::testing
