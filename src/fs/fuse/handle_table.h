// HandleTable: the open-file and open-directory handles (FUSE's `fh`) a backend gives out.
// Over virtio-fs the driver is a guest kernel and therefore hostile: an `fh` in a request
// is only a number it may have made up. A backend turns it back into its object here, and
// an unknown number is simply not found (EBADF), never a pointer or a descriptor taken on
// trust. Objects are shared_ptr so a request in flight keeps its file alive after a
// RELEASE raced it; the last holder closes it.
//
// Thread-safe (sharded locks). Handles are never reused within a table.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace dpustor::fs {

template <class T>
class HandleTable {
 public:
  // A new handle for `object` (never 0: FUSE uses 0 for "no handle").
  uint64_t Add(std::shared_ptr<T> object) {
    uint64_t h = next_.fetch_add(1, std::memory_order_relaxed);
    Shard& s = ShardOf(h);
    std::lock_guard lock(s.mu);
    s.map.emplace(h, std::move(object));
    return h;
  }

  // The object behind `h`, or null when this table never issued it or it was removed.
  std::shared_ptr<T> Get(uint64_t h) const {
    const Shard& s = ShardOf(h);
    std::lock_guard lock(s.mu);
    auto it = s.map.find(h);
    return it == s.map.end() ? nullptr : it->second;
  }

  // Removes `h`; returns its object (null if unknown) so the caller decides when it goes.
  std::shared_ptr<T> Remove(uint64_t h) {
    Shard& s = ShardOf(h);
    std::shared_ptr<T> out;
    std::lock_guard lock(s.mu);
    auto it = s.map.find(h);
    if (it == s.map.end()) return nullptr;
    out = std::move(it->second);
    s.map.erase(it);
    return out;
  }

  // Drops every handle (the session ended); objects go when their last user lets go.
  void Clear() {
    for (Shard& s : shards_) {
      std::unordered_map<uint64_t, std::shared_ptr<T>> gone;
      {
        std::lock_guard lock(s.mu);
        gone.swap(s.map);
      }
    }
  }

  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.map.size();
    }
    return n;
  }

 private:
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<T>> map;
  };
  static constexpr size_t kShards = 16;
  Shard& ShardOf(uint64_t h) { return shards_[h % kShards]; }
  const Shard& ShardOf(uint64_t h) const { return shards_[h % kShards]; }

  std::atomic<uint64_t> next_{1};
  std::array<Shard, kShards> shards_;
};

}  // namespace dpustor::fs
