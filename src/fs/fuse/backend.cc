// Default operations: what a backend does not implement is answered ENOSYS (release and
// releasedir succeed, there is nothing to free).
#include "fs/fuse/backend.h"

#include <cerrno>

namespace dpustor::fs {

Capabilities Backend::Init() {
  return {};
}
void Backend::Lookup(Request* r, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Forget(uint64_t, uint64_t) {}
void Backend::Getattr(Request* r, uint64_t, const FileInfo*) {
  Nosys(r);
}
void Backend::Setattr(Request* r, uint64_t, const SetattrArgs&) {
  Nosys(r);
}
void Backend::Readlink(Request* r, uint64_t) {
  Nosys(r);
}
void Backend::Mknod(Request* r, uint64_t, std::string_view, mode_t, dev_t) {
  Nosys(r);
}
void Backend::Mkdir(Request* r, uint64_t, std::string_view, mode_t) {
  Nosys(r);
}
void Backend::Symlink(Request* r, std::string_view, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Link(Request* r, uint64_t, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Unlink(Request* r, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Rmdir(Request* r, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Rename(Request* r, uint64_t, std::string_view, uint64_t, std::string_view, uint32_t) {
  Nosys(r);
}
void Backend::Open(Request* r, uint64_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Create(Request* r, uint64_t, std::string_view, mode_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Read(Request* r, uint64_t, size_t, uint64_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Write(Request* r, uint64_t, std::span<const iovec>, uint64_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Flush(Request* r, uint64_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Release(Request* r, uint64_t, const FileInfo&) {
  r->ReplyOk();
}
void Backend::Fsync(Request* r, uint64_t, bool, const FileInfo&) {
  Nosys(r);
}
void Backend::Opendir(Request* r, uint64_t, const FileInfo&) {
  Nosys(r);
}
void Backend::Readdir(Request* r, uint64_t, size_t, uint64_t, bool, const FileInfo&) {
  Nosys(r);
}
void Backend::Releasedir(Request* r, uint64_t, const FileInfo&) {
  r->ReplyOk();
}
void Backend::Fsyncdir(Request* r, uint64_t, bool, const FileInfo&) {
  Nosys(r);
}
void Backend::Statfs(Request* r, uint64_t) {
  Nosys(r);
}
void Backend::Setxattr(Request* r, uint64_t, std::string_view, std::span<const char>, int) {
  Nosys(r);
}
void Backend::Getxattr(Request* r, uint64_t, std::string_view, size_t) {
  Nosys(r);
}
void Backend::Listxattr(Request* r, uint64_t, size_t) {
  Nosys(r);
}
void Backend::Removexattr(Request* r, uint64_t, std::string_view) {
  Nosys(r);
}
void Backend::Access(Request* r, uint64_t, int) {
  Nosys(r);
}
void Backend::Getlk(Request* r, uint64_t, const FileInfo&, const struct fuse_file_lock&) {
  Nosys(r);
}
void Backend::Setlk(Request* r, uint64_t, const FileInfo&, const struct fuse_file_lock&, bool) {
  Nosys(r);
}
void Backend::Flock(Request* r, uint64_t, const FileInfo&, int) {
  Nosys(r);
}
void Backend::Fallocate(Request* r, uint64_t, const FileInfo&, int, uint64_t, uint64_t) {
  Nosys(r);
}
void Backend::Lseek(Request* r, uint64_t, const FileInfo&, uint64_t, int) {
  Nosys(r);
}
void Backend::CopyFileRange(Request* r, uint64_t, const FileInfo&, uint64_t, uint64_t,
                            const FileInfo&, uint64_t, size_t, uint64_t) {
  Nosys(r);
}

void Backend::Nosys(Request* r) {
  r->ReplyError(ENOSYS);
}

}  // namespace dpustor::fs
