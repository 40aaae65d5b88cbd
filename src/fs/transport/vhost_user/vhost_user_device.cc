#include "fs/transport/vhost_user/vhost_user_device.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"
#include "common/unix_listener.h"
#include "fs/transport/vhost_user/message_io.h"

namespace dpustor::fs::vhost_user {
namespace {

Error SocketError(const std::string& path, const std::string& what) {
  return Error{rpc::kFailed, "vhost-user socket " + path + ": " + what};
}

}  // namespace

VhostUserFsDevice::VhostUserFsDevice(VirtioFsHandler& handler, VhostUserOptions options)
    : handler_(handler), options_(std::move(options)) {}

VhostUserFsDevice::~VhostUserFsDevice() {
  Stop();
}

Status VhostUserFsDevice::Start() {
  const std::string& path = options_.socket_path;
  wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_.valid()) return SocketError(path, std::strerror(errno));
  auto listening = ListenUnix(path, 4);
  if (!listening.ok()) return SocketError(path, listening.error().message);
  listen_ = std::move(*listening);
  serving_.store(true);
  thread_ = std::thread([this] { Run(); });
  spdlog::info("vhost-user: listening on {} ({} request queues)", path,
               options_.session.request_queues);
  return {};
}

void VhostUserFsDevice::Stop() {
  if (thread_.joinable()) {
    stop_.store(true);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
    thread_.join();
  }
  if (listen_.valid()) {
    listen_.Reset();
    ::unlink(options_.socket_path.c_str());
  }
  serving_.store(false);
}

size_t VhostUserFsDevice::inflight() const {
  std::lock_guard lock(mu_);
  return session_ ? session_->inflight() : 0;
}

nlohmann::json VhostUserFsDevice::status() const {
  std::lock_guard lock(mu_);
  nlohmann::json j = {{"socket", options_.socket_path},
                      {"connected", session_ != nullptr},
                      {"sessions", sessions_.load()}};
  j["queues"] = session_ ? session_->status()["queues"] : nlohmann::json::array();
  return j;
}

void VhostUserFsDevice::Run() {
  while (!stop_.load()) {
    pollfd fds[2] = {{listen_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("vhost-user: poll: {}", std::strerror(errno));
      break;
    }
    if (fds[1].revents & POLLIN) break;
    if (!(fds[0].revents & POLLIN)) continue;
    UniqueFd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) continue;
    Serve(std::move(conn));
  }
  serving_.store(false);
}

void VhostUserFsDevice::Serve(UniqueFd conn) {
  // A front-end that stops in the middle of a message, or stops reading our replies, must
  // not hold this thread (and with it Stop()) forever: such a connection is dropped.
  const auto ms = options_.message_timeout.count();
  timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>(ms % 1000 * 1000)};
  ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  ::setsockopt(conn.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
  {
    std::lock_guard lock(mu_);
    session_ = std::make_unique<Session>(handler_, options_.session);
  }
  const uint64_t number = sessions_.fetch_add(1) + 1;
  spdlog::info("vhost-user: front-end {} connected on {}", number, options_.socket_path);
  std::string why = "front-end disconnected";
  while (!stop_.load()) {
    pollfd fds[3] = {{conn.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}, {listen_.get(), POLLIN, 0}};
    if (::poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      why = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (fds[1].revents & POLLIN) {
      why = "device stopping";
      break;
    }
    if (fds[2].revents & POLLIN) {
      // One driver per device, as with a PCI function: a second front-end is turned away.
      UniqueFd extra(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (extra.valid())
        spdlog::warn("vhost-user: {}: refused a second front-end", options_.socket_path);
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto msg = ReadMessage(conn.get());
    if (!msg.ok()) {
      if (msg.error().code != rpc::kConnectionClosed) why = msg.error().message;
      break;
    }
    const uint32_t request = msg->header.request;
    Session::Outcome out = session_->Handle(std::move(*msg));
    if (!out.status.ok())
      spdlog::warn("vhost-user: refused request {}: {}", request, out.status.error().message);
    if (out.reply) {
      if (Status s = WriteMessage(conn.get(), *out.reply); !s) {
        why = s.error().message;
        break;
      }
    }
    if (out.close) {
      why = "closed after refusing a request the front-end waits on";
      break;
    }
  }
  // Queues stop and drain before the handler hears that the driver is gone.
  session_->Stop();
  handler_.SessionEnded();
  {
    std::lock_guard lock(mu_);
    session_.reset();  // unmaps the guest's memory
  }
  spdlog::info("vhost-user: front-end {} on {} gone: {}", number, options_.socket_path, why);
}

}  // namespace dpustor::fs::vhost_user
