// Maps FUSE node ids to a backend's nodes and back, with the kernel's lookup counts.
//
// A backend keeps one InodeTable<Node>. `Node::Key` identifies the backend object (a
// file handle, an NFS file handle, a pointer) and never changes while the node is in the
// table (`node->key()` returns it); the same key always yields the same node
// id while the kernel still holds a lookup on it, so handles stay stable across lookups
// and hard links share one node. Node ids are never reused within a table; the
// generation is fixed per table (a new table after a daemon restart gets a new one) so a
// stale (nodeid, generation) pair from an earlier session never aliases a live node.
//
// Thread-safe. Nodes are shared_ptr so an operation in flight keeps its node alive after
// the kernel forgot it.
#pragma once

#include <linux/fuse.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace dpustor::fs {

template <class Node, class KeyHash = std::hash<typename Node::Key>>
class InodeTable {
 public:
  using Key = typename Node::Key;

  struct Ref {
    uint64_t nodeid = 0;
    uint64_t generation = 0;
    std::shared_ptr<Node> node;
  };

  // The root (FUSE_ROOT_ID) is present from the start and never forgotten.
  explicit InodeTable(std::shared_ptr<Node> root)
      : generation_(
            static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count())) {
    Slot s{root, 1};
    by_key_.emplace(root->key(), FUSE_ROOT_ID);
    by_id_.emplace(FUSE_ROOT_ID, std::move(s));
  }

  // Adds one lookup for `key`. When absent, `make()` builds the node (called under the
  // table's lock: keep it cheap, no I/O). Returns the node id to give the kernel.
  template <class Make>
  Ref Acquire(const Key& key, Make&& make) {
    std::lock_guard lock(mu_);
    if (auto it = by_key_.find(key); it != by_key_.end()) {
      Slot& s = by_id_.at(it->second);
      ++s.nlookup;
      return {it->second, generation_, s.node};
    }
    uint64_t id = next_id_++;
    std::shared_ptr<Node> node = make();
    by_key_.emplace(key, id);
    by_id_.emplace(id, Slot{node, 1});
    return {id, generation_, std::move(node)};
  }

  // The node for `nodeid`, or null if the kernel already forgot it (or never had it).
  std::shared_ptr<Node> Find(uint64_t nodeid) const {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(nodeid);
    return it == by_id_.end() ? nullptr : it->second.node;
  }

  // Drops `n` lookups; the node leaves the table at zero. Over-forgetting is clamped.
  void Forget(uint64_t nodeid, uint64_t n) {
    if (nodeid == FUSE_ROOT_ID) return;
    std::shared_ptr<Node> last;  // destroyed after the lock is released
    std::lock_guard lock(mu_);
    auto it = by_id_.find(nodeid);
    if (it == by_id_.end()) return;
    if (it->second.nlookup > n) {
      it->second.nlookup -= n;
      return;
    }
    last = std::move(it->second.node);
    by_key_.erase(last->key());
    by_id_.erase(it);
  }

  // Drops every node but the root (session ended).
  void Clear() {
    std::unordered_map<uint64_t, Slot> old;
    std::lock_guard lock(mu_);
    Slot root = by_id_.at(FUSE_ROOT_ID);
    old.swap(by_id_);
    by_key_.clear();
    by_key_.emplace(root.node->key(), FUSE_ROOT_ID);
    by_id_.emplace(FUSE_ROOT_ID, std::move(root));
  }

  uint64_t generation() const { return generation_; }
  size_t size() const {
    std::lock_guard lock(mu_);
    return by_id_.size();
  }

 private:
  struct Slot {
    std::shared_ptr<Node> node;
    uint64_t nlookup = 0;
  };

  mutable std::mutex mu_;
  std::unordered_map<Key, uint64_t, KeyHash> by_key_;
  std::unordered_map<uint64_t, Slot> by_id_;
  uint64_t next_id_ = FUSE_ROOT_ID + 1;
  const uint64_t generation_;
};

}  // namespace dpustor::fs
