// FuzzInput reads a fuzzer's input front to back as little-endian values, and 0 once it runs
// out, so every byte string is a complete input. Shared by the fuzz targets.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

struct FuzzInput {
  const uint8_t* p;
  size_t left;

  unsigned U8() {
    if (!left) return 0;
    --left;
    return *p++;
  }
  unsigned U16() { return U8() | (U8() << 8); }
  uint32_t U32() { return U16() | (static_cast<uint32_t>(U16()) << 16); }
  uint64_t U64() { return U32() | (static_cast<uint64_t>(U32()) << 32); }
  // The next 32-bit value, not consumed.
  uint32_t Peek32() const {
    uint32_t v = 0;
    if (left) std::memcpy(&v, p, std::min<size_t>(left, 4));
    return v;
  }
  // The next `n` bytes, zero-padded past the end.
  std::vector<uint8_t> Bytes(size_t n) {
    std::vector<uint8_t> v(n);
    size_t k = std::min(n, left);
    if (k) std::memcpy(v.data(), p, k);
    p += k;
    left -= k;
    return v;
  }
};
