#include "harness/qemu_vm.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/process.h"
#include "harness/lab.h"

namespace dpustor::testing {
namespace {

constexpr char kResultMarker[] = "DPUSTOR-GUEST RESULT ";
constexpr char kStepMarker[] = "DPUSTOR-GUEST STEP ";
// After the result line the guest only syncs and powers off; QEMU exits on its own.
constexpr auto kPowerOffGrace = std::chrono::seconds(30);

// The rest of the last console line starting with `marker` (serial lines end in \r\n);
// false when there is none.
bool LastLineAfter(const std::string& console, const std::string& marker, std::string* rest) {
  size_t at = console.rfind(marker);
  if (at == std::string::npos) return false;
  size_t begin = at + marker.size();
  size_t end = console.find('\n', begin);
  if (end == std::string::npos) return false;  // not complete yet
  *rest = console.substr(begin, end - begin);
  while (!rest->empty() && (rest->back() == '\r' || rest->back() == ' ')) rest->pop_back();
  return true;
}

std::chrono::milliseconds Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               t);
}

}  // namespace

bool BuildGuestImage(const std::string& dir, GuestImage* image, std::string* error) {
  std::string out = dir + "/initramfs.cpio.gz";
  ProcessOptions options;
  options.timeout = std::chrono::seconds(120);
  auto run = RunProcess({"bash", SourcePath("scripts/vm/make-initramfs.sh"), out}, options);
  if (!run.ok()) {
    *error = run.error().message;
    return false;
  }
  if (run->exit_code != 0) {
    *error = "make-initramfs.sh failed (" + std::to_string(run->exit_code) + "):\n" + run->out +
             run->err;
    return false;
  }
  std::istringstream lines(run->out);
  std::string line;
  *image = {};
  while (std::getline(lines, line)) {
    if (line.rfind("kernel=", 0) == 0) image->kernel = line.substr(7);
    if (line.rfind("initramfs=", 0) == 0) image->initrd = line.substr(10);
  }
  if (image->kernel.empty() || image->initrd.empty() || !std::filesystem::exists(image->initrd)) {
    *error = "make-initramfs.sh did not report kernel= and initramfs=:\n" + run->out;
    return false;
  }
  return true;
}

bool IsListeningUnixSocket(const std::string& path) {
  // Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 is __SO_ACCEPTCON.
  std::ifstream in("/proc/net/unix");
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string num, refs, protocol, flags, type, state, inode, name;
    fields >> num >> refs >> protocol >> flags >> type >> state >> inode;
    std::getline(fields >> std::ws, name);
    // A socket made by ListenUnix keeps the temporary name it was bound under
    // (PATH.PID.tmp) before it was renamed to PATH.
    bool ours = name == path || (name.rfind(path + ".", 0) == 0 && name.ends_with(".tmp") &&
                                 std::filesystem::is_socket(path));
    if (ours && flags == "00010000") return true;
  }
  return false;
}

std::vector<std::string> QemuVm::CommandLine(const Options& o) {
  std::string memory = std::to_string(o.memory_mb);
  std::string device = "vhost-user-fs-pci,chardev=vfs,tag=" + o.tag;
  if (o.request_queues > 1) device += ",num-request-queues=" + std::to_string(o.request_queues);
  return {"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-M", "q35", "-m", memory,
          "-nographic", "-no-reboot", "-nic", "none", "-chardev", "socket,id=vfs,path=" + o.socket,
          "-device", device,
          // vhost-user maps guest RAM in the daemon: it must be a shareable memfd.
          "-object", "memory-backend-memfd,id=mem,size=" + memory + "M,share=on", "-numa",
          "node,memdev=mem", "-kernel", o.image.kernel, "-initrd", o.image.initrd, "-append",
          "console=ttyS0 panic=-1 quiet dpustor.tag=" + o.tag + " dpustor.test=" + o.test};
}

bool QemuVm::Start(const Options& options, const std::string& console_log, std::string* error) {
  Stop();
  std::error_code ec;
  std::filesystem::remove(console_log, ec);
  try {
    qemu_ = ChildProcess(CommandLine(options), console_log);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  started_ = std::chrono::steady_clock::now();
  return true;
}

QemuVm::Outcome QemuVm::Wait(std::chrono::milliseconds timeout) {
  Outcome outcome;
  auto deadline = started_ + timeout;
  std::string result;
  bool have_result = false;
  while (true) {
    bool running = qemu_.running();
    outcome.console = qemu_.Log();
    have_result = LastLineAfter(outcome.console, kResultMarker, &result);
    if (have_result || !running || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (have_result) {
    // The guest unmounted the share before reporting; wait for it to power off, so the
    // daemon has seen the disconnect before the caller looks at it or attaches again.
    auto grace = std::max(deadline, std::chrono::steady_clock::now() + kPowerOffGrace);
    outcome.qemu_status = qemu_.Wait(std::chrono::duration_cast<std::chrono::milliseconds>(
        grace - std::chrono::steady_clock::now()));
    outcome.console = qemu_.Log();
    if (result == "pass") {
      outcome.passed = outcome.qemu_status == 0;
      if (!outcome.passed) {
        outcome.reason = outcome.qemu_status == -1
                             ? "the guest passed but did not power off"
                             : "QEMU exited with status " + std::to_string(outcome.qemu_status);
      }
    } else {
      outcome.reason = "guest: " + result;
    }
  } else if (!qemu_.running()) {
    outcome.qemu_status = qemu_.Wait(std::chrono::milliseconds(0));
    outcome.reason = "QEMU exited with status " + std::to_string(outcome.qemu_status) +
                     " before the guest reported a result";
  } else {
    std::string step;
    outcome.reason =
        "no result from the guest within " + std::to_string(timeout.count() / 1000) + " s";
    if (LastLineAfter(outcome.console, kStepMarker, &step))
      outcome.reason += "; last step: " + step;
  }
  Stop();
  outcome.elapsed = Since(started_);
  return outcome;
}

void QemuVm::Stop() {
  if (qemu_.pid() > 0) qemu_.Stop(std::chrono::seconds(5));
}

QemuVm::Outcome QemuVm::Run(const Options& options, const std::string& console_log,
                            std::chrono::milliseconds timeout) {
  QemuVm vm;
  std::string error;
  if (!vm.Start(options, console_log, &error)) {
    Outcome outcome;
    outcome.reason = error;
    return outcome;
  }
  return vm.Wait(timeout);
}

std::string QemuVm::Outcome::Describe(size_t console_lines) const {
  std::vector<std::string> lines;
  std::istringstream in(console);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  size_t first = lines.size() > console_lines ? lines.size() - console_lines : 0;
  std::string out = (passed ? std::string("passed") : reason) + "\n--- console (last " +
                    std::to_string(lines.size() - first) + " lines) ---\n";
  for (size_t i = first; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

}  // namespace dpustor::testing
