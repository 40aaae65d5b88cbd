// dpustor-bench-fsd-engine: the cost of one FUSE request through the dpustor FUSE engine
// (src/fs/fuse) with the memory backend, next to the same request through libfuse's
// lowlevel API with an in-RAM file system built like the memory backend. No kernel and no
// /dev/fuse on either side: raw requests encoded once in memory are replayed, replies are
// produced and dropped (engine: into a reply buffer; libfuse: a custom writev that counts
// bytes). See README.md.
#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "fuse_wire.h"
#include "libfuse_ram_fs.h"

#if DPUSTOR_BENCH_HAVE_ENGINE
#include <atomic>

#include "fs/backend/memory/memory_backend.h"
#include "fs/fuse/engine.h"
#endif

namespace dpustor::bench {
namespace {

// One side of the comparison.
class Target {
 public:
  virtual ~Target() = default;
  // Serves `req` (a fresh unique id is set here) and returns the reply's size in bytes.
  // With `capture`, reply() holds the reply bytes afterwards.
  size_t Run(WireRequest& req, bool capture = false) {
    req.set_unique(++unique_);
    return Serve(req, capture);
  }
  virtual const char* reply() const = 0;

 protected:
  virtual size_t Serve(WireRequest& req, bool capture) = 0;

 private:
  uint64_t unique_ = 0;
};

class LibfuseTarget : public Target {
 public:
  const char* reply() const override { return fs_.reply(); }

 protected:
  size_t Serve(WireRequest& req, bool capture) override {
    if (!capture) return fs_.Process(req.data(), req.size());
    fs_.set_capture(true);
    size_t n = fs_.Process(req.data(), req.size());
    fs_.set_capture(false);
    return n;
  }

 private:
  LibfuseRamFs fs_;
};

#if DPUSTOR_BENCH_HAVE_ENGINE
class EngineTarget : public Target {
 public:
  // The reply buffer has room for a 1 MiB reply (max_pages 256) plus its header, as a
  // transport provides.
  EngineTarget() : engine_(backend_, fs::EngineOptions{}), out_((1 << 20) + 4096) {}
  const char* reply() const override { return out_.data(); }

 protected:
  size_t Serve(WireRequest& req, bool) override {
    iovec in{req.data(), req.size()};
    iovec out{out_.data(), out_.size()};
    ++issued_;
    engine_.Process(std::span<const iovec>(&in, 1), std::span<const iovec>(&out, 1), &done_);
    // The memory backend replies before Process returns; wait anyway if it did not.
    while (done_.count.load(std::memory_order_acquire) != issued_) {
    }
    return done_.bytes;
  }

 private:
  struct Done : fs::Completion {
    std::atomic<uint64_t> count{0};
    size_t bytes = 0;
    void Complete(size_t reply_bytes) override {
      bytes = reply_bytes;
      count.fetch_add(1, std::memory_order_release);
    }
  };

  fs::MemoryBackend backend_;
  fs::Engine engine_;
  std::vector<char> out_;
  Done done_;
  uint64_t issued_ = 0;
};
#endif

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "dpustor-bench-fsd-engine: %s\n", what.c_str());
  std::exit(1);
}

int32_t Check(Target& t, WireRequest& req, const char* what, size_t* bytes = nullptr) {
  size_t n = t.Run(req, true);
  int32_t err = ReplyErrno(t.reply(), n);
  if (err != 0) Die(std::string(what) + " failed: " + std::strerror(-err));
  if (bytes) *bytes = n;
  return err;
}

constexpr size_t kFileSize = 1 << 20;
constexpr uint32_t kIo = 4096;
constexpr int kDirEntries = 200;

// The tree and the requests replayed on one side, built through that side's own request
// path (so node ids and handles are that side's).
struct Workload {
  explicit Workload(Target& target) : t(target) {
    WireRequest init = InitRequest();
    Check(t, init, "INIT");

    WireRequest create = CreateRequest(FUSE_ROOT_ID, "file", S_IFREG | 0644, O_RDWR | O_CREAT);
    size_t n;
    Check(t, create, "CREATE file", &n);
    file = ReplyNodeId(t.reply(), n);
    file_fh = ReplyCreateFh(t.reply(), n);
    for (size_t off = 0; off < kFileSize; off += kIo) {
      WireRequest w = WriteRequest(file, file_fh, off, kIo, O_RDWR);
      Check(t, w, "WRITE");
    }

    WireRequest mkdir = MkdirRequest(FUSE_ROOT_ID, "dir", S_IFDIR | 0755);
    Check(t, mkdir, "MKDIR dir", &n);
    dir = ReplyNodeId(t.reply(), n);
    for (int i = 0; i < kDirEntries; ++i) {
      char name[32];
      std::snprintf(name, sizeof(name), "file-%03d", i);
      WireRequest c = CreateRequest(dir, name, S_IFREG | 0644, O_WRONLY | O_CREAT);
      Check(t, c, "CREATE dir/file", &n);
      WireRequest rel = ReleaseRequest(FUSE_RELEASE, ReplyNodeId(t.reply(), n),
                                       ReplyCreateFh(t.reply(), n), O_WRONLY);
      Check(t, rel, "RELEASE");
    }
    WireRequest opendir = OpenRequest(FUSE_OPENDIR, dir, O_RDONLY | O_DIRECTORY);
    Check(t, opendir, "OPENDIR", &n);
    dir_fh = ReplyOpenFh(t.reply(), n);

    lookup = LookupRequest(FUSE_ROOT_ID, "file");
    getattr = GetattrRequest(file);
    read = ReadRequest(FUSE_READ, file, file_fh, 0, kIo, O_RDWR);
    write = WriteRequest(file, file_fh, 0, kIo, O_RDWR);
    readdir = ReadRequest(FUSE_READDIR, dir, dir_fh, 0, kIo, O_RDONLY);
    readdirplus = ReadRequest(FUSE_READDIRPLUS, dir, dir_fh, 0, kIo, O_RDONLY);
    open = OpenRequest(FUSE_OPEN, file, O_RDONLY);
    release = ReleaseRequest(FUSE_RELEASE, file, 0, O_RDONLY);
    create_tmp = CreateRequest(FUSE_ROOT_ID, "tmp", S_IFREG | 0644, O_RDWR | O_CREAT | O_EXCL);
    release_tmp = ReleaseRequest(FUSE_RELEASE, 0, 0, O_RDWR);
    unlink_tmp = UnlinkRequest(FUSE_ROOT_ID, "tmp");
    forget_tmp = ForgetRequest(0, 1);
  }

  // One operation of each kind; `i` moves the read/write offset through the file.
  size_t Lookup() { return t.Run(lookup); }
  size_t Getattr() { return t.Run(getattr); }
  size_t Read(uint64_t i) {
    read.arg<fuse_read_in>()->offset = (i * kIo) % kFileSize;
    return t.Run(read);
  }
  size_t Write(uint64_t i) {
    write.arg<fuse_write_in>()->offset = (i * kIo) % kFileSize;
    return t.Run(write);
  }
  size_t Readdir() { return t.Run(readdir); }
  size_t Readdirplus() { return t.Run(readdirplus); }
  // OPEN + RELEASE, what open()/close() of a cached file costs the server.
  size_t OpenRelease() {
    size_t n = t.Run(open, true);
    release.arg<fuse_release_in>()->fh = ReplyOpenFh(t.reply(), n);
    return n + t.Run(release);
  }
  // CREATE + RELEASE + UNLINK + FORGET, what creat()/close()/unlink() costs the server.
  size_t CreateUnlink() {
    size_t n = t.Run(create_tmp, true);
    uint64_t node = ReplyNodeId(t.reply(), n);
    release_tmp.set_nodeid(node);
    release_tmp.arg<fuse_release_in>()->fh = ReplyCreateFh(t.reply(), n);
    forget_tmp.set_nodeid(node);
    n += t.Run(release_tmp);
    n += t.Run(unlink_tmp);
    return n + t.Run(forget_tmp);
  }

  Target& t;
  uint64_t file = 0, file_fh = 0, dir = 0, dir_fh = 0;
  WireRequest lookup, getattr, read, write, readdir, readdirplus, open, release;
  WireRequest create_tmp, release_tmp, unlink_tmp, forget_tmp;
};

struct OpDef {
  const char* name;
  const char* what;
  std::function<size_t(Workload&, uint64_t)> run;
};

const std::vector<OpDef>& Ops() {
  static const std::vector<OpDef> ops = {
      {"lookup", "LOOKUP of an existing name in the root",
       [](Workload& w, uint64_t) { return w.Lookup(); }},
      {"getattr", "GETATTR of a 1 MiB file", [](Workload& w, uint64_t) { return w.Getattr(); }},
      {"read_4k", "READ 4 KiB, offsets cycling through the 1 MiB file",
       [](Workload& w, uint64_t i) { return w.Read(i); }},
      {"write_4k", "WRITE 4 KiB, offsets cycling through the 1 MiB file",
       [](Workload& w, uint64_t i) { return w.Write(i); }},
      {"readdir_4k", "READDIR 4 KiB from offset 0 of a 200-entry directory",
       [](Workload& w, uint64_t) { return w.Readdir(); }},
      {"readdirplus_4k", "READDIRPLUS 4 KiB from offset 0 of a 200-entry directory",
       [](Workload& w, uint64_t) { return w.Readdirplus(); }},
      {"open_release", "OPEN + RELEASE of the file (2 requests)",
       [](Workload& w, uint64_t) { return w.OpenRelease(); }},
      {"create_unlink", "CREATE + RELEASE + UNLINK + FORGET (4 requests)",
       [](Workload& w, uint64_t) { return w.CreateUnlink(); }},
  };
  return ops;
}

// Keeps every run's time next to the normal console output.
class Collector : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      std::string name = run.run_name.function_name;
      if (run.run_type == Run::RT_Aggregate) {
        if (run.aggregate_name != "median") continue;
        medians[name] = run.GetAdjustedRealTime();
      } else {
        singles[name] = run.GetAdjustedRealTime();  // the last repetition if repeated
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  double Ns(const std::string& name) const {
    if (auto it = medians.find(name); it != medians.end()) return it->second;
    if (auto it = singles.find(name); it != singles.end()) return it->second;
    return -1;
  }

 private:
  std::map<std::string, double> medians, singles;
};

void PrintReplyCheck(const std::vector<std::pair<std::string, Workload*>>& sides) {
  std::printf(
      "\nReply sizes (bytes) of one request of each kind, to check both sides do the "
      "same work:\n%-16s",
      "op");
  for (const auto& [name, w] : sides) std::printf(" %18s", name.c_str());
  std::printf("\n");
  uint64_t i = 0;
  for (const OpDef& op : Ops()) {
    std::printf("%-16s", op.name);
    for (const auto& [name, w] : sides) {
      size_t n = op.run(*w, i);
      std::string cell = std::to_string(n);
      if (std::string(op.name).starts_with("readdir")) {
        // Run once more with the reply kept, to count its entries.
        bool plus = std::string(op.name) == "readdirplus_4k";
        size_t m = w->t.Run(plus ? w->readdirplus : w->readdir, true);
        cell += " (" + std::to_string(CountDirEntries(w->t.reply(), m, plus)) + " entries)";
      }
      std::printf(" %18s", cell.c_str());
    }
    std::printf("\n");
    ++i;
  }
}

}  // namespace
}  // namespace dpustor::bench

int main(int argc, char** argv) {
  using namespace dpustor::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;

  std::vector<std::pair<std::string, std::unique_ptr<Target>>> targets;
#if DPUSTOR_BENCH_HAVE_ENGINE
  targets.emplace_back("engine", std::make_unique<EngineTarget>());
#else
  std::fprintf(stderr,
               "dpustor-bench-fsd-engine: built without the dpustor FUSE engine or the memory "
               "backend; measuring libfuse only\n");
#endif
  targets.emplace_back("libfuse", std::make_unique<LibfuseTarget>());

  std::vector<std::unique_ptr<Workload>> workloads;
  std::vector<std::pair<std::string, Workload*>> sides;
  for (auto& [name, target] : targets) {
    workloads.push_back(std::make_unique<Workload>(*target));
    sides.emplace_back(name, workloads.back().get());
  }

  std::printf(
      "libfuse %s (lowlevel API, fuse_session_process_buf, custom I/O discarding "
      "replies)\n",
      LibfuseRamFs::Version());
  for (const OpDef& op : Ops()) {
    for (const auto& [name, w] : sides) {
      benchmark::RegisterBenchmark((name + "/" + op.name).c_str(), [w = w, run = op.run](
                                                                       benchmark::State& state) {
        uint64_t i = 0, bytes = 0;
        for (auto _ : state) bytes += run(*w, i++);
        benchmark::DoNotOptimize(bytes);
        state.counters["reply_B"] = benchmark::Counter(
            static_cast<double>(bytes) / static_cast<double>(std::max<uint64_t>(i, 1)));
      })->Unit(benchmark::kNanosecond);
    }
  }
  Collector collector;
  benchmark::RunSpecifiedBenchmarks(&collector);

  PrintReplyCheck(sides);

  std::printf(
      "\nns per operation (median of repetitions when --benchmark_repetitions is given)"
      "\n%-16s %12s %12s %16s  %s\n",
      "op", "engine", "libfuse", "engine/libfuse", "what");
  for (const OpDef& op : Ops()) {
    double e = collector.Ns(std::string("engine/") + op.name);
    double l = collector.Ns(std::string("libfuse/") + op.name);
    if (e < 0 && l < 0) continue;
    char ratio[32] = "-";
    if (e > 0 && l > 0) std::snprintf(ratio, sizeof(ratio), "%.2f", e / l);
    std::printf("%-16s %12s %12s %16s  %s\n", op.name,
                e < 0 ? "-" : std::to_string(static_cast<int64_t>(e + 0.5)).c_str(),
                l < 0 ? "-" : std::to_string(static_cast<int64_t>(l + 0.5)).c_str(), ratio,
                op.what);
  }
  benchmark::Shutdown();
  return 0;
}
