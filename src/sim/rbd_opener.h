// RbdOpener is how the simulator reaches Ceph: it connects to a cluster and opens RBD images
// so that a bdev_rbd_create fails here exactly when it would fail on a BlueField (wrong pool,
// image, key or config). The state model talks only to these interfaces, never to librados,
// so it can be tested without Ceph; librbd_opener.cc is the real implementation.
//
// Ownership: an RbdImage keeps its RbdCluster alive (the connection must outlive its images).
// Thread-safety: none; the simulator calls these from its one state strand. Calls block (a
// connect is bounded by the timeouts given in RbdClusterConfig).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace dpustor::sim {

// As SPDK reads it: `config_file` if given; else only `options` if any are given; else
// librados' default search (/etc/ceph/ceph.conf, ...). `options` are applied after the file.
struct RbdClusterConfig {
  std::string config_file;
  std::map<std::string, std::string> options;  // rados_conf_set key -> value
  std::string user_id;                         // without "client."; empty: "admin"
  std::string key_file;                        // keyring path; empty: what the config says
  std::chrono::seconds timeout{5};             // mount, mon and osd operation timeouts
};

class RbdImage {
 public:
  virtual ~RbdImage() = default;
  // Current size in bytes, re-read from the image header (so a resize is seen).
  virtual Result<std::uint64_t> Size() = 0;
};

class RbdCluster {
 public:
  virtual ~RbdCluster() = default;
  // Opens `image` in `pool` (watching its header, never writing). Errors carry librbd's
  // errno text.
  virtual Result<std::unique_ptr<RbdImage>> Open(const std::string& pool,
                                                 const std::string& image) = 0;
};

class RbdOpener {
 public:
  virtual ~RbdOpener() = default;
  // Connects to a cluster; the connection stays open for as long as the result lives.
  virtual Result<std::shared_ptr<RbdCluster>> Connect(const RbdClusterConfig& config) = 0;
};

// The librados/librbd implementation.
std::unique_ptr<RbdOpener> MakeLibrbdOpener();

// Maps a negative errno from librados/librbd to a dpustor error: ENOENT -> kNotFound,
// EEXIST -> kAlreadyExists, EBUSY -> kBusy, anything else -> kFailed. The message is
// "<what>: <strerror> (<errno>)".
Error RbdError(const std::string& what, int negative_errno);

}  // namespace dpustor::sim
