// One NFSv3 connection and its event loop (see nfs_connection.h).
#include "fs/backend/nfs/nfs_connection.h"

#include <nfsc/libnfs-raw-nfs.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>

namespace dpustor::fs::nfs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kTick = std::chrono::milliseconds(100);  // timer resolution of the loop
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

}  // namespace

std::string RpcError(rpc_context* rpc) {
  const char* e = rpc != nullptr ? rpc_get_error(rpc) : nullptr;
  return e != nullptr && *e != '\0' ? e : "connection lost";
}

struct Connection::Op {
  Connection* conn = nullptr;
  CompletionPtr completion;
  Issue issue;
  Done done;
  uint32_t uid = 0;
  uint32_t gid = 0;
  Clock::time_point deadline;
  Clock::time_point retry_at;
  std::chrono::milliseconds backoff{100};
};

Connection::Connection(ConnectionConfig config) : config_(std::move(config)) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { Loop(); });
}

Connection::~Connection() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  thread_.join();
  ::close(wake_fd_);
}

bool Connection::Connect(std::chrono::milliseconds timeout, std::string* error) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(connect_mu_);
      if (connect_result_ == 0) return true;
      if (connect_result_ == 1) {
        *error = connect_error_;
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *error = "timed out connecting to " + config_.server;
  return false;
}

void Connection::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Connection::Call(const CompletionPtr& completion, Issue issue, Done done) {
  Post([this, completion, issue = std::move(issue), done = std::move(done)]() mutable {
    Start(completion, std::move(issue), std::move(done));
  });
}

void Connection::Start(const CompletionPtr& completion, Issue issue, Done done) {
  if (!on_loop_thread()) {  // libnfs contexts belong to the loop thread
    return Call(completion, std::move(issue), std::move(done));
  }
  if (completion->done()) return;
  Op* op = new Op;
  op->conn = this;
  op->completion = completion;
  op->issue = std::move(issue);
  op->done = std::move(done);
  op->uid = completion->caller().uid;
  op->gid = completion->caller().gid;
  op->deadline = Clock::now() + config_.timeout;
  if (state_ == State::kConnected) {
    Send(op);
  } else {
    waiting_.push_back(op);
  }
}

void Connection::SetCredentials(uint32_t uid, uint32_t gid) {
  if (have_auth_ && auth_uid_ == uid && auth_gid_ == gid) return;
  // rpc_set_auth takes ownership and destroys the previous AUTH; libnfs encodes the
  // credential into each call when it is queued, so switching between calls is safe.
  rpc_set_auth(rpc_, libnfs_authunix_create(config_.machine_name.c_str(), uid, gid, 0, nullptr));
  have_auth_ = true;
  auth_uid_ = uid;
  auth_gid_ = gid;
}

void Connection::Send(Op* op) {
  if (op->completion->done()) {
    delete op;
    return;
  }
  SetCredentials(op->uid, op->gid);
  rpcs_sent_.fetch_add(1, std::memory_order_relaxed);
  if (op->issue(rpc_, &Connection::RpcCallback, op) < 0) {
    spdlog::warn("nfs: cannot queue an RPC to {}: {}", config_.server, RpcError(rpc_));
    op->completion->Fail(EIO);
    delete op;
    return;
  }
  in_flight_.insert(op);
}

void Connection::RpcCallback(rpc_context*, int status, void* data, void* private_data) {
  Op* op = static_cast<Op*>(private_data);
  Connection* self = op->conn;
  if (self->in_flight_.erase(op) == 0) return;  // not ours (never expected)
  self->Resolve(op, status, data);
}

void Connection::Resolve(Op* op, int status, void* data) {
  if (status != RPC_STATUS_SUCCESS || data == nullptr) {
    // Transport failure, cancel on reset, or libnfs' own timeout: the server's answer (if
    // any) is unknown, so the caller gets EIO.
    op->completion->Fail(EIO);
    delete op;
    return;
  }
  // Every NFSv3 result starts with its nfsstat3.
  int nfs_status = *static_cast<int*>(data);
  if (nfs_status == NFS3ERR_JUKEBOX && !op->completion->done()) {
    auto now = Clock::now();
    if (now + op->backoff < op->deadline) {
      op->retry_at = now + op->backoff;
      op->backoff = std::min(op->backoff * 2, kMaxBackoff);
      retry_.push_back(op);
      return;
    }
  }
  if (!op->completion->done()) op->done(data);
  delete op;
}

void Connection::ConnectCallback(rpc_context*, int status, void* data, void* private_data) {
  Connection* self = static_cast<Connection*>(private_data);
  if (status == RPC_STATUS_SUCCESS) {
    self->state_ = State::kConnected;
    self->backoff_ = std::chrono::milliseconds(100);
  } else {
    // The context cannot be destroyed from inside its own callback: the loop does it.
    self->last_error_ = data != nullptr ? static_cast<const char*>(data) : "connect cancelled";
    self->state_ = State::kBackoff;
  }
  std::lock_guard lock(self->connect_mu_);
  if (self->connect_result_ == -1) {
    self->connect_result_ = status == RPC_STATUS_SUCCESS ? 0 : 1;
    self->connect_error_ =
        "cannot connect to NFS at " + self->config_.server + ": " + self->last_error_;
  }
}

void Connection::BeginConnect() {
  rpc_ = rpc_init_context();
  have_auth_ = false;
  state_ = State::kConnecting;
  int rc = config_.nfs_port != 0
               ? rpc_connect_port_async(rpc_, config_.server.c_str(), config_.nfs_port, NFS_PROGRAM,
                                        NFS_V3, &Connection::ConnectCallback, this)
               : rpc_connect_program_async(rpc_, config_.server.c_str(), NFS_PROGRAM, NFS_V3,
                                           &Connection::ConnectCallback, this);
  if (rc < 0) {
    last_error_ = RpcError(rpc_);
    state_ = State::kBackoff;
    std::lock_guard lock(connect_mu_);
    if (connect_result_ == -1) {
      connect_result_ = 1;
      connect_error_ = "cannot connect to NFS at " + config_.server + ": " + last_error_;
    }
  }
}

void Connection::Reset(const std::string& why) {
  if (state_ == State::kConnected) {
    spdlog::warn("nfs: connection to {} reset ({}); calls in flight fail with EIO", config_.server,
                 why);
  }
  rpc_context* old = rpc_;
  rpc_ = nullptr;
  state_ = State::kBackoff;
  next_connect_ = Clock::now() + backoff_;
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  // Destroying the context may call back every pending RPC (cancelled): Resolve fails them.
  if (old != nullptr) rpc_destroy_context(old);
  // Whatever libnfs did not call back is no longer referenced by it.
  for (Op* op : in_flight_) {
    op->completion->Fail(EIO);
    delete op;
  }
  in_flight_.clear();
}

void Connection::CheckTimers() {
  auto now = Clock::now();
  // JUKEBOX retries that are due.
  auto due =
      std::partition(retry_.begin(), retry_.end(), [&](Op* op) { return op->retry_at > now; });
  std::vector<Op*> resend(due, retry_.end());
  retry_.erase(due, retry_.end());
  for (Op* op : resend) {
    if (state_ == State::kConnected) {
      Send(op);
    } else {
      waiting_.push_back(op);
    }
  }
  // Calls that waited for a connection too long.
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if ((*it)->deadline <= now || (*it)->completion->done()) {
      (*it)->completion->Fail(EIO);
      delete *it;
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  // A call in flight past its deadline: the server stopped answering on this connection.
  for (Op* op : in_flight_) {
    if (op->deadline <= now) {
      Reset("no answer within " + std::to_string(config_.timeout.count()) + " ms");
      break;
    }
  }
}

void Connection::Loop() {
  bool stopping = false;
  while (!stopping) {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
      stopping = stop_;
    }
    for (auto& task : tasks) task();
    if (stopping) break;

    if ((state_ == State::kIdle || state_ == State::kBackoff) && rpc_ != nullptr) {
      Reset(last_error_);  // a failed connect left its context behind
    }
    if ((state_ == State::kIdle || state_ == State::kBackoff) && Clock::now() >= next_connect_) {
      BeginConnect();
    }

    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, 0, 0}};
    if (rpc_ != nullptr && rpc_get_fd(rpc_) >= 0) {
      fds[1].fd = rpc_get_fd(rpc_);
      fds[1].events = static_cast<short>(rpc_which_events(rpc_));
    }
    int n = ::poll(fds, 2, static_cast<int>(kTick.count()));
    if (n > 0 && (fds[0].revents & POLLIN)) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_, &value, sizeof value);
    }
    if (rpc_ != nullptr) {
      int revents = fds[1].fd >= 0 ? fds[1].revents : 0;
      if (rpc_service(rpc_, revents) < 0) {
        Reset(RpcError(rpc_));
      } else if (state_ == State::kBackoff) {
        Reset(last_error_);  // connect failed inside rpc_service
      }
    }
    if (state_ == State::kConnected && !waiting_.empty()) {
      std::deque<Op*> ready;
      ready.swap(waiting_);
      for (Op* op : ready) Send(op);
    }
    CheckTimers();
  }
  // Shutdown: nothing may stay unanswered.
  state_ = State::kStopping;
  Reset("shutting down");
  for (Op* op : waiting_) {
    op->completion->Fail(EIO);
    delete op;
  }
  waiting_.clear();
  for (Op* op : retry_) {
    op->completion->Fail(EIO);
    delete op;
  }
  retry_.clear();
}

}  // namespace dpustor::fs::nfs
