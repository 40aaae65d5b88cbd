// EngineHandler: serves a virtio-fs device's requests with the FUSE engine. Every queue
// carries FUSE messages in the engine's own shape (readable then writable buffers), so
// this is all the glue a device needs; the engine does not know which queue or device.
#pragma once

#include "fs/fuse/engine.h"
#include "fs/transport/virtio_fs_device.h"

namespace dpustor::fs {

class EngineHandler : public VirtioFsHandler {
 public:
  explicit EngineHandler(Engine& engine) : engine_(engine) {}
  void Handle(uint32_t, std::span<const iovec> in, std::span<const iovec> out,
              Completion* done) override {
    engine_.Process(in, out, done);
  }
  void SessionEnded() override { engine_.EndSession(); }

 private:
  Engine& engine_;
};

}  // namespace dpustor::fs
