#include "fs/vufs/fuse_client.h"

#include <unistd.h>

#include <cstring>
#include <string>

#include "common/json_rpc.h"

namespace dpustor::fs::vufs {
namespace {

// Scratch layout: the request (in header, args, name) in the first half of the header
// area, the out header and small replies in the second.
constexpr uint64_t kHeaderArea = 16 << 10;
constexpr uint64_t kReplyOffset = kHeaderArea / 2;
constexpr uint32_t kSmallReplyCap = kHeaderArea / 2 - sizeof(fuse_out_header);

Error Protocol(std::string what) {
  return Error{rpc::kFailed, std::move(what)};
}

}  // namespace

const char* FuseOpcodeName(uint32_t opcode) {
  switch (opcode) {
    case FUSE_LOOKUP:
      return "FUSE_LOOKUP";
    case FUSE_FORGET:
      return "FUSE_FORGET";
    case FUSE_GETATTR:
      return "FUSE_GETATTR";
    case FUSE_MKDIR:
      return "FUSE_MKDIR";
    case FUSE_UNLINK:
      return "FUSE_UNLINK";
    case FUSE_OPEN:
      return "FUSE_OPEN";
    case FUSE_READ:
      return "FUSE_READ";
    case FUSE_WRITE:
      return "FUSE_WRITE";
    case FUSE_RELEASE:
      return "FUSE_RELEASE";
    case FUSE_INIT:
      return "FUSE_INIT";
    case FUSE_CREATE:
      return "FUSE_CREATE";
    default:
      return "FUSE request";
  }
}

size_t EncodeFuseRequest(std::span<uint8_t> dst, uint32_t opcode, uint64_t unique, uint64_t nodeid,
                         std::span<const uint8_t> args, std::string_view name, uint32_t trailing) {
  const size_t name_bytes = name.empty() ? 0 : name.size() + 1;
  const size_t len = sizeof(fuse_in_header) + args.size() + name_bytes;
  if (len > dst.size() || len + trailing > UINT32_MAX) return 0;
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(len + trailing);
  h.opcode = opcode;
  h.unique = unique;
  h.nodeid = nodeid;
  h.uid = getuid();
  h.gid = getgid();
  h.pid = static_cast<uint32_t>(getpid());
  uint8_t* p = dst.data();
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  if (!args.empty()) std::memcpy(p, args.data(), args.size());
  p += args.size();
  if (name_bytes) {
    std::memcpy(p, name.data(), name.size());
    p[name.size()] = 0;
  }
  return len;
}

Result<uint32_t> CheckFuseReply(const fuse_out_header& out, uint32_t used_len, uint64_t unique) {
  if (used_len < sizeof out)
    return Protocol("reply of " + std::to_string(used_len) + " bytes is shorter than its header");
  if (out.unique != unique)
    return Protocol("reply for unique " + std::to_string(out.unique) + ", expected " +
                    std::to_string(unique));
  if (out.len != used_len)
    return Protocol("reply header says " + std::to_string(out.len) + " bytes, device wrote " +
                    std::to_string(used_len));
  if (out.error != 0) {
    if (out.error > 0 || out.error < -4095)
      return Protocol("reply error " + std::to_string(out.error) + " is not a -errno");
    if (out.len != sizeof out) return Protocol("error reply with a payload");
    return Error{out.error, std::strerror(-out.error)};
  }
  return used_len - static_cast<uint32_t>(sizeof out);
}

FuseClient::FuseClient(Frontend& frontend, uint32_t queue, uint32_t max_io)
    : frontend_(frontend), queue_(queue), max_io_(max_io) {}

FuseClient::~FuseClient() {
  if (header_area_.len) (void)frontend_.ram().Free(header_area_);
  if (data_area_.len) (void)frontend_.ram().Free(data_area_);
}

Result<std::unique_ptr<FuseClient>> FuseClient::Create(Frontend& frontend, uint32_t queue,
                                                       uint32_t max_io) {
  if (queue == 0 || queue >= frontend.queue_count())
    return Error{rpc::kInvalidParams, "queue " + std::to_string(queue) + " is not a request queue"};
  if (max_io == 0) return Error{rpc::kInvalidParams, "max_io must be positive"};
  std::unique_ptr<FuseClient> c(new FuseClient(frontend, queue, max_io));
  auto h = frontend.ram().Allocate(kHeaderArea, 4096);
  if (!h) return h.error();
  c->header_area_ = *h;
  auto d = frontend.ram().Allocate(max_io, 4096);
  if (!d) return d.error();
  c->data_area_ = *d;
  return c;
}

Result<std::vector<uint8_t>> FuseClient::Call(uint32_t opcode, uint64_t nodeid,
                                              std::span<const uint8_t> args, std::string_view name,
                                              std::span<const uint8_t> payload,
                                              uint32_t reply_cap) {
  const std::string op = FuseOpcodeName(opcode);
  if (payload.size() > max_io_ || reply_cap > max_io_)
    return Error{rpc::kInvalidParams,
                 op + ": larger than the client's " + std::to_string(max_io_) + " bytes"};
  const uint64_t unique = ++unique_;
  const size_t n = EncodeFuseRequest({header_area_.host, kReplyOffset}, opcode, unique, nodeid,
                                     args, name, static_cast<uint32_t>(payload.size()));
  if (n == 0) return Error{rpc::kInvalidParams, op + ": arguments too large"};
  Segment readable[2] = {{header_area_.gpa, static_cast<uint32_t>(n)}};
  size_t nreadable = 1;
  if (!payload.empty()) {
    std::memcpy(data_area_.host, payload.data(), payload.size());
    readable[nreadable++] = {data_area_.gpa, static_cast<uint32_t>(payload.size())};
  }
  const bool big = reply_cap > kSmallReplyCap;
  const GuestBuffer out_hdr{header_area_.gpa + kReplyOffset, header_area_.host + kReplyOffset,
                            sizeof(fuse_out_header)};
  const uint64_t reply_gpa = big ? data_area_.gpa : out_hdr.gpa + sizeof(fuse_out_header);
  const uint8_t* reply_host = big ? data_area_.host : out_hdr.host + sizeof(fuse_out_header);
  Segment writable[2] = {{out_hdr.gpa, sizeof(fuse_out_header)}, {reply_gpa, reply_cap}};
  std::memset(out_hdr.host, 0, sizeof(fuse_out_header));

  FrontendQueue& q = frontend_.queue(queue_);
  auto head = q.Submit({readable, nreadable}, {writable, reply_cap ? 2u : 1u});
  if (!head) return Error{head.error().code, op + ": " + head.error().message};
  if (Status s = q.Kick(); !s) return Error{s.error().code, op + ": " + s.error().message};
  auto used = q.Wait(timeout_);
  if (!used) return Error{used.error().code, op + ": " + used.error().message};
  if (used->head != *head)
    return Protocol(op + ": completion for head " + std::to_string(used->head) + ", expected " +
                    std::to_string(*head));
  fuse_out_header out;
  std::memcpy(&out, out_hdr.host, sizeof out);
  auto len = CheckFuseReply(out, used->len, unique);
  if (!len) return Error{len.error().code, op + ": " + len.error().message};
  return std::vector<uint8_t>(reply_host, reply_host + *len);
}

template <class T>
Result<T> FuseClient::CallFor(uint32_t opcode, uint64_t nodeid, std::span<const uint8_t> args,
                              std::string_view name) {
  auto reply = Call(opcode, nodeid, args, name, {}, sizeof(T));
  if (!reply) return reply.error();
  if (reply->size() != sizeof(T))
    return Protocol(std::string(FuseOpcodeName(opcode)) + ": reply of " +
                    std::to_string(reply->size()) + " bytes, expected " +
                    std::to_string(sizeof(T)));
  T v;
  std::memcpy(&v, reply->data(), sizeof v);
  return v;
}

Result<fuse_init_out> FuseClient::Init(uint32_t max_pages, uint32_t flags) {
  fuse_init_in in{};
  in.major = FUSE_KERNEL_VERSION;
  in.minor = FUSE_KERNEL_MINOR_VERSION;
  in.max_readahead = max_pages * 4096;
  in.flags = flags;
  auto reply = Call(FUSE_INIT, 0, AsBytes(in), {}, {}, sizeof(fuse_init_out));
  if (!reply) return reply.error();
  // Servers older than 7.23 send a shorter reply (FUSE_COMPAT_22_INIT_OUT_SIZE).
  if (reply->size() < 24)
    return Protocol("FUSE_INIT: reply of " + std::to_string(reply->size()) + " bytes");
  fuse_init_out out{};
  std::memcpy(&out, reply->data(), reply->size());
  if (out.major != FUSE_KERNEL_VERSION)
    return Protocol("FUSE_INIT: server speaks FUSE " + std::to_string(out.major) + "." +
                    std::to_string(out.minor));
  return out;
}

Result<fuse_entry_out> FuseClient::Lookup(uint64_t parent, std::string_view name) {
  return CallFor<fuse_entry_out>(FUSE_LOOKUP, parent, {}, name);
}

Result<fuse_attr_out> FuseClient::Getattr(uint64_t nodeid) {
  fuse_getattr_in in{};
  return CallFor<fuse_attr_out>(FUSE_GETATTR, nodeid, AsBytes(in));
}

Result<fuse_open_out> FuseClient::Open(uint64_t nodeid, uint32_t flags) {
  fuse_open_in in{};
  in.flags = flags;
  return CallFor<fuse_open_out>(FUSE_OPEN, nodeid, AsBytes(in));
}

Result<FuseCreated> FuseClient::Create(uint64_t parent, std::string_view name, uint32_t flags,
                                       uint32_t mode) {
  fuse_create_in in{};
  in.flags = flags;
  in.mode = mode;
  return CallFor<FuseCreated>(FUSE_CREATE, parent, AsBytes(in), name);
}

Result<std::vector<uint8_t>> FuseClient::Read(uint64_t nodeid, uint64_t fh, uint64_t offset,
                                              uint32_t size) {
  fuse_read_in in{};
  in.fh = fh;
  in.offset = offset;
  in.size = size;
  auto reply = Call(FUSE_READ, nodeid, AsBytes(in), {}, {}, size);
  if (reply && reply->size() > size)
    return Protocol("FUSE_READ: " + std::to_string(reply->size()) + " bytes for a read of " +
                    std::to_string(size));
  return reply;
}

Result<uint32_t> FuseClient::Write(uint64_t nodeid, uint64_t fh, uint64_t offset,
                                   std::span<const uint8_t> data) {
  fuse_write_in in{};
  in.fh = fh;
  in.offset = offset;
  in.size = static_cast<uint32_t>(data.size());
  auto reply = Call(FUSE_WRITE, nodeid, AsBytes(in), {}, data, sizeof(fuse_write_out));
  if (!reply) return reply.error();
  if (reply->size() != sizeof(fuse_write_out))
    return Protocol("FUSE_WRITE: reply of " + std::to_string(reply->size()) + " bytes");
  fuse_write_out out;
  std::memcpy(&out, reply->data(), sizeof out);
  if (out.size > data.size())
    return Protocol("FUSE_WRITE: wrote " + std::to_string(out.size) + " of " +
                    std::to_string(data.size()) + " bytes");
  return out.size;
}

Status FuseClient::Release(uint64_t nodeid, uint64_t fh, uint32_t flags) {
  fuse_release_in in{};
  in.fh = fh;
  in.flags = flags;
  auto reply = Call(FUSE_RELEASE, nodeid, AsBytes(in), {}, {}, 0);
  if (!reply) return reply.error();
  return Status::Ok();
}

Result<fuse_entry_out> FuseClient::Mkdir(uint64_t parent, std::string_view name, uint32_t mode) {
  fuse_mkdir_in in{};
  in.mode = mode;
  return CallFor<fuse_entry_out>(FUSE_MKDIR, parent, AsBytes(in), name);
}

Status FuseClient::Unlink(uint64_t parent, std::string_view name) {
  auto reply = Call(FUSE_UNLINK, parent, {}, name, {}, 0);
  if (!reply) return reply.error();
  return Status::Ok();
}

Status FuseClient::Forget(uint64_t nodeid, uint64_t nlookup) {
  fuse_forget_in in{};
  in.nlookup = nlookup;
  const size_t n = EncodeFuseRequest({header_area_.host, kReplyOffset}, FUSE_FORGET, ++unique_,
                                     nodeid, AsBytes(in));
  FrontendQueue& q = frontend_.queue(vhost_user::kHiprioQueue);
  Segment readable{header_area_.gpa, static_cast<uint32_t>(n)};
  auto head = q.Submit({&readable, 1}, {});
  if (!head) return Error{head.error().code, "FUSE_FORGET: " + head.error().message};
  if (Status s = q.Kick(); !s) return s;
  auto used = q.Wait(timeout_);
  if (!used) return Error{used.error().code, "FUSE_FORGET: " + used.error().message};
  if (used->head != *head || used->len != 0)
    return Protocol("FUSE_FORGET: unexpected completion (head " + std::to_string(used->head) +
                    ", len " + std::to_string(used->len) + ")");
  return Status::Ok();
}

}  // namespace dpustor::fs::vufs
