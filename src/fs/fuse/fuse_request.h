// The engine's Request: one FUSE request in flight, from Engine::Process until its reply
// is written into the transport's device-writable buffers and the Completion has run.
//
// Ownership: the engine's pool (EngineRep) owns every FuseRequest; one is taken per
// Process() call and returned when both references are gone: the dispatch's (dropped when
// the backend's operation call returns) and the reply's (dropped after the Completion).
// So a backend that replies twice from inside its operation call reaches a live object
// whose first reply already won; the second is logged and ignored. Pooled objects are only
// freed with the engine.
//
// Threading: the reply methods may run on any thread, concurrently with INTERRUPT setting
// the flag; the first reply wins (Claim()).
#pragma once

#include <linux/fuse.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <vector>

#include "fs/fuse/request.h"

namespace dpustor::fs {

class Completion;
struct EngineRep;

class FuseRequest final : public Request {
 public:
  explicit FuseRequest(EngineRep* engine) : engine_(engine) {}

  // Makes a pooled object the request described by `in`, holding two references.
  void Start(const fuse_in_header& in, std::span<const iovec> out, Completion* done,
             std::chrono::steady_clock::time_point start);
  // Drops one reference; the last one returns the object to the engine's pool.
  void Unref();

  const Caller& caller() const override { return caller_; }
  uint64_t unique() const override { return unique_; }
  bool interrupted() const override { return interrupted_.load(std::memory_order_relaxed); }
  void set_interrupted() { interrupted_.store(true, std::memory_order_relaxed); }
  uint32_t opcode() const { return opcode_; }

  void ReplyError(int err) override;
  void ReplyEntry(const Entry& e) override;
  void ReplyCreate(const Entry& e, const OpenInfo& oi) override;
  void ReplyAttr(const struct stat& st, double timeout) override;
  void ReplyOpen(const OpenInfo& oi) override;
  void ReplyWrite(uint32_t count) override;
  void ReplyReadlink(std::string_view target) override;
  void ReplyStatfs(const struct statvfs& st) override;
  void ReplyXattrSize(uint32_t size) override;
  void ReplyLock(const struct fuse_file_lock& lk) override;
  void ReplyLseek(uint64_t offset) override;
  void ReplyData(std::span<const char> data) override;
  std::span<const iovec> DataBuffers(size_t max) override;
  void ReplyDataFilled(size_t n) override;
  bool AddDirEntry(std::string_view name, uint64_t ino, uint32_t type,
                   uint64_t next_offset) override;
  bool AddDirEntryPlus(std::string_view name, const Entry& e, uint64_t next_offset) override;
  void ReplyDir() override;

  // Set by the engine before dispatch: the largest payload the reply may carry (read
  // size, readdir size, xattr size), clamped to the out buffers.
  void set_reply_limit(size_t n) { reply_limit_ = std::min(n, reply_room()); }
  // getxattr/listxattr with size 0: the reply is a fuse_getxattr_out, not data.
  void set_size_query() { size_query_ = true; }
  // Bytes the out buffers can hold after the fuse_out_header.
  size_t reply_room() const {
    return out_capacity_ > sizeof(fuse_out_header) ? out_capacity_ - sizeof(fuse_out_header) : 0;
  }
  // Storage for `n` argument bytes gathered from scattered buffers; valid until the
  // request ends. Small blocks stay inline, larger ones use a buffer kept across reuse.
  char* Scratch(size_t n);
  // The write payload as iovecs into the transport's buffers; room for `max` entries.
  iovec* PayloadSlots(size_t max);
  void set_payload_count(size_t n) { payload_count_ = n; }
  std::span<const iovec> payload() const { return {payload_, payload_count_}; }

  // Ends the request without a reply (FORGET and friends).
  void FinishNoReply();

  // The engine pool this object returns to: the one of the thread that created it, so
  // requests replied on backend threads flow back to the transport thread that takes them.
  size_t pool = 0;
  // Interrupt registry links (guarded by the engine's shard lock).
  FuseRequest* prev = nullptr;
  FuseRequest* next = nullptr;
  bool tracked = false;

 private:
  static constexpr size_t kInlineIov = 8;
  static constexpr size_t kInlineScratch = 1024;

  enum class Kind {
    kOk,
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
    kDir,
    kDirPlus
  };
  // True if a reply of `kind` answers this opcode; logs the misuse once otherwise.
  bool Allowed(Kind kind);
  bool Claim();  // true for the first reply only
  // Writes the header (+ `body_len` bytes already placed after it) and completes.
  void Finish(int err, size_t body_len);
  void Put(size_t off, const void* p, size_t n);

  EngineRep* const engine_;
  std::atomic<int> refs_{0};
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> replied_{false};
  Caller caller_;
  uint64_t unique_ = 0;
  uint32_t opcode_ = 0;
  bool size_query_ = false;
  bool dir_refused_ = false;  // an Add* call was a misuse: the dir reply becomes EIO
  Completion* done_ = nullptr;
  std::chrono::steady_clock::time_point start_;
  size_t out_capacity_ = 0;
  size_t reply_limit_ = 0;
  size_t dir_used_ = 0;
  std::span<const iovec> out_;
  iovec out_inline_[kInlineIov];
  iovec data_inline_[kInlineIov];
  iovec payload_inline_[kInlineIov];
  iovec* payload_ = payload_inline_;
  size_t payload_count_ = 0;
  std::vector<iovec> out_heap_, data_heap_, payload_heap_;
  alignas(8) char scratch_inline_[kInlineScratch];
  std::vector<char> scratch_heap_;
};

}  // namespace dpustor::fs
