#include "fs/transport/vhost_user/queue_runner.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

namespace dpustor::fs::vhost_user {

// One chain handed to the handler; pooled, one per ring slot.
class QueueRunner::Request : public Completion {
 public:
  explicit Request(QueueRunner* q) : q_(q) {}
  void Complete(size_t reply_bytes) override { q_->Complete(this, reply_bytes); }
  Chain chain;

 private:
  QueueRunner* q_;
};

namespace {

void Signal(int fd) {
  if (fd < 0) return;
  uint64_t one = 1;
  while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

// Reads an eventfd's counter; false when the descriptor does not behave like one.
bool Drain(int fd) {
  uint64_t count;
  ssize_t n;
  while ((n = ::read(fd, &count, sizeof count)) < 0 && errno == EINTR) {
  }
  return n == sizeof count || (n < 0 && errno == EAGAIN);
}

}  // namespace

QueueRunner::QueueRunner(uint32_t index, VirtioFsHandler& handler)
    : index_(index), handler_(handler) {}

Result<std::unique_ptr<QueueRunner>> QueueRunner::Start(uint32_t index, const GuestMemory& memory,
                                                        const VirtqueueConfig& config,
                                                        VirtioFsHandler& handler, int kick,
                                                        int call, int err, bool enabled) {
  auto vq = Virtqueue::Create(memory, config);
  if (!vq.ok()) return vq.error();
  std::unique_ptr<QueueRunner> q(new QueueRunner(index, handler));
  q->wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!q->wake_.valid()) return Error{-1, "eventfd failed"};
  q->vq_ = std::move(*vq);
  q->kick_ = kick;
  q->call_ = call;
  q->err_ = err;
  q->enabled_.store(enabled);
  q->last_avail_ = q->vq_->last_avail_idx();
  q->requests_pool_.reserve(config.size);
  for (uint32_t i = 0; i < config.size; ++i) {
    q->requests_pool_.push_back(std::make_unique<Request>(q.get()));
    q->free_.push_back(q->requests_pool_.back().get());
  }
  q->thread_ = std::thread([raw = q.get()] { raw->Run(); });
  return q;
}

QueueRunner::~QueueRunner() {
  Stop();
}

uint16_t QueueRunner::Stop() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stop_.store(true);
    }
    idle_.notify_all();   // the thread may wait for a free slot
    Signal(wake_.get());  // or in poll()
    thread_.join();
  }
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return inflight_.load() == 0; });
  stopped_ = true;
  return vq_ ? vq_->last_avail_idx() : last_avail_;
}

void QueueRunner::SetEnabled(bool enabled) {
  enabled_.store(enabled);
  Signal(wake_.get());  // a queue enabled late may already hold requests
}

void QueueRunner::SetCallFd(int call) {
  std::lock_guard lock(mu_);
  call_ = call;
}

void QueueRunner::SetErrFd(int err) {
  std::lock_guard lock(mu_);
  err_ = err;
}

nlohmann::json QueueRunner::status() const {
  std::lock_guard lock(mu_);
  return {{"index", index_},
          {"enabled", enabled_.load()},
          {"started", !stopped_},
          {"size", vq_ ? vq_->size() : 0},
          {"requests", requests_.load()},
          {"inflight", inflight_.load()},
          {"broken", broken_}};
}

void QueueRunner::Run() {
  pollfd fds[2] = {{kick_, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  while (!stop_.load()) {
    if (enabled_.load()) ServeAvailable();
    if (stop_.load()) break;
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno != EINTR) {
      Fail(Error{-1, "poll on the kick eventfd failed"});
      break;
    }
    if (fds[0].revents & (POLLERR | POLLNVAL)) {
      // The kick fd is not something we can wait on: stop serving rather than spin.
      Fail(Error{-1, "kick descriptor cannot be polled"});
      fds[0].fd = -1;
    }
    if ((fds[0].revents & POLLIN) && !Drain(kick_)) {
      // Readable but not an eventfd's 8 bytes: waiting on it again would spin.
      Fail(Error{-1, "kick descriptor does not behave like an eventfd"});
      fds[0].fd = -1;
    }
    if (fds[1].revents & POLLIN) (void)Drain(wake_.get());
  }
}

void QueueRunner::ServeAvailable() {
  while (!stop_.load() && enabled_.load()) {
    Request* r;
    {
      std::unique_lock lock(mu_);
      if (broken_) return;
      if (free_.empty()) {
        // Every slot is in flight: wait for one back (or for Stop).
        idle_.wait(lock, [&] { return !free_.empty() || stop_.load(); });
        if (stop_.load()) return;
      }
      auto popped = vq_->PopChain();
      if (!popped.ok()) {
        lock.unlock();
        Fail(popped.error());
        return;
      }
      if (!popped->has_value()) return;
      r = free_.back();
      free_.pop_back();
      r->chain = std::move(**popped);
      inflight_.fetch_add(1, std::memory_order_relaxed);
    }
    requests_.fetch_add(1, std::memory_order_relaxed);
    handler_.Handle(index_, r->chain.in, r->chain.out, r);
  }
}

void QueueRunner::Complete(Request* r, size_t bytes) {
  std::lock_guard lock(mu_);
  // The engine never reports more than the writable buffers hold; clamp anyway so the
  // driver is never told of bytes that are not there.
  uint32_t len = static_cast<uint32_t>(std::min<uint64_t>(bytes, r->chain.out_bytes));
  if (!broken_ && vq_->PushUsed(r->chain.head, len).ok() && vq_->NeedsNotify()) Signal(call_);
  r->chain = Chain{};
  free_.push_back(r);
  inflight_.fetch_sub(1, std::memory_order_relaxed);
  idle_.notify_all();
}

void QueueRunner::Fail(const Error& error) {
  std::lock_guard lock(mu_);
  if (broken_) return;
  broken_ = true;
  spdlog::warn("vhost-user: queue {} stopped: {}", index_, error.message);
  Signal(err_);
}

}  // namespace dpustor::fs::vhost_user
