// NfsLab: rpcbind + NFS-Ganesha as children of the test, inside the test's private network
// and mount namespaces (see nfs_lab.h).
#include "harness/nfs_lab.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <sstream>

namespace dpustor::testing {
namespace {

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool LoopbackUp(std::string* error) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) {
    *error = Errno("socket");
    return false;
  }
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
  if (ok) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ok = ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
  }
  if (!ok) *error = Errno("bringing lo up");
  ::close(fd);
  return ok;
}

bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Ganesha's configuration: one export, NFSv3 + v4 over TCP on fixed ports, no NLM/RQUOTA,
// v4 state and recovery under the lab directory, no grace period (tests start cold).
std::string GaneshaConf(const std::string& dir, const NfsLab::Options& o, int nfs_port,
                        int mount_port, int nlm_port, int rquota_port) {
  std::ostringstream c;
  c << "NFS_CORE_PARAM {\n"
    << "  Protocols = 3, 4;\n"
    << "  NFS_Port = " << nfs_port << ";\n"
    << "  MNT_Port = " << mount_port << ";\n"
    << "  NLM_Port = " << nlm_port << ";\n"
    << "  Rquota_Port = " << rquota_port << ";\n"
    << "  Enable_NLM = false;\n"
    << "  Enable_RQUOTA = false;\n"
    << "  Enable_UDP = false;\n"
    << "  Mount_Path_Pseudo = true;\n"
    << "}\n"
    << "NFSV4 {\n"
    << "  Graceless = true;\n"
    << "  RecoveryRoot = \"" << dir << "/recovery\";\n"
    << "  Lease_Lifetime = 10;\n"
    << "}\n"
    << "NFS_KRB5 { Active_krb5 = false; }\n"
    << "EXPORT {\n"
    << "  Export_Id = 1;\n"
    << "  Path = \"" << (o.ceph_conf.empty() ? o.export_dir : std::string("/")) << "\";\n"
    << "  Pseudo = \"" << o.export_path << "\";\n"
    << "  Access_Type = RW;\n"
    << "  Squash = No_Root_Squash;\n"
    << "  SecType = sys;\n"
    << "  Transports = TCP;\n"
    << "  Protocols = 3, 4;\n";
  if (o.ceph_conf.empty()) {
    c << "  FSAL { Name = VFS; }\n";
  } else {
    c << "  FSAL { Name = CEPH; User_Id = \"admin\"; Filesystem = \"cephfs\"; }\n";
  }
  c << "}\n";
  if (!o.ceph_conf.empty()) c << "CEPH { Ceph_Conf = \"" << o.ceph_conf << "\"; }\n";
  return c.str();
}

}  // namespace

bool EnterPrivateNamespaces(std::string* error) {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    *error = Errno("unshare(CLONE_NEWNET|CLONE_NEWNS)");
    return false;
  }
  // Mounts made from now on (tmpfs on /run, FUSE mounts) stay in this namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    *error = Errno("making / private");
    return false;
  }
  if (!LoopbackUp(error)) return false;
  // rpcbind keeps its socket and lock under /run; Ganesha its pid and state under /var/run.
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    *error = Errno("mounting tmpfs on /run");
    return false;
  }
  std::error_code ec;
  std::filesystem::create_directories("/run/ganesha", ec);
  std::filesystem::create_directories("/run/rpcbind", ec);
  return true;
}

bool NfsLab::Start(const Options& options, std::chrono::seconds timeout, std::string* error) {
  options_ = options;
  std::error_code ec;
  std::filesystem::create_directories(dir_ + "/recovery", ec);
  // One rpcbind per network namespace: a second lab in the same test reuses the first's.
  if (!Accepts(111)) {
    rpcbind_ = ChildProcess({"rpcbind", "-f"}, dir_ + "/rpcbind.log");
    if (!WaitFor([&] { return Accepts(111) || !rpcbind_.running(); }, timeout) ||
        !rpcbind_.running()) {
      *error = "rpcbind did not start:\n" + rpcbind_.Log();
      return false;
    }
  }
  nfs_port_ = FreePort();
  mount_port_ = FreePort();
  while (mount_port_ == nfs_port_) mount_port_ = FreePort();
  std::string conf = dir_ + "/ganesha.conf";
  WriteFile(conf, GaneshaConf(dir_, options_, nfs_port_, mount_port_, FreePort(), FreePort()));
  std::string log = dir_ + "/ganesha.log";
  std::vector<std::string> argv = {"ganesha.nfsd",        "-F", "-f",       conf, "-L", log, "-p",
                                   dir_ + "/ganesha.pid", "-N", "NIV_EVENT"};
  if (!options_.ceph_keyring.empty()) {
    argv.insert(argv.begin(), {"env", "CEPH_KEYRING=" + options_.ceph_keyring});
  }
  ganesha_ = ChildProcess(argv, dir_ + "/ganesha.out");
  // Ganesha logs "NFS SERVER INITIALIZED" once every export is loaded and it serves.
  bool up = WaitFor(
      [&] {
        if (!ganesha_.running()) return true;
        return ReadFile(log).find("NFS SERVER INITIALIZED") != std::string::npos &&
               Accepts(nfs_port_) && Accepts(mount_port_);
      },
      timeout);
  if (!up || !ganesha_.running()) {
    *error = "ganesha did not start:\n" + ReadFile(log) + ganesha_.Log();
    Stop();
    return false;
  }
  return true;
}

void NfsLab::Stop() {
  ganesha_.Stop(std::chrono::seconds(10));
  rpcbind_.Stop(std::chrono::seconds(5));
}

std::string NfsLab::Url(int version) const {
  std::string url = "nfs://127.0.0.1" + options_.export_path +
                    "?version=" + std::to_string(version) + "&nfsport=" + std::to_string(nfs_port_);
  if (version == 3) url += "&mountport=" + std::to_string(mount_port_);
  return url;
}

}  // namespace dpustor::testing
