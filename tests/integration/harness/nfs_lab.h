// A real NFS-Ganesha server (NFSv3 + NFSv4, with its rpcbind) run as children of the test,
// exporting a local directory (FSAL_VFS) or a CephFS file system (FSAL_CEPH).
//
// Ganesha's NFSv3 needs rpcbind, and rpcbind always binds 0.0.0.0:111; so the test process
// first moves itself into a private network + mount namespace (EnterPrivateNamespaces),
// where loopback and /run are its own. Everything the test starts afterwards (Ceph,
// Ganesha, dpustor-fsd, the FUSE mount) lives in those namespaces and dies with them.
// Not thread-safe.
#pragma once

#include <chrono>
#include <string>

#include "harness/child_process.h"

namespace dpustor::testing {

// Moves the calling process into a new network and mount namespace: loopback up, mounts
// private, a tmpfs on /run. Must run while the process has a single thread (the tests
// call it from a static initializer). Returns false with `error` set when not permitted.
bool EnterPrivateNamespaces(std::string* error);

class NfsLab {
 public:
  struct Options {
    std::string export_dir;  // FSAL_VFS export of this directory, or
    std::string ceph_conf;   // FSAL_CEPH export of CephFS "cephfs" as client.admin
    std::string ceph_keyring;
    std::string export_path = "/export";  // the NFS path clients mount
  };

  explicit NfsLab(const std::string& dir) : dir_(dir) {}
  ~NfsLab() { Stop(); }

  // Starts rpcbind and ganesha.nfsd on free ports; true once both answer.
  bool Start(const Options& options, std::chrono::seconds timeout, std::string* error);
  void Stop();

  // Ganesha's PID (-1 when not running), for tests that freeze it (SIGSTOP) or crash it.
  pid_t ganesha_pid() const { return ganesha_.pid(); }
  int nfs_port() const { return nfs_port_; }
  int mount_port() const { return mount_port_; }
  // nfs://127.0.0.1/export?version=3&nfsport=N&mountport=M (explicit ports: no portmapper
  // lookups on the data path).
  std::string Url(int version = 3) const;

 private:
  std::string dir_;
  Options options_;
  ChildProcess rpcbind_;
  ChildProcess ganesha_;
  int nfs_port_ = 0;
  int mount_port_ = 0;
};

}  // namespace dpustor::testing
