// Byte access to a list of iovecs as one logical buffer: how a request spread over
// descriptors (or one /dev/fuse read) is read, and how a reply is written into the
// device-writable buffers. Bounds are checked on every call; nothing here trusts lengths.
// Not thread-safe; cheap to copy.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>

namespace dpustor::fs {

inline size_t TotalLength(std::span<const iovec> iov) {
  size_t n = 0;
  for (const iovec& v : iov) n += v.iov_len;
  return n;
}

// Copies up to `len` bytes starting at logical offset `off` into `dst`; returns the count.
inline size_t GatherAt(std::span<const iovec> iov, size_t off, void* dst, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    if (off >= v.iov_len) {
      off -= v.iov_len;
      continue;
    }
    size_t n = std::min(v.iov_len - off, len - done);
    std::memcpy(static_cast<char*>(dst) + done, static_cast<const char*>(v.iov_base) + off, n);
    done += n;
    off = 0;
  }
  return done;
}

// Copies `len` bytes from `src` to logical offset `off`; returns the count that fit.
inline size_t ScatterAt(std::span<const iovec> iov, size_t off, const void* src, size_t len) {
  size_t done = 0;
  for (const iovec& v : iov) {
    if (done == len) break;
    if (off >= v.iov_len) {
      off -= v.iov_len;
      continue;
    }
    size_t n = std::min(v.iov_len - off, len - done);
    std::memcpy(static_cast<char*>(v.iov_base) + off, static_cast<const char*>(src) + done, n);
    done += n;
    off = 0;
  }
  return done;
}

// Fills `out` (capacity `max_out`) with the iovecs covering logical bytes [off, off+len);
// returns how many entries were used (stops early when `out` is full).
inline size_t SliceIovecs(std::span<const iovec> iov, size_t off, size_t len, iovec* out,
                          size_t max_out) {
  size_t used = 0;
  for (const iovec& v : iov) {
    if (len == 0 || used == max_out) break;
    if (off >= v.iov_len) {
      off -= v.iov_len;
      continue;
    }
    size_t n = std::min(v.iov_len - off, len);
    out[used++] = {static_cast<char*>(v.iov_base) + off, n};
    len -= n;
    off = 0;
  }
  return used;
}

// Reads a list of iovecs front to back without rescanning it (BATCH_FORGET's entries).
class IovReader {
 public:
  IovReader(std::span<const iovec> iov, size_t off) : iov_(iov) {
    while (i_ < iov_.size() && off >= iov_[i_].iov_len) off -= iov_[i_++].iov_len;
    at_ = off;
  }
  // Copies up to `len` bytes into `dst`; returns the count (short at the end).
  size_t Read(void* dst, size_t len) {
    size_t done = 0;
    while (done < len && i_ < iov_.size()) {
      size_t n = std::min(iov_[i_].iov_len - at_, len - done);
      if (n) {
        std::memcpy(static_cast<char*>(dst) + done,
                    static_cast<const char*>(iov_[i_].iov_base) + at_, n);
      }
      done += n;
      at_ += n;
      if (at_ == iov_[i_].iov_len) ++i_, at_ = 0;
    }
    return done;
  }

 private:
  std::span<const iovec> iov_;
  size_t i_ = 0;
  size_t at_ = 0;
};

}  // namespace dpustor::fs
