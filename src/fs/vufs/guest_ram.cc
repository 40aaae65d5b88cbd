#include "fs/vufs/guest_ram.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/json_rpc.h"

namespace dpustor::fs::vufs {

Result<std::unique_ptr<GuestRam>> GuestRam::Create(uint64_t bytes) {
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (bytes == 0 || bytes > (uint64_t{1} << 40))
    return Error{rpc::kInvalidParams,
                 "guest memory size " + std::to_string(bytes) + " out of range"};
  bytes = (bytes + page - 1) / page * page;
  UniqueFd fd(memfd_create("dpustor-vufs-guest", MFD_CLOEXEC));
  if (!fd.valid()) return Error{rpc::kFailed, std::string("memfd_create: ") + std::strerror(errno)};
  if (ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0)
    return Error{rpc::kFailed, std::string("ftruncate guest memory: ") + std::strerror(errno)};
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED)
    return Error{rpc::kFailed, std::string("mmap guest memory: ") + std::strerror(errno)};
  return std::unique_ptr<GuestRam>(new GuestRam(std::move(fd), static_cast<uint8_t*>(p), bytes));
}

GuestRam::GuestRam(UniqueFd fd, uint8_t* base, uint64_t size)
    : fd_(std::move(fd)), base_(base), size_(size), allocator_(0, size) {}

GuestRam::~GuestRam() {
  munmap(base_, size_);
}

Result<GuestBuffer> GuestRam::Allocate(uint64_t len, uint64_t align) {
  auto gpa = allocator_.Allocate(len, align);
  if (!gpa) return gpa.error();
  return GuestBuffer{*gpa, base_ + *gpa, len};
}

Status GuestRam::Free(const GuestBuffer& buffer) {
  return allocator_.Free(buffer.gpa);
}

}  // namespace dpustor::fs::vufs
