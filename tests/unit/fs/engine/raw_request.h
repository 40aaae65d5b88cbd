// Test helpers for the FUSE engine: builds raw requests byte by byte as a kernel would
// lay them out, and reads replies back out of scattered device-writable buffers.
// Single-threaded; owned by the test that creates them.
#pragma once

#include <linux/fuse.h>
#include <sys/uio.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fs/fuse/engine.h"

namespace dpustor::fs::testing {

// One request: fuse_in_header (len kept equal to the bytes unless SetLen) + arguments.
class RawRequest {
 public:
  explicit RawRequest(uint32_t opcode, uint64_t nodeid = 1, uint64_t unique = 7) {
    fuse_in_header h{};
    h.opcode = opcode;
    h.nodeid = nodeid;
    h.unique = unique;
    h.uid = 1000;
    h.gid = 100;
    h.pid = 42;
    Add(h);
  }
  template <class T>
  RawRequest& Add(const T& v) {
    return Append(&v, sizeof v);
  }
  // The first `n` bytes of `v` (an argument struct cut short).
  template <class T>
  RawRequest& AddPrefix(const T& v, size_t n) {
    return Append(&v, n);
  }
  RawRequest& Str(std::string_view s) {  // NUL-terminated
    Append(s.data(), s.size());
    return Append("", 1);
  }
  RawRequest& Bytes(std::string_view s) { return Append(s.data(), s.size()); }
  RawRequest& SetLen(uint32_t len) {
    std::memcpy(bytes_.data(), &len, sizeof len);
    fixed_len_ = true;
    return *this;
  }
  std::vector<char>& bytes() { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  RawRequest& Append(const void* p, size_t n) {
    size_t at = bytes_.size();
    bytes_.resize(at + n);
    if (n) std::memcpy(bytes_.data() + at, p, n);
    if (!fixed_len_) {
      uint32_t len = static_cast<uint32_t>(bytes_.size());
      std::memcpy(bytes_.data(), &len, sizeof len);
    }
    return *this;
  }
  std::vector<char> bytes_;
  bool fixed_len_ = false;
};

// Counts completions; Wait() blocks until the first one (for replies from other threads).
class Done : public Completion {
 public:
  void Complete(size_t n) override {
    std::lock_guard lock(mu_);
    bytes = n;
    ++calls;
    cv_.notify_all();
  }
  bool Wait() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return calls > 0; });
  }
  size_t bytes = 0;
  int calls = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

// Device-writable buffers of the given sizes, pre-filled with 0xAA so that bytes the
// engine did not write are visible.
class OutBuffers {
 public:
  explicit OutBuffers(std::vector<size_t> sizes) {
    for (size_t n : sizes) storage_.emplace_back(n, '\xAA');
    for (auto& s : storage_) iov_.push_back({s.data(), s.size()});
  }
  std::span<const iovec> iov() const { return iov_; }
  // The first `n` bytes as one string.
  std::string Joined(size_t n) const {
    std::string all;
    for (const auto& s : storage_) all.append(s.begin(), s.end());
    return all.substr(0, n);
  }

 private:
  std::vector<std::vector<char>> storage_;
  std::vector<iovec> iov_;
};

// The readable side: `bytes` cut at the given offsets into separate allocations.
class InBuffers {
 public:
  InBuffers(const std::vector<char>& bytes, std::vector<size_t> cuts) {
    size_t at = 0;
    cuts.push_back(bytes.size());
    for (size_t cut : cuts) {
      storage_.emplace_back(bytes.begin() + static_cast<long>(at),
                            bytes.begin() + static_cast<long>(cut));
      at = cut;
    }
    for (auto& s : storage_) iov_.push_back({s.data(), s.size()});
  }
  std::span<const iovec> iov() const { return iov_; }

 private:
  std::vector<std::vector<char>> storage_;
  std::vector<iovec> iov_;
};

// A decoded reply: header plus body bytes.
struct Reply {
  size_t bytes = 0;  // what Complete() reported
  int calls = 0;
  fuse_out_header header{};
  std::string body;
  int error() const { return -header.error; }
  template <class T>
  T As(size_t off = 0) const {
    T v{};
    if (off + sizeof v <= body.size()) std::memcpy(&v, body.data() + off, sizeof v);
    return v;
  }
};

inline Reply Decode(const std::string& raw, size_t bytes, int calls) {
  Reply r;
  r.bytes = bytes;
  r.calls = calls;
  if (raw.size() >= sizeof r.header) {
    std::memcpy(&r.header, raw.data(), sizeof r.header);
    r.body = raw.substr(sizeof r.header);
  }
  return r;
}

}  // namespace dpustor::fs::testing
