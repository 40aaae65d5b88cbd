// Drives a Backend synchronously through RecordingRequest, for the backend unit tests (memory
// and local share it). Each call builds one request, waits for its reply and hands the
// recording back; the Must* helpers also assert success. Test-only; one thread per driver
// unless a test says otherwise (the backend itself is thread-safe).
#pragma once

#include <gtest/gtest.h>

#include <fcntl.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "fs/fuse/backend.h"
#include "support/recording_request.h"

namespace dpustor::fs::testing {

using Rec = std::unique_ptr<RecordingRequest>;
using Kind = RecordingRequest::Kind;

// The errno a reply carries (0 for any successful reply).
inline int Err(const Rec& r) {
  return r->kind == Kind::kError ? r->error : 0;
}

class BackendDriver {
 public:
  explicit BackendDriver(Backend& backend, Caller caller = {}) : b_(backend), caller_(caller) {}

  void set_caller(Caller c) { caller_ = c; }
  const Caller& caller() const { return caller_; }

  template <class F>
  Rec Run(F&& call, size_t dir_room = 1 << 16) {
    auto r = std::make_unique<RecordingRequest>(caller_, dir_room);
    call(r.get());
    EXPECT_TRUE(r->Wait()) << "the backend did not reply";
    return r;
  }

  Rec Lookup(uint64_t parent, const std::string& name) {
    return Run([&](Request* r) { b_.Lookup(r, parent, name); });
  }
  Rec Getattr(uint64_t ino, const FileInfo* fi = nullptr) {
    return Run([&](Request* r) { b_.Getattr(r, ino, fi); });
  }
  Rec Setattr(uint64_t ino, const SetattrArgs& a) {
    return Run([&](Request* r) { b_.Setattr(r, ino, a); });
  }
  Rec Mkdir(uint64_t parent, const std::string& name, mode_t mode = 0755) {
    return Run([&](Request* r) { b_.Mkdir(r, parent, name, mode); });
  }
  Rec Mknod(uint64_t parent, const std::string& name, mode_t mode, dev_t rdev = 0) {
    return Run([&](Request* r) { b_.Mknod(r, parent, name, mode, rdev); });
  }
  Rec Symlink(const std::string& target, uint64_t parent, const std::string& name) {
    return Run([&](Request* r) { b_.Symlink(r, target, parent, name); });
  }
  Rec Link(uint64_t ino, uint64_t newparent, const std::string& newname) {
    return Run([&](Request* r) { b_.Link(r, ino, newparent, newname); });
  }
  Rec Readlink(uint64_t ino) {
    return Run([&](Request* r) { b_.Readlink(r, ino); });
  }
  Rec Unlink(uint64_t parent, const std::string& name) {
    return Run([&](Request* r) { b_.Unlink(r, parent, name); });
  }
  Rec Rmdir(uint64_t parent, const std::string& name) {
    return Run([&](Request* r) { b_.Rmdir(r, parent, name); });
  }
  Rec Rename(uint64_t parent, const std::string& name, uint64_t newparent,
             const std::string& newname, uint32_t flags = 0) {
    return Run([&](Request* r) { b_.Rename(r, parent, name, newparent, newname, flags); });
  }
  Rec Create(uint64_t parent, const std::string& name, mode_t mode = 0644,
             uint32_t flags = O_RDWR | O_CREAT) {
    FileInfo fi;
    fi.flags = flags;
    return Run([&](Request* r) { b_.Create(r, parent, name, mode, fi); });
  }
  Rec Open(uint64_t ino, uint32_t flags = O_RDWR) {
    FileInfo fi;
    fi.flags = flags;
    return Run([&](Request* r) { b_.Open(r, ino, fi); });
  }
  Rec Read(uint64_t ino, uint64_t fh, size_t size, uint64_t off) {
    return Run([&](Request* r) { b_.Read(r, ino, size, off, Fi(fh)); });
  }
  Rec Write(uint64_t ino, uint64_t fh, std::string_view data, uint64_t off) {
    iovec iov{const_cast<char*>(data.data()), data.size()};
    return Run([&](Request* r) { b_.Write(r, ino, {&iov, 1}, off, Fi(fh)); });
  }
  Rec Release(uint64_t ino, uint64_t fh) {
    return Run([&](Request* r) { b_.Release(r, ino, Fi(fh)); });
  }
  Rec Flush(uint64_t ino, uint64_t fh) {
    return Run([&](Request* r) { b_.Flush(r, ino, Fi(fh)); });
  }
  Rec Fsync(uint64_t ino, uint64_t fh, bool datasync) {
    return Run([&](Request* r) { b_.Fsync(r, ino, datasync, Fi(fh)); });
  }
  Rec Opendir(uint64_t ino) {
    return Run([&](Request* r) { b_.Opendir(r, ino, FileInfo{}); });
  }
  Rec Readdir(uint64_t ino, uint64_t fh, uint64_t off, bool plus, size_t room = 4096) {
    return Run([&](Request* r) { b_.Readdir(r, ino, room, off, plus, Fi(fh)); }, room);
  }
  Rec Releasedir(uint64_t ino, uint64_t fh) {
    return Run([&](Request* r) { b_.Releasedir(r, ino, Fi(fh)); });
  }
  Rec Statfs(uint64_t ino) {
    return Run([&](Request* r) { b_.Statfs(r, ino); });
  }
  Rec Setxattr(uint64_t ino, const std::string& name, std::string_view value, int flags = 0) {
    return Run([&](Request* r) { b_.Setxattr(r, ino, name, {value.data(), value.size()}, flags); });
  }
  Rec Getxattr(uint64_t ino, const std::string& name, size_t size) {
    return Run([&](Request* r) { b_.Getxattr(r, ino, name, size); });
  }
  Rec Listxattr(uint64_t ino, size_t size) {
    return Run([&](Request* r) { b_.Listxattr(r, ino, size); });
  }
  Rec Removexattr(uint64_t ino, const std::string& name) {
    return Run([&](Request* r) { b_.Removexattr(r, ino, name); });
  }
  Rec Access(uint64_t ino, int mask) {
    return Run([&](Request* r) { b_.Access(r, ino, mask); });
  }
  Rec Fallocate(uint64_t ino, uint64_t fh, int mode, uint64_t off, uint64_t len) {
    return Run([&](Request* r) { b_.Fallocate(r, ino, Fi(fh), mode, off, len); });
  }
  Rec Lseek(uint64_t ino, uint64_t fh, uint64_t off, int whence) {
    return Run([&](Request* r) { b_.Lseek(r, ino, Fi(fh), off, whence); });
  }
  Rec CopyFileRange(uint64_t ino_in, uint64_t fh_in, uint64_t off_in, uint64_t ino_out,
                    uint64_t fh_out, uint64_t off_out, size_t len) {
    return Run([&](Request* r) {
      b_.CopyFileRange(r, ino_in, Fi(fh_in), off_in, ino_out, Fi(fh_out), off_out, len, 0);
    });
  }

  // Asserting helpers: the entry / handle of a successful call.
  Entry MustLookup(uint64_t parent, const std::string& name) {
    Rec r = Lookup(parent, name);
    EXPECT_EQ(r->kind, Kind::kEntry) << name << ": errno " << r->error;
    return r->entry;
  }
  Entry MustMkdir(uint64_t parent, const std::string& name, mode_t mode = 0755) {
    Rec r = Mkdir(parent, name, mode);
    EXPECT_EQ(r->kind, Kind::kEntry) << name << ": errno " << r->error;
    return r->entry;
  }
  // Creates (or opens) a file; returns its entry and the open handle.
  std::pair<Entry, uint64_t> MustCreate(uint64_t parent, const std::string& name,
                                        mode_t mode = 0644) {
    Rec r = Create(parent, name, mode);
    EXPECT_EQ(r->kind, Kind::kCreate) << name << ": errno " << r->error;
    return {r->entry, r->open.fh};
  }
  uint64_t MustOpen(uint64_t ino, uint32_t flags = O_RDWR) {
    Rec r = Open(ino, flags);
    EXPECT_EQ(r->kind, Kind::kOpen) << "errno " << r->error;
    return r->open.fh;
  }
  struct stat MustGetattr(uint64_t ino) {
    Rec r = Getattr(ino);
    EXPECT_EQ(r->kind, Kind::kAttr) << "errno " << r->error;
    return r->attr;
  }
  void MustWrite(uint64_t ino, uint64_t fh, std::string_view data, uint64_t off) {
    Rec r = Write(ino, fh, data, off);
    ASSERT_EQ(r->kind, Kind::kWrite) << "errno " << r->error;
    ASSERT_EQ(r->count, data.size());
  }
  std::string MustRead(uint64_t ino, uint64_t fh, size_t size, uint64_t off) {
    Rec r = Read(ino, fh, size, off);
    EXPECT_EQ(r->kind, Kind::kData) << "errno " << r->error;
    return r->data;
  }

  // Reads a whole directory in replies of `room` bytes, following the cookies. Entries
  // returned by readdirplus are forgotten again unless `keep_lookups`.
  std::vector<DirItem> ReadAll(uint64_t ino, uint64_t fh, bool plus, size_t room = 4096,
                               bool keep_lookups = false) {
    std::vector<DirItem> all;
    uint64_t off = 0;
    for (int rounds = 0; rounds < 1000000; ++rounds) {
      Rec r = Readdir(ino, fh, off, plus, room);
      EXPECT_EQ(r->kind, Kind::kDir) << "errno " << r->error;
      if (r->kind != Kind::kDir || r->dir.empty()) break;
      for (DirItem& item : r->dir) {
        if (plus && !keep_lookups && item.entry && item.entry->nodeid != 0) {
          b_.Forget(item.entry->nodeid, 1);
        }
        off = item.next_offset;
        all.push_back(std::move(item));
      }
    }
    return all;
  }

  static FileInfo Fi(uint64_t fh) {
    FileInfo fi;
    fi.fh = fh;
    fi.flags = O_RDWR;
    return fi;
  }

 private:
  Backend& b_;
  Caller caller_;
};

// A guest makes up file handles: every handle the backend did not issue, or already
// released, is refused with EBADF and touches nothing (a real descriptor number of this
// process included), for files and directories alike.
// `dir_handles`: the backend hands out directory handles (memory: does not, and reads
// directories by node id, so there is nothing to forge).
inline void ExpectForgedHandlesRefused(BackendDriver& d, uint64_t parent, bool dir_handles) {
  auto [e, fh] = d.MustCreate(parent, "forged-fh-target", 0644);
  d.MustWrite(e.nodeid, fh, "data", 0);
  int real_fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(real_fd, 0);
  for (uint64_t forged : {uint64_t{0}, uint64_t{1}, static_cast<uint64_t>(real_fd), fh + 1000,
                          uint64_t{0xdeadbeefcafe}, ~uint64_t{0}}) {
    if (forged == fh) continue;
    FileInfo fi = BackendDriver::Fi(forged);
    EXPECT_EQ(Err(d.Read(e.nodeid, forged, 4, 0)), EBADF) << forged;
    EXPECT_EQ(Err(d.Write(e.nodeid, forged, "evil", 0)), EBADF) << forged;
    EXPECT_EQ(Err(d.Getattr(e.nodeid, &fi)), EBADF) << forged;
    EXPECT_EQ(Err(d.Release(e.nodeid, forged)), EBADF) << forged;
    if (dir_handles) {
      EXPECT_EQ(Err(d.Readdir(parent, forged, 0, false)), EBADF) << forged;
      EXPECT_EQ(Err(d.Releasedir(parent, forged)), EBADF) << forged;
    }
  }
  ::close(real_fd);
  EXPECT_EQ(d.MustRead(e.nodeid, fh, 10, 0), "data");  // the real handle still works
  EXPECT_EQ(Err(d.Release(e.nodeid, fh)), 0);
  EXPECT_EQ(Err(d.Read(e.nodeid, fh, 4, 0)), EBADF);  // and is gone once released
  EXPECT_EQ(Err(d.Release(e.nodeid, fh)), EBADF);
}

}  // namespace dpustor::fs::testing
