// DeployLab is a scratch DPU for the deployer's integration tests: a root with the kubelet
// manifest and SNAP configuration directories, a sysfs nr_hugepages file, a /proc/meminfo,
// and wrapper executables for the stand-in tools (standins/: mlxconfig, crictl, kubelet,
// systemctl) that keep their state in the scratch directory. The stand-in kubelet runs as
// the test's child and starts the real dpustor-snap-sim. Nothing outside the scratch
// directory is touched. Not thread-safe.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/dpu/deploy/tools.h"
#include "harness/child_process.h"

namespace dpustor::testing {

class DeployLab {
 public:
  // `mem_total_kb`: the DPU's MemTotal; `device_type`: what mlxconfig reports.
  explicit DeployLab(const std::string& name, std::uint64_t mem_total_kb = 16ull << 20,
                     const std::string& device_type = "BlueField3");
  ~DeployLab();

  std::string Path(const std::string& relative) const { return dir_ / relative; }
  std::string socket() const { return Path("run/spdk.sock"); }
  std::string manifest() const { return Path("root/etc/kubelet.d/doca_snap.yaml"); }
  std::string init_conf() const { return Path("root/etc/nvda_snap/snap_rpc_init.conf"); }
  std::string nr_hugepages_path() const;

  agent::dpu::deploy::DeployTools Tools() const;
  // The agent's options for the same tools and paths.
  std::vector<std::string> AgentArgs() const;

  // The stand-in kubelet, with extra dpustor-snap-sim arguments (e.g. "--virtio-fs").
  void StartKubelet(const std::vector<std::string>& sim_args = {});
  void StopKubelet() { kubelet_.Stop(); }
  ChildProcess& kubelet() { return kubelet_; }
  // The kubelet's containers, as crictl's stand-in reads them.
  nlohmann::json Containers() const;
  int SnapPid() const;  // the running SNAP container's PID, -1 if none

  nlohmann::json Mlx() const;  // mlxconfig's state (current and next-boot values)
  void SetMlx(const nlohmann::json& state);
  // Next-boot values become current, as a host power cycle makes them.
  void PowerCycle();

  long NrHugepages() const;
  // SNAP's spdk_get_version on the lab socket; null when it does not answer.
  nlohmann::json SnapVersion() const;
  nlohmann::json SnapCall(const std::string& method, const nlohmann::json& params = nullptr) const;

  // PIDs of services the systemctl stand-in started; stopped by the destructor.
  int ServicePid() const;

 private:
  void WriteTool(const std::string& name, const std::string& script,
                 const std::vector<std::string>& args);

  TempDir dir_;
  ChildProcess kubelet_;
};

// "deploy.apply" params for a snap4 deployment of `version` with image `image`.
nlohmann::json Snap4Spec(const std::string& version, const std::string& image,
                         int ready_timeout_s = 20);

}  // namespace dpustor::testing
