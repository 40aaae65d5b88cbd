#include "manager_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "common/json_rpc.h"

namespace dpustor::bench {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

ManagerProcess* g_live = nullptr;  // the child the atexit hook must not leave behind

void StopAtExit() {
  if (g_live != nullptr) g_live->Stop(milliseconds(3000));
}

Error Fail(const std::string& what) {
  return Error{rpc::kFailed, what + ": " + std::strerror(errno)};
}

// Loopback ports nobody listens on right now: bound to port 0 together (so they differ),
// then released for the manager to bind.
Result<std::vector<int>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  Status failed;
  for (int i = 0; i < count && failed.ok(); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      failed = Fail("socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      failed = Fail("bind a loopback port");
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (!failed.ok()) return failed.error();
  return ports;
}

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int PortOf(const std::string& endpoint) {
  return std::atoi(endpoint.substr(endpoint.rfind(':') + 1).c_str());
}

std::string RandomToken() {
  std::random_device rd;
  std::string out;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) out += hex[rd() % 16];
  return out;
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Result<std::unique_ptr<ManagerProcess>> ManagerProcess::Start(const ManagerOptions& options) {
  if (::access(options.binary.c_str(), X_OK) != 0) return Fail("manager binary " + options.binary);
  std::unique_ptr<ManagerProcess> m(new ManagerProcess());
  m->options_ = options;

  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/dpustor-bench-fanin-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) return Fail("mkdtemp " + pattern);
  m->dir_ = pattern;

  m->token_ = RandomToken();
  {
    std::ofstream token(m->dir_ + "/token");
    token << m->token_ << "\n";
    if (!token) return Error{rpc::kFailed, "cannot write " + m->dir_ + "/token"};
  }
  auto ports = PickFreePorts(2);
  if (!ports.ok()) return ports.error();
  m->agent_endpoint_ = "127.0.0.1:" + std::to_string((*ports)[0]);
  m->http_endpoint_ = "127.0.0.1:" + std::to_string((*ports)[1]);

  std::vector<std::string> args = {
      options.binary,     "--listen",    m->agent_endpoint_,      "--http",
      m->http_endpoint_,  "--db",        m->dir_ + "/manager.db", "--token-file",
      m->dir_ + "/token", "--log-level", options.log_level};
  if (options.threads > 0) {
    args.push_back("--threads");
    args.push_back(std::to_string(options.threads));
  }
  if (options.heartbeat_timeout_ms > 0) {
    args.push_back("--heartbeat-timeout-ms");
    args.push_back(std::to_string(options.heartbeat_timeout_ms));
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  std::string log_path = m->dir_ + "/manager.log";
  int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return Fail("open " + log_path);
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    ::close(log_fd);
    return Fail("pipe");
  }
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    ::close(exec_pipe[0]);
    ::close(exec_pipe[1]);
    return Fail("fork");
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    ::close(exec_pipe[0]);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    // Own process group: a Ctrl-C at the terminal reaches the benchmark, which then stops
    // the manager itself after cleaning up; the manager dies with the benchmark regardless.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(126);
    ::execv(argv[0], argv.data());
    int err = errno;
    [[maybe_unused]] auto n = ::write(exec_pipe[1], &err, sizeof(err));
    ::_exit(127);
  }
  ::close(log_fd);
  ::close(exec_pipe[1]);
  m->pid_ = pid;
  g_live = m.get();
  static bool hooked = false;
  if (!hooked) {
    std::atexit(StopAtExit);
    hooked = true;
  }
  int err = 0;
  ssize_t n;
  do {
    n = ::read(exec_pipe[0], &err, sizeof(err));
  } while (n < 0 && errno == EINTR);
  ::close(exec_pipe[0]);
  if (n == sizeof(err)) {
    ::waitpid(pid, &m->status_, 0);
    m->exited_ = true;
    errno = err;
    return Fail("exec " + options.binary);
  }
  return m;
}

ManagerProcess::~ManagerProcess() {
  Stop(milliseconds(10000));
  if (g_live == this) g_live = nullptr;
}

bool ManagerProcess::Running() {
  if (exited_ || pid_ < 0) return false;
  pid_t r = ::waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) exited_ = true;
  return !exited_;
}

Status ManagerProcess::WaitReady(milliseconds timeout) {
  auto deadline = steady_clock::now() + timeout;
  while (steady_clock::now() < deadline) {
    if (!Running()) {
      return Error{rpc::kFailed, "the manager exited (" + Describe(status_) +
                                     ") before it was ready; its log ends:\n" + LogTail(20)};
    }
    int a = Connect(PortOf(agent_endpoint_));
    int h = a >= 0 ? Connect(PortOf(http_endpoint_)) : -1;
    if (a >= 0) ::close(a);
    if (h >= 0) ::close(h);
    if (h >= 0) return Status::Ok();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return Error{rpc::kTimeout, "the manager did not accept connections within " +
                                  std::to_string(timeout.count()) + " ms; its log ends:\n" +
                                  LogTail(20)};
}

Result<ProcSample> ManagerProcess::Sample() const {
  ProcSample s;
  std::string pid = std::to_string(pid_);
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto paren = text.rfind(')');
  if (paren == std::string::npos) return Error{rpc::kFailed, "cannot read /proc/" + pid + "/stat"};
  // Fields after "(comm)" start with field 3 (state); utime and stime are fields 14 and 15,
  // num_threads field 20 (proc(5)).
  std::istringstream fields(text.substr(paren + 2));
  std::vector<std::string> f;
  for (std::string w; fields >> w;) f.push_back(w);
  if (f.size() < 18) return Error{rpc::kFailed, "short /proc/" + pid + "/stat"};
  double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  s.cpu_seconds = static_cast<double>(std::stoull(f[11]) + std::stoull(f[12])) / ticks;
  s.threads = std::stoi(f[17]);

  std::ifstream status("/proc/" + pid + "/status");
  for (std::string line; std::getline(status, line);) {
    auto value = [&] { return std::stoull(line.substr(line.find(':') + 1)); };
    if (line.starts_with("VmRSS:")) s.rss_kb = value();
    if (line.starts_with("VmHWM:")) s.peak_rss_kb = value();
  }
  return s;
}

std::string ManagerProcess::Stop(milliseconds grace) {
  if (pid_ >= 0 && Running()) {
    ::kill(pid_, SIGTERM);
    auto deadline = steady_clock::now() + grace;
    while (Running() && steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(10));
    if (Running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status_, 0);
      exited_ = true;
    }
  }
  if (g_live == this) g_live = nullptr;
  RemoveDir();
  return pid_ < 0 ? "not started" : Describe(status_);
}

void ManagerProcess::RemoveDir() {
  if (dir_.empty() || options_.keep_dir) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
  dir_.clear();
}

std::string ManagerProcess::LogTail(std::size_t lines) const {
  std::ifstream log(dir_ + "/manager.log");
  std::deque<std::string> tail;
  for (std::string line; std::getline(log, line);) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += "  " + l + "\n";
  return out;
}

Result<std::string> ManagerProcess::HttpGet(const std::string& path, milliseconds timeout) const {
  int fd = Connect(PortOf(http_endpoint_));
  if (fd < 0) return Fail("connect to " + http_endpoint_);
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::string request =
      "GET " + path + " HTTP/1.1\r\nHost: " + http_endpoint_ + "\r\nConnection: close\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return Fail("send to " + http_endpoint_);
  }
  std::string response;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0)
    response.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (n < 0) return Fail("GET " + path);
  auto end = response.find("\r\n\r\n");
  if (!response.starts_with("HTTP/1.1 200") || end == std::string::npos)
    return Error{rpc::kFailed, "GET " + path + ": " + response.substr(0, response.find('\r'))};
  return response.substr(end + 4);
}

std::optional<double> MetricValue(const std::string& text, const std::string& name) {
  std::size_t at = 0;
  while ((at = text.find(name + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      return std::strtod(text.c_str() + at + name.size() + 1, nullptr);
    }
    at += name.size();
  }
  return std::nullopt;
}

}  // namespace dpustor::bench
