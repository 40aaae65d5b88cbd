// dpustor-fsd: serves file-system shares. Each share is a backend (local directory, memory,
// NFS...) behind the FUSE engine, exposed through a transport: a /dev/fuse mount, or a
// virtio-fs device on a vhost-user socket (a VM's vhost-user-fs-pci). A Unix control
// socket answers fsd.* JSON-RPC, including creating and deleting shares at run time.
// Exit status: 0 after SIGTERM/SIGINT (or every configured mount gone), 2 for bad input,
// 1 when a configured share cannot be served.
#include <sys/resource.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include "common/endpoint.h"
#include "common/log.h"
#include "common/rpc_server.h"
#include "fs/fsd/control_methods.h"
#include "fs/fsd/fsd_config.h"
#include "fs/fsd/share.h"

namespace {

using namespace dpustor;
using namespace dpustor::fs::fsd;
namespace asio = boost::asio;

// Hands each control request to the method table.
class ControlHandler : public rpc::ConnectionHandler {
 public:
  ControlHandler(const ControlMethodTable& table, ControlContext& ctx) : table_(table), ctx_(ctx) {}
  void OnRequest(rpc::RpcConnection&, rpc::Message&& request, rpc::Reply reply) override {
    table_.Dispatch(ctx_, request.method, request.params, [&](Result<nlohmann::json> result) {
      if (!result.ok())
        spdlog::info("fsd: control {} failed: {}", request.method, result.error().message);
      reply(std::move(result));
    });
  }

 private:
  const ControlMethodTable& table_;
  ControlContext& ctx_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "dpustor-fsd: serves file-system shares (a backend behind the FUSE engine) through a "
      "kernel FUSE mount (/dev/fuse) or a vhost-user-fs socket for VMs"};
  ShareConfig share;
  std::string config_file, control_socket, log_level = "info";
  bool use_fusermount = false;
  auto* config_opt = app.add_option("--config", config_file, "JSON file with several shares");
  std::vector<CLI::Option*> share_opts = {
      app.add_option("--transport", share.transport, "fuse or vhost-user")->capture_default_str(),
      app.add_option("--mount", share.mount, "directory to mount the share on (fuse)"),
      app.add_option("--socket", share.socket, "vhost-user socket to create (vhost-user)"),
      app.add_option("--tag", share.tag, "virtio-fs tag the guest mounts (vhost-user)"),
      app.add_option("--request-queues", share.request_queues,
                     "request queues offered, one thread each (vhost-user)")
          ->capture_default_str(),
      app.add_option("--queue-size", share.queue_size, "largest ring accepted (vhost-user)")
          ->capture_default_str(),
      app.add_option("--squash", share.squash, "none, root or all: credentials to anon ids")
          ->capture_default_str(),
      app.add_option("--anon-uid", share.anon_uid, "uid squashed callers get")
          ->capture_default_str(),
      app.add_option("--anon-gid", share.anon_gid, "gid squashed callers get")
          ->capture_default_str(),
      app.add_option("--backend", share.backend,
                     "backend URL: local:/dir, memory:, nfs://host/export?version=3"),
      app.add_option("--name", share.name, "share name (default: the mount's last component)"),
      app.add_option("--threads", share.threads, "transport threads")->capture_default_str(),
      app.add_flag("--read-only", share.read_only, "refuse every change with EROFS"),
      app.add_flag("--writeback", share.writeback,
                   "let the kernel cache writes (if the backend allows it)"),
      app.add_option("--max-pages", share.max_pages, "largest request in 4 KiB pages")
          ->capture_default_str(),
      app.add_flag("--fusermount", use_fusermount, "mount through fusermount3 even as root"),
  };
  for (CLI::Option* o : share_opts) config_opt->excludes(o);
  app.add_option("--control-socket", control_socket, "Unix socket for fsd.* JSON-RPC");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  if (!InitLogging("dpustor-fsd", log_level))
    spdlog::warn("fsd: unknown log level '{}', using info", log_level);
  // A peer that went away must cost a write error, not the daemon (a VM's call eventfd,
  // a control client, an NFS server connection).
  std::signal(SIGPIPE, SIG_IGN);
  // Every share's open files, and the local backend's descriptors for nodes in use, count
  // against one process limit: take what the hard limit allows (as virtiofsd does).
  if (rlimit rl{}; getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 1 << 20);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) spdlog::warn("fsd: cannot raise RLIMIT_NOFILE");
  }

  FsdConfig config;
  if (!config_file.empty()) {
    auto loaded = LoadFsdConfigFile(config_file);
    if (!loaded.ok()) {
      spdlog::error("fsd: {}", loaded.error().message);
      return 2;
    }
    config = std::move(*loaded);
  } else if (!share.backend.empty()) {
    const bool fuse = share.transport == "fuse";
    std::string& place = fuse ? share.mount : share.socket;
    if (place.empty()) {
      spdlog::error("fsd: {} is required with --backend", fuse ? "--mount" : "--socket");
      return 2;
    }
    place = std::filesystem::absolute(place).lexically_normal().string();
    if (place.size() > 1 && place.back() == '/') place.pop_back();
    if (share.name.empty())
      share.name = !fuse && !share.tag.empty() ? share.tag : DefaultShareName(place);
    share.use_fusermount = use_fusermount;
    config.shares.push_back(share);
  } else if (control_socket.empty()) {
    spdlog::error(
        "fsd: --backend (with --mount or --socket), --config FILE or --control-socket "
        "is required");
    return 2;
  }
  if (!control_socket.empty()) config.control_socket = control_socket;
  if (Status s = ValidateFsdConfig(config); !s.ok()) {
    spdlog::error("fsd: {}", s.error().message);
    return 2;
  }
  // Started without shares: they come and go through fsd.share_create / fsd.share_delete,
  // and the daemon runs until signalled.
  const bool managed = config.shares.empty();

  asio::io_context ioc;
  ControlMethodTable table = BuildControlMethodTable();
  ControlContext ctx;
  rpc::RpcServer server(ioc, rpc::ConnectionOptions{},
                        [&](std::shared_ptr<rpc::RpcConnection> conn) {
                          conn->Start(std::make_shared<ControlHandler>(table, ctx));
                        });
  // The socket first: a daemon that cannot be controlled mounts nothing.
  if (!config.control_socket.empty()) {
    std::string text = config.control_socket.rfind("unix:", 0) == 0
                           ? config.control_socket
                           : "unix:" + config.control_socket;
    auto ep = net::ParseEndpoint(text);
    Status listening =
        ep.ok() ? (ep->is_unix ? server.Listen(*ep) : Status(Error{0, "not a Unix socket path"}))
                : Status(ep.error());
    if (!listening.ok()) {
      spdlog::error("fsd: control socket {}: {}", config.control_socket, listening.error().message);
      return 1;
    }
    spdlog::info("fsd: control socket {}", server.local_address());
  }

  std::vector<std::unique_ptr<Share>> shares;
  bool shutting_down = false;
  auto shutdown = [&](const std::string& why) {
    if (shutting_down) return;
    shutting_down = true;
    spdlog::info("fsd: {}, stopping", why);
    for (auto& s : shares) s->Stop();
    server.Stop();
    ioc.stop();
  };
  auto on_share_stopped = [&] {
    asio::post(ioc, [&] {
      for (auto& s : shares)
        if (s->serving()) return;
      if (!shares.empty() && !managed) shutdown("every share has stopped serving");
    });
  };
  ctx.create = [&](const ShareConfig& c) -> Result<const ShareView*> {
    auto opened = Share::Open(c, on_share_stopped);
    if (!opened.ok()) return opened.error();
    shares.push_back(std::move(*opened));
    ctx.shares.push_back(shares.back().get());
    return shares.back().get();
  };
  ctx.remove = [&](const std::string& name) {
    for (size_t i = 0; i < shares.size(); ++i) {
      if (shares[i]->config().name != name) continue;
      ctx.shares.erase(ctx.shares.begin() + static_cast<ptrdiff_t>(i));
      std::unique_ptr<Share> gone = std::move(shares[i]);
      shares.erase(shares.begin() + static_cast<ptrdiff_t>(i));
      gone->Stop();
      spdlog::info("fsd: share '{}' deleted", name);
      return;
    }
  };
  for (const ShareConfig& c : config.shares) {
    auto opened = ctx.create(c);
    if (!opened.ok()) {
      spdlog::error("fsd: {}", opened.error().message);
      ctx.shares.clear();
      shares.clear();  // unmounts what was mounted
      server.Stop();
      return 1;
    }
  }

  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) shutdown("signal " + std::to_string(signo));
  });
  ioc.run();
  shares.clear();
  spdlog::info("fsd: stopped");
  return 0;
}
