// RbdOpener over the librados/librbd C API.
#include <rados/librados.h>
#include <rbd/librbd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/json_rpc.h"
#include "sim/rbd_opener.h"

namespace dpustor::sim {

Error RbdError(const std::string& what, int negative_errno) {
  int e = negative_errno < 0 ? -negative_errno : negative_errno;
  int code = rpc::kFailed;
  if (e == ENOENT) code = rpc::kNotFound;
  if (e == EEXIST) code = rpc::kAlreadyExists;
  if (e == EBUSY) code = rpc::kBusy;
  return Error{code, what + ": " + std::strerror(e) + " (" + std::to_string(-e) + ")"};
}

namespace {

class LibradosCluster : public RbdCluster, public std::enable_shared_from_this<LibradosCluster> {
 public:
  explicit LibradosCluster(rados_t cluster) : cluster_(cluster) {}
  ~LibradosCluster() override { rados_shutdown(cluster_); }

  Result<std::unique_ptr<RbdImage>> Open(const std::string& pool,
                                         const std::string& image) override;

 private:
  rados_t cluster_;
};

class LibrbdImage : public RbdImage {
 public:
  LibrbdImage(std::shared_ptr<LibradosCluster> cluster, rados_ioctx_t ioctx, rbd_image_t image)
      : cluster_(std::move(cluster)), ioctx_(ioctx), image_(image) {}
  ~LibrbdImage() override {
    rbd_close(image_);
    rados_ioctx_destroy(ioctx_);
  }

  Result<std::uint64_t> Size() override {
    std::uint64_t size = 0;
    // rbd_get_size refreshes the image header first when a watch notified a change.
    int r = rbd_get_size(image_, &size);
    if (r < 0) return RbdError("rbd_get_size", r);
    return size;
  }

 private:
  std::shared_ptr<LibradosCluster> cluster_;  // keeps the connection open while in use
  rados_ioctx_t ioctx_;
  rbd_image_t image_;
};

Result<std::unique_ptr<RbdImage>> LibradosCluster::Open(const std::string& pool,
                                                        const std::string& image) {
  rados_ioctx_t ioctx = nullptr;
  int r = rados_ioctx_create(cluster_, pool.c_str(), &ioctx);
  if (r < 0) return RbdError("rados_ioctx_create(pool '" + pool + "')", r);
  rbd_image_t img = nullptr;
  // Opened as SPDK opens it (read-write), which also registers the header watch that tells
  // librbd about resizes; a read-only open has no watch and would never see a new size. No
  // data is written, so the exclusive lock (taken on first write) is never requested.
  r = rbd_open(ioctx, image.c_str(), &img, nullptr);
  if (r < 0) {
    rados_ioctx_destroy(ioctx);
    return RbdError("rbd_open('" + pool + "/" + image + "')", r);
  }
  return std::unique_ptr<RbdImage>(new LibrbdImage(shared_from_this(), ioctx, img));
}

class LibrbdOpener : public RbdOpener {
 public:
  Result<std::shared_ptr<RbdCluster>> Connect(const RbdClusterConfig& config) override {
    std::string user = "client." + (config.user_id.empty() ? "admin" : config.user_id);
    rados_t cluster = nullptr;
    int r = rados_create2(&cluster, "ceph", user.c_str(), 0);
    if (r < 0) return RbdError("rados_create2", r);
    auto fail = [&](const std::string& what, int err) -> Error {
      rados_shutdown(cluster);
      return RbdError(what, err);
    };
    // Keep librados quiet on our stderr and off the host's admin-socket directory.
    rados_conf_set(cluster, "log_to_stderr", "false");
    rados_conf_set(cluster, "err_to_stderr", "false");
    rados_conf_set(cluster, "admin_socket", "");
    // As SPDK does: an explicit file, else explicit options alone, else the default search.
    if (!config.config_file.empty() || config.options.empty()) {
      r = rados_conf_read_file(cluster,
                               config.config_file.empty() ? nullptr : config.config_file.c_str());
      if (r < 0) {
        return fail("rados_conf_read_file(" +
                        (config.config_file.empty() ? std::string("default search path")
                                                    : "'" + config.config_file + "'") +
                        ")",
                    r);
      }
    }
    for (const auto& [key, value] : config.options) {
      r = rados_conf_set(cluster, key.c_str(), value.c_str());
      if (r < 0) return fail("rados_conf_set(" + key + ")", r);
    }
    if (!config.key_file.empty()) {
      r = rados_conf_set(cluster, "keyring", config.key_file.c_str());
      if (r < 0) return fail("rados_conf_set(keyring)", r);
    }
    std::string timeout = std::to_string(config.timeout.count());
    for (const char* option :
         {"client_mount_timeout", "rados_mon_op_timeout", "rados_osd_op_timeout"}) {
      r = rados_conf_set(cluster, option, timeout.c_str());
      if (r < 0) return fail(std::string("rados_conf_set(") + option + ")", r);
    }
    r = rados_connect(cluster);
    if (r < 0) return fail("rados_connect(" + user + ")", r);
    return std::shared_ptr<RbdCluster>(std::make_shared<LibradosCluster>(cluster));
  }
};

}  // namespace

std::unique_ptr<RbdOpener> MakeLibrbdOpener() {
  return std::make_unique<LibrbdOpener>();
}

}  // namespace dpustor::sim
