// dpustor-bench-fsd-smallfiles: the small-file workload of run_fio.sh. In a fresh
// subdirectory of DIR: create N files of SIZE bytes (open O_CREAT|O_EXCL, one write, close),
// stat them all, unlink them all; each phase timed on its own, one thread.
//
// Output: one line per phase, then `RESULT create=<ops/s> stat=<ops/s> unlink=<ops/s>`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "dpustor-bench-fsd-smallfiles: %s: %s\n", what.c_str(),
               std::strerror(errno));
  std::exit(1);
}

void Usage() {
  std::fprintf(stderr,
               "usage: dpustor-bench-fsd-smallfiles DIR [--files N] [--size BYTES]\n"
               "  creates, stats and unlinks N files (default 20000) of BYTES (default 4096)\n"
               "  in a new subdirectory of DIR, timing each phase\n");
  std::exit(2);
}

template <class F>
double Phase(const char* name, size_t n, F&& each) {
  auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < n; ++i) each(i);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double rate = static_cast<double>(n) / s;
  std::printf("%-7s %zu files: %8.3f s  %10.0f ops/s  %7.1f us/op\n", name, n, s, rate,
              s * 1e6 / static_cast<double>(n));
  std::fflush(stdout);
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  size_t files = 20000, size = 4096;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--files" || a == "--size") && i + 1 < argc) {
      char* end = nullptr;
      unsigned long long v = std::strtoull(argv[++i], &end, 10);
      if (*end != '\0' || v == 0) Usage();
      (a == "--files" ? files : size) = static_cast<size_t>(v);
    } else if (a.starts_with("-") || !dir.empty()) {
      Usage();
    } else {
      dir = a;
    }
  }
  if (dir.empty()) Usage();

  std::string base = dir + "/smallfiles." + std::to_string(getpid());
  if (mkdir(base.c_str(), 0755) != 0) Die("mkdir " + base);
  std::vector<std::string> names(files);
  for (size_t i = 0; i < files; ++i) names[i] = base + "/f" + std::to_string(i);
  std::vector<char> data(size, 'x');

  double create = Phase("create", files, [&](size_t i) {
    int fd = open(names[i].c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) Die("create " + names[i]);
    if (write(fd, data.data(), size) != static_cast<ssize_t>(size)) Die("write " + names[i]);
    if (close(fd) != 0) Die("close " + names[i]);
  });
  double stat_rate = Phase("stat", files, [&](size_t i) {
    struct stat st;
    if (stat(names[i].c_str(), &st) != 0) Die("stat " + names[i]);
    if (static_cast<size_t>(st.st_size) != size) {
      errno = EIO;
      Die("size of " + names[i]);
    }
  });
  double unlink_rate = Phase("unlink", files, [&](size_t i) {
    if (unlink(names[i].c_str()) != 0) Die("unlink " + names[i]);
  });
  if (rmdir(base.c_str()) != 0) Die("rmdir " + base);
  std::printf("RESULT create=%.0f stat=%.0f unlink=%.0f\n", create, stat_rate, unlink_rate);
  return 0;
}
