// The libfuse side of the engine benchmark: a libfuse lowlevel file system holding a small
// tree in RAM, run in-process by fuse_session_process_buf() on a session whose custom I/O
// discards every reply (only counts its bytes). No kernel, no /dev/fuse.
//
// The file system mirrors the memory backend's data structures and locking for the
// operations the benchmark uses, so both sides do the same file-system work and the
// difference is the request path (decode, dispatch, reply encoding):
// - node ids through the project's InodeTable (a mutex and two hash maps, lookup counts);
// - the namespace under one shared_mutex, each node's attributes and data under its own
//   mutex; directories keep children by name and by a per-directory insertion cookie;
// - regular files as a sparse map of 64 KiB chunks; read copies out of the chunks under the
//   node's lock and replies after unlocking (fuse_reply_buf from a per-thread buffer);
// - open files and directories as a heap-allocated handle holding the node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace dpustor::bench {

class LibfuseRamFs {
 public:
  LibfuseRamFs();
  ~LibfuseRamFs();
  LibfuseRamFs(const LibfuseRamFs&) = delete;
  LibfuseRamFs& operator=(const LibfuseRamFs&) = delete;

  // Runs one raw request (fuse_in_header first) through fuse_session_process_buf and
  // returns the bytes of the reply libfuse wrote (0 if it sent none).
  size_t Process(void* request, size_t len);

  // While set, replies are copied into reply() as well (setup reads node ids from them).
  void set_capture(bool on);
  const char* reply() const;

  static const char* Version();

 private:
  struct Rep;
  std::unique_ptr<Rep> rep_;
};

}  // namespace dpustor::bench
