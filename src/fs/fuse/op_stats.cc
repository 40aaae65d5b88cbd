#include "fs/fuse/op_stats.h"

#include <linux/fuse.h>

#include <bit>
#include <string>

namespace dpustor::fs {

void OpStats::Record(uint32_t opcode, bool error, uint64_t ns) {
  if (opcode >= kOps) opcode = 0;  // slot 0 collects opcodes out of range
  Op& op = ops_[opcode];
  op.count.fetch_add(1, std::memory_order_relaxed);
  if (error) op.errors.fetch_add(1, std::memory_order_relaxed);
  op.total_ns.fetch_add(ns, std::memory_order_relaxed);
  uint64_t us = ns / 1000;
  size_t bucket = us == 0 ? 0 : std::min<size_t>(std::bit_width(us), kBuckets - 1);
  op.buckets[bucket].fetch_add(1, std::memory_order_relaxed);
}

namespace {

// Upper bound (us) of the bucket holding the q-quantile.
uint64_t Quantile(const OpStats::Op& op, uint64_t count, double q) {
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count));
  uint64_t seen = 0;
  for (size_t i = 0; i < OpStats::kBuckets; ++i) {
    seen += op.buckets[i].load(std::memory_order_relaxed);
    if (seen > rank) return uint64_t{1} << i;
  }
  return uint64_t{1} << (OpStats::kBuckets - 1);
}

}  // namespace

nlohmann::json OpStats::ToJson() const {
  nlohmann::json out = nlohmann::json::object();
  for (uint32_t i = 0; i < kOps; ++i) {
    const Op& op = ops_[i];
    uint64_t count = op.count.load(std::memory_order_relaxed);
    if (count == 0) continue;
    nlohmann::json buckets = nlohmann::json::object();
    for (size_t b = 0; b < kBuckets; ++b) {
      uint64_t n = op.buckets[b].load(std::memory_order_relaxed);
      if (n) buckets["<" + std::to_string(uint64_t{1} << b)] = n;
    }
    double total_us = static_cast<double>(op.total_ns.load(std::memory_order_relaxed)) / 1000.0;
    out[std::string(OpcodeName(i))] = {
        {"count", count},
        {"errors", op.errors.load(std::memory_order_relaxed)},
        {"avg_us", total_us / static_cast<double>(count)},
        {"p50_us", Quantile(op, count, 0.50)},
        {"p99_us", Quantile(op, count, 0.99)},
        {"buckets_us", std::move(buckets)},
    };
  }
  return out;
}

std::string_view OpcodeName(uint32_t opcode) {
  switch (opcode) {
    case FUSE_LOOKUP:
      return "LOOKUP";
    case FUSE_FORGET:
      return "FORGET";
    case FUSE_GETATTR:
      return "GETATTR";
    case FUSE_SETATTR:
      return "SETATTR";
    case FUSE_READLINK:
      return "READLINK";
    case FUSE_SYMLINK:
      return "SYMLINK";
    case FUSE_MKNOD:
      return "MKNOD";
    case FUSE_MKDIR:
      return "MKDIR";
    case FUSE_UNLINK:
      return "UNLINK";
    case FUSE_RMDIR:
      return "RMDIR";
    case FUSE_RENAME:
      return "RENAME";
    case FUSE_LINK:
      return "LINK";
    case FUSE_OPEN:
      return "OPEN";
    case FUSE_READ:
      return "READ";
    case FUSE_WRITE:
      return "WRITE";
    case FUSE_STATFS:
      return "STATFS";
    case FUSE_RELEASE:
      return "RELEASE";
    case FUSE_FSYNC:
      return "FSYNC";
    case FUSE_SETXATTR:
      return "SETXATTR";
    case FUSE_GETXATTR:
      return "GETXATTR";
    case FUSE_LISTXATTR:
      return "LISTXATTR";
    case FUSE_REMOVEXATTR:
      return "REMOVEXATTR";
    case FUSE_FLUSH:
      return "FLUSH";
    case FUSE_INIT:
      return "INIT";
    case FUSE_OPENDIR:
      return "OPENDIR";
    case FUSE_READDIR:
      return "READDIR";
    case FUSE_RELEASEDIR:
      return "RELEASEDIR";
    case FUSE_FSYNCDIR:
      return "FSYNCDIR";
    case FUSE_GETLK:
      return "GETLK";
    case FUSE_SETLK:
      return "SETLK";
    case FUSE_SETLKW:
      return "SETLKW";
    case FUSE_ACCESS:
      return "ACCESS";
    case FUSE_CREATE:
      return "CREATE";
    case FUSE_INTERRUPT:
      return "INTERRUPT";
    case FUSE_BMAP:
      return "BMAP";
    case FUSE_DESTROY:
      return "DESTROY";
    case FUSE_IOCTL:
      return "IOCTL";
    case FUSE_POLL:
      return "POLL";
    case FUSE_NOTIFY_REPLY:
      return "NOTIFY_REPLY";
    case FUSE_BATCH_FORGET:
      return "BATCH_FORGET";
    case FUSE_FALLOCATE:
      return "FALLOCATE";
    case FUSE_READDIRPLUS:
      return "READDIRPLUS";
    case FUSE_RENAME2:
      return "RENAME2";
    case FUSE_LSEEK:
      return "LSEEK";
    case FUSE_COPY_FILE_RANGE:
      return "COPY_FILE_RANGE";
    case FUSE_SETUPMAPPING:
      return "SETUPMAPPING";
    case FUSE_REMOVEMAPPING:
      return "REMOVEMAPPING";
    case FUSE_SYNCFS:
      return "SYNCFS";
    case FUSE_TMPFILE:
      return "TMPFILE";
    default:
      return "UNKNOWN";
  }
}

}  // namespace dpustor::fs
