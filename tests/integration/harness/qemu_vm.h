// A QEMU (TCG) virtual machine with one vhost-user-fs device, run as a child of the test.
// It boots the Debian kernel with the initramfs of scripts/vm/make-initramfs.sh, whose /init
// mounts the share, runs one guest test, prints `DPUSTOR-GUEST RESULT pass|fail REASON` on
// the serial console and powers off (scripts/vm/README.md). The console goes to a log file;
// QEMU is always stopped by its PID (the destructor too), so no VM outlives a test.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "harness/child_process.h"

namespace dpustor::testing {

// The guest's kernel and initramfs.
struct GuestImage {
  std::string kernel;  // /boot/vmlinuz-VERSION
  std::string initrd;  // DIR/initramfs.cpio.gz
};

// Runs scripts/vm/make-initramfs.sh into `dir` (an existing directory); false with `error`
// (the script's output) when it fails.
bool BuildGuestImage(const std::string& dir, GuestImage* image, std::string* error);

// True when a socket bound to `path` (absolute, as the daemon gave it) is listening in this
// network namespace (/proc/net/unix). Unlike a test connection it costs the daemon nothing:
// virtiofsd, for one, serves a single connection and exits when it closes.
bool IsListeningUnixSocket(const std::string& path);

class QemuVm {
 public:
  struct Options {
    GuestImage image;
    std::string socket;          // the vhost-user-fs daemon's socket
    std::string tag;             // the share's virtio-fs tag
    std::string test = "files";  // dpustor.test= of guest-test.sh
    int memory_mb = 512;
    int request_queues = 1;  // num-request-queues of vhost-user-fs-pci
  };

  struct Outcome {
    bool passed = false;
    std::string reason;    // empty when passed: the guest's reason, a timeout, QEMU's exit
    std::string console;   // the whole console log
    int qemu_status = -1;  // QEMU's exit status; -1 when it had to be stopped
    std::chrono::milliseconds elapsed{0};
    // The reason and the console's last lines, for a failure message.
    std::string Describe(size_t console_lines = 40) const;
  };

  QemuVm() = default;
  ~QemuVm() { Stop(); }
  QemuVm(const QemuVm&) = delete;
  QemuVm& operator=(const QemuVm&) = delete;

  // The qemu-system-x86_64 arguments for `options`.
  static std::vector<std::string> CommandLine(const Options& options);

  // Starts QEMU with its console written to `console_log` (truncated first).
  bool Start(const Options& options, const std::string& console_log, std::string* error);
  // REQUIRES: Start() succeeded. Waits up to `timeout` for the guest's result line and for
  // QEMU to exit after the guest powers off; stops QEMU if either does not happen.
  Outcome Wait(std::chrono::milliseconds timeout);
  // Stops QEMU (SIGTERM, then SIGKILL) if it is still running.
  void Stop();

  // Start() + Wait().
  static Outcome Run(const Options& options, const std::string& console_log,
                     std::chrono::milliseconds timeout);

  pid_t pid() const { return qemu_.pid(); }

 private:
  ChildProcess qemu_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace dpustor::testing
