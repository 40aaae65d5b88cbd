#define FUSE_USE_VERSION 314
#include "libfuse_ram_fs.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/fuse/inode_table.h"

namespace dpustor::bench {
namespace {

constexpr uint64_t kChunk = 64 * 1024;
constexpr uint64_t kFirstCookie = 3;  // 1 and 2 follow "." and ".."
constexpr double kTimeout = 1.0;      // the memory backend's default entry/attr timeout

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Node;
using NodePtr = std::shared_ptr<Node>;

// Same layout and locking as the memory backend's node.
struct Node {
  using Key = const Node*;
  Key key() const { return this; }

  explicit Node(mode_t file_type) : type(file_type) {}
  bool is_dir() const { return S_ISDIR(type); }
  bool is_reg() const { return S_ISREG(type); }

  const mode_t type;
  mutable std::shared_mutex mu;
  struct stat st = {};
  std::map<uint64_t, std::unique_ptr<char[]>> chunks;

  struct Dirent {
    std::string name;
    NodePtr node;
  };
  std::map<uint64_t, Dirent> by_cookie;
  std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>> by_name;
  uint64_t next_cookie = kFirstCookie;
  Node* parent = nullptr;

  NodePtr Child(std::string_view name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : by_cookie.at(it->second).node;
  }
  void AddChild(std::string_view name, NodePtr node) {
    uint64_t cookie = next_cookie++;
    by_name.emplace(std::string(name), cookie);
    by_cookie.emplace(cookie, Dirent{std::string(name), std::move(node)});
  }
  void RemoveChild(std::string_view name) {
    auto it = by_name.find(name);
    by_cookie.erase(it->second);
    by_name.erase(it);
  }
  void TouchChange() { st.st_ctim = Now(); }
  void TouchModify() { st.st_mtim = st.st_ctim = Now(); }
  void UpdateBlocks() { st.st_blocks = static_cast<blkcnt_t>(chunks.size() * (kChunk / 512)); }

  char* ChunkForWrite(uint64_t index) {
    auto& slot = chunks[index];
    if (!slot) slot.reset(new char[kChunk]());
    return slot.get();
  }
  void WriteBytes(uint64_t off, const char* src, size_t len) {
    while (len > 0) {
      uint64_t in = off % kChunk;
      size_t n = std::min<uint64_t>(len, kChunk - in);
      std::memcpy(ChunkForWrite(off / kChunk) + in, src, n);
      off += n, src += n, len -= n;
    }
  }
  void ReadBytes(uint64_t off, char* dst, size_t len) const {
    while (len > 0) {
      uint64_t in = off % kChunk;
      size_t n = std::min<uint64_t>(len, kChunk - in);
      auto it = chunks.find(off / kChunk);
      if (it == chunks.end()) {
        std::memset(dst, 0, n);
      } else {
        std::memcpy(dst, it->second.get() + in, n);
      }
      off += n, dst += n, len -= n;
    }
  }
};

struct OpenFile {
  NodePtr node;
};

class RamFs {
 public:
  RamFs() {
    auto root = std::make_shared<Node>(S_IFDIR);
    timespec now = Now();
    root->st.st_ino = FUSE_ROOT_ID;
    root->st.st_mode = S_IFDIR | 0755;
    root->st.st_nlink = 2;
    root->st.st_uid = getuid();
    root->st.st_gid = getgid();
    root->st.st_blksize = kChunk;
    root->st.st_atim = root->st.st_mtim = root->st.st_ctim = now;
    root->parent = root.get();
    table_ = std::make_unique<fs::InodeTable<Node>>(std::move(root));
  }

  NodePtr Find(uint64_t nodeid) const { return table_->Find(nodeid); }
  NodePtr FindDir(fuse_req_t req, uint64_t nodeid) const {
    NodePtr node = Find(nodeid);
    if (!node) {
      fuse_reply_err(req, ESTALE);
    } else if (!node->is_dir()) {
      fuse_reply_err(req, ENOTDIR);
      node.reset();
    }
    return node;
  }
  static NodePtr FileOf(const fuse_file_info* fi) {
    if (fi == nullptr || fi->fh == 0) return nullptr;
    return reinterpret_cast<OpenFile*>(fi->fh)->node;
  }

  fuse_entry_param AcquireEntry(const NodePtr& node) {
    fuse_entry_param e{};
    auto ref = table_->Acquire(node.get(), [&] { return node; });
    e.ino = ref.nodeid;
    e.generation = ref.generation;
    {
      std::shared_lock lock(node->mu);
      e.attr = node->st;
    }
    e.attr_timeout = e.entry_timeout = kTimeout;
    return e;
  }

  NodePtr NewNode(mode_t mode, const fuse_ctx* caller, const Node& parent) {
    auto node = std::make_shared<Node>(mode & S_IFMT);
    timespec now = Now();
    struct stat& st = node->st;
    st.st_ino = next_ino_.fetch_add(1, std::memory_order_relaxed);
    st.st_mode = mode;
    st.st_nlink = S_ISDIR(mode) ? 2 : 1;
    st.st_uid = caller->uid;
    st.st_gid = caller->gid;
    {
      std::shared_lock lock(parent.mu);
      if (parent.st.st_mode & S_ISGID) st.st_gid = parent.st.st_gid;
    }
    st.st_blksize = kChunk;
    st.st_atim = st.st_mtim = st.st_ctim = now;
    return node;
  }

  int Insert(Node& parent, std::string_view name, const NodePtr& child) {
    if (name.size() > 255) return ENAMETOOLONG;
    std::unique_lock tree(tree_mu_);
    if (parent.parent == nullptr) return ENOENT;
    if (parent.by_name.contains(name)) return EEXIST;
    parent.AddChild(name, child);
    if (child->is_dir()) child->parent = &parent;
    std::unique_lock lock(parent.mu);
    if (child->is_dir()) ++parent.st.st_nlink;
    parent.st.st_size = static_cast<off_t>(parent.by_name.size());
    parent.TouchModify();
    return 0;
  }

  void Lookup(fuse_req_t req, fuse_ino_t parent_id, const char* name) {
    NodePtr parent = FindDir(req, parent_id);
    if (!parent) return;
    NodePtr child;
    {
      std::shared_lock tree(tree_mu_);
      child = parent->Child(name);
    }
    if (!child) return (void)fuse_reply_err(req, ENOENT);
    fuse_entry_param e = AcquireEntry(child);
    fuse_reply_entry(req, &e);
  }

  void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    table_->Forget(ino, nlookup);
    fuse_reply_none(req);
  }

  void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    NodePtr node = fi && fi->fh ? FileOf(fi) : Find(ino);
    if (!node) return (void)fuse_reply_err(req, ESTALE);
    struct stat st;
    {
      std::shared_lock lock(node->mu);
      st = node->st;
    }
    fuse_reply_attr(req, &st, kTimeout);
  }

  void Mkdir(fuse_req_t req, fuse_ino_t parent_id, const char* name, mode_t mode) {
    NodePtr parent = FindDir(req, parent_id);
    if (!parent) return;
    NodePtr node = NewNode(S_IFDIR | (mode & 07777), fuse_req_ctx(req), *parent);
    if (int err = Insert(*parent, name, node)) return (void)fuse_reply_err(req, err);
    fuse_entry_param e = AcquireEntry(node);
    fuse_reply_entry(req, &e);
  }

  void Unlink(fuse_req_t req, fuse_ino_t parent_id, const char* name) {
    NodePtr parent = FindDir(req, parent_id);
    if (!parent) return;
    NodePtr victim;
    {
      std::unique_lock tree(tree_mu_);
      victim = parent->Child(name);
      if (!victim) return (void)fuse_reply_err(req, ENOENT);
      if (victim->is_dir()) return (void)fuse_reply_err(req, EISDIR);
      parent->RemoveChild(name);
      {
        std::unique_lock lock(victim->mu);
        --victim->st.st_nlink;
        victim->TouchChange();
      }
      std::unique_lock lock(parent->mu);
      parent->st.st_size = static_cast<off_t>(parent->by_name.size());
      parent->TouchModify();
    }
    fuse_reply_err(req, 0);
  }

  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    NodePtr node = Find(ino);
    if (!node) return (void)fuse_reply_err(req, ESTALE);
    if (node->is_dir()) return (void)fuse_reply_err(req, EISDIR);
    if (!node->is_reg()) return (void)fuse_reply_err(req, ENXIO);
    fi->fh = reinterpret_cast<uint64_t>(new OpenFile{std::move(node)});
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
  }

  void Create(fuse_req_t req, fuse_ino_t parent_id, const char* name, mode_t mode,
              fuse_file_info* fi) {
    NodePtr parent = FindDir(req, parent_id);
    if (!parent) return;
    NodePtr node = NewNode(S_IFREG | (mode & 07777), fuse_req_ctx(req), *parent);
    int err = Insert(*parent, name, node);
    if (err == EEXIST && !(fi->flags & O_EXCL)) {
      std::shared_lock tree(tree_mu_);
      node = parent->Child(name);
      err = node ? 0 : ENOENT;
    }
    if (err) return (void)fuse_reply_err(req, err);
    if (!node->is_reg()) return (void)fuse_reply_err(req, node->is_dir() ? EISDIR : ENXIO);
    fuse_entry_param e = AcquireEntry(node);
    fi->fh = reinterpret_cast<uint64_t>(new OpenFile{std::move(node)});
    fi->keep_cache = 1;
    fuse_reply_create(req, &e, fi);
  }

  void Read(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi) {
    NodePtr node = FileOf(fi);
    if (!node) return (void)fuse_reply_err(req, EBADF);
    // A per-thread reply buffer: the read copies out of the chunks once, under the lock.
    thread_local std::vector<char> buf;
    std::shared_lock lock(node->mu);
    uint64_t file_size = static_cast<uint64_t>(node->st.st_size);
    uint64_t at = static_cast<uint64_t>(off);
    size_t n = at >= file_size ? 0 : static_cast<size_t>(std::min<uint64_t>(size, file_size - at));
    if (buf.size() < n) buf.resize(n);
    node->ReadBytes(at, buf.data(), n);
    lock.unlock();
    fuse_reply_buf(req, buf.data(), n);
  }

  void Write(fuse_req_t req, const char* data, size_t size, off_t off, fuse_file_info* fi) {
    NodePtr node = FileOf(fi);
    if (!node) return (void)fuse_reply_err(req, EBADF);
    {
      std::unique_lock lock(node->mu);
      uint64_t pos = static_cast<uint64_t>(off);
      node->WriteBytes(pos, data, size);
      pos += size;
      if (pos > static_cast<uint64_t>(node->st.st_size)) node->st.st_size = static_cast<off_t>(pos);
      node->UpdateBlocks();
      if (size > 0) node->TouchModify();
    }
    fuse_reply_write(req, size);
  }

  void Release(fuse_req_t req, fuse_file_info* fi) {
    delete reinterpret_cast<OpenFile*>(fi->fh);
    fuse_reply_err(req, 0);
  }

  void Opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (!FindDir(req, ino)) return;
    fi->fh = 0;
    fuse_reply_open(req, fi);
  }

  void Readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off_in, bool plus) {
    NodePtr dir = FindDir(req, ino);
    if (!dir) return;
    uint64_t off = static_cast<uint64_t>(off_in);
    struct Item {
      std::string name;
      NodePtr node;
      ino_t ino;
      mode_t type;
      uint64_t next;
    };
    size_t max_items = size / 24 + 1;
    std::vector<Item> items;
    {
      std::shared_lock tree(tree_mu_);
      if (off < 1) items.push_back({".", nullptr, dir->st.st_ino, S_IFDIR, 1});
      if (off < 2) {
        const Node* up = dir->parent ? dir->parent : dir.get();
        items.push_back({"..", nullptr, up->st.st_ino, S_IFDIR, 2});
      }
      for (auto it = dir->by_cookie.upper_bound(std::max<uint64_t>(off, 2));
           it != dir->by_cookie.end() && items.size() < max_items; ++it) {
        const NodePtr& child = it->second.node;
        items.push_back({it->second.name, child, child->st.st_ino, child->type, it->first});
      }
    }
    // The reply is assembled in a per-thread buffer (the engine writes into the
    // transport's reply buffer instead).
    thread_local std::vector<char> buf;
    if (buf.size() < size) buf.resize(size);
    size_t used = 0;
    for (const Item& item : items) {
      size_t room = size - used;
      if (!plus) {
        struct stat st = {};
        st.st_ino = item.ino;
        st.st_mode = item.type;
        size_t need = fuse_add_direntry(req, buf.data() + used, room, item.name.c_str(), &st,
                                        static_cast<off_t>(item.next));
        if (need > room) break;
        used += need;
        continue;
      }
      fuse_entry_param e{};
      if (item.node) {
        e = AcquireEntry(item.node);
      } else {
        e.attr.st_ino = item.ino;
        e.attr.st_mode = item.type;
      }
      size_t need = fuse_add_direntry_plus(req, buf.data() + used, room, item.name.c_str(), &e,
                                           static_cast<off_t>(item.next));
      if (need > room) {
        if (e.ino != 0) table_->Forget(e.ino, 1);
        break;
      }
      used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
  }

 private:
  mutable std::shared_mutex tree_mu_;
  std::unique_ptr<fs::InodeTable<Node>> table_;
  std::atomic<uint64_t> next_ino_{2};
};

RamFs* Fs(fuse_req_t req) {
  return static_cast<RamFs*>(fuse_req_userdata(req));
}

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops{};
  ops.lookup = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Fs(req)->Lookup(req, parent, name);
  };
  ops.forget = [](fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    Fs(req)->Forget(req, ino, nlookup);
  };
  ops.getattr = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs(req)->Getattr(req, ino, fi);
  };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    Fs(req)->Mkdir(req, parent, name, mode);
  };
  ops.unlink = [](fuse_req_t req, fuse_ino_t parent, const char* name) {
    Fs(req)->Unlink(req, parent, name);
  };
  ops.open = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs(req)->Open(req, ino, fi);
  };
  ops.create = [](fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                  fuse_file_info* fi) { Fs(req)->Create(req, parent, name, mode, fi); };
  ops.read = [](fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
    Fs(req)->Read(req, size, off, fi);
  };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
                 fuse_file_info* fi) { Fs(req)->Write(req, buf, size, off, fi); };
  ops.release = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { Fs(req)->Release(req, fi); };
  ops.opendir = [](fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    Fs(req)->Opendir(req, ino, fi);
  };
  ops.readdir = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Fs(req)->Readdir(req, ino, size, off, false);
  };
  ops.readdirplus = [](fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    Fs(req)->Readdir(req, ino, size, off, true);
  };
  ops.releasedir = [](fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); };
  return ops;
}

// What the custom I/O does with replies: counts their bytes, copies them while capturing.
struct ReplySink {
  bool capture = false;
  size_t last_bytes = 0;
  std::vector<char> reply = std::vector<char>(2 << 20);
};

// The session's userdata is the RamFs (what the ops see); the custom I/O reaches the sink
// through this pointer, set for the one session of the process at a time.
ReplySink* g_sink = nullptr;

ssize_t DiscardWritev(int, iovec* iov, int count, void*) {
  ReplySink* sink = g_sink;
  size_t n = 0;
  for (int i = 0; i < count; ++i) {
    if (sink->capture && n < sink->reply.size()) {
      size_t part = std::min(sink->reply.size() - n, iov[i].iov_len);
      std::memcpy(sink->reply.data() + n, iov[i].iov_base, part);
    }
    n += iov[i].iov_len;
  }
  sink->last_bytes = n;
  return static_cast<ssize_t>(n);
}

ssize_t NoRead(int, void*, size_t, void*) {
  errno = ENOSYS;
  return -1;
}

}  // namespace

struct LibfuseRamFs::Rep {
  RamFs fs;
  ReplySink sink;
  fuse_session* se = nullptr;
};

LibfuseRamFs::LibfuseRamFs() : rep_(std::make_unique<Rep>()) {
  static const fuse_lowlevel_ops ops = MakeOps();
  char arg0[] = "libfuse-ram-fs";
  char* argv[] = {arg0, nullptr};
  fuse_args args = FUSE_ARGS_INIT(1, argv);
  rep_->se = fuse_session_new(&args, &ops, sizeof(ops), &rep_->fs);
  if (rep_->se == nullptr) throw std::runtime_error("fuse_session_new failed");
  static const fuse_custom_io io = {DiscardWritev, NoRead, nullptr, nullptr};
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);  // closed by fuse_session_destroy
  if (fd < 0 || fuse_session_custom_io(rep_->se, &io, fd) != 0) {
    throw std::runtime_error("fuse_session_custom_io failed");
  }
  g_sink = &rep_->sink;
}

LibfuseRamFs::~LibfuseRamFs() {
  fuse_session_destroy(rep_->se);
  if (g_sink == &rep_->sink) g_sink = nullptr;
}

size_t LibfuseRamFs::Process(void* request, size_t len) {
  rep_->sink.last_bytes = 0;
  fuse_buf buf{};
  buf.size = len;
  buf.mem = request;
  buf.fd = -1;
  fuse_session_process_buf(rep_->se, &buf);
  return rep_->sink.last_bytes;
}

void LibfuseRamFs::set_capture(bool on) {
  rep_->sink.capture = on;
}

const char* LibfuseRamFs::reply() const {
  return rep_->sink.reply.data();
}

const char* LibfuseRamFs::Version() {
  return fuse_pkgversion();
}

}  // namespace dpustor::bench
