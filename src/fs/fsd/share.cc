#include "fs/fsd/share.h"

#include <spdlog/spdlog.h>

#include "fs/backend/backend_url.h"
#include "fs/transport/vhost_user/vhost_user_device.h"
#ifdef DPUSTOR_HAVE_DOCA
#include "fs/transport/doca/doca_vfs_device.h"
#endif

namespace dpustor::fs::fsd {
namespace {

Squash SquashOf(const std::string& s) {
  if (s == "root") return Squash::kRoot;
  if (s == "all") return Squash::kAll;
  return Squash::kNone;
}

}  // namespace

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
  engine_options.squash = SquashOf(config.squash);
  engine_options.anon_uid = config.anon_uid;
  engine_options.anon_gid = config.anon_gid;
  share->engine_ = std::make_unique<Engine>(*share->backend_, engine_options);
  if (Status s = share->StartTransport(std::move(on_stopped)); !s.ok())
    return Error{s.error().code, "share '" + config.name + "': " + s.error().message};
  spdlog::info("fsd: share '{}' serves {} at {} ({}{}{})", config.name, config.backend,
               config.transport == "fuse"         ? config.mount
               : config.transport == "vhost-user" ? config.socket + " tag " + config.tag
                                                  : config.function + " tag " + config.tag,
               config.transport == "fuse"
                   ? std::to_string(config.threads) + " threads"
                   : std::to_string(config.request_queues) + " request queues",
               config.read_only ? ", read-only" : "", config.squash != "none" ? ", squashed" : "");
  return share;
}

Status Share::StartTransport(std::function<void()> on_stopped) {
  if (config_.transport == "vhost-user") {
    handler_ = std::make_unique<EngineHandler>(*engine_);
    vhost_user::VhostUserOptions options;
    options.socket_path = config_.socket;
    options.session.request_queues = config_.request_queues;
    options.session.max_queue_size = config_.queue_size;
    device_ = std::make_unique<vhost_user::VhostUserFsDevice>(*handler_, options);
    return device_->Start();
  }
#ifdef DPUSTOR_HAVE_DOCA
  if (config_.transport == "doca") {
    handler_ = std::make_unique<EngineHandler>(*engine_);
    doca::DocaVfsOptions options;
    options.manager = config_.manager;
    options.vuid = config_.function;
    options.tag = config_.tag;
    options.request_queues = config_.request_queues;
    options.queue_size = config_.queue_size;
    options.max_request_bytes = config_.max_pages * 4096 + 4096;
    device_ = std::make_unique<doca::DocaVfsDevice>(*handler_, options);
    return device_->Start();
  }
#endif
  devfuse::DevFuseOptions options;
  options.mount.mount_dir = config_.mount;
  options.mount.source = config_.name;
  options.mount.read_only = config_.read_only;
  options.mount.use_fusermount = config_.use_fusermount;
  options.threads = config_.threads;
  options.max_pages = config_.max_pages;
  auto transport = devfuse::DevFuseTransport::Start(*engine_, options, std::move(on_stopped));
  if (!transport.ok()) return transport.error();
  fuse_ = std::move(*transport);
  return {};
}

Share::~Share() {
  Stop();
}

void Share::Stop() {
  if (fuse_) fuse_->Stop();
  if (device_) device_->Stop();
}

bool Share::serving() const {
  if (fuse_) return fuse_->serving();
  return device_ && device_->serving();
}

nlohmann::json Share::device() const {
  return device_ ? device_->status() : nlohmann::json();
}

}  // namespace dpustor::fs::fsd
