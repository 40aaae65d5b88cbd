// The engine's Request: one FUSE request in flight, from Engine::Process until its reply
// is written into the transport's device-writable buffers and the Completion has run.
// Owned by the engine (created in Process, deleted after the reply). The reply methods
// may run on any thread; the first reply wins (see Finish()).
#pragma once

#include <linux/fuse.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "fs/fuse/request.h"

namespace dpustor::fs {

class Completion;
struct EngineRep;

class FuseRequest final : public Request {
 public:
  FuseRequest(EngineRep* engine, const fuse_in_header& in, std::span<const iovec> out,
              Completion* done);

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
  // size, readdir size, xattr size), already clamped to the out buffers.
  void set_reply_limit(size_t n) { reply_limit_ = std::min(n, reply_room()); }
  // Bytes the out buffers can hold after the fuse_out_header.
  size_t reply_room() const {
    return out_capacity_ > sizeof(fuse_out_header) ? out_capacity_ - sizeof(fuse_out_header) : 0;
  }
  // Storage for arguments gathered from scattered buffers; lives as long as the request.
  std::vector<char>& scratch() { return scratch_; }
  // The write payload as iovecs into the transport's buffers.
  std::vector<iovec>& payload() { return payload_; }

  // Ends the request without a reply (FORGET and friends).
  void FinishNoReply();

 private:
  // Writes header + `body` bytes already placed at offset 16 and completes.
  void Finish(int err, size_t body_len);
  bool Claim();  // true for the first reply only
  size_t Put(size_t off, const void* p, size_t n);

  EngineRep* engine_;
  Caller caller_;
  uint64_t unique_;
  uint32_t opcode_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> replied_{false};
  Completion* done_;
  std::chrono::steady_clock::time_point start_;
  iovec out_inline_[4];
  std::vector<iovec> out_heap_;
  std::span<const iovec> out_;
  size_t out_capacity_ = 0;
  size_t reply_limit_ = 0;
  size_t dir_used_ = 0;
  std::vector<char> scratch_;
  std::vector<iovec> payload_;
  std::vector<iovec> data_iov_;
};

}  // namespace dpustor::fs
