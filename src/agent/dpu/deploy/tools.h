// Where the deployer finds the DPU's system files and tools. Every path and executable is
// configurable, so the deployer runs unchanged on a DPU and, in tests, on a scratch root
// with stand-in tools. `root` prefixes the configuration directories (manifest and SNAP
// configuration); sys_root and proc_root are used as given (the agent's --sys-root and
// --proc-root); executables without a '/' are looked up in PATH.
// Plain values and file helpers; safe from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

struct DeployTools {
  std::string root;                               // "" = the real root
  std::string manifest_dir = "/etc/kubelet.d";    // the standalone kubelet's static pods
  std::string snap_conf_dir = "/etc/nvda_snap";   // host side of the container's /etc/nvda_snap
  std::string snap3_conf_dir = "/etc/mlnx_snap";  // where mlnx_snap reads its init RPCs
  std::string sys_root = "/sys";
  std::string proc_root = "/proc";
  std::string crictl = "crictl";
  std::string kubelet = "kubelet";
  std::string mlxconfig = "mlxconfig";
  std::string mst_device = "/dev/mst/mt41692_pciconf0";
  std::string systemctl = "systemctl";
  std::string snap3_service = "mlnx_snap";
  std::string snap_socket = "/var/tmp/spdk.sock";
  std::string state_dir = "/var/lib/dpustor-dpu-agent/deploy";  // state.json lives here
  std::chrono::milliseconds tool_timeout{60000};
  std::chrono::milliseconds poll_interval{500};

  std::string ManifestPath() const;           // <root><manifest_dir>/doca_snap.yaml
  std::string RpcInitPath(bool snap3) const;  // <root><conf dir>/snap_rpc_init.conf
  std::string NrHugepagesPath() const;        // <sys_root>/kernel/mm/hugepages/...2048kB/...
  std::string MeminfoPath() const;            // <proc_root>/meminfo
  std::string StatePath() const;              // <state_dir>/state.json
};

// The path of an executable: `name` itself when it holds a '/', else the first match in
// PATH; nullopt when there is no such executable file.
std::optional<std::string> FindExecutable(const std::string& name);

// Writes `text` to `path` so that readers see the old or the new content, never a mix:
// a temporary file in the same directory, fsync, rename, fsync of the directory. Creates
// missing parent directories.
Status WriteFileAtomic(const std::string& path, const std::string& text, int mode = 0644);
// The file's content; nullopt when it does not exist; an error when it cannot be read.
Result<std::optional<std::string>> ReadFileIfExists(const std::string& path);
// Removes the file; a missing file is fine.
Status RemoveFile(const std::string& path);

}  // namespace dpustor::agent::dpu::deploy
