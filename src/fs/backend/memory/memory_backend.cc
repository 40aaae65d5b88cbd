// The memory backend (see memory_backend.h).
#include "fs/backend/memory/memory_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/sysinfo.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/json_rpc.h"

namespace dpustor::fs {
namespace {

constexpr uint64_t kChunk = 64 * 1024;
constexpr uint64_t kMaxFileSize = uint64_t{1} << 50;  // 1 PiB: keeps offsets far from overflow
constexpr size_t kNameMax = 255;
constexpr size_t kXattrNameMax = 255;
constexpr size_t kXattrValueMax = 64 * 1024;
constexpr uint64_t kFirstCookie = 3;  // 1 and 2 follow "." and ".."

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

timespec Now() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts;
}

bool ValidXattrNamespace(std::string_view name) {
  return name.starts_with("user.") || name.starts_with("trusted.") || name.starts_with("security.");
}

}  // namespace

struct MemoryBackend::Usage {
  std::atomic<int64_t> nodes{0};
  std::atomic<int64_t> chunks{0};
};

struct MemoryBackend::Node {
  using Key = const Node*;
  Key key() const { return this; }

  Node(std::shared_ptr<Usage> u, mode_t file_type) : type(file_type), usage(std::move(u)) {
    usage->nodes.fetch_add(1, std::memory_order_relaxed);
  }
  ~Node() {
    usage->nodes.fetch_sub(1, std::memory_order_relaxed);
    usage->chunks.fetch_sub(static_cast<int64_t>(chunks.size()), std::memory_order_relaxed);
  }

  bool is_dir() const { return S_ISDIR(type); }
  bool is_reg() const { return S_ISREG(type); }

  const mode_t type;  // S_IFMT bits, fixed at creation
  const std::shared_ptr<Usage> usage;

  // Guards st, chunks, xattrs. st.st_nlink is also only changed with tree_mu_ held.
  mutable std::shared_mutex mu;
  struct stat st = {};
  std::map<uint64_t, std::unique_ptr<char[]>> chunks;  // chunk index -> kChunk bytes
  std::map<std::string, std::string, std::less<>> xattrs;
  std::string link_target;  // symlinks; fixed at creation

  // Directories, guarded by the backend's tree_mu_.
  struct Dirent {
    std::string name;
    NodePtr node;
  };
  std::map<uint64_t, Dirent> by_cookie;
  std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>> by_name;
  uint64_t next_cookie = kFirstCookie;
  Node* parent = nullptr;  // null once removed; the root is its own parent

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
  void ReplaceChild(std::string_view name, NodePtr node) {
    by_cookie.at(by_name.find(name)->second).node = std::move(node);
  }

  // Sizes and times; the caller holds `mu` exclusively.
  void TouchChange() { st.st_ctim = Now(); }
  void TouchModify() { st.st_mtim = st.st_ctim = Now(); }
  void UpdateBlocks() { st.st_blocks = static_cast<blkcnt_t>(chunks.size() * (kChunk / 512)); }

  char* ChunkForWrite(uint64_t index) {
    auto& slot = chunks[index];
    if (!slot) {
      slot.reset(new char[kChunk]());
      usage->chunks.fetch_add(1, std::memory_order_relaxed);
    }
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
  // Zeroes [off, off+len): whole chunks are dropped, partial ones cleared.
  void ZeroRange(uint64_t off, uint64_t len) {
    uint64_t end = off + len;
    while (off < end) {
      uint64_t index = off / kChunk, in = off % kChunk;
      uint64_t n = std::min(end - off, kChunk - in);
      auto it = chunks.find(index);
      if (it != chunks.end()) {
        if (n == kChunk) {
          chunks.erase(it);
          usage->chunks.fetch_sub(1, std::memory_order_relaxed);
        } else {
          std::memset(it->second.get() + in, 0, n);
        }
      }
      off += n;
    }
  }
  // Invariant kept here: allocated bytes past st_size are zero, so growing needs no work.
  void Truncate(uint64_t size) {
    uint64_t old = static_cast<uint64_t>(st.st_size);
    if (size < old) {
      uint64_t first_dropped = (size + kChunk - 1) / kChunk;
      for (auto it = chunks.lower_bound(first_dropped); it != chunks.end();) {
        it = chunks.erase(it);
        usage->chunks.fetch_sub(1, std::memory_order_relaxed);
      }
      if (size % kChunk != 0) ZeroRange(size, kChunk - size % kChunk);
    }
    st.st_size = static_cast<off_t>(size);
    UpdateBlocks();
  }
};

struct MemoryBackend::OpenFile {
  NodePtr node;
};

MemoryBackend::MemoryBackend(MemoryOptions options)
    : options_(options), usage_(std::make_shared<Usage>()) {
  auto root = std::make_shared<Node>(usage_, S_IFDIR);
  timespec now = Now();
  root->st.st_ino = FUSE_ROOT_ID;
  root->st.st_mode = S_IFDIR | 0755;
  root->st.st_nlink = 2;
  root->st.st_uid = getuid();
  root->st.st_gid = getgid();
  root->st.st_blksize = kChunk;
  root->st.st_atim = root->st.st_mtim = root->st.st_ctim = now;
  root->parent = root.get();
  table_ = std::make_unique<Table>(std::move(root));
}

MemoryBackend::~MemoryBackend() = default;

uint64_t MemoryBackend::NewOpenFile(NodePtr node) {
  return open_files_.Add(std::make_shared<OpenFile>(OpenFile{std::move(node)}));
}

Capabilities MemoryBackend::Init() {
  Capabilities caps;
  caps.posix_locks = false;
  caps.flock_locks = false;
  caps.writeback_cache = true;
  caps.readdirplus = true;
  caps.parallel_dirops = true;
  caps.max_write = 1 << 20;
  return caps;
}

void MemoryBackend::Destroy() {
  open_files_.Clear();
  table_->Clear();
}

size_t MemoryBackend::known_nodes() const {
  return table_->size();
}

MemoryBackend::NodePtr MemoryBackend::Find(uint64_t nodeid) const {
  return table_->Find(nodeid);
}

MemoryBackend::NodePtr MemoryBackend::FindDir(Request* r, uint64_t nodeid) const {
  NodePtr node = Find(nodeid);
  if (!node) {
    r->ReplyError(ESTALE);
  } else if (!node->is_dir()) {
    r->ReplyError(ENOTDIR);
    node.reset();
  }
  return node;
}

MemoryBackend::NodePtr MemoryBackend::FileOf(const FileInfo& fi) const {
  std::shared_ptr<OpenFile> f = open_files_.Get(fi.fh);  // never trust the number itself
  return f ? f->node : nullptr;
}

Entry MemoryBackend::AcquireEntry(const NodePtr& node) {
  Entry e;
  auto ref = table_->Acquire(node.get(), [&] { return node; });
  e.nodeid = ref.nodeid;
  e.generation = ref.generation;
  {
    std::shared_lock lock(node->mu);
    e.attr = node->st;
  }
  e.attr_timeout = e.entry_timeout = options_.timeout;
  return e;
}

bool MemoryBackend::IsAncestorOrSelf(const Node* ancestor, const Node* node) const {
  for (const Node* n = node; n != nullptr; n = n->parent) {
    if (n == ancestor) return true;
    if (n->parent == n) break;  // the root
  }
  return false;
}

MemoryBackend::NodePtr MemoryBackend::NewNode(mode_t mode, const Caller& caller,
                                              const Node& parent) {
  auto node = std::make_shared<Node>(usage_, mode & S_IFMT);
  timespec now = Now();
  struct stat& st = node->st;
  st.st_ino = next_ino_.fetch_add(1, std::memory_order_relaxed);
  st.st_mode = mode;
  st.st_nlink = S_ISDIR(mode) ? 2 : 1;
  st.st_uid = caller.uid;
  st.st_gid = caller.gid;
  {
    std::shared_lock lock(parent.mu);
    // A setgid directory hands its group down, and its setgid bit to subdirectories.
    if (parent.st.st_mode & S_ISGID) {
      st.st_gid = parent.st.st_gid;
      if (S_ISDIR(mode)) st.st_mode |= S_ISGID;
    }
  }
  // As inode_init_owner: a file may not be setgid for a group its creator is not in.
  if (!S_ISDIR(mode) && (st.st_mode & S_ISGID) && st.st_gid != caller.gid && caller.uid != 0) {
    st.st_mode &= ~S_ISGID;
  }
  st.st_blksize = kChunk;
  st.st_atim = st.st_mtim = st.st_ctim = now;
  return node;
}

int MemoryBackend::Insert(Node& parent, std::string_view name, const NodePtr& child) {
  if (name.size() > kNameMax) return ENAMETOOLONG;
  std::unique_lock tree(tree_mu_);
  if (parent.parent == nullptr) return ENOENT;  // removed directory
  if (parent.by_name.contains(name)) return EEXIST;
  parent.AddChild(name, child);
  if (child->is_dir()) child->parent = &parent;
  std::unique_lock lock(parent.mu);
  if (child->is_dir()) ++parent.st.st_nlink;
  parent.st.st_size = static_cast<off_t>(parent.by_name.size());
  parent.TouchModify();
  return 0;
}

void MemoryBackend::ReplyNewEntry(Request* r, uint64_t parent_id, std::string_view name,
                                  NodePtr child) {
  NodePtr parent = FindDir(r, parent_id);
  if (!parent) return;
  if (int err = Insert(*parent, name, child)) return r->ReplyError(err);
  r->ReplyEntry(AcquireEntry(child));
}

void MemoryBackend::Lookup(Request* r, uint64_t parent_id, std::string_view name) {
  NodePtr parent = FindDir(r, parent_id);
  if (!parent) return;
  if (name.size() > kNameMax) return r->ReplyError(ENAMETOOLONG);
  NodePtr child;
  {
    std::shared_lock tree(tree_mu_);
    child = parent->Child(name);
  }
  if (!child) return r->ReplyError(ENOENT);
  r->ReplyEntry(AcquireEntry(child));
}

void MemoryBackend::Forget(uint64_t ino, uint64_t nlookup) {
  table_->Forget(ino, nlookup);
}

void MemoryBackend::Getattr(Request* r, uint64_t ino, const FileInfo* fi) {
  NodePtr node = fi ? FileOf(*fi) : Find(ino);
  if (!node) return r->ReplyError(fi ? EBADF : ESTALE);
  struct stat st;
  {
    std::shared_lock lock(node->mu);
    st = node->st;
  }
  r->ReplyAttr(st, options_.timeout);
}

void MemoryBackend::Setattr(Request* r, uint64_t ino, const SetattrArgs& a) {
  NodePtr node = a.fi ? FileOf(*a.fi) : Find(ino);
  if (!node) return r->ReplyError(a.fi ? EBADF : ESTALE);
  if (a.valid & FATTR_SIZE) {
    if (node->is_dir()) return r->ReplyError(EISDIR);
    if (!node->is_reg()) return r->ReplyError(EINVAL);
    if (a.size > kMaxFileSize) return r->ReplyError(EFBIG);
  }
  struct stat st;
  {
    std::unique_lock lock(node->mu);
    timespec now = Now();
    if (a.valid & FATTR_MODE) {
      node->st.st_mode = (node->st.st_mode & S_IFMT) | (a.mode & 07777);
    }
    if (a.valid & FATTR_UID) node->st.st_uid = a.uid;
    if (a.valid & FATTR_GID) node->st.st_gid = a.gid;
    if (a.valid & FATTR_SIZE) {
      node->Truncate(a.size);
      node->st.st_mtim = now;
    }
    if (a.valid & FATTR_ATIME_NOW) {
      node->st.st_atim = now;
    } else if (a.valid & FATTR_ATIME) {
      node->st.st_atim = a.atime;
    }
    if (a.valid & FATTR_MTIME_NOW) {
      node->st.st_mtim = now;
    } else if (a.valid & FATTR_MTIME) {
      node->st.st_mtim = a.mtime;
    }
    // Any change moves ctime; an explicit FATTR_CTIME (from the kernel) is taken as given.
    node->st.st_ctim = (a.valid & FATTR_CTIME) ? a.ctime : now;
    st = node->st;
  }
  r->ReplyAttr(st, options_.timeout);
}

void MemoryBackend::Readlink(Request* r, uint64_t ino) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (!S_ISLNK(node->type)) return r->ReplyError(EINVAL);
  r->ReplyReadlink(node->link_target);
}

void MemoryBackend::Mknod(Request* r, uint64_t parent, std::string_view name, mode_t mode,
                          dev_t rdev) {
  switch (mode & S_IFMT) {
    case S_IFREG:
    case S_IFCHR:
    case S_IFBLK:
    case S_IFIFO:
    case S_IFSOCK:
      break;
    case 0:
      mode |= S_IFREG;  // as mknod(2): a zero type means a regular file
      break;
    default:
      return r->ReplyError(EINVAL);
  }
  NodePtr pnode = Find(parent);
  if (!pnode) return r->ReplyError(ESTALE);
  NodePtr node = NewNode(mode, r->caller(), *pnode);
  if (S_ISCHR(mode) || S_ISBLK(mode)) node->st.st_rdev = rdev;
  ReplyNewEntry(r, parent, name, std::move(node));
}

void MemoryBackend::Mkdir(Request* r, uint64_t parent, std::string_view name, mode_t mode) {
  NodePtr pnode = Find(parent);
  if (!pnode) return r->ReplyError(ESTALE);
  ReplyNewEntry(r, parent, name, NewNode(S_IFDIR | (mode & 07777), r->caller(), *pnode));
}

void MemoryBackend::Symlink(Request* r, std::string_view target, uint64_t parent,
                            std::string_view name) {
  if (target.empty()) return r->ReplyError(ENOENT);
  if (target.size() >= PATH_MAX) return r->ReplyError(ENAMETOOLONG);
  NodePtr pnode = Find(parent);
  if (!pnode) return r->ReplyError(ESTALE);
  NodePtr node = NewNode(S_IFLNK | 0777, r->caller(), *pnode);
  node->link_target = std::string(target);
  node->st.st_size = static_cast<off_t>(target.size());
  ReplyNewEntry(r, parent, name, std::move(node));
}

void MemoryBackend::Link(Request* r, uint64_t ino, uint64_t newparent, std::string_view newname) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (node->is_dir()) return r->ReplyError(EPERM);
  NodePtr parent = FindDir(r, newparent);
  if (!parent) return;
  if (newname.size() > kNameMax) return r->ReplyError(ENAMETOOLONG);
  {
    std::unique_lock tree(tree_mu_);
    if (parent->parent == nullptr) return r->ReplyError(ENOENT);
    if (parent->by_name.contains(newname)) return r->ReplyError(EEXIST);
    {
      std::unique_lock lock(node->mu);
      if (node->st.st_nlink == 0) return r->ReplyError(ENOENT);
      ++node->st.st_nlink;
      node->TouchChange();
    }
    parent->AddChild(newname, node);
    std::unique_lock lock(parent->mu);
    parent->st.st_size = static_cast<off_t>(parent->by_name.size());
    parent->TouchModify();
  }
  r->ReplyEntry(AcquireEntry(node));
}

void MemoryBackend::Unlink(Request* r, uint64_t parent_id, std::string_view name) {
  NodePtr parent = FindDir(r, parent_id);
  if (!parent) return;
  NodePtr victim;  // freed after the locks are released
  {
    std::unique_lock tree(tree_mu_);
    victim = parent->Child(name);
    if (!victim) return r->ReplyError(ENOENT);
    if (victim->is_dir()) return r->ReplyError(EISDIR);
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
  r->ReplyOk();
}

void MemoryBackend::Rmdir(Request* r, uint64_t parent_id, std::string_view name) {
  NodePtr parent = FindDir(r, parent_id);
  if (!parent) return;
  NodePtr victim;
  {
    std::unique_lock tree(tree_mu_);
    victim = parent->Child(name);
    if (!victim) return r->ReplyError(ENOENT);
    if (!victim->is_dir()) return r->ReplyError(ENOTDIR);
    if (!victim->by_name.empty()) return r->ReplyError(ENOTEMPTY);
    parent->RemoveChild(name);
    victim->parent = nullptr;
    {
      std::unique_lock lock(victim->mu);
      victim->st.st_nlink = 0;
      victim->TouchChange();
    }
    std::unique_lock lock(parent->mu);
    --parent->st.st_nlink;
    parent->st.st_size = static_cast<off_t>(parent->by_name.size());
    parent->TouchModify();
  }
  r->ReplyOk();
}

void MemoryBackend::Rename(Request* r, uint64_t parent_id, std::string_view name,
                           uint64_t newparent_id, std::string_view newname, uint32_t flags) {
  if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) != 0 ||
      (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE)) {
    return r->ReplyError(EINVAL);
  }
  NodePtr oldp = FindDir(r, parent_id);
  if (!oldp) return;
  NodePtr newp = FindDir(r, newparent_id);
  if (!newp) return;
  if (newname.size() > kNameMax) return r->ReplyError(ENAMETOOLONG);

  NodePtr replaced;  // freed after the locks are released
  {
    std::unique_lock tree(tree_mu_);
    NodePtr src = oldp->Child(name);
    if (!src) return r->ReplyError(ENOENT);
    NodePtr dst = newp->Child(newname);
    if (newp->parent == nullptr) return r->ReplyError(ENOENT);

    auto touch = [](Node& n, bool modified) {
      std::unique_lock lock(n.mu);
      modified ? n.TouchModify() : n.TouchChange();
    };
    auto add_links = [](Node& n, int delta) {
      std::unique_lock lock(n.mu);
      n.st.st_nlink = static_cast<nlink_t>(static_cast<int64_t>(n.st.st_nlink) + delta);
    };

    if (flags & RENAME_EXCHANGE) {
      if (!dst) return r->ReplyError(ENOENT);
      if (src != dst) {
        if (src->is_dir() && IsAncestorOrSelf(src.get(), newp.get())) return r->ReplyError(EINVAL);
        if (dst->is_dir() && IsAncestorOrSelf(dst.get(), oldp.get())) return r->ReplyError(EINVAL);
        oldp->ReplaceChild(name, dst);
        newp->ReplaceChild(newname, src);
        if (oldp != newp) {
          if (src->is_dir()) src->parent = newp.get();
          if (dst->is_dir()) dst->parent = oldp.get();
          int moved = int{src->is_dir()} - int{dst->is_dir()};
          if (moved != 0) add_links(*oldp, -moved), add_links(*newp, moved);
        }
        touch(*src, false), touch(*dst, false);
        touch(*oldp, true), touch(*newp, true);
      }
    } else {
      if (dst && (flags & RENAME_NOREPLACE)) return r->ReplyError(EEXIST);
      if (dst == src) return r->ReplyOk();  // two links to one inode: POSIX says do nothing
      if (src->is_dir()) {
        if (IsAncestorOrSelf(src.get(), newp.get())) return r->ReplyError(EINVAL);
        if (dst && !dst->is_dir()) return r->ReplyError(ENOTDIR);
        if (dst && !dst->by_name.empty()) return r->ReplyError(ENOTEMPTY);
      } else if (dst && dst->is_dir()) {
        return r->ReplyError(EISDIR);
      }
      if (dst) {
        newp->RemoveChild(newname);
        if (dst->is_dir()) {
          dst->parent = nullptr;
          add_links(*dst, -static_cast<int>(dst->st.st_nlink));
          add_links(*newp, -1);
        } else {
          add_links(*dst, -1);
        }
        touch(*dst, false);
        replaced = std::move(dst);
      }
      oldp->RemoveChild(name);
      newp->AddChild(newname, src);
      if (src->is_dir() && oldp != newp) {
        src->parent = newp.get();
        add_links(*oldp, -1), add_links(*newp, 1);
      }
      touch(*src, false);
      for (Node* p : {oldp.get(), newp.get()}) {
        std::unique_lock lock(p->mu);
        p->st.st_size = static_cast<off_t>(p->by_name.size());
        p->TouchModify();
      }
    }
  }
  r->ReplyOk();
}

void MemoryBackend::Open(Request* r, uint64_t ino, const FileInfo& fi) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (node->is_dir()) return r->ReplyError(EISDIR);
  if (S_ISLNK(node->type)) return r->ReplyError(ELOOP);
  if (!node->is_reg()) return r->ReplyError(ENXIO);
  if ((fi.flags & O_TRUNC) && (fi.flags & O_ACCMODE) != O_RDONLY) {
    std::unique_lock lock(node->mu);
    if (node->st.st_size != 0) {
      node->Truncate(0);
      node->TouchModify();
    }
  }
  OpenInfo oi;
  oi.fh = NewOpenFile(std::move(node));
  oi.keep_cache = true;  // only the kernel writes here: its page cache stays valid
  r->ReplyOpen(oi);
}

void MemoryBackend::Create(Request* r, uint64_t parent_id, std::string_view name, mode_t mode,
                           const FileInfo& fi) {
  NodePtr parent = FindDir(r, parent_id);
  if (!parent) return;
  NodePtr node = NewNode(S_IFREG | (mode & 07777), r->caller(), *parent);
  int err = Insert(*parent, name, node);
  if (err == EEXIST && !(fi.flags & O_EXCL)) {
    // Lost a race with another creator: open what is there, as open(O_CREAT) would.
    std::shared_lock tree(tree_mu_);
    node = parent->Child(name);
    err = node ? 0 : ENOENT;
  }
  if (err) return r->ReplyError(err);
  if (node->is_dir()) return r->ReplyError(EISDIR);
  if (!node->is_reg()) return r->ReplyError(S_ISLNK(node->type) ? ELOOP : ENXIO);
  Entry e = AcquireEntry(node);
  OpenInfo oi;
  oi.fh = NewOpenFile(std::move(node));
  oi.keep_cache = true;
  r->ReplyCreate(e, oi);
}

void MemoryBackend::Read(Request* r, uint64_t, size_t size, uint64_t off, const FileInfo& fi) {
  NodePtr node = FileOf(fi);
  if (!node) return r->ReplyError(EBADF);
  std::shared_lock lock(node->mu);
  uint64_t file_size = static_cast<uint64_t>(node->st.st_size);
  size_t n = off >= file_size ? 0 : static_cast<size_t>(std::min<uint64_t>(size, file_size - off));
  if (n == 0) {
    lock.unlock();
    return r->ReplyDataFilled(0);
  }
  size_t filled = 0;
  for (const iovec& iov : r->DataBuffers(n)) {
    size_t part = std::min(iov.iov_len, n - filled);
    node->ReadBytes(off + filled, static_cast<char*>(iov.iov_base), part);
    filled += part;
    if (filled == n) break;
  }
  lock.unlock();
  r->ReplyDataFilled(filled);
}

void MemoryBackend::Write(Request* r, uint64_t, std::span<const iovec> data, uint64_t off,
                          const FileInfo& fi) {
  NodePtr node = FileOf(fi);
  if (!node) return r->ReplyError(EBADF);
  size_t total = 0;
  for (const iovec& iov : data) total += iov.iov_len;
  if (off > kMaxFileSize || total > kMaxFileSize - off) return r->ReplyError(EFBIG);
  {
    std::unique_lock lock(node->mu);
    uint64_t pos = off;
    for (const iovec& iov : data) {
      node->WriteBytes(pos, static_cast<const char*>(iov.iov_base), iov.iov_len);
      pos += iov.iov_len;
    }
    if (pos > static_cast<uint64_t>(node->st.st_size)) node->st.st_size = static_cast<off_t>(pos);
    node->UpdateBlocks();
    if (total > 0) node->TouchModify();
  }
  r->ReplyWrite(static_cast<uint32_t>(total));
}

void MemoryBackend::Flush(Request* r, uint64_t, const FileInfo&) {
  r->ReplyOk();
}

void MemoryBackend::Release(Request* r, uint64_t, const FileInfo& fi) {
  if (!open_files_.Remove(fi.fh)) return r->ReplyError(EBADF);
  r->ReplyOk();
}

void MemoryBackend::Fsync(Request* r, uint64_t, bool, const FileInfo&) {
  r->ReplyOk();
}

void MemoryBackend::Opendir(Request* r, uint64_t ino, const FileInfo&) {
  if (!FindDir(r, ino)) return;
  r->ReplyOpen(OpenInfo{});
}

void MemoryBackend::Readdir(Request* r, uint64_t ino, size_t size, uint64_t off, bool plus,
                            const FileInfo&) {
  NodePtr dir = FindDir(r, ino);
  if (!dir) return;
  struct Item {
    std::string name;
    NodePtr node;  // null for "." and ".."
    ino_t ino;
    mode_t type;
    uint64_t next;
  };
  // Every entry needs at least 24 bytes of reply: collect no more than can fit, under the
  // lock, and fill the reply after releasing it.
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
  for (const Item& item : items) {
    if (!plus) {
      if (!r->AddDirEntry(item.name, item.ino, item.type >> 12, item.next)) break;
      continue;
    }
    Entry e;
    if (item.node) {
      e = AcquireEntry(item.node);
    } else {
      e.attr.st_ino = item.ino;
      e.attr.st_mode = item.type;
    }
    if (!r->AddDirEntryPlus(item.name, e, item.next)) {
      if (e.nodeid != 0) table_->Forget(e.nodeid, 1);
      break;
    }
  }
  r->ReplyDir();
}

void MemoryBackend::Fsyncdir(Request* r, uint64_t, bool, const FileInfo&) {
  r->ReplyOk();
}

void MemoryBackend::Statfs(Request* r, uint64_t) {
  struct sysinfo si = {};
  sysinfo(&si);
  constexpr uint64_t kBlock = 4096;
  uint64_t total = static_cast<uint64_t>(si.totalram) * si.mem_unit / kBlock;
  uint64_t used = static_cast<uint64_t>(usage_->chunks.load()) * (kChunk / kBlock);
  uint64_t files = uint64_t{1} << 32;
  uint64_t nodes = static_cast<uint64_t>(usage_->nodes.load());
  struct statvfs st = {};
  st.f_bsize = kBlock;
  st.f_frsize = kBlock;
  st.f_blocks = total;
  st.f_bfree = st.f_bavail = total > used ? total - used : 0;
  st.f_files = files;
  st.f_ffree = st.f_favail = files > nodes ? files - nodes : 0;
  st.f_namemax = kNameMax;
  r->ReplyStatfs(st);
}

void MemoryBackend::Setxattr(Request* r, uint64_t ino, std::string_view name,
                             std::span<const char> value, int flags) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (!ValidXattrNamespace(name)) return r->ReplyError(EOPNOTSUPP);
  if (name.size() > kXattrNameMax) return r->ReplyError(ERANGE);
  if (value.size() > kXattrValueMax) return r->ReplyError(E2BIG);
  if (name.starts_with("user.") && !node->is_reg() && !node->is_dir()) {
    return r->ReplyError(EPERM);  // as the kernel: user xattrs only on files and directories
  }
  {
    std::unique_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it != node->xattrs.end() && (flags & XATTR_CREATE)) return r->ReplyError(EEXIST);
    if (it == node->xattrs.end() && (flags & XATTR_REPLACE)) return r->ReplyError(ENODATA);
    if (it == node->xattrs.end()) it = node->xattrs.emplace(std::string(name), "").first;
    it->second.assign(value.data(), value.size());
    node->TouchChange();
  }
  r->ReplyOk();
}

void MemoryBackend::Getxattr(Request* r, uint64_t ino, std::string_view name, size_t size) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (!ValidXattrNamespace(name)) return r->ReplyError(EOPNOTSUPP);
  std::string value;
  {
    std::shared_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it == node->xattrs.end()) return r->ReplyError(ENODATA);
    value = it->second;
  }
  if (size == 0) return r->ReplyXattrSize(static_cast<uint32_t>(value.size()));
  if (size < value.size()) return r->ReplyError(ERANGE);
  r->ReplyData(value);
}

void MemoryBackend::Listxattr(Request* r, uint64_t ino, size_t size) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  std::string names;
  {
    std::shared_lock lock(node->mu);
    for (const auto& [name, value] : node->xattrs) {
      names.append(name);
      names.push_back('\0');
    }
  }
  if (size == 0) return r->ReplyXattrSize(static_cast<uint32_t>(names.size()));
  if (size < names.size()) return r->ReplyError(ERANGE);
  r->ReplyData(names);
}

void MemoryBackend::Removexattr(Request* r, uint64_t ino, std::string_view name) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  if (!ValidXattrNamespace(name)) return r->ReplyError(EOPNOTSUPP);
  if (name.starts_with("user.") && !node->is_reg() && !node->is_dir()) {
    return r->ReplyError(EPERM);
  }
  {
    std::unique_lock lock(node->mu);
    auto it = node->xattrs.find(name);
    if (it == node->xattrs.end()) return r->ReplyError(ENODATA);
    node->xattrs.erase(it);
    node->TouchChange();
  }
  r->ReplyOk();
}

void MemoryBackend::Access(Request* r, uint64_t ino, int mask) {
  NodePtr node = Find(ino);
  if (!node) return r->ReplyError(ESTALE);
  struct stat st;
  {
    std::shared_lock lock(node->mu);
    st = node->st;
  }
  const Caller& c = r->caller();
  mask &= R_OK | W_OK | X_OK;
  if (mask == 0) return r->ReplyOk();  // F_OK: it exists
  if (c.uid == 0) {
    // Root reads and writes anything; it executes only what someone may execute.
    bool exec_ok = S_ISDIR(st.st_mode) || (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH));
    return r->ReplyError((mask & X_OK) && !exec_ok ? EACCES : 0);
  }
  mode_t bits = st.st_mode;
  if (c.uid == st.st_uid) {
    bits >>= 6;
  } else if (c.gid == st.st_gid) {
    bits >>= 3;
  }
  r->ReplyError((static_cast<int>(bits & 7) & mask) == mask ? 0 : EACCES);
}

void MemoryBackend::Fallocate(Request* r, uint64_t, const FileInfo& fi, int mode, uint64_t off,
                              uint64_t len) {
  NodePtr node = FileOf(fi);
  if (!node) return r->ReplyError(EBADF);
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) return r->ReplyError(EOPNOTSUPP);
  if ((mode & FALLOC_FL_PUNCH_HOLE) && !(mode & FALLOC_FL_KEEP_SIZE)) {
    return r->ReplyError(EOPNOTSUPP);
  }
  if (len == 0) return r->ReplyError(EINVAL);
  if (off > kMaxFileSize || len > kMaxFileSize - off) return r->ReplyError(EFBIG);
  {
    std::unique_lock lock(node->mu);
    if (mode & FALLOC_FL_PUNCH_HOLE) {
      node->ZeroRange(off, len);
    } else {
      for (uint64_t i = off / kChunk; i <= (off + len - 1) / kChunk; ++i) node->ChunkForWrite(i);
      if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > static_cast<uint64_t>(node->st.st_size)) {
        node->st.st_size = static_cast<off_t>(off + len);
      }
    }
    node->UpdateBlocks();
    node->TouchModify();
  }
  r->ReplyOk();
}

void MemoryBackend::Lseek(Request* r, uint64_t, const FileInfo& fi, uint64_t off, int whence) {
  NodePtr node = FileOf(fi);
  if (!node) return r->ReplyError(EBADF);
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return r->ReplyError(EINVAL);
  uint64_t result;
  {
    std::shared_lock lock(node->mu);
    uint64_t size = static_cast<uint64_t>(node->st.st_size);
    if (off >= size) return r->ReplyError(ENXIO);
    // Chunk granularity: an allocated chunk is data, a missing one a hole.
    if (whence == SEEK_DATA) {
      auto it = node->chunks.lower_bound(off / kChunk);
      if (it == node->chunks.end()) return r->ReplyError(ENXIO);
      result = std::max(off, it->first * kChunk);
      if (result >= size) return r->ReplyError(ENXIO);
    } else {
      uint64_t index = off / kChunk;
      for (auto it = node->chunks.find(index); it != node->chunks.end() && it->first == index;
           ++it) {
        ++index;
      }
      result = std::min(std::max(off, index * kChunk), size);
    }
  }
  r->ReplyLseek(result);
}

void MemoryBackend::CopyFileRange(Request* r, uint64_t, const FileInfo& fi_in, uint64_t off_in,
                                  uint64_t, const FileInfo& fi_out, uint64_t off_out, size_t len,
                                  uint64_t flags) {
  NodePtr in = FileOf(fi_in), out = FileOf(fi_out);
  if (!in || !out) return r->ReplyError(EBADF);
  if (flags != 0) return r->ReplyError(EINVAL);
  if (off_out > kMaxFileSize || len > kMaxFileSize - off_out) return r->ReplyError(EFBIG);
  {
    std::shared_lock lock(in->mu);
    uint64_t size = static_cast<uint64_t>(in->st.st_size);
    len = off_in >= size ? 0 : static_cast<size_t>(std::min<uint64_t>(len, size - off_in));
  }
  if (in == out && off_in < off_out + len && off_out < off_in + len) {
    return r->ReplyError(EINVAL);  // overlapping ranges of one file, as copy_file_range(2)
  }
  // Piece by piece through a bounce buffer: never two node locks at once.
  std::vector<char> buf(std::min<size_t>(len, 1 << 20));
  size_t done = 0;
  while (done < len) {
    size_t n = std::min(buf.size(), len - done);
    {
      std::shared_lock lock(in->mu);
      in->ReadBytes(off_in + done, buf.data(), n);
    }
    std::unique_lock lock(out->mu);
    out->WriteBytes(off_out + done, buf.data(), n);
    done += n;
    if (off_out + done > static_cast<uint64_t>(out->st.st_size)) {
      out->st.st_size = static_cast<off_t>(off_out + done);
    }
    out->UpdateBlocks();
    out->TouchModify();
  }
  r->ReplyWrite(static_cast<uint32_t>(done));
}

Result<std::unique_ptr<Backend>> OpenMemoryBackend(const BackendUrl& url) {
  if (url.scheme != "memory") {
    return Error{rpc::kInvalidParams,
                 "memory backend: URL scheme is '" + url.scheme + "', not 'memory'"};
  }
  MemoryOptions options;
  for (const auto& [key, value] : url.query) {
    if (key == "timeout") {
      char* end = nullptr;
      double t = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(t >= 0)) {
        return Error{rpc::kInvalidParams,
                     "memory backend: timeout must be a number of seconds >= 0"};
      }
      options.timeout = t;
    } else {
      return Error{rpc::kInvalidParams, "memory backend: unknown option '" + key + "'"};
    }
  }
  return std::unique_ptr<Backend>(std::make_unique<MemoryBackend>(options));
}

}  // namespace dpustor::fs
