// The local passthrough backend (see local_backend.h).
#include "fs/backend/local/local_backend.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <thread>
#include <vector>

#include "common/json_rpc.h"

namespace dpustor::fs {
namespace {

constexpr size_t kMaxHandle = 128;                      // MAX_HANDLE_SZ of the kernel
constexpr uint64_t kOffsetMax = 0x7fffffffffffffffULL;  // fuse_file_lock end "to EOF"

// "/proc/self/fd/N": how an O_PATH descriptor is reopened or used by path-only calls. The
// kernel resolves it to the inode itself, never through a name.
struct ProcPath {
  explicit ProcPath(int fd) { std::snprintf(text, sizeof(text), "/proc/self/fd/%d", fd); }
  char text[32];
};

// Names come from the engine as single components; refuse anything else anyway, since one
// "..", or a '/', would walk outside the root.
bool ValidName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

// A handle as the kernel wants it: struct file_handle followed by its bytes, aligned.
struct HandleBuffer {
  alignas(file_handle) char bytes[sizeof(file_handle) + kMaxHandle];
  file_handle* get() { return reinterpret_cast<file_handle*>(bytes); }
};

// Switches the calling thread's fsuid/fsgid to the caller's for the scope. The raw syscalls
// act on this thread only (glibc's setuid family would change every thread).
class ScopedCreds {
 public:
  ScopedCreds(bool enabled, const Caller& c) : enabled_(enabled) {
    if (!enabled_) return;
    old_gid_ = static_cast<int>(syscall(SYS_setfsgid, c.gid));
    old_uid_ = static_cast<int>(syscall(SYS_setfsuid, c.uid));
  }
  ~ScopedCreds() {
    if (!enabled_) return;
    syscall(SYS_setfsuid, old_uid_);
    syscall(SYS_setfsgid, old_gid_);
  }
  ScopedCreds(const ScopedCreds&) = delete;
  ScopedCreds& operator=(const ScopedCreds&) = delete;

 private:
  bool enabled_;
  int old_uid_ = 0;
  int old_gid_ = 0;
};

struct flock ToFlock(const fuse_file_lock& lk) {
  struct flock fl = {};
  fl.l_type = static_cast<short>(lk.type);
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(lk.start);
  fl.l_len = lk.end >= kOffsetMax ? 0 : static_cast<off_t>(lk.end - lk.start + 1);
  fl.l_pid = 0;  // required by OFD locks
  return fl;
}

fuse_file_lock FromFlock(const struct flock& fl) {
  fuse_file_lock lk = {};
  lk.type = static_cast<uint32_t>(fl.l_type);
  lk.start = static_cast<uint64_t>(fl.l_start);
  lk.end = fl.l_len == 0 ? kOffsetMax : static_cast<uint64_t>(fl.l_start + fl.l_len - 1);
  lk.pid = 0;  // OFD locks have no pid (-1); "unknown" to the client
  return lk;
}

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  uint16_t d_reclen;
  uint8_t d_type;
  char d_name[];
};

}  // namespace

// (st_dev, handle bytes) in handle mode, (st_dev, st_ino) in descriptor mode; the first
// byte of `id` says which, so the two never collide.
namespace {
// Descriptors kept open for hot handle-mode nodes, process-wide (descriptors are a
// process resource, shared by every share). Reopening by handle costs two system calls per
// operation; a node that keeps its descriptor costs none, as long as the budget lasts.
std::atomic<size_t> cached_fds{0};
size_t CachedFdBudget() {
  static const size_t budget = [] {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return size_t{16384};
    return static_cast<size_t>(rl.rlim_cur / 4);  // leave most for open files and sockets
  }();
  return budget;
}
}  // namespace

struct LocalBackend::Node {
  struct Key {
    dev_t dev = 0;
    std::string id;
    bool operator==(const Key&) const = default;
  };
  Node(Key k, mode_t t, int descriptor) : key_(std::move(k)), type(t), fd(descriptor) {}
  ~Node() {
    if (fd >= 0) close(fd);
    if (int c = cached.load(); c >= 0) {
      close(c);
      cached_fds.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  const Key& key() const { return key_; }
  bool by_handle() const { return fd < 0; }

  const Key key_;
  const mode_t type;  // S_IFMT bits at lookup
  const int fd;       // O_PATH descriptor in descriptor mode, else -1
  // Handle mode: an O_PATH descriptor kept after the first reopen while the budget allows;
  // set once, closed with the node (operations hold the node, so never while in use).
  mutable std::atomic<int> cached{-1};
};

struct LocalBackend::NodeKeyHash {
  size_t operator()(const Node::Key& k) const {
    return std::hash<std::string>{}(k.id) ^ (std::hash<dev_t>{}(k.dev) * 0x9e3779b97f4a7c15ULL);
  }
};

// A node's O_PATH descriptor for one operation: borrowed, or opened by handle and closed.
struct LocalBackend::NodeFd {
  int fd = -1;
  bool owned = false;
  NodeFd() = default;
  NodeFd(const NodeFd&) = delete;
  NodeFd& operator=(const NodeFd&) = delete;
  ~NodeFd() {
    if (owned) close(fd);
  }
};

// An open file; handed out as a FUSE fh through files_.
struct LocalBackend::OpenFile {
  explicit OpenFile(int descriptor) : fd(descriptor) {}
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() { close(fd); }
  const int fd;
};

// An open directory: its descriptor, read under `mu` (getdents64 moves the position).
struct LocalBackend::DirHandle {
  explicit DirHandle(int descriptor) : fd(descriptor) {}
  DirHandle(const DirHandle&) = delete;
  DirHandle& operator=(const DirHandle&) = delete;
  ~DirHandle() { close(fd); }
  const int fd;
  std::mutex mu;
};

// Retries blocking lock requests without blocking, on one thread, until they succeed,
// fail otherwise, or are interrupted. Each waiter owns a dup() of the file's descriptor
// (same open file description, so the same OFD/flock owner) so a concurrent release
// cannot redirect it to a reused descriptor number.
class LocalBackend::LockWaiter {
 public:
  // `attempt(fd)`: 0 when acquired, EAGAIN/EWOULDBLOCK/EACCES to retry, or an errno.
  using Attempt = std::function<int(int)>;

  LockWaiter() = default;
  ~LockWaiter() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    for (Pending& p : pending_) {
      close(p.fd);
      p.r->ReplyError(EINTR);
    }
  }

  void Add(Request* r, int fd, Attempt attempt) {
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) return r->ReplyError(errno);
    {
      std::lock_guard lock(mu_);
      pending_.push_back({r, own, std::move(attempt)});
      delay_ = kMinDelay;
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
    }
    cv_.notify_all();
  }

 private:
  static constexpr std::chrono::milliseconds kMinDelay{1};
  static constexpr std::chrono::milliseconds kMaxDelay{50};

  struct Pending {
    Request* r;
    int fd;
    Attempt attempt;
  };

  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      if (pending_.empty()) {
        cv_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        continue;
      }
      std::vector<std::pair<Request*, int>> done;
      for (auto it = pending_.begin(); it != pending_.end();) {
        int err = it->r->interrupted() ? EINTR : it->attempt(it->fd);
        if (err == EAGAIN || err == EWOULDBLOCK || err == EACCES) {
          ++it;
          continue;
        }
        close(it->fd);
        done.emplace_back(it->r, err);  // 0: acquired
        it = pending_.erase(it);
      }
      if (!done.empty()) {
        lock.unlock();  // replies run the transport's completion: never under our lock
        for (auto [r, err] : done) r->ReplyError(err);
        lock.lock();
      }
      cv_.wait_for(lock, delay_, [&] { return stop_; });
      delay_ = std::min(kMaxDelay, delay_ * 2);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::list<Pending> pending_;
  std::chrono::milliseconds delay_ = kMinDelay;
  bool stop_ = false;
  std::thread thread_;
};

namespace {

// The handle of `fd` (O_PATH or open), as the key's id; 0 or an errno.
int HandleOf(int fd, std::string* id) {
  HandleBuffer buf;
  buf.get()->handle_bytes = kMaxHandle;
  int mount_id = 0;
  if (name_to_handle_at(fd, "", buf.get(), &mount_id, AT_EMPTY_PATH) < 0) return errno;
  id->assign(1, 'h');
  id->append(buf.bytes, sizeof(file_handle) + buf.get()->handle_bytes);
  return 0;
}

}  // namespace

Result<std::unique_ptr<LocalBackend>> LocalBackend::Make(const LocalOptions& options) {
  if (options.root.empty()) {
    return Error{rpc::kInvalidParams, "local backend: no root directory given"};
  }
  int root_fd = open(options.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    int err = errno;
    return Error{err == ENOENT ? rpc::kNotFound : rpc::kInvalidParams,
                 "local backend: cannot open root " + options.root + ": " + std::strerror(err)};
  }
  // Handles work only if the file system makes them and we may open them (the capability).
  bool use_handles = false;
  std::string why = "disabled by handles=off";
  if (options.allow_handles) {
    std::string id;
    if (int err = HandleOf(root_fd, &id)) {
      why = std::string("no file handles on this file system: ") + std::strerror(err);
    } else {
      HandleBuffer buf;
      std::memcpy(buf.bytes, id.data() + 1, id.size() - 1);
      int mount_fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int fd = open_by_handle_at(mount_fd, buf.get(), O_PATH | O_CLOEXEC);
      if (mount_fd >= 0) close(mount_fd);
      if (fd < 0) {
        why = std::string("cannot open file handles (needs CAP_DAC_READ_SEARCH): ") +
              std::strerror(errno);
      } else {
        close(fd);
        use_handles = true;
      }
    }
  }
  if (use_handles) {
    spdlog::info("local backend: serving {} with file handles (no descriptor per inode)",
                 options.root);
  } else {
    spdlog::info("local backend: serving {} with one O_PATH descriptor per inode ({})",
                 options.root, why);
  }
  return std::unique_ptr<LocalBackend>(new LocalBackend(options, root_fd, use_handles));
}

LocalBackend::LocalBackend(const LocalOptions& options, int root_fd, bool use_handles)
    : options_(options),
      use_handles_(use_handles),
      as_root_(geteuid() == 0),
      waiter_(std::make_unique<LockWaiter>()) {
  struct stat st = {};
  fstat(root_fd, &st);
  Node::Key key{st.st_dev, {}};
  if (!use_handles_ || HandleOf(root_fd, &key.id) != 0) {
    key.id.assign(1, 'i').append(reinterpret_cast<const char*>(&st.st_ino), sizeof(st.st_ino));
  }
  RememberMount(st.st_dev, root_fd, true);
  // The root always keeps its descriptor: every walk starts there.
  table_ = std::make_unique<Table>(std::make_shared<Node>(std::move(key), S_IFDIR, root_fd));
}

LocalBackend::~LocalBackend() {
  waiter_.reset();  // answers what still waits, before anything else goes
  table_.reset();
  for (auto& [dev, fd] : mount_fds_) close(fd);
}

Capabilities LocalBackend::Init() {
  Capabilities caps;
  caps.posix_locks = true;
  caps.flock_locks = true;
  caps.writeback_cache = options_.writeback;
  caps.readdirplus = true;
  caps.parallel_dirops = true;
  caps.max_write = 1 << 20;
  return caps;
}

void LocalBackend::Destroy() {
  // The session is over (unmount, or the VM went away): what it had open is closed too.
  files_.Clear();
  dirs_.Clear();
  table_->Clear();
}

size_t LocalBackend::known_nodes() const {
  return table_->size();
}

bool LocalBackend::RememberMount(dev_t dev, int fd, bool is_dir) {
  {
    std::lock_guard lock(mounts_mu_);
    if (mount_fds_.contains(dev)) return true;
  }
  // open_by_handle_at wants a real open descriptor on the file system, not an O_PATH one;
  // only a directory can be opened for that without side effects (a fifo would block).
  if (!is_dir) return false;
  int own = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_NONBLOCK | O_CLOEXEC);
  if (own < 0) return false;
  std::lock_guard lock(mounts_mu_);
  if (!mount_fds_.emplace(dev, own).second) close(own);
  return true;
}

int LocalBackend::MountFd(dev_t dev) {
  std::lock_guard lock(mounts_mu_);
  auto it = mount_fds_.find(dev);
  return it == mount_fds_.end() ? -1 : it->second;
}

int LocalBackend::PathFd(const Node& node, NodeFd* out) {
  if (!node.by_handle()) {
    out->fd = node.fd;
    out->owned = false;
    return 0;
  }
  if (int c = node.cached.load(std::memory_order_acquire); c >= 0) {
    out->fd = c;
    out->owned = false;
    return 0;
  }
  int mount_fd = MountFd(node.key().dev);
  if (mount_fd < 0) return ESTALE;
  HandleBuffer buf;
  std::memcpy(buf.bytes, node.key().id.data() + 1, node.key().id.size() - 1);
  // A handle stays valid after a host-side rename moved the file out of the root: the
  // node keeps working, as virtiofsd's do; nothing outside becomes reachable by name.
  int fd = open_by_handle_at(mount_fd, buf.get(), O_PATH | O_CLOEXEC);
  if (fd < 0) return errno;
  out->fd = fd;
  out->owned = true;
  if (cached_fds.fetch_add(1, std::memory_order_relaxed) < CachedFdBudget()) {
    int none = -1;
    if (node.cached.compare_exchange_strong(none, fd)) {
      out->owned = false;  // the node keeps it from now on
      return 0;
    }
  }
  cached_fds.fetch_sub(1, std::memory_order_relaxed);
  return 0;
}

int LocalBackend::LookupAt(int dir_fd, const char* name, Entry* e) {
  int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  return EntryOf(fd, e);
}

int LocalBackend::EntryOf(int fd, Entry* e) {
  struct stat st;
  if (fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    int err = errno;
    close(fd);
    return err;
  }
  Node::Key key{st.st_dev, {}};
  bool keep_fd = true;
  if (use_handles_) {
    int err = HandleOf(fd, &key.id);
    if (err == 0) {
      keep_fd = !RememberMount(st.st_dev, fd, S_ISDIR(st.st_mode));
    } else if (err != EOPNOTSUPP && err != EOVERFLOW) {
      close(fd);
      return err;
    }
  }
  if (keep_fd) {
    key.id.assign(1, 'i').append(reinterpret_cast<const char*>(&st.st_ino), sizeof(st.st_ino));
  }
  bool consumed = false;
  auto ref = table_->Acquire(key, [&] {
    consumed = keep_fd;
    return std::make_shared<Node>(key, st.st_mode & S_IFMT, keep_fd ? fd : -1);
  });
  if (!consumed) close(fd);
  e->nodeid = ref.nodeid;
  e->generation = ref.generation;
  e->attr = st;
  e->attr_timeout = e->entry_timeout = options_.timeout;
  return 0;
}

int LocalBackend::OpenFlags(uint32_t flags) const {
  int f = static_cast<int>(flags) & ~(O_NOFOLLOW | O_CREAT | O_EXCL | O_NOCTTY);
  if (options_.writeback) {
    // The kernel's writeback cache reads pages of files opened write-only, and it sends
    // appends at offsets it computed itself: the host must not append again.
    if ((f & O_ACCMODE) == O_WRONLY) f = (f & ~O_ACCMODE) | O_RDWR;
    f &= ~O_APPEND;
  }
  return f | O_CLOEXEC;
}

// Declares `node` and its O_PATH descriptor `fd`, or replies the error and returns.
#define DPUSTOR_NODE_FD(r, ino, node, fd) DPUSTOR_DIR_OR_NODE_FD(r, ino, node, fd, 0)
// The same, replying `refuse` (an errno computed from `node`) first when it is not 0; the
// type is known without reopening, so a node deleted meanwhile still gets that answer.
#define DPUSTOR_DIR_OR_NODE_FD(r, ino, node, fd, refuse)         \
  NodePtr node = table_->Find(ino);                              \
  if (!node) return (r)->ReplyError(ESTALE);                     \
  if (int refused_ = (refuse)) return (r)->ReplyError(refused_); \
  NodeFd fd;                                                     \
  if (int err_ = PathFd(*node, &fd)) return (r)->ReplyError(err_)
// Declares `file`, the open file behind `fi.fh`, or replies EBADF: a handle this backend
// did not issue (or already released) is refused, never used as a descriptor.
#define DPUSTOR_OPEN_FILE(r, fi, file)                  \
  std::shared_ptr<OpenFile> file = files_.Get((fi).fh); \
  if (!file) return (r)->ReplyError(EBADF)
// For a node that must be a directory (a parent, opendir).
#define DPUSTOR_PARENT_FD(r, ino, node, fd) \
  DPUSTOR_DIR_OR_NODE_FD(r, ino, node, fd, S_ISDIR(node->type) ? 0 : ENOTDIR)

void LocalBackend::Lookup(Request* r, uint64_t parent, std::string_view name) {
  if (!ValidName(name)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  Entry e;
  if (int err = LookupAt(pfd.fd, std::string(name).c_str(), &e)) return r->ReplyError(err);
  r->ReplyEntry(e);
}

void LocalBackend::Forget(uint64_t ino, uint64_t nlookup) {
  table_->Forget(ino, nlookup);
}

void LocalBackend::Getattr(Request* r, uint64_t ino, const FileInfo* fi) {
  struct stat st;
  if (fi) {
    DPUSTOR_OPEN_FILE(r, *fi, file);
    if (fstat(file->fd, &st) < 0) return r->ReplyError(errno);
    return r->ReplyAttr(st, options_.timeout);
  }
  DPUSTOR_NODE_FD(r, ino, node, fd);
  if (fstatat(fd.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    return r->ReplyError(errno);
  }
  r->ReplyAttr(st, options_.timeout);
}

void LocalBackend::Setattr(Request* r, uint64_t ino, const SetattrArgs& a) {
  DPUSTOR_NODE_FD(r, ino, node, fd);
  std::shared_ptr<OpenFile> file = a.fi ? files_.Get(a.fi->fh) : nullptr;
  if (a.fi && !file) return r->ReplyError(EBADF);
  const int open_fd = file ? file->fd : -1;
  ProcPath path(fd.fd);
  if (a.valid & FATTR_MODE) {
    int rc = open_fd >= 0 ? fchmod(open_fd, a.mode & 07777)
                          : fchmodat(AT_FDCWD, path.text, a.mode & 07777, 0);
    if (rc < 0) return r->ReplyError(errno);
  }
  if (a.valid & (FATTR_UID | FATTR_GID)) {
    uid_t uid = (a.valid & FATTR_UID) ? a.uid : static_cast<uid_t>(-1);
    gid_t gid = (a.valid & FATTR_GID) ? a.gid : static_cast<gid_t>(-1);
    if (fchownat(fd.fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
      return r->ReplyError(errno);
    }
  }
  if (a.valid & FATTR_SIZE) {
    if (S_ISDIR(node->type)) return r->ReplyError(EISDIR);
    if (!S_ISREG(node->type)) return r->ReplyError(EINVAL);
    int rc = open_fd >= 0 ? ftruncate(open_fd, static_cast<off_t>(a.size))
                          : truncate(path.text, static_cast<off_t>(a.size));
    if (rc < 0) return r->ReplyError(errno);
  }
  if (a.valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
    timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (a.valid & FATTR_ATIME_NOW) {
      ts[0].tv_nsec = UTIME_NOW;
    } else if (a.valid & FATTR_ATIME) {
      ts[0] = a.atime;
    }
    if (a.valid & FATTR_MTIME_NOW) {
      ts[1].tv_nsec = UTIME_NOW;
    } else if (a.valid & FATTR_MTIME) {
      ts[1] = a.mtime;
    }
    int rc = open_fd >= 0 ? futimens(open_fd, ts) : utimensat(AT_FDCWD, path.text, ts, 0);
    if (rc < 0) return r->ReplyError(errno);
  }
  // FATTR_CTIME cannot be set on the host; every change above moved it anyway.
  struct stat st;
  if (fstatat(fd.fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
    return r->ReplyError(errno);
  }
  r->ReplyAttr(st, options_.timeout);
}

void LocalBackend::Readlink(Request* r, uint64_t ino) {
  DPUSTOR_NODE_FD(r, ino, node, fd);
  char buf[PATH_MAX + 1];
  ssize_t n = readlinkat(fd.fd, "", buf, sizeof(buf));
  if (n < 0) return r->ReplyError(errno);
  if (static_cast<size_t>(n) >= sizeof(buf)) return r->ReplyError(ENAMETOOLONG);
  r->ReplyReadlink(std::string_view(buf, static_cast<size_t>(n)));
}

template <class MakeFn>
void LocalBackend::MakeNode(Request* r, uint64_t parent, std::string_view name, MakeFn&& make) {
  if (!ValidName(name)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  std::string cname(name);
  int err;
  {
    ScopedCreds creds(as_root_, r->caller());
    err = make(pfd.fd, cname.c_str());
  }
  if (err) return r->ReplyError(err);
  Entry e;
  if ((err = LookupAt(pfd.fd, cname.c_str(), &e))) return r->ReplyError(err);
  r->ReplyEntry(e);
}

void LocalBackend::Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                         dev_t rdev) {
  MakeNode(r, parent, name,
           [&](int pfd, const char* n) { return mknodat(pfd, n, mode, rdev) < 0 ? errno : 0; });
}

void LocalBackend::Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode) {
  MakeNode(r, parent, name,
           [&](int pfd, const char* n) { return mkdirat(pfd, n, mode) < 0 ? errno : 0; });
}

void LocalBackend::Symlink(Request* r, std::string_view target, uint64_t parent,
                           std::string_view name) {
  std::string ctarget(target);  // stored as text, never resolved here
  MakeNode(r, parent, name, [&](int pfd, const char* n) {
    return symlinkat(ctarget.c_str(), pfd, n) < 0 ? errno : 0;
  });
}

void LocalBackend::Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname) {
  DPUSTOR_NODE_FD(r, ino, node, fd);
  MakeNode(r, newparent, newname, [&](int pfd, const char* n) {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH (gone under a non-root fsuid): then link the
    // inode through its /proc name, which names the node itself (never a symlink target).
    if (linkat(fd.fd, "", pfd, n, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return errno;
    ProcPath path(fd.fd);
    return linkat(AT_FDCWD, path.text, pfd, n, AT_SYMLINK_FOLLOW) < 0 ? errno : 0;
  });
}

void LocalBackend::Unlink(Request* r, uint64_t parent, std::string_view name) {
  if (!ValidName(name)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  r->ReplyError(unlinkat(pfd.fd, std::string(name).c_str(), 0) < 0 ? errno : 0);
}

void LocalBackend::Rmdir(Request* r, uint64_t parent, std::string_view name) {
  if (!ValidName(name)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  r->ReplyError(unlinkat(pfd.fd, std::string(name).c_str(), AT_REMOVEDIR) < 0 ? errno : 0);
}

void LocalBackend::Rename(Request* r, uint64_t parent, std::string_view name, uint64_t newparent,
                          std::string_view newname, uint32_t flags) {
  if (!ValidName(name) || !ValidName(newname)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  DPUSTOR_PARENT_FD(r, newparent, npnode, npfd);
  int rc =
      renameat2(pfd.fd, std::string(name).c_str(), npfd.fd, std::string(newname).c_str(), flags);
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Open(Request* r, uint64_t ino, const FileInfo& fi) {
  DPUSTOR_DIR_OR_NODE_FD(r, ino, node, fd, S_ISLNK(node->type) ? ELOOP : 0);
  ProcPath path(fd.fd);
  int file = open(path.text, OpenFlags(fi.flags));
  if (file < 0) return r->ReplyError(errno);
  OpenInfo oi;
  oi.fh = files_.Add(std::make_shared<OpenFile>(file));
  oi.keep_cache = options_.keep_cache;
  r->ReplyOpen(oi);
}

void LocalBackend::Create(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                          const FileInfo& fi) {
  if (!ValidName(name)) return r->ReplyError(EINVAL);
  DPUSTOR_PARENT_FD(r, parent, pnode, pfd);
  int flags = OpenFlags(fi.flags) | O_CREAT | O_NOFOLLOW | (fi.flags & O_EXCL);
  int file;
  {
    ScopedCreds creds(as_root_, r->caller());
    file = openat(pfd.fd, std::string(name).c_str(), flags, mode);
  }
  if (file < 0) return r->ReplyError(errno);
  ProcPath path(file);
  int opath = open(path.text, O_PATH | O_CLOEXEC);  // the very inode just opened
  Entry e;
  int err = opath < 0 ? errno : EntryOf(opath, &e);
  if (err) {
    close(file);
    return r->ReplyError(err);
  }
  OpenInfo oi;
  oi.fh = files_.Add(std::make_shared<OpenFile>(file));
  oi.keep_cache = options_.keep_cache;
  r->ReplyCreate(e, oi);
}

void LocalBackend::Read(Request* r, uint64_t, size_t size, uint64_t off, const FileInfo& fi) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  std::span<const iovec> bufs = r->DataBuffers(size);
  // Trim the transport's buffers to `size`: reading more would overrun the request.
  std::vector<iovec> iov;
  iov.reserve(bufs.size());
  size_t room = size;
  for (const iovec& b : bufs) {
    if (room == 0 || iov.size() == IOV_MAX) break;
    iov.push_back({b.iov_base, std::min(b.iov_len, room)});
    room -= iov.back().iov_len;
  }
  ssize_t n = preadv(file->fd, iov.data(), static_cast<int>(iov.size()), static_cast<off_t>(off));
  if (n < 0) return r->ReplyError(errno);
  r->ReplyDataFilled(static_cast<size_t>(n));
}

void LocalBackend::Write(Request* r, uint64_t, std::span<const iovec> data, uint64_t off,
                         const FileInfo& fi) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  int count = static_cast<int>(std::min<size_t>(data.size(), IOV_MAX));
  ssize_t n = pwritev(file->fd, data.data(), count, static_cast<off_t>(off));
  if (n < 0) return r->ReplyError(errno);
  r->ReplyWrite(static_cast<uint32_t>(n));
}

void LocalBackend::Flush(Request* r, uint64_t, const FileInfo& fi) {
  // close() of a duplicate reports deferred write errors (NFS hosts) without closing.
  DPUSTOR_OPEN_FILE(r, fi, file);
  int dupfd = dup(file->fd);
  if (dupfd < 0) return r->ReplyError(errno);
  r->ReplyError(close(dupfd) < 0 ? errno : 0);
}

void LocalBackend::Release(Request* r, uint64_t, const FileInfo& fi) {
  // Closed when the last request still using it finishes.
  if (!files_.Remove(fi.fh)) return r->ReplyError(EBADF);
  r->ReplyOk();
}

void LocalBackend::Fsync(Request* r, uint64_t, bool datasync, const FileInfo& fi) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  int rc = datasync ? fdatasync(file->fd) : fsync(file->fd);
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Opendir(Request* r, uint64_t ino, const FileInfo&) {
  DPUSTOR_PARENT_FD(r, ino, node, fd);
  int dfd = openat(fd.fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return r->ReplyError(errno);
  OpenInfo oi;
  oi.fh = dirs_.Add(std::make_shared<DirHandle>(dfd));
  r->ReplyOpen(oi);
}

void LocalBackend::Readdir(Request* r, uint64_t, size_t size, uint64_t off, bool plus,
                           const FileInfo& fi) {
  std::shared_ptr<DirHandle> dir = dirs_.Get(fi.fh);
  if (!dir) return r->ReplyError(EBADF);
  std::lock_guard lock(dir->mu);
  // Every call seeks to the cookie it was given: the host's d_off values are the cookies,
  // stable across unlinks of other entries.
  if (lseek(dir->fd, static_cast<off_t>(off), SEEK_SET) < 0) return r->ReplyError(errno);
  std::vector<char> buf(std::clamp<size_t>(size * 2, 4096, 64 * 1024));
  bool full = false;
  while (!full) {
    long n = syscall(SYS_getdents64, dir->fd, buf.data(), buf.size());
    if (n < 0) return r->ReplyError(errno);
    if (n == 0) break;
    for (long pos = 0; pos < n && !full;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(buf.data() + pos);
      pos += d->d_reclen;
      std::string_view dname(d->d_name);
      uint64_t next = static_cast<uint64_t>(d->d_off);
      if (!plus) {
        full = !r->AddDirEntry(dname, d->d_ino, d->d_type, next);
        continue;
      }
      Entry e;
      if (dname == "." || dname == "..") {
        e.attr.st_ino = d->d_ino;
        e.attr.st_mode = static_cast<mode_t>(d->d_type) << 12;
      } else if (LookupAt(dir->fd, d->d_name, &e) != 0) {
        continue;  // gone (or unreadable) since getdents: skip it, as a later readdir would
      }
      if (!r->AddDirEntryPlus(dname, e, next)) {
        if (e.nodeid != 0) table_->Forget(e.nodeid, 1);  // the kernel never saw it
        full = true;
      }
    }
  }
  r->ReplyDir();
}

void LocalBackend::Releasedir(Request* r, uint64_t, const FileInfo& fi) {
  if (!dirs_.Remove(fi.fh)) return r->ReplyError(EBADF);
  r->ReplyOk();
}

void LocalBackend::Fsyncdir(Request* r, uint64_t, bool datasync, const FileInfo& fi) {
  std::shared_ptr<DirHandle> dir = dirs_.Get(fi.fh);
  if (!dir) return r->ReplyError(EBADF);
  int rc = datasync ? fdatasync(dir->fd) : fsync(dir->fd);
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Statfs(Request* r, uint64_t ino) {
  DPUSTOR_NODE_FD(r, ino, node, fd);
  struct statvfs st;
  if (fstatvfs(fd.fd, &st) < 0) return r->ReplyError(errno);
  r->ReplyStatfs(st);
}

// Xattrs go through the /proc name of the O_PATH descriptor: it reaches the inode itself
// for every file type (symlinks included) without opening it. The host's answers (EPERM
// for user.* on a symlink, ENOTSUP, ERANGE) pass through.
void LocalBackend::Setxattr(Request* r, uint64_t ino, std::string_view name,
                            std::span<const char> value, int flags) {
  if (!options_.xattr) return r->ReplyError(ENOSYS);
  if (r->caller().uid != 0 && !name.starts_with("user.")) return r->ReplyError(EPERM);
  DPUSTOR_NODE_FD(r, ino, node, fd);
  ProcPath path(fd.fd);
  int rc;
  {
    ScopedCreds creds(as_root_, r->caller());  // the host checks write permission as them
    rc = setxattr(path.text, std::string(name).c_str(), value.data(), value.size(), flags);
  }
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size) {
  if (!options_.xattr) return r->ReplyError(ENOSYS);
  if (r->caller().uid != 0 && name.starts_with("trusted.")) return r->ReplyError(ENODATA);
  DPUSTOR_NODE_FD(r, ino, node, fd);
  ProcPath path(fd.fd);
  std::string cname(name);
  if (size == 0) {
    ssize_t n = getxattr(path.text, cname.c_str(), nullptr, 0);
    if (n < 0) return r->ReplyError(errno);
    return r->ReplyXattrSize(static_cast<uint32_t>(n));
  }
  std::vector<char> buf(size);
  ssize_t n = getxattr(path.text, cname.c_str(), buf.data(), buf.size());
  if (n < 0) return r->ReplyError(errno);
  r->ReplyData({buf.data(), static_cast<size_t>(n)});
}

void LocalBackend::Listxattr(Request* r, uint64_t ino, size_t size) {
  if (!options_.xattr) return r->ReplyError(ENOSYS);
  DPUSTOR_NODE_FD(r, ino, node, fd);
  ProcPath path(fd.fd);
  // Read the whole list (its size can change between calls: retry), then filter.
  std::vector<char> buf;
  ssize_t n = 0;
  for (int tries = 0; tries < 8; ++tries) {
    n = listxattr(path.text, nullptr, 0);
    if (n < 0) return r->ReplyError(errno);
    buf.resize(static_cast<size_t>(n));
    n = listxattr(path.text, buf.data(), buf.size());
    if (n >= 0 || errno != ERANGE) break;
  }
  if (n < 0) return r->ReplyError(errno);
  std::string names;
  for (size_t pos = 0; pos < static_cast<size_t>(n);) {
    std::string_view one(buf.data() + pos);
    pos += one.size() + 1;
    if (r->caller().uid != 0 && one.starts_with("trusted.")) continue;
    names.append(one);
    names.push_back('\0');
  }
  if (size == 0) return r->ReplyXattrSize(static_cast<uint32_t>(names.size()));
  if (size < names.size()) return r->ReplyError(ERANGE);
  r->ReplyData(names);
}

void LocalBackend::Removexattr(Request* r, uint64_t ino, std::string_view name) {
  if (!options_.xattr) return r->ReplyError(ENOSYS);
  if (r->caller().uid != 0 && !name.starts_with("user.")) return r->ReplyError(EPERM);
  DPUSTOR_NODE_FD(r, ino, node, fd);
  ProcPath path(fd.fd);
  int rc;
  {
    ScopedCreds creds(as_root_, r->caller());
    rc = removexattr(path.text, std::string(name).c_str());
  }
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Access(Request* r, uint64_t ino, int mask) {
  DPUSTOR_NODE_FD(r, ino, node, fd);
  ProcPath path(fd.fd);
  int rc;
  {
    // AT_EACCESS checks with the fsuid/fsgid just switched to, not the real ids.
    ScopedCreds creds(as_root_, r->caller());
    rc = faccessat(AT_FDCWD, path.text, mask, AT_EACCESS);
  }
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Getlk(Request* r, uint64_t, const FileInfo& fi, const fuse_file_lock& lk) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  struct flock fl = ToFlock(lk);
  if (fcntl(file->fd, F_OFD_GETLK, &fl) < 0) return r->ReplyError(errno);
  r->ReplyLock(FromFlock(fl));
}

void LocalBackend::Setlk(Request* r, uint64_t, const FileInfo& fi, const fuse_file_lock& lk,
                         bool sleep) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  struct flock fl = ToFlock(lk);
  if (fcntl(file->fd, F_OFD_SETLK, &fl) == 0) return r->ReplyOk();
  int err = errno;
  if (!sleep || (err != EAGAIN && err != EACCES)) return r->ReplyError(err);
  waiter_->Add(r, file->fd,
               [fl](int fd) mutable { return fcntl(fd, F_OFD_SETLK, &fl) < 0 ? errno : 0; });
}

void LocalBackend::Flock(Request* r, uint64_t, const FileInfo& fi, int op) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  if (op & LOCK_UN) return r->ReplyError(flock(file->fd, LOCK_UN) < 0 ? errno : 0);
  if (flock(file->fd, op | LOCK_NB) == 0) return r->ReplyOk();
  int err = errno;
  if ((op & LOCK_NB) || err != EWOULDBLOCK) return r->ReplyError(err);
  waiter_->Add(r, file->fd, [op](int fd) { return flock(fd, op | LOCK_NB) < 0 ? errno : 0; });
}

void LocalBackend::Fallocate(Request* r, uint64_t, const FileInfo& fi, int mode, uint64_t off,
                             uint64_t len) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  int rc = fallocate(file->fd, mode, static_cast<off_t>(off), static_cast<off_t>(len));
  r->ReplyError(rc < 0 ? errno : 0);
}

void LocalBackend::Lseek(Request* r, uint64_t, const FileInfo& fi, uint64_t off, int whence) {
  DPUSTOR_OPEN_FILE(r, fi, file);
  off_t pos = lseek(file->fd, static_cast<off_t>(off), whence);
  if (pos < 0) return r->ReplyError(errno);
  r->ReplyLseek(static_cast<uint64_t>(pos));
}

void LocalBackend::CopyFileRange(Request* r, uint64_t, const FileInfo& fi_in, uint64_t off_in,
                                 uint64_t, const FileInfo& fi_out, uint64_t off_out, size_t len,
                                 uint64_t flags) {
  DPUSTOR_OPEN_FILE(r, fi_in, file_in);
  DPUSTOR_OPEN_FILE(r, fi_out, file_out);
  loff_t in = static_cast<loff_t>(off_in), out = static_cast<loff_t>(off_out);
  ssize_t n =
      copy_file_range(file_in->fd, &in, file_out->fd, &out, len, static_cast<unsigned>(flags));
  if (n < 0) return r->ReplyError(errno);
  r->ReplyWrite(static_cast<uint32_t>(n));
}

#undef DPUSTOR_OPEN_FILE
#undef DPUSTOR_NODE_FD
#undef DPUSTOR_DIR_OR_NODE_FD
#undef DPUSTOR_PARENT_FD

Result<std::unique_ptr<Backend>> OpenLocalBackend(const BackendUrl& url) {
  if (url.scheme != "local") {
    return Error{rpc::kInvalidParams,
                 "local backend: URL scheme is '" + url.scheme + "', not 'local'"};
  }
  LocalOptions options;
  options.root = url.path;
  auto on_off = [](const std::string& v, bool* out) {
    if (v == "on") return *out = true, true;
    if (v == "off") return *out = false, true;
    return false;
  };
  for (const auto& [key, value] : url.query) {
    bool ok = true;
    if (key == "cache") {
      if (value == "none") {
        options.timeout = 0, options.keep_cache = false;
      } else if (value == "auto") {
        options.timeout = 1.0, options.keep_cache = false;
      } else if (value == "always") {
        options.timeout = 86400.0, options.keep_cache = true;
      } else {
        ok = false;
      }
    } else if (key == "writeback") {
      ok = on_off(value, &options.writeback);
    } else if (key == "xattr") {
      ok = on_off(value, &options.xattr);
    } else if (key == "handles") {
      options.allow_handles = value != "off";
      ok = value == "auto" || value == "off";
    } else {
      return Error{rpc::kInvalidParams, "local backend: unknown option '" + key + "'"};
    }
    if (!ok) {
      return Error{rpc::kInvalidParams,
                   "local backend: bad value '" + value + "' for option '" + key + "'"};
    }
  }
  auto backend = LocalBackend::Make(options);
  if (!backend.ok()) return backend.error();
  return std::unique_ptr<Backend>(std::move(*backend));
}

}  // namespace dpustor::fs
