// The POSIX behaviour suite (posix_suite.h) on four setups, each a value of the
// parameterized PosixSuite:
//   native      a plain directory on the machine's own file system, no FUSE: proves the
//               suite's expectations are Linux's own;
//   local       dpustor-fsd serving `local:` of a temp directory on a FUSE mount;
//   nfs_vfs     dpustor-fsd serving `nfs://` of NFS-Ganesha exporting a temp directory;
//   nfs_cephfs  dpustor-fsd serving `nfs://` of NFS-Ganesha exporting CephFS of a real
//               single-node Ceph.
// A setup's daemons start once, at its first test, and stop when the program ends; CTest
// runs one entry per setup (--gtest_filter=*/SETUP), so a Ceph start is paid once.
// The whole program runs in private network + mount namespaces entered before main():
// Ganesha's rpcbind needs its own port 111, and the mounts vanish with the process.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>

#include <gtest/gtest.h>

#include "harness/child_process.h"
#include "harness/fsd_process.h"
#include "harness/lab.h"
#include "harness/nfs_lab.h"
#include "posix_suite.h"

namespace dpustor::testing {
namespace {

using namespace std::chrono_literals;
using posix::Unsupported;

// Before gtest (or anything else) starts a thread. The error, if any, fails the setups
// that need the namespaces.
std::string EnterNamespacesOnce() {
  ::umask(022);  // the suite's expectations about new files' modes assume it
  std::string error;
  if (!EnterPrivateNamespaces(&error)) return error.empty() ? "not permitted" : error;
  return "";
}
const std::string namespace_error = EnterNamespacesOnce();

// What each setup cannot do, declared once; the suite prints the reason wherever it
// relaxes an expectation because of it.
posix::Capabilities CapabilitiesOf(const std::string& setup) {
  posix::Capabilities c;  // native (ext4, tmpfs) and local: everything
  if (setup == "nfs_vfs" || setup == "nfs_cephfs") {
    c.xattr = Unsupported("NFSv3 has no extended attributes");
    c.fallocate = Unsupported("NFSv3 has no ALLOCATE (an NFSv4.2 operation)");
    c.punch_hole = Unsupported("NFSv3 has no DEALLOCATE (an NFSv4.2 operation)");
    c.seek_holes = Unsupported("NFSv3 has no SEEK (an NFSv4.2 operation)");
    c.rename_noreplace = Unsupported("NFSv3 RENAME always replaces the target");
    c.rename_exchange = Unsupported("NFSv3 has no atomic exchange of two names");
  }
  if (setup == "local") {
    // Inodes are kept by file handle: an open of a name whose inode was just replaced gets
    // ESTALE, which the kernel retries once with a fresh lookup; a second replace during
    // that retry still fails the open (rare; needs renames every few microseconds).
    c.open_racing_replace = Unsupported("a stale handle is retried only once by the kernel");
    // The daemon holds flocks on its own descriptors (other hosts' processes see them); the
    // kernel sends FUSE_RELEASE, which drops them, after close() has returned.
    c.release_at_close = Unsupported("FUSE_RELEASE is sent after close() returns");
  }
  if (setup == "nfs_vfs") {
    // The backend hides files it knows are open (silly rename), but NFSv3 keeps no open
    // state: an open still in flight when a rename removes the file reads ESTALE.
    // (CephFS through Ganesha keeps the inode alive for its own open handles.)
    c.open_racing_replace = Unsupported("NFSv3 has no open state on the server");
  }
  if (setup == "nfs_cephfs") {
    c.sparse_blocks = Unsupported("CephFS derives st_blocks from the file size");
    // The directory code is nfs_vfs's (the same dpustor NFS backend); CephFS's MDS behind
    // Ganesha creates and removes only a few hundred files a second on a 2-core machine.
    c.hundred_thousand = Unsupported("CephFS's MDS through Ganesha is too slow for the run time");
  }
  return c;
}

// One setup's daemons and directories. Members are destroyed in reverse order: the mount
// goes before the servers, the servers before the directories they use.
struct ShareSetup {
  std::string name;
  std::string error;  // non-empty: the setup could not start; every test fails with it
  posix::Context ctx;
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<CephLab> ceph;
  std::unique_ptr<NfsLab> nfs;
  std::unique_ptr<FsdProcess> fsd;
  FsdProcess::Options fsd_options;

  ~ShareSetup() { Stop(); }

  void Stop() {
    if (fsd) {
      int status = fsd->Stop();
      if (status != 0)
        std::cerr << name << ": dpustor-fsd exited with status " << status << " on SIGTERM\n";
      fsd.reset();
    }
    if (nfs) nfs->Stop();
    nfs.reset();
    if (ceph) ceph->Stop();
    ceph.reset();
  }

  bool StartFsd(std::string* err) {
    fsd = std::make_unique<FsdProcess>();
    return fsd->Start(fsd_options, *dir / "fsd.log", 30s, err);
  }

  // Unmount (dpustor-fsd exits on SIGTERM, flushing what it holds) and mount again.
  bool Remount(std::string* err) {
    if (!fsd) return true;
    int status = fsd->Stop();
    if (status != 0) {
      *err = "dpustor-fsd exited with status " + std::to_string(status) + " on SIGTERM:\n" +
             fsd->Log();
      return false;
    }
    return StartFsd(err);
  }
};

// Paths other users (1000, 1001) must be able to walk down to the mount.
bool OpenUp(const std::string& path, std::string* error) {
  if (::chmod(path.c_str(), 0755) == 0) return true;
  *error = "chmod " + path + ": " + strerror(errno);
  return false;
}

bool StartSetup(ShareSetup& s) {
  s.ctx.setup = s.name;
  s.ctx.caps = CapabilitiesOf(s.name);
  s.ctx.remount = [&s](std::string* err) { return s.Remount(err); };
  s.dir = std::make_unique<TempDir>("dpustor-fs-posix-" + s.name);
  std::string& err = s.error;
  if (!OpenUp(s.dir->path(), &err)) return false;
  if (s.name == "native") {
    s.ctx.root = *s.dir / "root";
    return ::mkdir(s.ctx.root.c_str(), 0755) == 0 && OpenUp(s.ctx.root, &err);
  }
  if (s.name != "local" && !namespace_error.empty()) {
    err = "cannot enter private namespaces (needed for Ganesha's rpcbind): " + namespace_error;
    return false;
  }
  s.fsd_options.mount_dir = *s.dir / "mnt";
  if (s.name == "local") {
    s.ctx.backing_root = *s.dir / "export";
    if (::mkdir(s.ctx.backing_root.c_str(), 0755) != 0 || !OpenUp(s.ctx.backing_root, &err))
      return false;
    s.fsd_options.backend_url = "local:" + s.ctx.backing_root;
  } else {
    NfsLab::Options nfs;
    if (s.name == "nfs_vfs") {
      nfs.export_dir = *s.dir / "export";
      if (::mkdir(nfs.export_dir.c_str(), 0755) != 0 || !OpenUp(nfs.export_dir, &err)) return false;
    } else {
      s.ceph = std::make_unique<CephLab>(*s.dir / "ceph", /*cephfs=*/true);
      if (!s.ceph->Start(120s, &err)) return false;
      nfs.ceph_conf = s.ceph->conf();
      nfs.ceph_keyring = s.ceph->keyring();
    }
    s.nfs = std::make_unique<NfsLab>(*s.dir / "nfs");
    if (!s.nfs->Start(nfs, 60s, &err)) return false;
    s.fsd_options.backend_url = s.nfs->Url(3);
  }
  if (!s.StartFsd(&err)) return false;
  s.ctx.root = s.fsd_options.mount_dir;
  return OpenUp(s.ctx.root, &err);
}

// Setups started so far, stopped at the end of the program by the environment.
std::map<std::string, std::unique_ptr<ShareSetup>>& Setups() {
  static auto* setups = new std::map<std::string, std::unique_ptr<ShareSetup>>();
  return *setups;
}

ShareSetup& GetSetup(const std::string& name) {
  auto& slot = Setups()[name];
  if (!slot) {
    slot = std::make_unique<ShareSetup>();
    slot->name = name;
    auto t0 = std::chrono::steady_clock::now();
    if (StartSetup(*slot)) {
      std::cout << "[   TIME   ] " << name << ": setup ready in "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()
                << " s (" << (slot->fsd ? slot->fsd_options.backend_url : slot->ctx.root) << ")\n";
    } else if (slot->error.empty()) {
      slot->error = name + ": setup failed";
    }
  }
  return *slot;
}

class StopSetups : public ::testing::Environment {
 public:
  void TearDown() override { Setups().clear(); }
};
[[maybe_unused]] ::testing::Environment* const stop_setups =
    ::testing::AddGlobalTestEnvironment(new StopSetups);

class PosixSuite : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    setup_ = &GetSetup(GetParam());
    ASSERT_TRUE(setup_->error.empty()) << setup_->error;
    std::string test = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    dir_ = setup_->ctx.root + "/" + test.substr(0, test.find('/'));
    ASSERT_EQ(::mkdir(dir_.c_str(), 0777), 0) << dir_ << ": " << strerror(errno);
    ASSERT_EQ(::chmod(dir_.c_str(), 0777), 0) << dir_ << ": " << strerror(errno);
  }
  const posix::Context& ctx() const { return setup_->ctx; }
  const std::string& dir() const { return dir_; }

 private:
  ShareSetup* setup_ = nullptr;
  std::string dir_;
};

#define POSIX_CASE(name)       \
  TEST_P(PosixSuite, name) {   \
    posix::name(ctx(), dir()); \
  }

POSIX_CASE(LookupAndStat)
POSIX_CASE(ChmodAndFchmod)
POSIX_CASE(ChownAsRoot)
POSIX_CASE(TruncateAndFtruncate)
POSIX_CASE(Utimens)
POSIX_CASE(MknodFifoAndDevice)
POSIX_CASE(MkdirAndRmdir)
POSIX_CASE(Unlink)
POSIX_CASE(OpenReadWrite)
POSIX_CASE(OpenFlags)
POSIX_CASE(StatfsAndStatvfs)
POSIX_CASE(FsyncAndClose)
POSIX_CASE(Readdir)
POSIX_CASE(Xattrs)
POSIX_CASE(Access)
POSIX_CASE(Fallocate)
POSIX_CASE(SeekDataAndHole)
POSIX_CASE(CopyFileRange)
POSIX_CASE(Flock)
POSIX_CASE(PosixLocks)
POSIX_CASE(OwnershipOfNewFiles)
POSIX_CASE(PermissionDenied)
POSIX_CASE(StickyDirectory)
POSIX_CASE(SetgidDirectory)
POSIX_CASE(HardLinks)
POSIX_CASE(Symlinks)
POSIX_CASE(RenameFileOverFile)
POSIX_CASE(RenameDirectories)
POSIX_CASE(RenameTypeMismatch)
POSIX_CASE(RenameAcrossDirectories)
POSIX_CASE(RenameToItself)
POSIX_CASE(RenameNoreplace)
POSIX_CASE(RenameExchange)
POSIX_CASE(SparseFileOver4GiB)
POSIX_CASE(ConcurrentWriters)
POSIX_CASE(HundredThousandFiles)
POSIX_CASE(DataSurvivesRemount)

INSTANTIATE_TEST_SUITE_P(Setups, PosixSuite,
                         ::testing::Values("native", "local", "nfs_vfs", "nfs_cephfs"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace dpustor::testing
