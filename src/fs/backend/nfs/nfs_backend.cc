// The NFSv3 backend (see nfs_backend.h).
#include "fs/backend/nfs/nfs_backend.h"

// libnfs.h first: it defines what its raw headers need.
#include <nfsc/libnfs.h>

#include <dirent.h>
#include <fcntl.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string_view>

#include "common/json_rpc.h"
#include "fs/backend/nfs/nfs_connection.h"
#include "fs/backend/nfs/nfs_convert.h"

namespace dpustor::fs {

using nfs::Completion;
using nfs::CompletionPtr;
using nfs::Connection;

namespace {

constexpr uint32_t kReaddirDirCount = 32 * 1024;  // bytes of names+cookies per READDIRPLUS
constexpr uint32_t kReaddirMaxCount = 64 * 1024;  // bytes of the whole READDIRPLUS reply
// Names of files unlinked while open here (see nfs_backend.h); readdir leaves them out.
constexpr std::string_view kSillyPrefix = ".dpustor-silly-";
// The longest symlink target this client can send. RFC 1813 sets no limit on nfspath3, but
// libnfs 4.0 encodes it with a 1024-byte bound (its NFS_MAXPATHLEN) and fails a longer one
// before anything is sent, which would surface as EIO; NFS-Ganesha has the same limit. The
// honest answer is the one the kernel gives for a too long path: ENAMETOOLONG.
constexpr size_t kMaxSymlinkTarget = 1024;

// A handle as libnfs wants it; `fh` must outlive the call that encodes it.
nfs_fh3 Fh(const std::string& fh) {
  nfs_fh3 out;
  out.data.data_len = static_cast<u_int>(fh.size());
  out.data.data_val = const_cast<char*>(fh.data());
  return out;
}

std::string FhBytes(const nfs_fh3& fh) {
  return {fh.data.data_val, fh.data.data_len};
}

diropargs3 DirOp(const std::string& dir_fh, const std::string& name) {
  diropargs3 d;
  d.dir = Fh(dir_fh);
  d.name = const_cast<char*>(name.c_str());
  return d;
}

Result<int> ParseInt(const std::string& key, const std::string& value, int lo, int hi) {
  int v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < lo || v > hi) {
    return Error{rpc::kInvalidParams, "nfs: option " + key + "=" + value + " is not a number in [" +
                                          std::to_string(lo) + ", " + std::to_string(hi) + "]"};
  }
  return v;
}

std::string MachineName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) return "dpustor";
  return host;
}

// Drives a throw-away rpc context synchronously: used only while the backend is being made.
class SyncRpc {
 public:
  SyncRpc() : rpc_(rpc_init_context()) {}
  ~SyncRpc() { rpc_destroy_context(rpc_); }
  SyncRpc(const SyncRpc&) = delete;
  SyncRpc& operator=(const SyncRpc&) = delete;

  Status Connect(const std::string& server, int port, int program, int version,
                 std::chrono::milliseconds timeout) {
    done_ = false;
    int rc = port != 0 ? rpc_connect_port_async(rpc_, server.c_str(), port, program, version,
                                                &SyncRpc::Callback, this)
                       : rpc_connect_program_async(rpc_, server.c_str(), program, version,
                                                   &SyncRpc::Callback, this);
    if (rc < 0) return Error{rpc::kConnectionClosed, nfs::RpcError(rpc_)};
    return Drive(timeout);
  }

  // Runs one call; `on_result` sees the decoded result.
  template <class IssueFn>
  Status Call(IssueFn&& issue, std::function<void(void*)> on_result,
              std::chrono::milliseconds timeout) {
    done_ = false;
    on_result_ = std::move(on_result);
    if (issue(rpc_, &SyncRpc::Callback, this) < 0) {
      return Error{rpc::kConnectionClosed, nfs::RpcError(rpc_)};
    }
    return Drive(timeout);
  }

 private:
  static void Callback(rpc_context*, int status, void* data, void* private_data) {
    auto* self = static_cast<SyncRpc*>(private_data);
    self->done_ = true;
    self->status_ = status;
    if (status != RPC_STATUS_SUCCESS) {
      self->error_ = data != nullptr ? static_cast<const char*>(data) : "cancelled";
    } else if (self->on_result_ && data != nullptr) {
      self->on_result_(data);
    }
  }

  Status Drive(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done_) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Error{rpc::kTimeout, "no answer within " + std::to_string(timeout.count()) + " ms"};
      }
      pollfd p{rpc_get_fd(rpc_), static_cast<short>(rpc_which_events(rpc_)), 0};
      ::poll(&p, 1, 100);
      if (rpc_service(rpc_, p.revents) < 0 && !done_) {
        return Error{rpc::kConnectionClosed, nfs::RpcError(rpc_)};
      }
    }
    if (status_ != RPC_STATUS_SUCCESS) return Error{rpc::kConnectionClosed, error_};
    return Status::Ok();
  }

  rpc_context* rpc_;
  bool done_ = false;
  int status_ = 0;
  std::string error_;
  std::function<void(void*)> on_result_;
};

}  // namespace

// ---- nodes and handles ----

struct NfsBackend::Node {
  using Key = std::string;
  Node(std::string handle, mode_t t) : fh(std::move(handle)), type(t) {}
  const std::string& key() const { return fh; }
  const std::string fh;  // NFS file handle bytes
  const mode_t type;     // S_IF* bits: the type of an NFS object never changes
};

struct NfsBackend::OpenFile {
  NodePtr node;
  std::mutex mu;
  bool dirty = false;  // UNSTABLE data not yet committed
  bool have_verf = false;
  bool verf_changed = false;  // the server restarted between our unstable writes
  char verf[NFS3_WRITEVERFSIZE] = {};
};

// An open directory. Touched only on `conn`'s loop thread.
struct NfsBackend::DirHandle {
  struct Item {
    std::string name;
    uint64_t fileid = 0;
    bool has_attr = false;
    fattr3 attr = {};
    std::string fh;  // empty when the server sent no handle
  };
  NodePtr dir;
  Connection* conn = nullptr;
  char verf[NFS3_COOKIEVERFSIZE] = {};
  std::vector<uint64_t> cookies;  // cookies[i]: NFS cookie that continues after position i
  std::vector<Item> batch;        // entries at positions [batch_start, batch_start + size)
  uint64_t batch_start = 0;
  bool fetched = false;
  bool eof = false;  // the batch ends the listing
};

// ---- making the backend ----

Result<NfsOptions> ParseNfsOptions(const BackendUrl& url) {
  NfsOptions o;
  if (url.scheme != "nfs") return Error{rpc::kInvalidParams, "not an nfs:// URL: " + url.text};
  if (url.host.empty()) return Error{rpc::kInvalidParams, "nfs: the URL names no server"};
  if (url.path.empty() || url.path.front() != '/') {
    return Error{rpc::kInvalidParams, "nfs: the URL names no export path"};
  }
  o.server = url.host;
  o.export_path = url.path;
  for (const auto& [key, value] : url.query) {
    if (key == "version") {
      if (value == "4" || value == "4.0" || value == "4.1") {
        return Error{rpc::kInvalidParams,
                     "nfs: version=4 is not supported: the libnfs this backend is built with "
                     "(4.0) has an NFSv4 client its authors mark not yet functional (opens "
                     "ignore write access, creates ignore the mode); use version=3"};
      }
      if (value != "3") {
        return Error{rpc::kInvalidParams, "nfs: version=" + value + " is unknown (use 3)"};
      }
    } else if (key == "nfsport" || key == "port") {
      auto v = ParseInt(key, value, 1, 65535);
      if (!v) return v.error();
      o.nfs_port = *v;
    } else if (key == "mountport") {
      auto v = ParseInt(key, value, 1, 65535);
      if (!v) return v.error();
      o.mount_port = *v;
    } else if (key == "connections") {
      auto v = ParseInt(key, value, 1, 64);
      if (!v) return v.error();
      o.connections = *v;
    } else if (key == "timeout") {
      auto v = ParseInt(key, value, 1, 3600);
      if (!v) return v.error();
      o.timeout = std::chrono::seconds(*v);
    } else if (key == "attr_timeout") {
      auto v = ParseInt(key, value, 0, 86400);
      if (!v) return v.error();
      o.attr_timeout = *v;
    } else {
      return Error{rpc::kInvalidParams,
                   "nfs: unknown option '" + key +
                       "' (known: version, nfsport, mountport, connections, timeout, "
                       "attr_timeout; credentials come from each request)"};
    }
  }
  return o;
}

Result<std::unique_ptr<NfsBackend>> NfsBackend::Make(const NfsOptions& options) {
  const auto timeout = options.timeout;
  // The root handle, from the MOUNT protocol.
  std::string root_fh;
  {
    SyncRpc mnt;
    Status s = mnt.Connect(options.server, options.mount_port, MOUNT_PROGRAM, MOUNT_V3, timeout);
    if (!s) {
      return Error{s.error().code, "nfs: cannot reach the mount service of " + options.server +
                                       ": " + s.error().message};
    }
    int mount_status = -1;
    std::string export_path = options.export_path;
    s = mnt.Call([&](rpc_context* rpc, rpc_cb cb,
                     void* d) { return rpc_mount3_mnt_async(rpc, cb, export_path.data(), d); },
                 [&](void* data) {
                   auto* res = static_cast<mountres3*>(data);
                   mount_status = res->fhs_status;
                   if (res->fhs_status == MNT3_OK) {
                     const fhandle3& h = res->mountres3_u.mountinfo.fhandle;
                     root_fh.assign(h.fhandle3_val, h.fhandle3_len);
                   }
                 },
                 timeout);
    if (!s) return Error{s.error().code, "nfs: MOUNT " + export_path + ": " + s.error().message};
    if (mount_status != MNT3_OK) {
      return Error{rpc::kNotFound, "nfs: the server refused to mount " + options.server + ":" +
                                       export_path + " (mount status " +
                                       std::to_string(mount_status) + ")"};
    }
  }

  std::unique_ptr<NfsBackend> b(new NfsBackend(options, root_fh));
  // Transfer sizes and name limits, on a connection of its own.
  {
    SyncRpc rpc;
    Status s = rpc.Connect(options.server, options.nfs_port, NFS_PROGRAM, NFS_V3, timeout);
    if (!s) {
      return Error{s.error().code,
                   "nfs: cannot reach NFS on " + options.server + ": " + s.error().message};
    }
    int fsinfo_status = -1;
    s = rpc.Call(
        [&](rpc_context* r, rpc_cb cb, void* d) {
          FSINFO3args args{};
          args.fsroot = Fh(root_fh);
          return rpc_nfs3_fsinfo_async(r, cb, &args, d);
        },
        [&](void* data) {
          auto* res = static_cast<FSINFO3res*>(data);
          fsinfo_status = res->status;
          if (res->status != NFS3_OK) return;
          const FSINFO3resok& ok = res->FSINFO3res_u.resok;
          if (ok.rtmax > 0) b->rtmax_ = std::min<uint32_t>(ok.rtmax, 1 << 20);
          if (ok.wtmax > 0) b->wtmax_ = std::min<uint32_t>(ok.wtmax, 1 << 20);
        },
        timeout);
    if (!s || fsinfo_status != NFS3_OK) {
      return Error{rpc::kInternalError,
                   "nfs: FSINFO on " + options.export_path + " failed: " +
                       (s ? "status " + std::to_string(fsinfo_status) : s.error().message)};
    }
    s = rpc.Call(
        [&](rpc_context* r, rpc_cb cb, void* d) {
          PATHCONF3args args{};
          args.object = Fh(root_fh);
          return rpc_nfs3_pathconf_async(r, cb, &args, d);
        },
        [&](void* data) {
          auto* res = static_cast<PATHCONF3res*>(data);
          if (res->status == NFS3_OK && res->PATHCONF3res_u.resok.name_max > 0) {
            b->name_max_ = res->PATHCONF3res_u.resok.name_max;
          }
        },
        timeout);
  }

  nfs::ConnectionConfig config;
  config.server = options.server;
  config.nfs_port = options.nfs_port;
  config.timeout = timeout;
  config.machine_name = MachineName();
  for (int i = 0; i < options.connections; ++i) {
    b->connections_.push_back(std::make_unique<Connection>(config));
  }
  for (auto& c : b->connections_) {
    std::string error;
    if (!c->Connect(timeout, &error)) return Error{rpc::kConnectionClosed, "nfs: " + error};
  }
  spdlog::info("nfs: mounted {}:{} ({} connections, rtmax {} wtmax {})", options.server,
               options.export_path, options.connections, b->rtmax_, b->wtmax_);
  return b;
}

NfsBackend::NfsBackend(const NfsOptions& options, std::string root_fh)
    : options_(options),
      table_(std::make_unique<Table>(std::make_shared<Node>(std::move(root_fh), S_IFDIR))) {}

NfsBackend::~NfsBackend() {
  // Connections first: their threads fail what is still in flight and stop touching us.
  connections_.clear();
}

Result<std::unique_ptr<Backend>> OpenNfsBackend(const BackendUrl& url) {
  auto options = ParseNfsOptions(url);
  if (!options) return options.error();
  auto b = NfsBackend::Make(*options);
  if (!b) return b.error();
  return std::unique_ptr<Backend>(std::move(*b));
}

Connection& NfsBackend::NextConnection() {
  return *connections_[next_connection_.fetch_add(1, std::memory_order_relaxed) %
                       connections_.size()];
}

Connection& NfsBackend::ConnectionFor(uint64_t key) {
  return *connections_[key % connections_.size()];
}

size_t NfsBackend::known_nodes() const {
  return table_->size();
}

uint64_t NfsBackend::rpcs_sent() const {
  uint64_t n = 0;
  for (const auto& c : connections_) n += c->rpcs_sent();
  return n;
}

Capabilities NfsBackend::Init() {
  Capabilities caps;
  caps.posix_locks = false;  // no NLM: the kernel keeps locks local to this client
  caps.flock_locks = false;
  caps.writeback_cache = false;  // other NFS clients change files; see nfs_backend.h
  caps.readdirplus = true;
  caps.parallel_dirops = true;
  caps.async_read = true;
  // Off: the kernel clears setuid/setgid itself (a SETATTR) instead of trusting every NFS
  // server to do it on WRITE.
  caps.handle_killpriv = false;
  caps.max_write = wtmax_;
  return caps;
}

void NfsBackend::Destroy() {
  table_->Clear();
  {
    std::lock_guard lock(open_mu_);
    open_.clear();
    open_count_.store(0);
  }
  std::lock_guard lock(handles_mu_);
  files_.clear();
  dirs_.clear();
}

// ---- the operations ----

// Shared shapes of the operations, as free helpers with access to the backend's privates.
class NfsBackend::Ops {
 public:
  // Replies ESTALE when the kernel names a node we do not know (a session restarted).
  static NodePtr Need(NfsBackend* b, Request* r, uint64_t ino) {
    NodePtr n = b->table_->Find(ino);
    if (!n) r->ReplyError(ESTALE);
    return n;
  }

  static Entry MakeEntry(NfsBackend* b, const std::string& fh, const fattr3& a) {
    Entry e;
    e.attr = nfs::FattrToStat(a);
    mode_t type = e.attr.st_mode & S_IFMT;
    Table::Ref ref = b->table_->Acquire(fh, [&] { return std::make_shared<Node>(fh, type); });
    e.nodeid = ref.nodeid;
    e.generation = ref.generation;
    e.attr_timeout = b->options_.attr_timeout;
    e.entry_timeout = b->options_.attr_timeout;
    return e;
  }

  using EntryReply = std::function<void(Request*, const Entry&)>;

  // Completes an operation that produced an object (lookup, create, mkdir...): the server
  // may leave out the handle (then LOOKUP it) or the attributes (then GETATTR them).
  static void FinishEntry(NfsBackend* b, Connection* conn, const CompletionPtr& c,
                          std::string dir_fh, std::string name, const post_op_fh3* fh,
                          const post_op_attr* attr, EntryReply reply) {
    if (fh == nullptr || !fh->handle_follows) {
      conn->Start(
          c,
          [dir_fh, name](rpc_context* rpc, rpc_cb cb, void* d) {
            LOOKUP3args args{};
            args.what = DirOp(dir_fh, name);
            return rpc_nfs3_lookup_async(rpc, cb, &args, d);
          },
          [b, conn, c, dir_fh, name, reply](void* data) {
            auto* res = static_cast<LOOKUP3res*>(data);
            if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
            post_op_fh3 h{};
            h.handle_follows = 1;
            h.post_op_fh3_u.handle = res->LOOKUP3res_u.resok.object;
            FinishEntry(b, conn, c, dir_fh, name, &h, &res->LOOKUP3res_u.resok.obj_attributes,
                        reply);
          });
      return;
    }
    std::string handle = FhBytes(fh->post_op_fh3_u.handle);
    WithAttrs(conn, c, handle, attr, [b, c, handle, reply](const fattr3& a) {
      c->Finish([&](Request* r) { reply(r, MakeEntry(b, handle, a)); });
    });
  }

  static EntryReply ReplyEntry() {
    return [](Request* r, const Entry& e) { r->ReplyEntry(e); };
  }

  // A silly-renamed file was unlinked as far as the application knows: its hidden names do
  // not count as links (fstat of an open, unlinked file shows nlink 0, as on a local fs).
  static void DropHiddenLinks(NfsBackend* b, const std::string& fh, struct stat& st) {
    if (b->open_count_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lock(b->open_mu_);
    auto it = b->open_.find(fh);
    if (it == b->open_.end()) return;
    nlink_t hidden = static_cast<nlink_t>(it->second.hidden.size());
    st.st_nlink = st.st_nlink > hidden ? st.st_nlink - hidden : 0;
  }

  // Calls `then` with the file's attributes: `attr` when the server sent them along, else
  // those of a GETATTR (its failure fails `c`).
  static void WithAttrs(Connection* conn, const CompletionPtr& c, const std::string& fh,
                        const post_op_attr* attr, std::function<void(const fattr3&)> then) {
    if (attr != nullptr && attr->attributes_follow) return then(attr->post_op_attr_u.attributes);
    conn->Start(
        c,
        [fh](rpc_context* rpc, rpc_cb cb, void* d) {
          GETATTR3args args{};
          args.object = Fh(fh);
          return rpc_nfs3_getattr_async(rpc, cb, &args, d);
        },
        [c, then = std::move(then)](void* data) {
          auto* res = static_cast<GETATTR3res*>(data);
          if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
          then(res->GETATTR3res_u.resok.obj_attributes);
        });
  }

  // Replies the attributes from `attr`, or GETATTRs them when the server left them out.
  static void FinishAttr(NfsBackend* b, Connection* conn, const CompletionPtr& c, std::string fh,
                         const post_op_attr* attr) {
    double timeout = b->options_.attr_timeout;
    WithAttrs(conn, c, fh, attr, [b, c, fh, timeout](const fattr3& a) {
      struct stat st = nfs::FattrToStat(a);
      DropHiddenLinks(b, fh, st);
      c->Finish([&](Request* r) { r->ReplyAttr(st, timeout); });
    });
  }

  // COMMITs the file's unstable writes (if any) and replies Ok, or EIO when the server lost
  // some of them (its write verifier changed). `always`: commit even when nothing is dirty.
  // `finish`, when set, gets the errno (0: Ok) and replies instead.
  static void Commit(NfsBackend* b, const CompletionPtr& c, const std::shared_ptr<OpenFile>& f,
                     NodePtr node, bool always, std::function<void(int)> finish = {}) {
    if (!finish) finish = [c](int err) { c->Fail(err); };  // 0: Ok
    bool dirty = false;
    if (f) {
      std::lock_guard lock(f->mu);
      dirty = f->dirty;
    }
    if (!dirty && !always) return finish(0);
    b->NextConnection().Call(
        c,
        [fh = node->fh](rpc_context* rpc, rpc_cb cb, void* d) {
          COMMIT3args args{};
          args.file = Fh(fh);
          return rpc_nfs3_commit_async(rpc, cb, &args, d);
        },
        [f, finish](void* data) {
          auto* res = static_cast<COMMIT3res*>(data);
          if (res->status != NFS3_OK) return finish(nfs::StatusToErrno(res->status));
          int err = 0;
          if (f) {
            std::lock_guard lock(f->mu);
            if (f->dirty && (f->verf_changed ||
                             (f->have_verf && std::memcmp(f->verf, res->COMMIT3res_u.resok.verf,
                                                          sizeof f->verf) != 0))) {
              spdlog::error("nfs: the server restarted and lost unstable writes: EIO");
              err = EIO;
            }
            f->dirty = false;
            f->verf_changed = false;
          }
          finish(err);
        });
  }

  // ---- silly rename (see nfs_backend.h) ----

  // One more open of the file with handle `fh`.
  static void AddOpen(NfsBackend* b, const std::string& fh) {
    std::lock_guard lock(b->open_mu_);
    ++b->open_[fh].opens;
    b->open_count_.fetch_add(1, std::memory_order_relaxed);
  }

  // An open counted from the moment it is asked for, so a rename or unlink racing with the
  // open hides the file instead of removing it. Dropped again unless the open succeeds
  // (`kept`), also when the RPC never answers (the closures holding it are destroyed).
  struct OpenReservation {
    OpenReservation(NfsBackend* backend, std::string handle) : b(backend), fh(std::move(handle)) {
      AddOpen(b, fh);
    }
    ~OpenReservation() {
      if (kept) return;
      if (!DropOpen(b, fh).empty()) {
        spdlog::warn("nfs: an open failed after its file was hidden; the hidden name stays");
      }
    }
    NfsBackend* b;
    std::string fh;
    bool kept = false;
  };

  // One open fewer; when it was the last, the hidden names now due for removal.
  static std::vector<Silly> DropOpen(NfsBackend* b, const std::string& fh) {
    std::lock_guard lock(b->open_mu_);
    auto it = b->open_.find(fh);
    if (it == b->open_.end()) return {};
    b->open_count_.fetch_sub(1, std::memory_order_relaxed);
    if (--it->second.opens > 0) return {};
    std::vector<Silly> hidden = std::move(it->second.hidden);
    b->open_.erase(it);
    return hidden;
  }

  // REMOVEs `hidden` one after the other, then runs `then` (a failed REMOVE is logged: the
  // file is closed already, a leftover hidden name is all that remains of it).
  static void RemoveHidden(NfsBackend* b, const CompletionPtr& c, std::vector<Silly> hidden,
                           std::function<void()> then) {
    if (hidden.empty()) return then();
    Silly s = std::move(hidden.back());
    hidden.pop_back();
    b->NextConnection().Start(
        c,
        [s](rpc_context* rpc, rpc_cb cb, void* d) {
          REMOVE3args args{};
          args.object = DirOp(s.dir_fh, s.name);
          return rpc_nfs3_remove_async(rpc, cb, &args, d);
        },
        [b, c, s, hidden = std::move(hidden), then = std::move(then)](void* data) mutable {
          int status = static_cast<REMOVE3res*>(data)->status;
          if (status != NFS3_OK) {
            spdlog::warn("nfs: cannot remove {} of a closed unlinked file: {}", s.name,
                         std::strerror(nfs::StatusToErrno(status)));
          }
          RemoveHidden(b, c, std::move(hidden), std::move(then));
        });
  }

  // When `name` in `dir_fh` is a regular file open here, renames it to a hidden name that
  // its last release removes; then `then(hidden, err)`. Names that do not resolve are left
  // alone (hidden false): the operation that follows reports them.
  static void HideIfOpen(NfsBackend* b, const CompletionPtr& c, const std::string& dir_fh,
                         const std::string& name, std::function<void(bool, int)> then) {
    b->NextConnection().Start(
        c,
        [dir_fh, name](rpc_context* rpc, rpc_cb cb, void* d) {
          LOOKUP3args args{};
          args.what = DirOp(dir_fh, name);
          return rpc_nfs3_lookup_async(rpc, cb, &args, d);
        },
        [b, c, dir_fh, name, then](void* data) {
          auto* res = static_cast<LOOKUP3res*>(data);
          if (res->status != NFS3_OK) return then(false, 0);
          const LOOKUP3resok& ok = res->LOOKUP3res_u.resok;
          uint64_t fileid = 0;
          if (ok.obj_attributes.attributes_follow) {
            const fattr3& a = ok.obj_attributes.post_op_attr_u.attributes;
            if (a.type != NF3REG) return then(false, 0);
            fileid = a.fileid;
          }
          std::string fh = FhBytes(ok.object);
          std::string hidden;
          {
            std::lock_guard lock(b->open_mu_);
            auto it = b->open_.find(fh);
            if (it == b->open_.end()) return then(false, 0);
            // Held until the RENAME is answered, so a release in between cannot miss the
            // hidden name.
            ++it->second.opens;
            b->open_count_.fetch_add(1, std::memory_order_relaxed);
            char buf[64];
            std::snprintf(buf, sizeof buf, "%llx-%llx", static_cast<unsigned long long>(fileid),
                          static_cast<unsigned long long>(b->silly_counter_.fetch_add(1) + 1));
            hidden = std::string(kSillyPrefix) + buf;
          }
          b->NextConnection().Start(
              c,
              [dir_fh, name, hidden](rpc_context* rpc, rpc_cb cb, void* d) {
                RENAME3args args{};
                args.from = DirOp(dir_fh, name);
                args.to = DirOp(dir_fh, hidden);
                return rpc_nfs3_rename_async(rpc, cb, &args, d);
              },
              [b, c, dir_fh, fh, hidden, then](void* data) {
                int err = nfs::StatusToErrno(static_cast<RENAME3res*>(data)->status);
                if (err == 0) {
                  std::lock_guard lock(b->open_mu_);
                  b->open_[fh].hidden.push_back({dir_fh, hidden});
                }
                RemoveHidden(b, c, DropOpen(b, fh), [then, err] { then(true, err); });
              });
        });
  }
};

void NfsBackend::Lookup(Request* r, uint64_t parent, std::string_view name) {
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  Ops::FinishEntry(this, conn, c, dir->fh, std::string(name), nullptr, nullptr, Ops::ReplyEntry());
}

void NfsBackend::Forget(uint64_t ino, uint64_t nlookup) {
  table_->Forget(ino, nlookup);
}

void NfsBackend::Getattr(Request* r, uint64_t ino, const FileInfo*) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  conn->Post([this, conn, c, fh = node->fh] { Ops::FinishAttr(this, conn, c, fh, nullptr); });
}

void NfsBackend::Setattr(Request* r, uint64_t ino, const SetattrArgs& a) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  sattr3 attrs = nfs::SetattrToSattr(a);
  conn->Call(
      c,
      [fh = node->fh, attrs](rpc_context* rpc, rpc_cb cb, void* d) {
        SETATTR3args args{};
        args.object = Fh(fh);
        args.new_attributes = attrs;
        return rpc_nfs3_setattr_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = node->fh](void* data) {
        auto* res = static_cast<SETATTR3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        Ops::FinishAttr(this, conn, c, fh, &res->SETATTR3res_u.resok.obj_wcc.after);
      });
}

void NfsBackend::Readlink(Request* r, uint64_t ino) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto c = std::make_shared<Completion>(r);
  NextConnection().Call(
      c,
      [fh = node->fh](rpc_context* rpc, rpc_cb cb, void* d) {
        READLINK3args args{};
        args.symlink = Fh(fh);
        return rpc_nfs3_readlink_async(rpc, cb, &args, d);
      },
      [c](void* data) {
        auto* res = static_cast<READLINK3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        std::string_view target = res->READLINK3res_u.resok.data;
        c->Finish([&](Request* r) { r->ReplyReadlink(target); });
      });
}

void NfsBackend::Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                       dev_t rdev) {
  if (S_ISREG(mode)) {
    // A plain file made by mknod(2): an exclusive create that is not left open.
    FileInfo fi;
    fi.flags = O_CREAT | O_EXCL;
    NodePtr dir = Ops::Need(this, r, parent);
    if (!dir) return;
    auto c = std::make_shared<Completion>(r);
    Connection* conn = &NextConnection();
    sattr3 attrs = nfs::ModeOnlySattr(mode);
    std::string n(name);
    conn->Call(
        c,
        [fh = dir->fh, n, attrs](rpc_context* rpc, rpc_cb cb, void* d) {
          CREATE3args args{};
          args.where = DirOp(fh, n);
          args.how.mode = GUARDED;
          args.how.createhow3_u.g_obj_attributes = attrs;
          return rpc_nfs3_create_async(rpc, cb, &args, d);
        },
        [this, conn, c, fh = dir->fh, n](void* data) {
          auto* res = static_cast<CREATE3res*>(data);
          if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
          Ops::FinishEntry(this, conn, c, fh, n, &res->CREATE3res_u.resok.obj,
                           &res->CREATE3res_u.resok.obj_attributes, Ops::ReplyEntry());
        });
    return;
  }
  ftype3 type;
  if (S_ISCHR(mode)) {
    type = NF3CHR;
  } else if (S_ISBLK(mode)) {
    type = NF3BLK;
  } else if (S_ISFIFO(mode)) {
    type = NF3FIFO;
  } else if (S_ISSOCK(mode)) {
    type = NF3SOCK;
  } else {
    return r->ReplyError(EINVAL);
  }
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  sattr3 attrs = nfs::ModeOnlySattr(mode);
  specdata3 spec{major(rdev), minor(rdev)};
  std::string n(name);
  conn->Call(
      c,
      [fh = dir->fh, n, attrs, spec, type](rpc_context* rpc, rpc_cb cb, void* d) {
        MKNOD3args args{};
        args.where = DirOp(fh, n);
        args.what.type = type;
        if (type == NF3CHR || type == NF3BLK) {
          args.what.mknoddata3_u.chr_device.dev_attributes = attrs;
          args.what.mknoddata3_u.chr_device.spec = spec;
        } else {
          args.what.mknoddata3_u.pipe_attributes = attrs;
        }
        return rpc_nfs3_mknod_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = dir->fh, n](void* data) {
        auto* res = static_cast<MKNOD3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        Ops::FinishEntry(this, conn, c, fh, n, &res->MKNOD3res_u.resok.obj,
                         &res->MKNOD3res_u.resok.obj_attributes, Ops::ReplyEntry());
      });
}

void NfsBackend::Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode) {
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  sattr3 attrs = nfs::ModeOnlySattr(mode);
  std::string n(name);
  conn->Call(
      c,
      [fh = dir->fh, n, attrs](rpc_context* rpc, rpc_cb cb, void* d) {
        MKDIR3args args{};
        args.where = DirOp(fh, n);
        args.attributes = attrs;
        return rpc_nfs3_mkdir_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = dir->fh, n](void* data) {
        auto* res = static_cast<MKDIR3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        Ops::FinishEntry(this, conn, c, fh, n, &res->MKDIR3res_u.resok.obj,
                         &res->MKDIR3res_u.resok.obj_attributes, Ops::ReplyEntry());
      });
}

void NfsBackend::Symlink(Request* r, std::string_view target, uint64_t parent,
                         std::string_view name) {
  if (target.size() > kMaxSymlinkTarget) return r->ReplyError(ENAMETOOLONG);
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  std::string n(name);
  std::string t(target);
  conn->Call(
      c,
      [fh = dir->fh, n, t](rpc_context* rpc, rpc_cb cb, void* d) {
        SYMLINK3args args{};
        args.where = DirOp(fh, n);
        args.symlink.symlink_data = const_cast<char*>(t.c_str());
        return rpc_nfs3_symlink_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = dir->fh, n](void* data) {
        auto* res = static_cast<SYMLINK3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        Ops::FinishEntry(this, conn, c, fh, n, &res->SYMLINK3res_u.resok.obj,
                         &res->SYMLINK3res_u.resok.obj_attributes, Ops::ReplyEntry());
      });
}

void NfsBackend::Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  NodePtr dir = Ops::Need(this, r, newparent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  std::string n(newname);
  conn->Call(
      c,
      [fh = node->fh, dfh = dir->fh, n](rpc_context* rpc, rpc_cb cb, void* d) {
        LINK3args args{};
        args.file = Fh(fh);
        args.link = DirOp(dfh, n);
        return rpc_nfs3_link_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = node->fh, dfh = dir->fh, n](void* data) {
        auto* res = static_cast<LINK3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        post_op_fh3 h{};
        h.handle_follows = 1;
        h.post_op_fh3_u.handle = Fh(fh);
        Ops::FinishEntry(this, conn, c, dfh, n, &h, &res->LINK3res_u.resok.file_attributes,
                         Ops::ReplyEntry());
      });
}

void NfsBackend::Unlink(Request* r, uint64_t parent, std::string_view name) {
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  auto remove = [this, c, fh = dir->fh, n = std::string(name)] {
    NextConnection().Start(
        c,
        [fh, n](rpc_context* rpc, rpc_cb cb, void* d) {
          REMOVE3args args{};
          args.object = DirOp(fh, n);
          return rpc_nfs3_remove_async(rpc, cb, &args, d);
        },
        [c](void* data) { c->Fail(nfs::StatusToErrno(static_cast<REMOVE3res*>(data)->status)); });
  };
  // Nothing open here: nothing to keep alive, one REMOVE.
  if (open_count_.load(std::memory_order_relaxed) == 0) return remove();
  Ops::HideIfOpen(this, c, dir->fh, std::string(name), [c, remove](bool hidden, int err) {
    if (hidden) return c->Fail(err);  // 0: Ok, the name is gone
    remove();
  });
}

void NfsBackend::Rmdir(Request* r, uint64_t parent, std::string_view name) {
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  NextConnection().Call(
      c,
      [fh = dir->fh, n = std::string(name)](rpc_context* rpc, rpc_cb cb, void* d) {
        RMDIR3args args{};
        args.object = DirOp(fh, n);
        return rpc_nfs3_rmdir_async(rpc, cb, &args, d);
      },
      [c](void* data) { c->Fail(nfs::StatusToErrno(static_cast<RMDIR3res*>(data)->status)); });
}

void NfsBackend::Rename(Request* r, uint64_t parent, std::string_view name, uint64_t newparent,
                        std::string_view newname, uint32_t flags) {
  // NFSv3 RENAME always replaces: NOREPLACE could only be emulated racily, EXCHANGE not at all.
  if (flags != 0) return r->ReplyError(EINVAL);
  NodePtr from = Ops::Need(this, r, parent);
  if (!from) return;
  NodePtr to = Ops::Need(this, r, newparent);
  if (!to) return;
  auto c = std::make_shared<Completion>(r);
  std::string n(name);
  std::string nn(newname);
  auto rename = [this, c, ffh = from->fh, tfh = to->fh, n, nn] {
    NextConnection().Start(
        c,
        [ffh, tfh, n, nn](rpc_context* rpc, rpc_cb cb, void* d) {
          RENAME3args args{};
          args.from = DirOp(ffh, n);
          args.to = DirOp(tfh, nn);
          return rpc_nfs3_rename_async(rpc, cb, &args, d);
        },
        [c](void* data) { c->Fail(nfs::StatusToErrno(static_cast<RENAME3res*>(data)->status)); });
  };
  if (open_count_.load(std::memory_order_relaxed) == 0 || (from->fh == to->fh && n == nn)) {
    return rename();
  }
  // A file open here that the rename would replace is hidden first, so it stays readable.
  Ops::HideIfOpen(this, c, to->fh, nn, [c, rename](bool hidden, int err) {
    if (hidden && err != 0) return c->Fail(err);
    rename();
  });
}

void NfsBackend::Open(Request* r, uint64_t ino, const FileInfo& fi) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  // The server decides (ACCESS3), as the kernel NFS client does on open.
  uint32_t want = 0;
  switch (fi.flags & O_ACCMODE) {
    case O_RDONLY:
      want = ACCESS3_READ;
      break;
    case O_WRONLY:
      want = ACCESS3_MODIFY;
      break;
    default:
      want = ACCESS3_READ | ACCESS3_MODIFY;
  }
  if (fi.flags & O_APPEND) want = (want & ~ACCESS3_MODIFY) | ACCESS3_EXTEND;
  bool truncate = (fi.flags & O_TRUNC) != 0;
  auto hold = std::make_shared<Ops::OpenReservation>(this, node->fh);
  auto reply_open = [this, node, hold](Request* req) {
    auto f = std::make_shared<OpenFile>();
    f->node = node;
    hold->kept = true;
    OpenInfo oi;
    {
      std::lock_guard lock(handles_mu_);
      oi.fh = next_handle_++;
      files_.emplace(oi.fh, std::move(f));
    }
    req->ReplyOpen(oi);
  };
  conn->Call(
      c,
      [fh = node->fh, want](rpc_context* rpc, rpc_cb cb, void* d) {
        ACCESS3args args{};
        args.object = Fh(fh);
        args.access = want;
        return rpc_nfs3_access_async(rpc, cb, &args, d);
      },
      [conn, c, fh = node->fh, want, truncate, reply_open](void* data) {
        auto* res = static_cast<ACCESS3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        if ((res->ACCESS3res_u.resok.access & want) != want) return c->Fail(EACCES);
        if (!truncate) return c->Finish(reply_open);
        // O_TRUNC reaching open (atomic_o_trunc): truncate before the file is handed out.
        sattr3 attrs{};
        attrs.size.set_it = 1;
        attrs.size.set_size3_u.size = 0;
        conn->Start(
            c,
            [fh, attrs](rpc_context* rpc, rpc_cb cb, void* d) {
              SETATTR3args args{};
              args.object = Fh(fh);
              args.new_attributes = attrs;
              return rpc_nfs3_setattr_async(rpc, cb, &args, d);
            },
            [c, reply_open](void* data) {
              auto* res = static_cast<SETATTR3res*>(data);
              if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
              c->Finish(reply_open);
            });
      });
}

void NfsBackend::Create(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                        const FileInfo& fi) {
  NodePtr dir = Ops::Need(this, r, parent);
  if (!dir) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  sattr3 attrs = nfs::ModeOnlySattr(mode);
  bool exclusive = (fi.flags & O_EXCL) != 0;
  if (!exclusive && (fi.flags & O_TRUNC)) {
    // UNCHECKED on an existing file applies the attributes: size 0 is the O_TRUNC.
    attrs.size.set_it = 1;
    attrs.size.set_size3_u.size = 0;
  }
  std::string n(name);
  Ops::EntryReply reply = [this](Request* req, const Entry& e) {
    auto f = std::make_shared<OpenFile>();
    f->node = table_->Find(e.nodeid);
    if (f->node) Ops::AddOpen(this, f->node->fh);
    OpenInfo oi;
    {
      std::lock_guard lock(handles_mu_);
      oi.fh = next_handle_++;
      files_.emplace(oi.fh, std::move(f));
    }
    req->ReplyCreate(e, oi);
  };
  conn->Call(
      c,
      [fh = dir->fh, n, attrs, exclusive](rpc_context* rpc, rpc_cb cb, void* d) {
        CREATE3args args{};
        args.where = DirOp(fh, n);
        // GUARDED, not EXCLUSIVE: over TCP without resends there is no retransmission to
        // make idempotent, and GUARDED applies the mode in the same call.
        args.how.mode = exclusive ? GUARDED : UNCHECKED;
        args.how.createhow3_u.obj_attributes = attrs;
        return rpc_nfs3_create_async(rpc, cb, &args, d);
      },
      [this, conn, c, fh = dir->fh, n, reply](void* data) {
        auto* res = static_cast<CREATE3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        Ops::FinishEntry(this, conn, c, fh, n, &res->CREATE3res_u.resok.obj,
                         &res->CREATE3res_u.resok.obj_attributes, reply);
      });
}

void NfsBackend::Read(Request* r, uint64_t ino, size_t size, uint64_t off, const FileInfo&) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  // Sequential READ3s of at most rtmax until `size` bytes, EOF or a short read.
  struct State {
    std::string fh;
    std::string data;
    size_t want;
    uint64_t off;
    uint32_t rtmax;
    // One READ3 step; takes the state as an argument so the state never owns itself.
    std::function<void(const std::shared_ptr<State>&)> next;
  };
  auto st = std::make_shared<State>(State{node->fh, {}, size, off, rtmax_, {}});
  st->next = [conn, c](const std::shared_ptr<State>& st) {
    size_t got = st->data.size();
    uint32_t count = static_cast<uint32_t>(std::min<size_t>(st->want - got, st->rtmax));
    conn->Start(
        c,
        [st, got, count](rpc_context* rpc, rpc_cb cb, void* d) {
          READ3args args{};
          args.file = Fh(st->fh);
          args.offset = st->off + got;
          args.count = count;
          return rpc_nfs3_read_async(rpc, cb, &args, d);
        },
        [c, st, count](void* data) {
          auto* res = static_cast<READ3res*>(data);
          if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
          const READ3resok& ok = res->READ3res_u.resok;
          st->data.append(ok.data.data_val, ok.data.data_len);
          if (!ok.eof && ok.data.data_len == count && st->data.size() < st->want) {
            return st->next(st);
          }
          c->Finish([&](Request* r) { r->ReplyData(st->data); });
        });
  };
  conn->Post([st, c] {
    if (st->want == 0) return c->Finish([](Request* r) { r->ReplyData({}); });
    st->next(st);
  });
}

void NfsBackend::Write(Request* r, uint64_t ino, std::span<const iovec> data, uint64_t off,
                       const FileInfo& fi) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  std::shared_ptr<OpenFile> file;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = files_.find(fi.fh); it != files_.end()) file = it->second;
  }
  auto c = std::make_shared<Completion>(r);
  Connection* conn = &NextConnection();
  struct State {
    std::string fh;
    std::string copy;  // the payload flattened when it came in several pieces
    const char* bytes = nullptr;
    size_t size = 0;
    size_t done = 0;
    uint64_t off = 0;
    uint32_t wtmax = 0;
    std::shared_ptr<OpenFile> file;
    std::function<void(const std::shared_ptr<State>&)> next;  // one WRITE3 step
  };
  auto st = std::make_shared<State>();
  st->fh = node->fh;
  st->off = off;
  st->wtmax = wtmax_;
  st->file = file;
  if (data.size() == 1) {
    // The payload stays valid until we reply, and libnfs copies it when it queues the call.
    st->bytes = static_cast<const char*>(data[0].iov_base);
    st->size = data[0].iov_len;
  } else {
    for (const iovec& v : data) st->copy.append(static_cast<const char*>(v.iov_base), v.iov_len);
    st->bytes = st->copy.data();
    st->size = st->copy.size();
  }
  st->next = [conn, c](const std::shared_ptr<State>& st) {
    size_t at = st->done;
    uint32_t count = static_cast<uint32_t>(std::min<size_t>(st->size - at, st->wtmax));
    conn->Start(
        c,
        [st, at, count](rpc_context* rpc, rpc_cb cb, void* d) {
          WRITE3args args{};
          args.file = Fh(st->fh);
          args.offset = st->off + at;
          args.count = count;
          args.stable = UNSTABLE;
          args.data.data_len = count;
          args.data.data_val = const_cast<char*>(st->bytes + at);
          return rpc_nfs3_write_async(rpc, cb, &args, d);
        },
        [c, st, count](void* data) {
          auto* res = static_cast<WRITE3res*>(data);
          if (res->status != NFS3_OK) {
            // Bytes already written are reported; the error comes with the next write.
            if (st->done > 0) {
              return c->Finish([&](Request* r) { r->ReplyWrite(st->done); });
            }
            return c->Fail(nfs::StatusToErrno(res->status));
          }
          const WRITE3resok& ok = res->WRITE3res_u.resok;
          if (st->file && ok.committed != FILE_SYNC) {
            std::lock_guard lock(st->file->mu);
            if (st->file->have_verf && std::memcmp(st->file->verf, ok.verf, sizeof ok.verf) != 0) {
              st->file->verf_changed = true;
            }
            std::memcpy(st->file->verf, ok.verf, sizeof ok.verf);
            st->file->have_verf = true;
            st->file->dirty = true;
          }
          st->done += std::min<size_t>(ok.count, count);
          if (ok.count == count && st->done < st->size) return st->next(st);
          c->Finish([&](Request* r) { r->ReplyWrite(static_cast<uint32_t>(st->done)); });
        });
  };
  conn->Post([st, c] {
    if (st->size == 0) return c->Finish([](Request* r) { r->ReplyWrite(0); });
    st->next(st);
  });
}

void NfsBackend::Flush(Request* r, uint64_t ino, const FileInfo& fi) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  std::shared_ptr<OpenFile> file;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = files_.find(fi.fh); it != files_.end()) file = it->second;
  }
  Ops::Commit(this, std::make_shared<Completion>(r), file, node, false);
}

void NfsBackend::Release(Request* r, uint64_t ino, const FileInfo& fi) {
  std::shared_ptr<OpenFile> file;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = files_.find(fi.fh); it != files_.end()) {
      file = std::move(it->second);
      files_.erase(it);
    }
  }
  NodePtr node = file ? file->node : table_->Find(ino);
  if (!node) return r->ReplyOk();
  auto c = std::make_shared<Completion>(r);
  if (!file) return Ops::Commit(this, c, file, node, false);
  // The open counts until its data is committed; the last one removes the hidden names.
  Ops::Commit(this, c, file, node, false, [this, c, fh = node->fh](int err) {
    Ops::RemoveHidden(this, c, Ops::DropOpen(this, fh), [c, err] { c->Fail(err); });
  });
}

void NfsBackend::Fsync(Request* r, uint64_t ino, bool, const FileInfo& fi) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  std::shared_ptr<OpenFile> file;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = files_.find(fi.fh); it != files_.end()) file = it->second;
  }
  // Without a known handle (fsync through another open), commit anyway: it is cheap when
  // nothing is unstable.
  Ops::Commit(this, std::make_shared<Completion>(r), file, node, !file);
}

void NfsBackend::Opendir(Request* r, uint64_t ino, const FileInfo&) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  auto d = std::make_shared<DirHandle>();
  d->dir = node;
  OpenInfo oi;
  {
    std::lock_guard lock(handles_mu_);
    oi.fh = next_handle_++;
    // One connection per open directory: its batch cache lives on that loop thread.
    d->conn = &ConnectionFor(oi.fh);
    dirs_.emplace(oi.fh, std::move(d));
  }
  r->ReplyOpen(oi);
}

void NfsBackend::Readdir(Request* r, uint64_t ino, size_t size, uint64_t off, bool plus,
                         const FileInfo& fi) {
  (void)size;  // the Add* calls tell us when the kernel's buffer is full
  std::shared_ptr<DirHandle> d;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = dirs_.find(fi.fh); it != dirs_.end()) d = it->second;
  }
  if (!d || (ino != 0 && table_->Find(ino) != d->dir)) return r->ReplyError(EBADF);
  auto c = std::make_shared<Completion>(r);
  // Serves positions from the cached batch, starting at `off`.
  auto serve = [this, d, c, plus](uint64_t from) {
    c->Finish([&](Request* req) {
      for (size_t i = from - d->batch_start; i < d->batch.size(); ++i) {
        const DirHandle::Item& item = d->batch[i];
        uint64_t next = d->batch_start + i + 1;
        bool dots = item.name == "." || item.name == "..";
        if (!plus) {
          if (!req->AddDirEntry(
                  item.name, item.fileid,
                  item.has_attr ? nfs::FtypeToDirType(item.attr.type) : uint32_t{DT_UNKNOWN},
                  next)) {
            break;
          }
          continue;
        }
        Entry e;
        if (item.has_attr) {
          e.attr = nfs::FattrToStat(item.attr);
        } else {
          e.attr.st_ino = item.fileid;
        }
        if (!dots && item.has_attr && !item.fh.empty()) {
          e = Ops::MakeEntry(this, item.fh, item.attr);
          if (!req->AddDirEntryPlus(item.name, e, next)) {
            table_->Forget(e.nodeid, 1);
            break;
          }
        } else {
          e.nodeid = 0;  // no lookup taken: the kernel will look it up if it needs it
          if (!req->AddDirEntryPlus(item.name, e, next)) break;
        }
      }
      req->ReplyDir();
    });
  };
  d->conn->Post([this, d, c, off, serve] {
    uint64_t end = d->batch_start + d->batch.size();
    if (d->fetched && off >= d->batch_start && off < end) return serve(off);
    if (d->fetched && off == end && d->eof) return serve(off);  // past the last entry
    if (off != 0 && off > d->cookies.size()) return c->Fail(EINVAL);
    uint64_t cookie = off == 0 ? 0 : d->cookies[off - 1];
    if (off == 0) std::memset(d->verf, 0, sizeof d->verf);  // a fresh listing
    readdirplus_rpcs_.fetch_add(1, std::memory_order_relaxed);
    std::string verf(d->verf, sizeof d->verf);
    d->conn->Start(
        c,
        [fh = d->dir->fh, cookie, verf](rpc_context* rpc, rpc_cb cb, void* data) {
          READDIRPLUS3args args{};
          args.dir = Fh(fh);
          args.cookie = cookie;
          std::memcpy(args.cookieverf, verf.data(), sizeof args.cookieverf);
          args.dircount = kReaddirDirCount;
          args.maxcount = kReaddirMaxCount;
          return rpc_nfs3_readdirplus_async(rpc, cb, &args, data);
        },
        [d, c, off, serve](void* data) {
          auto* res = static_cast<READDIRPLUS3res*>(data);
          if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
          const READDIRPLUS3resok& ok = res->READDIRPLUS3res_u.resok;
          std::memcpy(d->verf, ok.cookieverf, sizeof d->verf);
          d->batch.clear();
          d->batch_start = off;
          d->cookies.resize(off);
          for (const entryplus3* e = ok.reply.entries; e != nullptr; e = e->nextentry) {
            if (std::string_view(e->name).starts_with(kSillyPrefix)) {
              // Left out: the position before it continues after it.
              if (!d->cookies.empty()) d->cookies.back() = e->cookie;
              continue;
            }
            DirHandle::Item item;
            item.name = e->name;
            item.fileid = e->fileid;
            item.has_attr = e->name_attributes.attributes_follow != 0;
            if (item.has_attr) item.attr = e->name_attributes.post_op_attr_u.attributes;
            if (e->name_handle.handle_follows)
              item.fh = FhBytes(e->name_handle.post_op_fh3_u.handle);
            d->batch.push_back(std::move(item));
            d->cookies.push_back(e->cookie);
          }
          d->fetched = true;
          d->eof = ok.reply.eof != 0;
          if (d->batch.empty() && !d->eof) return c->Fail(EIO);  // a server making no progress
          serve(off);
        });
  });
}

void NfsBackend::Releasedir(Request* r, uint64_t, const FileInfo& fi) {
  std::shared_ptr<DirHandle> d;
  {
    std::lock_guard lock(handles_mu_);
    if (auto it = dirs_.find(fi.fh); it != dirs_.end()) {
      d = std::move(it->second);
      dirs_.erase(it);
    }
  }
  // Dropped on its loop thread, where its state lives.
  if (d) d->conn->Post([d] {});
  r->ReplyOk();
}

void NfsBackend::Fsyncdir(Request* r, uint64_t, bool, const FileInfo&) {
  // Directory operations are synchronous in NFSv3 (the server commits them before replying).
  r->ReplyOk();
}

void NfsBackend::Statfs(Request* r, uint64_t) {
  auto c = std::make_shared<Completion>(r);
  uint32_t name_max = name_max_;
  NextConnection().Call(
      c,
      [this](rpc_context* rpc, rpc_cb cb, void* d) {
        FSSTAT3args args{};
        NodePtr root = table_->Find(FUSE_ROOT_ID);
        args.fsroot = Fh(root->fh);
        return rpc_nfs3_fsstat_async(rpc, cb, &args, d);
      },
      [c, name_max](void* data) {
        auto* res = static_cast<FSSTAT3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        struct statvfs v = nfs::FsstatToStatvfs(res->FSSTAT3res_u.resok, 4096, name_max);
        c->Finish([&](Request* r) { r->ReplyStatfs(v); });
      });
}

// NFSv3 has no extended attributes. ENOSYS makes the kernel remember that (no more
// getxattr round trips for security.capability on every write) and answer EOPNOTSUPP.
void NfsBackend::Setxattr(Request* r, uint64_t, std::string_view, std::span<const char>, int) {
  r->ReplyError(ENOSYS);
}
void NfsBackend::Getxattr(Request* r, uint64_t, std::string_view, size_t) {
  r->ReplyError(ENOSYS);
}
void NfsBackend::Listxattr(Request* r, uint64_t, size_t) {
  r->ReplyError(ENOSYS);
}
void NfsBackend::Removexattr(Request* r, uint64_t, std::string_view) {
  r->ReplyError(ENOSYS);
}

void NfsBackend::Access(Request* r, uint64_t ino, int mask) {
  NodePtr node = Ops::Need(this, r, ino);
  if (!node) return;
  bool dir = S_ISDIR(node->type);
  uint32_t want = 0;
  if (mask & R_OK) want |= ACCESS3_READ;
  if (mask & W_OK)
    want |= dir ? (ACCESS3_MODIFY | ACCESS3_EXTEND | ACCESS3_DELETE) : ACCESS3_MODIFY;
  if (mask & X_OK) want |= dir ? ACCESS3_LOOKUP : ACCESS3_EXECUTE;
  auto c = std::make_shared<Completion>(r);
  NextConnection().Call(
      c,
      [fh = node->fh, want](rpc_context* rpc, rpc_cb cb, void* d) {
        ACCESS3args args{};
        args.object = Fh(fh);
        args.access = want != 0 ? want : ACCESS3_READ;  // F_OK: any answer proves existence
        return rpc_nfs3_access_async(rpc, cb, &args, d);
      },
      [c, want](void* data) {
        auto* res = static_cast<ACCESS3res*>(data);
        if (res->status != NFS3_OK) return c->Fail(nfs::StatusToErrno(res->status));
        c->Fail((res->ACCESS3res_u.resok.access & want) == want ? 0 : EACCES);
      });
}

void NfsBackend::Fallocate(Request* r, uint64_t, const FileInfo&, int, uint64_t, uint64_t) {
  r->ReplyError(EOPNOTSUPP);  // NFSv3 has no ALLOCATE; posix_fallocate then writes zeros
}

void NfsBackend::Lseek(Request* r, uint64_t, const FileInfo&, uint64_t, int) {
  r->ReplyError(ENOSYS);  // no SEEK in NFSv3: the kernel falls back to generic llseek
}

void NfsBackend::CopyFileRange(Request* r, uint64_t, const FileInfo&, uint64_t, uint64_t,
                               const FileInfo&, uint64_t, size_t, uint64_t) {
  r->ReplyError(ENOSYS);  // no server-side copy in NFSv3: the kernel copies by read/write
}

}  // namespace dpustor::fs
