// dpustor-bench-fanin: how many agents can one dpustor-manager serve? Starts a manager as a
// child process (fresh temporary directory, loopback ports), connects N simulated DPU
// agents from this process, has each send agent.report R times a second with a realistic
// DPU status document, and measures over a window after a warm-up: acked reports,
// report-to-ack latency, errors, and the manager's CPU time and memory (from /proc).
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/endpoint.h"
#include "fleet.h"
#include "manager_process.h"

using namespace dpustor;
using namespace dpustor::bench;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) {
  g_interrupted = true;
}

// Each agent holds a socket; lift the soft descriptor limit to the hard one.
rlim_t RaiseFileLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// Sleeps for `d` unless interrupted or the manager exits; false if it stopped early.
bool Sleep(Clock::duration d, ManagerProcess& manager) {
  auto until = Clock::now() + d;
  while (Clock::now() < until) {
    if (g_interrupted || !manager.Running()) return false;
    auto left = until - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, milliseconds(50)));
  }
  return true;
}

double CpuSeconds(const rusage& u) {
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

// Busy and total jiffies of the whole machine (first line of /proc/stat).
std::pair<double, double> MachineJiffies() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  double total = 0, idle = 0, v = 0;
  for (int i = 0; i < 8 && in >> v; ++i) {
    total += v;
    if (i == 3 || i == 4) idle += v;  // idle, iowait
  }
  return {total - idle, total};
}

// The manager's own count of accepted reports, read from /metrics; `at` is the middle of the
// scrape (a busy manager may take a while to answer) and `took` its duration in seconds.
struct ReportCount {
  double reports = 0;
  Clock::time_point at;
  double took = 0;
};

std::optional<ReportCount> ManagerReports(const ManagerProcess& manager) {
  auto before = Clock::now();
  auto metrics = manager.HttpGet("/metrics", milliseconds(30000));
  auto after = Clock::now();
  if (!metrics.ok()) return std::nullopt;
  auto v = MetricValue(*metrics, "dpustor_agent_reports_total");
  if (!v) return std::nullopt;
  return ReportCount{*v, before + (after - before) / 2,
                     std::chrono::duration<double>(after - before).count()};
}

// Waits until the manager reports no open agent connection.
bool WaitDisconnected(ManagerProcess& manager, milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline && manager.Running()) {
    auto metrics = manager.HttpGet("/metrics", milliseconds(10000));
    if (metrics.ok()) {
      auto open = MetricValue(*metrics, "dpustor_agent_connections");
      if (open && *open == 0) return true;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
  return false;
}

double Ms(std::uint64_t us) {
  return static_cast<double>(us) / 1000.0;
}

double Mb(std::uint64_t kb) {
  return static_cast<double>(kb) / 1024.0;
}

std::string Fixed(double v, int digits) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << v;
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dpustor-bench-fanin: measures how many agents one dpustor-manager can serve, from one "
      "process simulating N DPU agents over loopback TCP"};
  std::string manager_bin;
  int agents = 1000;
  double rate = 1.0;
  double duration_s = 30;
  double warmup_s = 5;
  unsigned threads = 1;
  std::size_t payload_bytes = 0;
  unsigned manager_threads = 0;
  int batch = 200;
  int call_timeout_ms = 10000;
  std::string manager_log_level = "info";
  std::vector<std::string> manager_args;
  bool keep_dir = false;
  bool as_json = false;
  app.add_option("--manager-bin", manager_bin, "the dpustor-manager binary to start")->required();
  app.add_option("--agents", agents, "simulated agents (one TCP connection each)")
      ->check(CLI::Range(1, 99999))
      ->capture_default_str();
  app.add_option("--rate", rate, "agent.report calls per second per agent")
      ->check(CLI::Range(0.001, 1000.0))
      ->capture_default_str();
  app.add_option("--duration", duration_s, "measurement window in seconds")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--warmup", warmup_s, "seconds of reporting before the window opens")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_option("--threads", threads, "client I/O threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--payload-bytes", payload_bytes,
                 "approximate size of a report's status document; 0: a realistic DPU status "
                 "(about 6 KB)")
      ->capture_default_str();
  app.add_option("--manager-threads", manager_threads,
                 "--threads passed to the manager; 0: the manager's default")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app.add_option("--batch", batch, "connections opened at once while connecting")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--call-timeout-ms", call_timeout_ms, "timeout of agent.hello and agent.report")
      ->check(CLI::Range(100, 3600000))
      ->capture_default_str();
  app.add_option("--manager-log-level", manager_log_level, "--log-level passed to the manager")
      ->capture_default_str();
  app.add_option("--manager-arg", manager_args,
                 "extra argument passed to the manager verbatim (repeatable), e.g. "
                 "--manager-arg=--flush-ms=500");
  app.add_flag("--keep-dir", keep_dir, "keep the manager's temporary directory (log, database)");
  app.add_flag("--json", as_json, "print the results as one JSON object");
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  rlim_t files = RaiseFileLimit();
  if (files != RLIM_INFINITY && static_cast<rlim_t>(agents) + 64 > files) {
    std::cerr << "dpustor-bench-fanin: " << agents << " agents need more file descriptors than "
              << "the limit of " << files << " (ulimit -n)\n";
    return 2;
  }

  // The manager turns agents unreachable after its heartbeat timeout (15 s by default);
  // at low rates give it three report periods.
  double period_ms = 1000.0 / rate;
  ManagerOptions mo;
  mo.binary = manager_bin;
  mo.threads = manager_threads;
  mo.log_level = manager_log_level;
  mo.heartbeat_timeout_ms =
      period_ms * 3 > 15000 ? static_cast<int>(std::min(3600000.0, period_ms * 3)) : 0;
  mo.extra_args = manager_args;
  mo.keep_dir = keep_dir;
  // Forked before any other thread exists.
  auto started = ManagerProcess::Start(mo);
  if (!started.ok()) {
    std::cerr << "dpustor-bench-fanin: " << started.error().message << "\n";
    return 1;
  }
  ManagerProcess& manager = **started;
  if (auto st = manager.WaitReady(milliseconds(15000)); !st.ok()) {
    std::cerr << "dpustor-bench-fanin: " << st.error().message << "\n";
    return 1;
  }
  if (!as_json) {
    std::cerr << "manager pid " << manager.pid() << " listening on " << manager.agent_endpoint()
              << (keep_dir ? ", directory " + manager.dir() : "") << "\n";
  }

  auto endpoint = net::ParseEndpoint(manager.agent_endpoint());
  if (!endpoint.ok()) {
    std::cerr << "dpustor-bench-fanin: " << endpoint.error().message << "\n";
    return 1;
  }
  FleetOptions fo;
  fo.manager = *endpoint;
  fo.token = manager.token();
  fo.agents = agents;
  fo.rate = rate;
  fo.threads = threads;
  fo.batch = batch;
  fo.payload_bytes = payload_bytes;
  fo.call_timeout = milliseconds(call_timeout_ms);
  Fleet fleet(fo);

  if (!as_json) std::cerr << "connecting " << agents << " agents...\n";
  ConnectResult conn = fleet.ConnectAll(g_interrupted, [&](const ConnectResult& r) {
    if (!as_json)
      std::cerr << "  " << Fixed(r.seconds, 0) << " s: " << r.registered << " registered, "
                << r.failed << " failed\n";
  });
  if (!as_json) {
    std::cerr << "registered " << conn.registered << " in " << Fixed(conn.seconds, 2) << " s"
              << (conn.failed > 0
                      ? "; " + std::to_string(conn.failed) + " failed, first: " + conn.first_error
                      : "")
              << "\n";
  }
  bool manager_ok = true;
  bool measured = false;
  Result<ProcSample> m0 = Error{}, m1 = Error{};
  rusage r0{}, r1{};
  std::optional<ReportCount> reports0, reports1;
  std::pair<double, double> j0, j1;
  double window_s = 0;
  WindowStats w;
  if (conn.registered > 0 && !g_interrupted) {
    if (!as_json) std::cerr << "warming up for " << warmup_s << " s...\n";
    auto warmup =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup_s));
    auto window =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration_s));
    if (Sleep(warmup, manager)) {
      if (!as_json) std::cerr << "measuring for " << duration_s << " s...\n";
      reports0 = ManagerReports(manager);
      m0 = manager.Sample();
      getrusage(RUSAGE_SELF, &r0);
      j0 = MachineJiffies();
      auto t0 = Clock::now();
      fleet.BeginWindow();
      bool full = Sleep(window, manager);
      fleet.EndWindow();
      window_s = std::chrono::duration<double>(Clock::now() - t0).count();
      m1 = manager.Sample();
      getrusage(RUSAGE_SELF, &r1);
      j1 = MachineJiffies();
      reports1 = ManagerReports(manager);
      w = fleet.Snapshot();
      measured = full;
    }
  }
  std::string log_tail;
  if (!manager.Running()) {
    manager_ok = false;
    log_tail = manager.LogTail(20);
  }
  // Disconnect the agents first and let the manager notice, then stop it, so that the stop
  // is a plain shutdown (managers before the AgentService::Stop fix deadlocked when stopped
  // with agents connected).
  fleet.Shutdown();
  auto drain_started = Clock::now();
  bool drained = manager_ok && WaitDisconnected(manager, milliseconds(30000));
  double drain_s = std::chrono::duration<double>(Clock::now() - drain_started).count();
  auto stop_started = Clock::now();
  std::string manager_exit = manager.Stop(milliseconds(15000));
  double stop_s = std::chrono::duration<double>(Clock::now() - stop_started).count();

  if (!manager_ok) {
    std::cerr << "dpustor-bench-fanin: the manager died (" << manager_exit << "); its log ends:\n"
              << log_tail;
  }
  if (g_interrupted) {
    std::cerr << "dpustor-bench-fanin: interrupted\n";
    return 130;
  }

  double mcpu = (m0.ok() && m1.ok()) ? m1->cpu_seconds - m0->cpu_seconds : 0;
  double bcpu = CpuSeconds(r1) - CpuSeconds(r0);
  double machine_busy =
      (j1.second - j0.second) > 0 ? 100.0 * (j1.first - j0.first) / (j1.second - j0.second) : 0;
  double per_s = window_s > 0 ? static_cast<double>(w.acked) / window_s : 0;
  double manager_per_s = 0, scrape_s = 0;
  if (reports0 && reports1 && reports1->at > reports0->at) {
    manager_per_s = (reports1->reports - reports0->reports) /
                    std::chrono::duration<double>(reports1->at - reports0->at).count();
    scrape_s = std::max(reports0->took, reports1->took);
  }
  double expected = conn.registered * rate;
  unsigned cores = std::thread::hardware_concurrency();
  // CPU used by everything else on the machine (other processes, interrupts), in % of one
  // core: the manager and the bench compete with it.
  double other =
      std::max(0.0, machine_busy * cores - (window_s > 0 ? 100.0 * (mcpu + bcpu) / window_s : 0));

  nlohmann::json out = {
      {"agents", agents},
      {"registered", conn.registered},
      {"register_failures", conn.failed},
      {"rate", rate},
      {"warmup_s", warmup_s},
      {"duration_s", window_s},
      {"client_threads", threads},
      {"manager_threads", manager_threads},
      {"payload_bytes", fleet.payload_bytes()},
      {"connect_s", conn.seconds},
      {"reports_acked", w.acked},
      {"reports_per_s", per_s},
      {"manager_reports_per_s", manager_per_s},
      {"metrics_scrape_s", scrape_s},
      {"expected_per_s", expected},
      {"errors", w.errors},
      {"skipped", w.skipped},
      {"disconnects", w.disconnects},
      {"connected_at_end", w.connected},
      {"latency_ms",
       {{"p50", Ms(w.lat_p50_us)},
        {"p90", Ms(w.lat_p90_us)},
        {"p99", Ms(w.lat_p99_us)},
        {"p999", Ms(w.lat_p999_us)},
        {"max", Ms(w.lat_max_us)}}},
      {"timer_lag_ms", {{"p99", Ms(w.lag_p99_us)}, {"max", Ms(w.lag_max_us)}}},
      {"manager",
       {{"cpu_s", mcpu},
        {"cpu_percent_of_core", window_s > 0 ? 100.0 * mcpu / window_s : 0},
        {"rss_mb", m1.ok() ? Mb(m1->rss_kb) : 0},
        {"peak_rss_mb", m1.ok() ? Mb(m1->peak_rss_kb) : 0},
        {"threads", m1.ok() ? m1->threads : 0},
        {"exit", manager_exit},
        {"drain_s", drain_s},
        {"drained", drained},
        {"stop_s", stop_s}}},
      {"bench",
       {{"cpu_s", bcpu}, {"cpu_percent_of_core", window_s > 0 ? 100.0 * bcpu / window_s : 0}}},
      {"machine",
       {{"cores", cores}, {"busy_percent", machine_busy}, {"other_percent_of_core", other}}},
      {"first_error",
       w.first_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(w.first_error)}};

  if (as_json) {
    std::cout << out.dump(2) << "\n";
  } else {
    auto& o = std::cout;
    o << "dpustor-bench-fanin: " << agents << " agents x " << rate << " report/s, "
      << Fixed(window_s, 1) << " s window after " << warmup_s << " s warm-up\n";
    o << "  payload           " << fleet.payload_bytes() << " bytes per agent.report\n";
    o << "  connect           " << conn.registered << " registered in " << Fixed(conn.seconds, 2)
      << " s (" << conn.failed << " failed)\n";
    o << "  reports acked     " << w.acked << " (" << Fixed(per_s, 1) << "/s of "
      << Fixed(expected, 1) << "/s offered; manager counted " << Fixed(manager_per_s, 1) << "/s"
      << (scrape_s >= 0.5 ? ", its /metrics took " + Fixed(scrape_s, 1) + " s" : std::string())
      << ")\n";
    o << "  errors            " << w.errors << " errors, " << w.skipped << " skipped, "
      << w.disconnects << " disconnects, " << w.connected << " connected at end\n";
    o << "  latency ms        p50 " << Fixed(Ms(w.lat_p50_us), 2) << "  p90 "
      << Fixed(Ms(w.lat_p90_us), 2) << "  p99 " << Fixed(Ms(w.lat_p99_us), 2) << "  p99.9 "
      << Fixed(Ms(w.lat_p999_us), 2) << "  max " << Fixed(Ms(w.lat_max_us), 2) << "\n";
    o << "  client timer lag  p99 " << Fixed(Ms(w.lag_p99_us), 2) << " ms, max "
      << Fixed(Ms(w.lag_max_us), 2) << " ms\n";
    o << "  manager cpu       " << Fixed(mcpu, 2)
      << " s = " << Fixed(window_s > 0 ? 100.0 * mcpu / window_s : 0, 1) << "% of one core ("
      << (manager_threads > 0 ? std::to_string(manager_threads) : std::string("default"))
      << " I/O threads)\n";
    o << "  manager rss       " << Fixed(m1.ok() ? Mb(m1->rss_kb) : 0, 1) << " MB now, "
      << Fixed(m1.ok() ? Mb(m1->peak_rss_kb) : 0, 1) << " MB peak\n";
    o << "  bench cpu         " << Fixed(bcpu, 2)
      << " s = " << Fixed(window_s > 0 ? 100.0 * bcpu / window_s : 0, 1) << "% of one core ("
      << threads << " I/O threads)\n";
    o << "  machine           " << Fixed(machine_busy, 1) << "% busy over " << cores
      << " cores (manager and bench share them); other load " << Fixed(other, 1)
      << "% of one core\n";
    o << "  manager stop      agents gone after " << Fixed(drain_s, 2) << " s"
      << (drained ? "" : " (not all)") << ", then " << manager_exit << " after " << Fixed(stop_s, 2)
      << " s\n";
    if (!w.first_error.empty()) o << "  first error       " << w.first_error << "\n";
  }

  if (conn.failed > 0) {
    std::cerr << "dpustor-bench-fanin: " << conn.failed
              << " agents failed to register; first: " << conn.first_error << "\n";
    return 1;
  }
  if (!manager_ok || !measured) return 1;
  return 0;
}
