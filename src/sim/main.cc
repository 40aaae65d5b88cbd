// dpustor-snap-sim: a simulated NVIDIA SNAP (JSON-RPC on a Unix socket) for machines without
// a BlueField. See snap_sim.h.
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/log.h"
#include "sim/rbd_opener.h"
#include "sim/snap_sim.h"

int main(int argc, char** argv) {
  using namespace dpustor;
  CLI::App app{
      "dpustor-snap-sim: a SNAP JSON-RPC server with simulated state, for machines without "
      "a BlueField DPU (rbd bdevs open real Ceph images)"};
  std::string socket_path = "/var/tmp/spdk.sock";
  std::string dialect_name = "snap4";
  std::string log_level = "info";
  sim::SimConfig config;
  app.add_option("--socket", socket_path, "Unix socket to serve JSON-RPC on")
      ->capture_default_str();
  app.add_option("--dialect", dialect_name,
                 "SNAP dialect: snap4 (BlueField-3) or snap3 (BlueField-2)")
      ->check(CLI::IsMember({"snap4", "snap3"}))
      ->capture_default_str();
  app.add_option("--pfs", config.pfs, "static emulated PFs per type (NVMe, virtio-blk)")
      ->check(CLI::Range(0, 127))
      ->capture_default_str();
  app.add_option("--vfs", config.vfs, "VFs per PF")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--serial", config.serial, "card serial, the prefix of every vuid")
      ->capture_default_str();
  app.add_flag("--virtio-fs", config.virtio_fs,
               "a BlueField-3 with virtio-fs emulation: VIRTIO_FS PFs and SNAP's virtio_fs_* "
               "and fsdev_* methods (snap4 only)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!InitLogging("dpustor-snap-sim", log_level))
    spdlog::warn("simulator: unknown log level '{}', using info", log_level);
  if (config.virtio_fs && dialect_name != "snap4") {
    spdlog::error("simulator: --virtio-fs needs --dialect snap4 (SNAP 3.x has no virtio-fs)");
    return 2;
  }
  if (Status s = sim::ValidateSimConfig(config); !s.ok()) {
    spdlog::error("simulator: {}", s.error().message);
    return 2;
  }

  boost::asio::io_context ioc;
  sim::SnapSimOptions options;
  options.dialect = *sim::ParseDialect(dialect_name);
  options.config = config;
  sim::SnapSim simulator(ioc, options, sim::MakeLibrbdOpener());
  if (Status s = simulator.Listen(socket_path); !s.ok()) {
    spdlog::error("simulator: {}", s.error().message);
    return 1;
  }

  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("simulator: signal {}, shutting down", signo);
    simulator.Stop();
    ioc.stop();
  });
  ioc.run();
  spdlog::info("simulator: stopped");
  return 0;
}
