#include "fs/fsd/share.h"

#include <spdlog/spdlog.h>

#include "fs/backend/backend_url.h"

namespace dpustor::fs::fsd {

Result<std::unique_ptr<Share>> Share::Open(const ShareConfig& config,
                                           std::function<void()> on_stopped) {
  auto url = ParseBackendUrl(config.backend);
  if (!url.ok()) return url.error();
  auto backend = OpenBackend(*url);
  if (!backend.ok()) {
    return Error{backend.error().code, "share '" + config.name + "': backend " + config.backend +
                                           ": " + backend.error().message};
  }
  std::unique_ptr<Share> share(new Share(config));
  share->backend_ = std::move(*backend);
  EngineOptions engine_options;
  engine_options.max_pages = config.max_pages;
  engine_options.writeback_cache = config.writeback;
  engine_options.read_only = config.read_only;
  share->engine_ = std::make_unique<Engine>(*share->backend_, engine_options);

  devfuse::DevFuseOptions transport_options;
  transport_options.mount.mount_dir = config.mount;
  transport_options.mount.source = config.name;
  transport_options.mount.read_only = config.read_only;
  transport_options.mount.use_fusermount = config.use_fusermount;
  transport_options.threads = config.threads;
  transport_options.max_pages = config.max_pages;
  auto transport =
      devfuse::DevFuseTransport::Start(*share->engine_, transport_options, std::move(on_stopped));
  if (!transport.ok()) {
    return Error{transport.error().code,
                 "share '" + config.name + "': " + transport.error().message};
  }
  share->transport_ = std::move(*transport);
  spdlog::info("fsd: share '{}' serves {} at {} ({} threads{}{})", config.name, config.backend,
               config.mount, config.threads, config.read_only ? ", read-only" : "",
               config.writeback ? ", writeback" : "");
  return share;
}

Share::~Share() {
  Stop();
}

void Share::Stop() {
  if (transport_) transport_->Stop();
}

bool Share::serving() const {
  return transport_ && transport_->serving();
}

}  // namespace dpustor::fs::fsd
