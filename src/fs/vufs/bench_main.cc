// dpustor-vufs-bench: FUSE requests over vhost-user at a chosen queue depth and queue count,
// against any vhost-user-fs back-end (dpustor-fsd, virtiofsd), without a VM. It plays QEMU
// and the guest driver (Frontend), prepares the test file through FUSE itself, then runs
// one submitting thread per request queue for --seconds and reports throughput, latency
// and CPU time per operation of itself and (--server-pid) of the back-end.
// Exit status: 0 on success, 1 on any FUSE or protocol error, 2 on bad arguments.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/json_rpc.h"
#include "fs/vufs/frontend.h"
#include "fs/vufs/fuse_client.h"

namespace dpustor::fs::vufs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMiB = 1 << 20;

enum class Workload { kRandRead4k, kSeqRead1m, kSeqWrite1m, kLookupGetattr };

struct Options {
  std::string socket;
  uint32_t queues = 1;
  uint32_t depth = 1;
  std::string workload;
  std::string file = "vufs-bench.dat";
  uint64_t file_size = 256ull * kMiB;
  double seconds = 10;
  int server_pid = 0;
  bool json = false;
  uint32_t queue_size = 256;
  bool no_event_idx = false;
  bool indirect = false;
};

// What every thread shares.
struct Shared {
  Workload workload;
  uint32_t io_size = 0;
  uint64_t file_size = 0;  // usable bytes: a multiple of io_size
  uint64_t nodeid = 0;
  uint64_t fh = 0;
  std::string name;
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::atomic<uint64_t> next_seq{0};
  std::mutex error_mu;
  std::string error;

  void Fail(const std::string& what) {
    std::lock_guard lock(error_mu);
    if (error.empty()) error = what;
    failed = true;
    stop = true;
  }
};

struct WorkerResult {
  uint64_t ops = 0;
  uint64_t lookups = 0;  // LOOKUPs answered (each adds one to the node's lookup count)
  std::vector<uint32_t> latency_ns;
  uint64_t kicks = 0, sleeps = 0;
};

// One request in flight, reused for the whole run.
struct Slot {
  GuestBuffer meta;  // request at +0, out header + small reply at +kReplyAt
  GuestBuffer data;  // read data or write payload
  uint64_t unique = 0;
  Clock::time_point start;
  bool getattr_phase = false;
  uint64_t offset = 0;
};
constexpr uint64_t kMetaSize = 4096;
constexpr uint64_t kReplyAt = 2048;

uint64_t Xorshift(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

class Worker {
 public:
  Worker(Shared& shared, FrontendQueue& queue, GuestRam& ram, uint32_t slots)
      : sh_(shared),
        q_(queue),
        ram_(ram),
        nslots_(slots),
        rng_(0x9e3779b97f4a7c15ull * (queue.index() + 1)) {}

  ~Worker() {
    for (Slot& s : slots_) {
      if (s.meta.len) (void)ram_.Free(s.meta);
      if (s.data.len) (void)ram_.Free(s.data);
    }
  }

  Status Prepare() {
    slots_.resize(nslots_);
    head_to_slot_.assign(q_.ring().size(), -1);
    for (Slot& s : slots_) {
      auto m = ram_.Allocate(kMetaSize, 4096);
      if (!m) return m.error();
      s.meta = *m;
      if (sh_.io_size) {
        auto d = ram_.Allocate(sh_.io_size, 4096);
        if (!d) return d.error();
        s.data = *d;
        for (uint64_t i = 0; i < d->len; ++i) d->host[i] = static_cast<uint8_t>(i * 131 + 7);
      }
    }
    result_.latency_ns.reserve(1 << 20);
    return Status::Ok();
  }

  // Runs until Shared::stop, then drains what is in flight.
  void Run(const std::atomic<bool>& go) {
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    Status s = Loop();
    if (!s) sh_.Fail("queue " + std::to_string(q_.index()) + ": " + s.error().message);
    result_.kicks = q_.kicks();
    result_.sleeps = q_.sleeps();
  }

  WorkerResult& result() { return result_; }

 private:
  Status Loop() {
    for (size_t i = 0; i < slots_.size(); ++i)
      if (Status s = Issue(static_cast<int>(i), true); !s) return s;
    if (Status s = q_.Kick(); !s) return s;
    while (inflight_ > 0) {
      bool any = false;
      for (;;) {
        auto used = q_.Poll();
        if (!used) return used.error();
        if (!*used) break;
        if (Status s = Complete(**used); !s) return s;
        any = true;
      }
      if (!any && inflight_ > 0) {
        auto used = q_.Wait(std::chrono::seconds(30));
        if (!used) return used.error();
        if (Status s = Complete(*used); !s) return s;
      }
      if (Status s = q_.Kick(); !s) return s;
    }
    return Status::Ok();
  }

  // Builds and submits the next request of slot `i`.
  Status Issue(int i, bool fresh) {
    Slot& s = slots_[i];
    if (fresh) s.start = Clock::now();
    s.unique = ++unique_;
    uint32_t opcode = 0;
    std::vector<uint8_t> args;
    std::string_view name;
    uint64_t nodeid = sh_.nodeid;
    uint32_t payload = 0;
    uint32_t reply_cap = 0;
    auto put = [&](const auto& v) {
      auto bytes = AsBytes(v);
      args.assign(bytes.begin(), bytes.end());
    };
    switch (sh_.workload) {
      case Workload::kRandRead4k:
      case Workload::kSeqRead1m: {
        s.offset = sh_.workload == Workload::kRandRead4k
                       ? (Xorshift(rng_) % (sh_.file_size / sh_.io_size)) * sh_.io_size
                       : sh_.next_seq.fetch_add(sh_.io_size) % sh_.file_size;
        fuse_read_in in{};
        in.fh = sh_.fh;
        in.offset = s.offset;
        in.size = sh_.io_size;
        put(in);
        opcode = FUSE_READ;
        reply_cap = sh_.io_size;
        break;
      }
      case Workload::kSeqWrite1m: {
        s.offset = sh_.next_seq.fetch_add(sh_.io_size) % sh_.file_size;
        fuse_write_in in{};
        in.fh = sh_.fh;
        in.offset = s.offset;
        in.size = sh_.io_size;
        put(in);
        opcode = FUSE_WRITE;
        payload = sh_.io_size;
        reply_cap = sizeof(fuse_write_out);
        break;
      }
      case Workload::kLookupGetattr:
        if (!s.getattr_phase) {
          opcode = FUSE_LOOKUP;
          nodeid = kRootNodeId;
          name = sh_.name;
          reply_cap = sizeof(fuse_entry_out);
        } else {
          put(fuse_getattr_in{});
          opcode = FUSE_GETATTR;
          reply_cap = sizeof(fuse_attr_out);
        }
        break;
    }
    const size_t n =
        EncodeFuseRequest({s.meta.host, kReplyAt}, opcode, s.unique, nodeid, args, name, payload);
    Segment readable[2] = {{s.meta.gpa, static_cast<uint32_t>(n)}, {s.data.gpa, payload}};
    // Reads: the data straight into its own buffer, as the guest driver does with pages.
    const bool data_reply = opcode == FUSE_READ;
    Segment writable[2] = {
        {s.meta.gpa + kReplyAt,
         static_cast<uint32_t>(sizeof(fuse_out_header) + (data_reply ? 0 : reply_cap))},
        {s.data.gpa, reply_cap}};
    auto head = q_.Submit({readable, payload ? 2u : 1u}, {writable, data_reply ? 2u : 1u});
    if (!head) return head.error();
    head_to_slot_[*head] = i;
    ++inflight_;
    return Status::Ok();
  }

  Status Complete(const UsedElem& u) {
    const int i = u.head < head_to_slot_.size() ? head_to_slot_[u.head] : -1;
    if (i < 0)
      return Error{rpc::kFailed,
                   "completion for head " + std::to_string(u.head) + " never submitted"};
    head_to_slot_[u.head] = -1;
    --inflight_;
    Slot& s = slots_[i];
    fuse_out_header out;
    std::memcpy(&out, s.meta.host + kReplyAt, sizeof out);
    auto len = CheckFuseReply(out, u.len, s.unique);
    const char* what = "";
    switch (sh_.workload) {
      case Workload::kRandRead4k:
      case Workload::kSeqRead1m:
        what = "FUSE_READ";
        break;
      case Workload::kSeqWrite1m:
        what = "FUSE_WRITE";
        break;
      case Workload::kLookupGetattr:
        what = s.getattr_phase ? "FUSE_GETATTR" : "FUSE_LOOKUP";
        break;
    }
    if (!len)
      return Error{len.error().code, std::string(what) + " at offset " + std::to_string(s.offset) +
                                         ": " + len.error().message};
    const uint8_t* small = s.meta.host + kReplyAt + sizeof(fuse_out_header);
    bool done = true;
    switch (sh_.workload) {
      case Workload::kRandRead4k:
      case Workload::kSeqRead1m:
        if (*len != sh_.io_size)
          return Error{rpc::kFailed, "short FUSE_READ at offset " + std::to_string(s.offset) +
                                         ": " + std::to_string(*len) + " bytes"};
        break;
      case Workload::kSeqWrite1m: {
        fuse_write_out w{};
        if (*len == sizeof w) std::memcpy(&w, small, sizeof w);
        if (w.size != sh_.io_size)
          return Error{rpc::kFailed, "short FUSE_WRITE at offset " + std::to_string(s.offset)};
        break;
      }
      case Workload::kLookupGetattr:
        if (!s.getattr_phase) {
          fuse_entry_out e{};
          if (*len != sizeof e) return Error{rpc::kFailed, "FUSE_LOOKUP reply of wrong size"};
          std::memcpy(&e, small, sizeof e);
          ++result_.lookups;
          if (e.nodeid != sh_.nodeid)
            return Error{rpc::kFailed, "FUSE_LOOKUP returned node " + std::to_string(e.nodeid) +
                                           ", expected " + std::to_string(sh_.nodeid)};
          done = false;
        } else if (*len != sizeof(fuse_attr_out)) {
          return Error{rpc::kFailed, "FUSE_GETATTR reply of wrong size"};
        }
        s.getattr_phase = !s.getattr_phase;
        break;
    }
    if (done && !sh_.stop.load(std::memory_order_relaxed)) {
      ++result_.ops;
      result_.latency_ns.push_back(static_cast<uint32_t>(std::min<int64_t>(
          UINT32_MAX,
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s.start).count())));
    }
    // A lookup is always followed by its getattr, so the node's lookup count stays exact.
    if (!done || !sh_.stop.load(std::memory_order_relaxed)) return Issue(i, done);
    return Status::Ok();
  }

  Shared& sh_;
  FrontendQueue& q_;
  GuestRam& ram_;
  uint32_t nslots_;
  uint64_t rng_;
  std::vector<Slot> slots_;
  std::vector<int> head_to_slot_;
  uint32_t inflight_ = 0;
  uint64_t unique_ = 0;
  WorkerResult result_;
};

// Parent PID and utime + stime (seconds) of one process, from /proc/PID/stat.
struct ProcStat {
  int ppid = 0;
  double cpu = 0;
};
std::optional<ProcStat> ReadProcStat(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return std::nullopt;
  const size_t paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 > line.size()) return std::nullopt;
  std::istringstream in(line.substr(paren + 2));  // starts at field 3 (state)
  std::string field;
  ProcStat st;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 4) st.ppid = std::atoi(field.c_str());
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  st.cpu = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return st;
}

// CPU seconds of a process and all its descendants: a daemon may serve from a child
// (virtiofsd forks into its sandbox and the parent only waits). nullopt if `pid` is gone.
std::optional<double> ProcessCpuSeconds(int pid) {
  auto root = ReadProcStat(pid);
  if (!root) return std::nullopt;
  std::multimap<int, std::pair<int, double>> by_parent;  // ppid -> (pid, cpu)
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int p = std::atoi(name.c_str());
    if (auto st = ReadProcStat(p)) by_parent.emplace(st->ppid, std::make_pair(p, st->cpu));
  }
  double total = root->cpu;
  std::vector<int> todo{pid};
  while (!todo.empty()) {
    const int parent = todo.back();
    todo.pop_back();
    auto [b, e] = by_parent.equal_range(parent);
    for (auto it = b; it != e; ++it) {
      total += it->second.second;
      todo.push_back(it->second.first);
    }
  }
  return total;
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

// Opens (creating it if needed) the test file and, for read workloads, fills it.
Status PrepareFile(FuseClient& fuse, Shared& sh, uint64_t* lookups) {
  auto entry = fuse.Lookup(kRootNodeId, sh.name);
  uint64_t size = 0;
  if (entry) {
    sh.nodeid = entry->nodeid;
    size = entry->attr.size;
    auto open = fuse.Open(sh.nodeid, O_RDWR);
    if (!open) return open.error();
    sh.fh = open->fh;
  } else if (entry.error().code == -ENOENT) {
    auto created = fuse.Create(kRootNodeId, sh.name, O_RDWR | O_CREAT, 0644);
    if (!created) return created.error();
    sh.nodeid = created->entry.nodeid;
    sh.fh = created->open.fh;
  } else {
    return entry.error();
  }
  *lookups = 1;
  const bool reads = sh.workload == Workload::kRandRead4k || sh.workload == Workload::kSeqRead1m;
  if (reads && size < sh.file_size) {
    std::vector<uint8_t> chunk(kMiB);
    for (uint64_t off = size / kMiB * kMiB; off < sh.file_size; off += kMiB) {
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(kMiB, sh.file_size - off));
      for (uint32_t i = 0; i < n; ++i)
        chunk[i] = static_cast<uint8_t>((off + i) * 2654435761u >> 13);
      auto w = fuse.Write(sh.nodeid, sh.fh, off, {chunk.data(), n});
      if (!w) return w.error();
      if (*w != n) return Error{rpc::kFailed, "short FUSE_WRITE while preparing the file"};
    }
  }
  return Status::Ok();
}

double Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)] / 1000.0;
}

int Run(const Options& o) {
  Shared sh;
  if (o.workload == "randread4k") {
    sh.workload = Workload::kRandRead4k;
    sh.io_size = 4096;
  } else if (o.workload == "seqread1m") {
    sh.workload = Workload::kSeqRead1m;
    sh.io_size = kMiB;
  } else if (o.workload == "seqwrite1m") {
    sh.workload = Workload::kSeqWrite1m;
    sh.io_size = kMiB;
  } else {
    sh.workload = Workload::kLookupGetattr;
  }
  sh.name = o.file;
  if (sh.io_size) {
    sh.file_size = o.file_size / sh.io_size * sh.io_size;
    if (sh.file_size == 0) {
      std::fprintf(stderr, "error: --file-size must be at least one I/O (%u bytes)\n", sh.io_size);
      return 2;
    }
  }
  // Three descriptors per request (request, out header, data) unless indirect.
  const uint32_t per_queue = (o.depth + o.queues - 1) / o.queues;
  if (!o.indirect && per_queue * 3 > o.queue_size) {
    std::fprintf(stderr,
                 "error: depth %u over %u queues needs %u descriptors per queue; "
                 "raise --queue-size or use --indirect\n",
                 o.depth, o.queues, per_queue * 3);
    return 2;
  }

  FrontendOptions fo;
  fo.socket_path = o.socket;
  fo.request_queues = o.queues;
  fo.queue_size = o.queue_size;
  fo.event_idx = !o.no_event_idx;
  fo.indirect = o.indirect;
  fo.memory_bytes = 64ull * kMiB + uint64_t{o.depth} * (sh.io_size + 2 * kMetaSize) + 2ull * kMiB;
  auto frontend = Frontend::Connect(fo);
  if (!frontend) {
    std::fprintf(stderr, "error: %s\n", frontend.error().message.c_str());
    return 1;
  }
  Frontend& fe = **frontend;

  uint64_t setup_lookups = 0;
  {
    auto fuse = FuseClient::Create(fe, 1, kMiB);
    if (!fuse) {
      std::fprintf(stderr, "error: %s\n", fuse.error().message.c_str());
      return 1;
    }
    auto init = (*fuse)->Init();
    if (!init) {
      std::fprintf(stderr, "error: %s\n", init.error().message.c_str());
      return 1;
    }
    if (sh.workload == Workload::kSeqWrite1m && init->max_write < kMiB) {
      std::fprintf(stderr, "error: the server's max_write is %u bytes, below 1 MiB\n",
                   init->max_write);
      return 1;
    }
    if (Status s = PrepareFile(**fuse, sh, &setup_lookups); !s) {
      std::fprintf(stderr, "error: preparing %s: %s\n", sh.name.c_str(), s.error().message.c_str());
      return 1;
    }
  }

  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t q = 0; q < o.queues; ++q) {
    const uint32_t slots = o.depth / o.queues + (q < o.depth % o.queues ? 1 : 0);
    if (slots == 0) continue;
    workers.push_back(std::make_unique<Worker>(sh, fe.queue(1 + q), fe.ram(), slots));
    if (Status s = workers.back()->Prepare(); !s) {
      std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
      return 1;
    }
  }
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (auto& w : workers) threads.emplace_back([&go, w = w.get()] { w->Run(go); });

  const auto server0 = o.server_pid ? ProcessCpuSeconds(o.server_pid) : std::nullopt;
  const double client0 = SelfCpuSeconds();
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  const auto deadline = t0 + std::chrono::duration<double>(o.seconds);
  while (Clock::now() < deadline && !sh.failed)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  sh.stop = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const double client1 = SelfCpuSeconds();
  const auto server1 = o.server_pid ? ProcessCpuSeconds(o.server_pid) : std::nullopt;
  for (auto& t : threads) t.join();

  WorkerResult total;
  for (auto& w : workers) {
    WorkerResult& r = w->result();
    total.ops += r.ops;
    total.lookups += r.lookups;
    total.kicks += r.kicks;
    total.sleeps += r.sleeps;
    total.latency_ns.insert(total.latency_ns.end(), r.latency_ns.begin(), r.latency_ns.end());
  }
  workers.clear();

  // Tidy up: close the file and give back every lookup, as a guest's kernel would.
  std::string cleanup_error;
  if (!sh.failed) {
    auto fuse = FuseClient::Create(fe, 1, 4096);
    Status s = fuse ? (*fuse)->Release(sh.nodeid, sh.fh) : Status(fuse.error());
    if (s) s = (*fuse)->Forget(sh.nodeid, setup_lookups + total.lookups);
    if (!s) cleanup_error = s.error().message;
  }
  Status disc = fe.Disconnect();
  if (sh.failed || !cleanup_error.empty() || !disc) {
    std::fprintf(stderr, "error: %s\n",
                 sh.failed                ? sh.error.c_str()
                 : !cleanup_error.empty() ? cleanup_error.c_str()
                                          : disc.error().message.c_str());
    return 1;
  }

  std::sort(total.latency_ns.begin(), total.latency_ns.end());
  double sum = 0;
  for (uint32_t v : total.latency_ns) sum += v;
  const double ops_s = total.ops / elapsed;
  const double mib_s = ops_s * sh.io_size / kMiB;
  const double avg_us = total.ops ? sum / total.ops / 1000.0 : 0;
  const double client_us = total.ops ? (client1 - client0) * 1e6 / total.ops : 0;
  std::optional<double> server_us;
  if (server0 && server1 && total.ops) server_us = (*server1 - *server0) * 1e6 / total.ops;

  nlohmann::json j = {
      {"workload", o.workload},
      {"queues", o.queues},
      {"active_queues", threads.size()},
      {"depth", o.depth},
      {"seconds", elapsed},
      {"ops", total.ops},
      {"ops_per_sec", ops_s},
      {"mib_per_sec", mib_s},
      {"latency_us",
       {{"avg", avg_us},
        {"p50", Percentile(total.latency_ns, 0.50)},
        {"p99", Percentile(total.latency_ns, 0.99)},
        {"max", total.latency_ns.empty() ? 0.0 : total.latency_ns.back() / 1000.0}}},
      {"client_cpu_us_per_op", client_us},
      {"server_cpu_us_per_op", server_us ? nlohmann::json(*server_us) : nlohmann::json(nullptr)},
      {"kicks", total.kicks},
      {"sleeps", total.sleeps},
      {"features", fe.features()},
      {"backend_queue_num", fe.backend_queue_num()},
  };
  if (o.json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s: %u request queue(s) (%zu active), depth %u, %.1f s\n", o.workload.c_str(),
                o.queues, threads.size(), o.depth, elapsed);
    std::printf("  %.0f ops/s, %.1f MiB/s\n", ops_s, mib_s);
    std::printf("  latency us: avg %.1f, p50 %.1f, p99 %.1f, max %.1f\n", avg_us,
                Percentile(total.latency_ns, 0.50), Percentile(total.latency_ns, 0.99),
                total.latency_ns.empty() ? 0.0 : total.latency_ns.back() / 1000.0);
    std::printf("  cpu us/op: client %.2f", client_us);
    if (server_us) std::printf(", server %.2f", *server_us);
    std::printf("\n  kicks %llu, sleeps %llu\n", static_cast<unsigned long long>(total.kicks),
                static_cast<unsigned long long>(total.sleeps));
  }
  return 0;
}

}  // namespace
}  // namespace dpustor::fs::vufs

int main(int argc, char** argv) {
  dpustor::fs::vufs::Options o;
  CLI::App app{"dpustor-vufs-bench: FUSE requests over vhost-user-fs without a VM"};
  app.add_option("--socket", o.socket, "the back-end's vhost-user socket")->required();
  app.add_option("--queues", o.queues, "request queues")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--depth", o.depth, "requests in flight in total, spread over the queues")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_option("--workload", o.workload, "what to send")
      ->required()
      ->check(CLI::IsMember({"randread4k", "seqread1m", "seqwrite1m", "lookup_getattr"}));
  app.add_option("--file", o.file, "test file name in the share's root")->capture_default_str();
  app.add_option("--file-size", o.file_size, "test file size in bytes")
      ->check(CLI::Range(uint64_t{4096}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "measured run time")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  app.add_option("--server-pid", o.server_pid, "back-end PID, for its CPU time per operation")
      ->check(CLI::Range(1, 1 << 30));
  app.add_option("--queue-size", o.queue_size, "descriptors per queue (power of two)")
      ->check(CLI::Range(1, 32768))
      ->capture_default_str();
  app.add_flag("--no-event-idx", o.no_event_idx, "do not negotiate VIRTIO_RING_F_EVENT_IDX");
  app.add_flag("--indirect", o.indirect, "negotiate and use indirect descriptors");
  app.add_flag("--json", o.json, "one JSON object instead of text");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (o.queue_size & (o.queue_size - 1)) {
    std::fprintf(stderr, "error: --queue-size must be a power of two\n");
    return 2;
  }
  if (o.file.empty() || o.file.find('/') != std::string::npos || o.file == "." || o.file == "..") {
    std::fprintf(stderr, "error: --file must be a plain name in the share's root\n");
    return 2;
  }
  return dpustor::fs::vufs::Run(o);
}
