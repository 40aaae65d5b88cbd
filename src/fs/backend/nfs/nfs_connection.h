// One TCP connection to an NFSv3 server with its own event-loop thread. Owned by NfsBackend
// (several per backend for parallelism).
//
// libnfs contexts are not thread-safe, so the rpc_context lives on the loop thread only:
// other threads hand work over with Post() (a queue + eventfd wake-up), and every RPC
// callback runs on the loop thread. A Call carries the FUSE request's Completion; whatever
// happens (NFS error, transport error, timeout, reconnect, shutdown) the Completion is
// finished exactly once.
//
// Failure rules: an RPC that gets no answer within `timeout` fails with EIO and the
// connection is reset (a server that stops answering is treated as gone: every call in
// flight on it fails, new calls wait for the reconnect). A dropped TCP connection fails the
// calls in flight with EIO (NFSv3 is not idempotent for REMOVE/CREATE/RENAME, so resending
// blindly could report a wrong error) and reconnects with backoff. JUKEBOX is retried with
// backoff until the call's deadline.
//
// Credentials: every call carries the caller's uid/gid as AUTH_SYS (no supplementary
// groups: FUSE does not pass them); the AUTH object is switched only when it changes.
#pragma once

// libnfs.h first: it defines what its raw headers need.
#include <nfsc/libnfs.h>

#include <nfsc/libnfs-raw.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "fs/fuse/request.h"

namespace dpustor::fs::nfs {

// libnfs' last error on `rpc`, never null (libnfs may have none to report).
std::string RpcError(rpc_context* rpc);

// The reply side of one FUSE request: finished exactly once; later attempts are ignored
// (a late RPC answer after a timeout, say). Only touched on one connection's loop thread.
class Completion {
 public:
  explicit Completion(Request* r) : r_(r) {}
  bool done() const { return done_; }
  const Caller& caller() const { return r_->caller(); }
  // Runs `reply(request)` unless already finished.
  template <class F>
  void Finish(F&& reply) {
    if (done_) return;
    done_ = true;
    reply(r_);
  }
  void Fail(int err) {
    Finish([err](Request* r) { r->ReplyError(err); });
  }

 private:
  Request* r_;
  bool done_ = false;
};
using CompletionPtr = std::shared_ptr<Completion>;

// Where a connection goes and how it behaves.
struct ConnectionConfig {
  std::string server;
  int nfs_port = 0;  // 0: ask the portmapper
  std::chrono::milliseconds timeout{30000};
  std::string machine_name;  // AUTH_SYS machine name
};

class Connection {
 public:
  // Starts an RPC: fills the args and calls rpc_nfs3_*_async(rpc, cb, &args, data).
  // Returns what libnfs returned (< 0: not queued). May be called again on a retry.
  using Issue = std::function<int(rpc_context* rpc, rpc_cb cb, void* data)>;
  // The RPC's decoded result (the XXX3res*, never null). Runs on the loop thread and may
  // start further calls with Start().
  using Done = std::function<void(void* result)>;

  explicit Connection(ConnectionConfig config);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects synchronously (the loop thread is running already); false with `error`.
  bool Connect(std::chrono::milliseconds timeout, std::string* error);

  // Runs `task` on the loop thread. Thread-safe.
  void Post(std::function<void()> task);
  // Starts one RPC for `completion` with the caller's credentials. Loop thread only.
  void Start(const CompletionPtr& completion, Issue issue, Done done);
  // Post + Start: from any thread.
  void Call(const CompletionPtr& completion, Issue issue, Done done);

  // RPCs this connection has sent (retries included), for tests and stats.
  uint64_t rpcs_sent() const { return rpcs_sent_.load(std::memory_order_relaxed); }
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

 private:
  struct Op;
  enum class State { kIdle, kConnecting, kConnected, kBackoff, kStopping };

  void Loop();
  void Send(Op* op);
  void Resolve(Op* op, int status, void* data);
  void SetCredentials(uint32_t uid, uint32_t gid);
  void BeginConnect();
  // Tears the rpc context down: every op in flight fails with EIO.
  void Reset(const std::string& why);
  void CheckTimers();
  static void RpcCallback(rpc_context* rpc, int status, void* data, void* private_data);
  static void ConnectCallback(rpc_context* rpc, int status, void* data, void* private_data);

  const ConnectionConfig config_;
  // Loop-thread state.
  rpc_context* rpc_ = nullptr;
  State state_ = State::kIdle;
  std::chrono::steady_clock::time_point next_connect_;
  std::chrono::milliseconds backoff_{100};
  std::unordered_set<Op*> in_flight_;  // handed to libnfs, callback not yet seen
  std::deque<Op*> waiting_;            // created while disconnected
  std::vector<Op*> retry_;             // JUKEBOX, sent again at op->retry_at
  bool have_auth_ = false;
  uint32_t auth_uid_ = 0;
  uint32_t auth_gid_ = 0;
  std::string last_error_;

  // Cross-thread hand-over.
  int wake_fd_ = -1;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  bool stop_ = false;
  // Connect() waits for the first connection outcome.
  std::mutex connect_mu_;
  int connect_result_ = -1;  // -1 pending, 0 ok, 1 failed
  std::string connect_error_;

  std::atomic<uint64_t> rpcs_sent_{0};
  std::thread thread_;
};

}  // namespace dpustor::fs::nfs
