// A Request that records the backend's reply, for backend tests without the engine.
// Call Wait() to block until the backend replied (backends may reply on another thread).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "fs/fuse/request.h"

namespace dpustor::fs::testing {

struct DirItem {
  std::string name;
  uint64_t ino = 0;
  uint32_t type = 0;
  uint64_t next_offset = 0;
  std::optional<Entry> entry;  // readdirplus
};

class RecordingRequest : public Request {
 public:
  enum class Kind {
    kNone,
    kError,
    kEntry,
    kCreate,
    kAttr,
    kOpen,
    kWrite,
    kReadlink,
    kStatfs,
    kXattrSize,
    kLock,
    kLseek,
    kData,
    kDir
  };

  explicit RecordingRequest(Caller c = {}, size_t dir_room = 1 << 16)
      : caller_(c), dir_room_(dir_room) {}

  const Caller& caller() const override { return caller_; }
  uint64_t unique() const override { return 1; }
  bool interrupted() const override { return interrupted_; }
  void set_interrupted() { interrupted_ = true; }

  void ReplyError(int err) override {
    Finish(Kind::kError, [&] { error = err; });
  }
  void ReplyEntry(const Entry& e) override {
    Finish(Kind::kEntry, [&] { entry = e; });
  }
  void ReplyCreate(const Entry& e, const OpenInfo& oi) override {
    Finish(Kind::kCreate, [&] { entry = e, open = oi; });
  }
  void ReplyAttr(const struct stat& st, double) override {
    Finish(Kind::kAttr, [&] { attr = st; });
  }
  void ReplyOpen(const OpenInfo& oi) override {
    Finish(Kind::kOpen, [&] { open = oi; });
  }
  void ReplyWrite(uint32_t n) override {
    Finish(Kind::kWrite, [&] { count = n; });
  }
  void ReplyReadlink(std::string_view t) override {
    Finish(Kind::kReadlink, [&] { data = t; });
  }
  void ReplyStatfs(const struct statvfs& s) override {
    Finish(Kind::kStatfs, [&] { statfs = s; });
  }
  void ReplyXattrSize(uint32_t n) override {
    Finish(Kind::kXattrSize, [&] { count = n; });
  }
  void ReplyLock(const struct fuse_file_lock& l) override {
    Finish(Kind::kLock, [&] { lock = l; });
  }
  void ReplyLseek(uint64_t off) override {
    Finish(Kind::kLseek, [&] { offset = off; });
  }
  void ReplyData(std::span<const char> d) override {
    Finish(Kind::kData, [&] { data.assign(d.data(), d.size()); });
  }
  std::span<const iovec> DataBuffers(size_t max) override {
    buffer_.assign(max, '\0');
    iov_ = {buffer_.data(), max};
    return {&iov_, 1};
  }
  void ReplyDataFilled(size_t n) override {
    Finish(Kind::kData, [&] { data.assign(buffer_.data(), std::min(n, buffer_.size())); });
  }
  bool AddDirEntry(std::string_view name, uint64_t ino, uint32_t type, uint64_t next) override {
    return AddItem(DirItem{std::string(name), ino, type, next, std::nullopt}, 24 + name.size());
  }
  bool AddDirEntryPlus(std::string_view name, const Entry& e, uint64_t next) override {
    return AddItem(
        DirItem{std::string(name), e.attr.st_ino, (e.attr.st_mode & S_IFMT) >> 12, next, e},
        152 + name.size());
  }
  void ReplyDir() override {
    Finish(Kind::kDir, [] {});
  }

  // Blocks until the backend replied; false on timeout.
  bool Wait(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return kind != Kind::kNone; });
  }
  int replies() const { return replies_; }

  Kind kind = Kind::kNone;
  int error = 0;
  Entry entry;
  OpenInfo open;
  struct stat attr = {};
  uint32_t count = 0;
  std::string data;
  struct statvfs statfs = {};
  struct fuse_file_lock lock = {};
  uint64_t offset = 0;
  std::vector<DirItem> dir;

 private:
  bool AddItem(DirItem item, size_t bytes) {
    size_t aligned = (bytes + 7) & ~size_t{7};
    if (dir_used_ + aligned > dir_room_) return false;
    dir_used_ += aligned;
    dir.push_back(std::move(item));
    return true;
  }
  template <class F>
  void Finish(Kind k, F&& set) {
    std::lock_guard lock_(mu_);
    ++replies_;
    if (kind != Kind::kNone) return;  // a second reply is a backend bug: replies() shows it
    set();
    kind = k;
    cv_.notify_all();
  }

  Caller caller_;
  size_t dir_room_;
  size_t dir_used_ = 0;
  std::atomic<bool> interrupted_{false};
  std::string buffer_;
  iovec iov_{};
  std::mutex mu_;
  std::condition_variable cv_;
  int replies_ = 0;
};

}  // namespace dpustor::fs::testing
