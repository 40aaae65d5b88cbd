// dpustor-bench-provision: how long from "create + attach" to "attached" for N volumes asked
// for at once, on a real single-node Ceph, the real manager and agents, and a SNAP-4
// simulator whose rbd bdevs open the images through librbd. Splits the time into what the
// manager spent waiting on Ceph operations (ceph/rbd commands run by the Ceph agent), on
// spec.apply (SNAP calls, librbd opens), and the rest (our code, queues and polling).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>

#include "cli/http_client.h"
#include "harness/fleet.h"

using namespace dpustor;
using namespace dpustor::testing;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

int Post(const Fleet& f, const std::string& path, const json& body) {
  auto r = cli::HttpRequest("POST", f.server(), path, body.dump(), 30s);
  return r.ok() ? r->status : -1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpustor-bench-provision: create+attach to attached, on real Ceph"};
  std::vector<int> counts = {1, 50};
  std::string size = "64M";
  app.add_option("--volumes", counts, "volume counts to measure, one run each")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  TempDir dir("dpustor-bench-provision");
  CephLab ceph(dir / "ceph");
  std::string error;
  auto t0 = std::chrono::steady_clock::now();
  if (!ceph.Start(120s, &error)) {
    std::cerr << error << "\n";
    return 1;
  }
  std::printf("ceph ready in %.1f s\n", Seconds(std::chrono::steady_clock::now() - t0));
  ceph.Ceph({"osd", "pool", "create", "bench", "8"});
  ceph.Rbd({"pool", "init", "bench"});

  for (int n : counts) {
    std::string run_dir = dir / ("run-" + std::to_string(n));
    std::filesystem::create_directories(run_dir);
    Fleet fleet(run_dir, &ceph);
    auto manager = fleet.StartManager();
    auto ceph_agent = fleet.StartCephAgent("ceph");
    std::string sock = fleet.Path("snap.sock");
    auto sim = fleet.StartSim("snap4", sock, {"--pfs", "2", "--vfs", "32"});
    auto dpu = fleet.StartDpuAgent("dpu", "host", sock);
    if (!WaitFor(
            [&] {
              return fleet.Dpu("dpu")["state"] == "online" &&
                     fleet.Get("/api/v1/clusters/ceph")["state"] == "online";
            },
            30s)) {
      std::cerr << "agents did not register\n";
      return 1;
    }

    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      std::string name = "v" + std::to_string(n) + "-" + std::to_string(i);
      json attach = {{"dpu", "dpu"}, {"protocol", "nvme"}, {"pf_index", i % 2}};
      if (i >= 2) attach["vf_index"] = (i - 2) / 2;
      if (Post(
              fleet, "/api/v1/volumes",
              {{"name", name}, {"cluster", "ceph"}, {"pool", "bench"}, {"size_bytes", 64 << 20}}) !=
              201 ||
          Post(fleet, "/api/v1/volumes/" + name + "/attach", attach) != 200) {
        std::cerr << "request for " << name << " refused\n";
        return 1;
      }
    }
    auto asked = std::chrono::steady_clock::now();
    json volumes;
    bool done = WaitFor(
        [&] {
          volumes = fleet.Get("/api/v1/volumes");
          if (!volumes.is_array() || static_cast<int>(volumes.size()) != n) return false;
          return std::all_of(volumes.begin(), volumes.end(),
                             [](const json& v) { return v["state"] == "attached"; });
        },
        600s);
    auto end = std::chrono::steady_clock::now();
    if (!done) {
      std::cerr << "not all attached: " << volumes.dump() << "\n";
      return 1;
    }
    std::vector<double> latency;
    double ceph_s = 0, apply_s = 0;
    for (const auto& v : volumes) {
      latency.push_back((v["attached_ms"].get<double>() - v["created_ms"].get<double>()) / 1000);
      ceph_s += v["ceph_ms"].get<double>() / 1000;
      apply_s = std::max(apply_s, v["apply_ms"].get<double>() / 1000);
    }
    std::sort(latency.begin(), latency.end());
    double wall = Seconds(end - start);
    std::printf(
        "volumes=%d  requests took %.2f s  all attached after %.2f s  per-volume "
        "create->attached p50=%.2f s max=%.2f s\n"
        "  ceph operations (manager waiting on the Ceph agent): %.2f s summed, %.2f s per volume\n"
        "  last spec.apply on the DPU agent (SNAP calls, librbd opens): %.2f s\n",
        n, Seconds(asked - start), wall, latency[latency.size() / 2], latency.back(), ceph_s,
        ceph_s / n, apply_s);
    if (n == 1)
      std::printf("  the rest (our code, queues, polling): %.2f s\n",
                  std::max(0.0, latency[0] - ceph_s - apply_s));
    std::fflush(stdout);
  }
  return 0;
}
