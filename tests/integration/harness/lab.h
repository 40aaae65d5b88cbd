// Pieces of the local lab that integration tests start as their own children: a real
// single-node Ceph (scripts/lab/ceph.sh), and dpustor's own daemons from the build tree.
// Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/process.h"
#include "harness/child_process.h"

namespace dpustor::testing {

// Path of a program built by this project, e.g. Bin("src/manager/dpustor-manager").
std::string Bin(const std::string& relative);
std::string SourcePath(const std::string& relative);

class CephLab {
 public:
  // `cephfs`: also run an MDS and create the CephFS volume "cephfs" (ceph.sh --cephfs).
  explicit CephLab(const std::string& dir, bool cephfs = false) : dir_(dir), cephfs_(cephfs) {}
  // The script needs its long grace to stop its daemons; a short one would orphan them.
  ~CephLab() { Stop(); }
  // Starts the cluster and waits until it is healthy; false (with the log) on failure.
  bool Start(std::chrono::seconds timeout, std::string* error);
  void Stop() {
    if (script_.pid() > 0) script_.Stop(std::chrono::seconds(30));
  }

  const std::string& conf() const { return env_.at("CEPH_CONF"); }
  const std::string& keyring() const { return env_.at("CEPH_KEYRING"); }
  const std::string& fsid() const { return env_.at("CEPH_FSID"); }

  // Runs `ceph ARGS` or `rbd ARGS` as client.admin against this cluster.
  Result<ProcessResult> Ceph(std::vector<std::string> args) const;
  Result<ProcessResult> Rbd(std::vector<std::string> args) const;

 private:
  std::string dir_;
  bool cephfs_ = false;
  ChildProcess script_;
  std::map<std::string, std::string> env_;
};

// One single-node Ceph for a whole GoogleTest suite (a start takes ~10 s): Start() from
// SetUpTestSuite, Stop() from TearDownTestSuite, and `ASSERT_TRUE(suite.ok()) <<
// suite.error()` in SetUp, so a Ceph that does not come up fails the tests, never skips them.
class CephSuite {
 public:
  // Starts Ceph in a new temp dir named after `prefix`, then creates each of `rbd_pools`
  // (8 PGs) and initialises it for RBD.
  void Start(const std::string& prefix, const std::vector<std::string>& rbd_pools = {});
  void Stop();
  bool ok() const { return lab_ != nullptr && error_.empty(); }
  const std::string& error() const { return error_; }
  CephLab* lab() const { return lab_.get(); }
  const TempDir& dir() const { return *dir_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<CephLab> lab_;
  std::string error_;
};

// GET on the manager's REST API; the parsed body, or null on any failure.
nlohmann::json GetJson(const std::string& server, const std::string& path);

}  // namespace dpustor::testing
