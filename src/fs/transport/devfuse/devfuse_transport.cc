#include "fs/transport/devfuse/devfuse_transport.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

namespace dpustor::fs::devfuse {

namespace {

constexpr size_t kPage = 4096;
// Sent to a worker stuck in read() after the session could not be ended otherwise; its
// handler does nothing, so read() fails with EINTR and the worker sees it is stopping.
constexpr int kWakeSignal = SIGUSR2;

void InstallWakeHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the point is to interrupt read()
    sigaction(kWakeSignal, &sa, nullptr);
  });
}

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, FreeDeleter>;

// Page-aligned so backends may do direct I/O straight from the write payload.
Buffer AllocateBuffer(size_t size) {
  return Buffer(static_cast<char*>(std::aligned_alloc(kPage, (size + kPage - 1) / kPage * kPage)));
}

}  // namespace

size_t RequestBufferSize(uint32_t max_pages) {
  return std::max<size_t>(size_t{max_pages} * kPage + kPage, FUSE_MIN_READ_BUFFER);
}

class DevFuseTransport::Worker {
 public:
  Worker(DevFuseTransport& transport, int fd, bool owns_fd, unsigned index)
      : transport_(transport), fd_(fd), owns_fd_(owns_fd), index_(index) {
    buffer_size_ = RequestBufferSize(transport.options_.max_pages);
  }
  ~Worker() {
    if (thread_.joinable()) thread_.join();
    if (owns_fd_) ::close(fd_);
  }

  void Launch() {
    thread_ = std::thread([this] { Run(); });
  }
  bool exited() const { return exited_.load(); }
  // Wakes the worker if it waits for a free slot (it then sees the transport stopping).
  void WakeSlotWaiter() {
    { std::lock_guard lock(mu_); }
    slot_freed_.notify_all();
  }
  // Interrupts a read() that would otherwise block on a session that has not ended.
  void InterruptRead() {
    if (!exited() && thread_.joinable()) pthread_kill(thread_.native_handle(), kWakeSignal);
  }
  void Join() {
    if (thread_.joinable()) thread_.join();
  }
  size_t inflight() const {
    std::lock_guard lock(mu_);
    return in_use_;
  }

 private:
  // A request buffer, its reply buffer and the Completion that writes the reply back.
  struct Slot : Completion {
    Worker* worker = nullptr;
    Buffer request;
    Buffer reply;
    iovec in{};
    iovec out{};
    void Complete(size_t reply_bytes) override { worker->Reply(this, reply_bytes); }
  };

  void Run();
  Slot* Acquire();
  void Release(Slot* slot);
  void Reply(Slot* slot, size_t reply_bytes);

  DevFuseTransport& transport_;
  const int fd_;
  const bool owns_fd_;
  const unsigned index_;
  size_t buffer_size_ = 0;
  std::thread thread_;
  std::atomic<bool> exited_{false};

  mutable std::mutex mu_;  // guards the slot pool
  std::condition_variable slot_freed_;
  std::vector<std::unique_ptr<Slot>> slots_;  // allocated on demand, up to slots_per_thread
  std::vector<Slot*> free_;
  size_t in_use_ = 0;
};

DevFuseTransport::Worker::Slot* DevFuseTransport::Worker::Acquire() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (transport_.stopping_.load()) return nullptr;
    if (!free_.empty()) {
      Slot* s = free_.back();
      free_.pop_back();
      ++in_use_;
      return s;
    }
    if (slots_.size() < std::max(1u, transport_.options_.slots_per_thread)) {
      auto s = std::make_unique<Slot>();
      s->worker = this;
      s->request = AllocateBuffer(buffer_size_);
      s->reply = AllocateBuffer(buffer_size_);
      if (!s->request || !s->reply) return nullptr;
      slots_.push_back(std::move(s));
      ++in_use_;
      return slots_.back().get();
    }
    slot_freed_.wait(lock);
  }
}

void DevFuseTransport::Worker::Release(Slot* slot) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(slot);
    --in_use_;
  }
  slot_freed_.notify_all();
}

void DevFuseTransport::Worker::Reply(Slot* slot, size_t reply_bytes) {
  if (reply_bytes > 0) {
    size_t n = std::min(reply_bytes, buffer_size_);
    ssize_t written;
    do {
      written = ::write(fd_, slot->reply.get(), n);
    } while (written < 0 && errno == EINTR);
    // ENOENT: the request was interrupted and already answered by the kernel; ENODEV: the
    // session is gone. Neither is the engine's fault nor worth more than a debug line.
    if (written < 0 && errno != ENOENT && errno != ENODEV) {
      spdlog::warn("devfuse: {}: writing a {}-byte reply failed: {}", transport_.mount_dir(), n,
                   std::strerror(errno));
    }
  }
  Release(slot);
}

void DevFuseTransport::Worker::Run() {
  while (!transport_.stopping_.load()) {
    Slot* slot = Acquire();
    if (slot == nullptr) break;
    ssize_t n;
    do {
      n = ::read(fd_, slot->request.get(), buffer_size_);
    } while (n < 0 && (errno == EINTR || errno == EAGAIN) && !transport_.stopping_.load());
    if (n < 0) {
      int err = errno;
      Release(slot);
      if (err == ENODEV || err == ECONNABORTED) {
        spdlog::debug("devfuse: {}: worker {}: session ended", transport_.mount_dir(), index_);
      } else if (err != EINTR && err != EAGAIN) {
        spdlog::error("devfuse: {}: worker {}: read failed: {}", transport_.mount_dir(), index_,
                      std::strerror(err));
      }
      break;
    }
    if (static_cast<size_t>(n) < sizeof(fuse_in_header)) {
      Release(slot);  // the kernel never sends this; do not hand it to the engine
      continue;
    }
    slot->in = iovec{slot->request.get(), static_cast<size_t>(n)};
    slot->out = iovec{slot->reply.get(), buffer_size_};
    transport_.engine_.Process(std::span<const iovec>(&slot->in, 1),
                               std::span<const iovec>(&slot->out, 1), slot);
  }
  exited_.store(true);
  transport_.WorkerEnded();
}

DevFuseTransport::DevFuseTransport(Engine& engine, DevFuseOptions options,
                                   std::function<void()> on_stopped)
    : engine_(engine), options_(std::move(options)), on_stopped_(std::move(on_stopped)) {}

Result<std::unique_ptr<DevFuseTransport>> DevFuseTransport::Start(
    Engine& engine, DevFuseOptions options, std::function<void()> on_stopped) {
  if (options.threads == 0) options.threads = 1;
  if (options.max_pages == 0) options.max_pages = 1;
  options.mount.max_read = options.max_pages * static_cast<uint32_t>(kPage);
  InstallWakeHandler();

  auto mount = FuseMount::Mount(options.mount);
  if (!mount.ok()) return mount.error();
  std::unique_ptr<DevFuseTransport> t(
      new DevFuseTransport(engine, std::move(options), std::move(on_stopped)));
  t->mount_ = std::move(*mount);

  const int session_fd = t->mount_->session_fd();
  for (unsigned i = 0; i < t->options_.threads; ++i) {
    int fd = session_fd;
    bool owns_fd = false;
    if (i > 0) {
      // A clone has its own queue of processing requests, so replies from many threads do
      // not contend on one list; the kernel still shares the pending queue among clones.
      int clone = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
      uint32_t source = static_cast<uint32_t>(session_fd);
      if (clone >= 0 && ::ioctl(clone, FUSE_DEV_IOC_CLONE, &source) == 0) {
        fd = clone;
        owns_fd = true;
      } else {
        spdlog::warn("devfuse: {}: cannot clone the session fd ({}); worker {} shares it",
                     t->mount_dir(), std::strerror(errno), i);
        if (clone >= 0) ::close(clone);
      }
    }
    t->workers_.push_back(std::make_unique<Worker>(*t, fd, owns_fd, i));
  }
  t->live_workers_.store(t->options_.threads);
  for (auto& w : t->workers_) w->Launch();
  spdlog::info("devfuse: serving {} with {} threads, {} KiB requests", t->mount_dir(),
               t->options_.threads, t->options_.max_pages * kPage / 1024);
  return t;
}

DevFuseTransport::~DevFuseTransport() {
  Stop();
}

void DevFuseTransport::WorkerEnded() {
  if (live_workers_.fetch_sub(1) == 1) {
    spdlog::info("devfuse: {}: every worker has ended", mount_dir());
    if (on_stopped_) on_stopped_();
  }
}

size_t DevFuseTransport::inflight() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->inflight();
  return n;
}

void DevFuseTransport::Stop(std::chrono::milliseconds grace) {
  if (stopped_) return;
  using Clock = std::chrono::steady_clock;
  auto all_exited = [this] {
    return std::all_of(workers_.begin(), workers_.end(), [](auto& w) { return w->exited(); });
  };
  auto wait_until = [](auto done, Clock::time_point deadline) {
    while (!done() && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done();
  };

  stopping_.store(true);
  if (Status s = mount_->Unmount(); !s.ok()) spdlog::error("devfuse: {}", s.error().message);
  // read() ends by itself with the session (ENODEV) once the mount is gone.
  for (auto& w : workers_) w->WakeSlotWaiter();
  if (!wait_until(all_exited, Clock::now() + grace)) {
    spdlog::warn("devfuse: {}: files are still open after {} ms; ending the session", mount_dir(),
                 grace.count());
    if (mount_->Abort()) wait_until(all_exited, Clock::now() + std::chrono::seconds(1));
    // Without fusectl: interrupt each read(); closing the last fd then aborts the session.
    while (!all_exited()) {
      for (auto& w : workers_) w->InterruptRead();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (auto& w : workers_) w->Join();

  auto drained = [this] { return inflight() == 0; };
  if (!wait_until(drained, Clock::now() + grace)) {
    // A backend still holds buffers; freeing them would let it write into freed memory.
    spdlog::error("devfuse: {}: {} requests still in flight after {} ms; leaving them", mount_dir(),
                  inflight(), grace.count());
    for (auto& w : workers_) w.release();  // NOLINT: deliberate leak, see above
  }
  workers_.clear();
  stopped_ = true;
  spdlog::info("devfuse: {}: stopped", mount_dir());
}

}  // namespace dpustor::fs::devfuse
