// The vhost-user wire format (QEMU docs/interop/vhost-user.rst): message header, request
// codes, payload layouts and feature bits. Shared by the back-end (our server), the
// front-end used by tests and dpustor-vufs-bench, and the fuzzers. Plain data only.
//
// A message is a 12-byte header {request, flags, size} then `size` payload bytes; file
// descriptors travel as SCM_RIGHTS ancillary data with the header. Everything is host
// (little) endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace dpustor::fs::vhost_user {

enum class Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kSendRarp = 19,
  kNetSetMtu = 20,
  kSetBackendReqFd = 21,
  kIotlbMsg = 22,
  kSetVringEndian = 23,
  kGetConfig = 24,
  kSetConfig = 25,
  kGetMaxMemSlots = 36,
  kAddMemReg = 37,
  kRemMemReg = 38,
  kResetDevice = 34,
};

// Header flags.
inline constexpr uint32_t kVersionMask = 0x3;
inline constexpr uint32_t kVersion = 0x1;
inline constexpr uint32_t kFlagReply = 1u << 2;
inline constexpr uint32_t kFlagNeedReply = 1u << 3;

// Virtio / vhost feature bits (GET_FEATURES, SET_FEATURES).
inline constexpr int kFeatureIndirectDesc = 28;      // VIRTIO_RING_F_INDIRECT_DESC
inline constexpr int kFeatureEventIdx = 29;          // VIRTIO_RING_F_EVENT_IDX
inline constexpr int kFeatureProtocolFeatures = 30;  // VHOST_USER_F_PROTOCOL_FEATURES
inline constexpr int kFeatureVersion1 = 32;          // VIRTIO_F_VERSION_1
inline constexpr int kFeatureLogAll = 26;            // VHOST_F_LOG_ALL (migration; not offered)

// Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
inline constexpr int kProtocolMq = 0;
inline constexpr int kProtocolLogShmfd = 1;
inline constexpr int kProtocolReplyAck = 3;
inline constexpr int kProtocolConfig = 9;
inline constexpr int kProtocolResetDevice = 13;
inline constexpr int kProtocolConfigureMemSlots = 15;

inline constexpr uint64_t Bit(int n) {
  return uint64_t{1} << n;
}

// "GET_FEATURES", ... for messages; "request N" for codes we do not know.
inline std::string RequestName(uint32_t code) {
  switch (static_cast<Request>(code)) {
    case Request::kGetFeatures:
      return "GET_FEATURES";
    case Request::kSetFeatures:
      return "SET_FEATURES";
    case Request::kSetOwner:
      return "SET_OWNER";
    case Request::kResetOwner:
      return "RESET_OWNER";
    case Request::kSetMemTable:
      return "SET_MEM_TABLE";
    case Request::kSetLogBase:
      return "SET_LOG_BASE";
    case Request::kSetVringNum:
      return "SET_VRING_NUM";
    case Request::kSetVringAddr:
      return "SET_VRING_ADDR";
    case Request::kSetVringBase:
      return "SET_VRING_BASE";
    case Request::kGetVringBase:
      return "GET_VRING_BASE";
    case Request::kSetVringKick:
      return "SET_VRING_KICK";
    case Request::kSetVringCall:
      return "SET_VRING_CALL";
    case Request::kSetVringErr:
      return "SET_VRING_ERR";
    case Request::kGetProtocolFeatures:
      return "GET_PROTOCOL_FEATURES";
    case Request::kSetProtocolFeatures:
      return "SET_PROTOCOL_FEATURES";
    case Request::kGetQueueNum:
      return "GET_QUEUE_NUM";
    case Request::kSetVringEnable:
      return "SET_VRING_ENABLE";
    case Request::kResetDevice:
      return "RESET_DEVICE";
    default:
      return "request " + std::to_string(code);
  }
}
inline std::string RequestName(Request r) {
  return RequestName(static_cast<uint32_t>(r));
}

struct MessageHeader {
  uint32_t request;
  uint32_t flags;
  uint32_t size;  // payload bytes after the header
};
static_assert(sizeof(MessageHeader) == 12);

// SET_VRING_NUM / SET_VRING_BASE / GET_VRING_BASE / SET_VRING_ENABLE.
struct VringState {
  uint32_t index;
  uint32_t num;
};
static_assert(sizeof(VringState) == 8);

// SET_VRING_ADDR: front-end user addresses of the three rings.
struct VringAddr {
  uint32_t index;
  uint32_t flags;  // bit 0: VHOST_VRING_F_LOG
  uint64_t desc_user_addr;
  uint64_t used_user_addr;
  uint64_t avail_user_addr;
  uint64_t log_guest_addr;
};
static_assert(sizeof(VringAddr) == 40);

// One SET_MEM_TABLE region (its fd is the i-th SCM_RIGHTS descriptor).
struct MemoryRegion {
  uint64_t guest_phys_addr;
  uint64_t memory_size;
  uint64_t userspace_addr;
  uint64_t mmap_offset;
};
static_assert(sizeof(MemoryRegion) == 32);

// SET_MEM_TABLE carries at most this many regions (VHOST_MEMORY_BASELINE_NREGIONS).
inline constexpr uint32_t kMaxMemTableRegions = 8;

struct MemoryTable {
  uint32_t nregions;
  uint32_t padding;
  MemoryRegion regions[kMaxMemTableRegions];
};
static_assert(sizeof(MemoryTable) == 8 + 32 * kMaxMemTableRegions);

// SET_VRING_KICK / SET_VRING_CALL / SET_VRING_ERR payload (u64): the ring index in bits
// 0-7; bit 8 set means no fd was sent (polling / no notification).
inline constexpr uint64_t kVringIndexMask = 0xff;
inline constexpr uint64_t kVringNoFd = 1u << 8;

// Largest payload we accept (the memory table is the biggest message we handle).
inline constexpr uint32_t kMaxPayload = 4096;
// Most fds one message may carry.
inline constexpr size_t kMaxFds = kMaxMemTableRegions;

// virtio-fs: queue 0 is the high-priority queue (FORGET, INTERRUPT), 1..N request queues.
inline constexpr uint32_t kHiprioQueue = 0;

}  // namespace dpustor::fs::vhost_user
