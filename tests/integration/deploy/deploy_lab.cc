#include "deploy_lab.h"

#include <signal.h>
#include <sys/stat.h>

#include <filesystem>

#include "harness/lab.h"
#include "snap/snap_client.h"

namespace dpustor::testing {

using json = nlohmann::json;

namespace {

std::string Standin(const std::string& name) {
  return SourcePath("tests/integration/deploy/standins/" + name);
}

std::string Quote(const std::string& s) {
  return "'" + s + "'";
}

json BoolParam(bool current) {
  std::string v = current ? "True(1)" : "False(0)";
  return {{"default", "False(0)"}, {"current", v}, {"next", v}};
}

}  // namespace

DeployLab::DeployLab(const std::string& name, std::uint64_t mem_total_kb,
                     const std::string& device_type)
    : dir_("dpustor-deploy-" + name) {
  namespace fs = std::filesystem;
  for (const char* d : {"root/etc/kubelet.d", "root/etc/nvda_snap", "run", "logs", "bin", "state",
                        "proc", "sys/kernel/mm/hugepages/hugepages-2048kB"})
    fs::create_directories(Path(d));
  WriteFile(nr_hugepages_path(), "0\n");
  WriteFile(Path("proc/meminfo"),
            "MemTotal:       " + std::to_string(mem_total_kb) +
                " kB\nMemFree:        " + std::to_string(mem_total_kb / 2) +
                " kB\nMemAvailable:   " + std::to_string(mem_total_kb / 2) +
                " kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n");
  SetMlx({{"device", "/dev/mst/mt41692_pciconf0"},
          {"device_type", device_type},
          {"name", "900-9D3B6-00CV-AA0_Ax"},
          {"description", "NVIDIA " + device_type + " DPU (stand-in)"},
          {"params",
           {{"INTERNAL_CPU_MODEL",
             {{"default", "SEPARATED_HOST(0)"},
              {"current", "EMBEDDED_CPU(1)"},
              {"next", "EMBEDDED_CPU(1)"}}},
            {"NVME_EMULATION_ENABLE", BoolParam(true)},
            {"NVME_EMULATION_NUM_PF", {{"default", "1"}, {"current", "2"}, {"next", "2"}}},
            {"VIRTIO_BLK_EMULATION_ENABLE", BoolParam(false)},
            {"VIRTIO_FS_EMULATION_ENABLE", BoolParam(false)}}}});
  WriteTool("mlxconfig", "mlxconfig.py", {"--state", Path("mlxconfig.json")});
  WriteTool("crictl", "crictl.py", {"--state", Path("kubelet.json")});
  // Only checked to be present: the test runs the stand-in kubelet itself.
  WriteTool("kubelet", "kubelet.py", {});
  WriteTool("systemctl", "systemctl.py",
            {"--state", Path("systemctl.json"), "--sim", Bin("src/sim/dpustor-snap-sim"),
             "--socket", socket(), "--log", Path("logs/mlnx_snap.log"), "--init-conf",
             Path("root/etc/mlnx_snap/snap_rpc_init.conf")});
}

DeployLab::~DeployLab() {
  kubelet_.Stop();
  if (int pid = ServicePid(); pid > 0) ::kill(pid, SIGTERM);
}

std::string DeployLab::nr_hugepages_path() const {
  return Path("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
}

void DeployLab::WriteTool(const std::string& name, const std::string& script,
                          const std::vector<std::string>& args) {
  std::string text = "#!/bin/sh\nexec python3 " + Quote(Standin(script));
  for (const auto& a : args) text += " " + Quote(a);
  text += " \"$@\"\n";
  WriteFile(Path("bin/" + name), text);
  ::chmod(Path("bin/" + name).c_str(), 0755);
}

agent::dpu::deploy::DeployTools DeployLab::Tools() const {
  agent::dpu::deploy::DeployTools t;
  t.root = Path("root");
  t.sys_root = Path("sys");
  t.proc_root = Path("proc");
  t.crictl = Path("bin/crictl");
  t.kubelet = Path("bin/kubelet");
  t.mlxconfig = Path("bin/mlxconfig");
  t.systemctl = Path("bin/systemctl");
  t.snap_socket = socket();
  t.state_dir = Path("state/deploy");
  t.poll_interval = std::chrono::milliseconds(100);
  return t;
}

std::vector<std::string> DeployLab::AgentArgs() const {
  return {"--deploy-root", Path("root"),          "--sys-root",    Path("sys"),
          "--proc-root",   Path("proc"),          "--crictl",      Path("bin/crictl"),
          "--kubelet",     Path("bin/kubelet"),   "--mlxconfig",   Path("bin/mlxconfig"),
          "--systemctl",   Path("bin/systemctl"), "--snap-socket", socket(),
          "--state-dir",   Path("state")};
}

void DeployLab::StartKubelet(const std::vector<std::string>& sim_args) {
  std::vector<std::string> argv = {
      "python3",   Standin("kubelet.py"), "--manifest-dir", Path("root/etc/kubelet.d"),
      "--state",   Path("kubelet.json"),  "--sim",          Bin("src/sim/dpustor-snap-sim"),
      "--log-dir", Path("logs"),          "--poll",         "0.1"};
  for (const auto& a : sim_args) argv.push_back("--sim-arg=" + a);
  kubelet_ = ChildProcess(argv, Path("logs/kubelet.log"));
}

json DeployLab::Containers() const {
  if (!std::filesystem::exists(Path("kubelet.json"))) return json::array();
  json j = json::parse(ReadFile(Path("kubelet.json")), nullptr, false);
  return j.is_object() ? j["containers"] : json::array();
}

int DeployLab::SnapPid() const {
  for (const auto& c : Containers())
    if (c["state"] == "CONTAINER_RUNNING") return c["pid"].get<int>();
  return -1;
}

json DeployLab::Mlx() const {
  return json::parse(ReadFile(Path("mlxconfig.json")));
}
void DeployLab::SetMlx(const json& state) {
  WriteFile(Path("mlxconfig.json"), state.dump(2));
}

void DeployLab::PowerCycle() {
  json m = Mlx();
  for (auto& [key, p] : m["params"].items()) p["current"] = p["next"];
  SetMlx(m);
}

long DeployLab::NrHugepages() const {
  return std::stol(ReadFile(nr_hugepages_path()));
}

json DeployLab::SnapCall(const std::string& method, const json& params) const {
  snap::SnapClient client(socket(), std::chrono::seconds(2));
  auto r = client.Call(method, params);
  return r.ok() ? *r : json(nullptr);
}

json DeployLab::SnapVersion() const {
  return SnapCall("spdk_get_version");
}

int DeployLab::ServicePid() const {
  if (!std::filesystem::exists(Path("systemctl.json"))) return -1;
  json j = json::parse(ReadFile(Path("systemctl.json")), nullptr, false);
  return j.is_object() && j["pid"].is_number() ? j["pid"].get<int>() : -1;
}

json Snap4Spec(const std::string& version, const std::string& image, int ready_timeout_s) {
  return {{"name", "snap-bf3"},
          {"flavour", "snap4"},
          {"image", image},
          {"version", version},
          {"cpu_mask", "0xf"},
          {"hugepages_2m", 512},
          {"memory_request", "1Gi"},
          {"memory_limit", "2Gi"},
          {"rpc_init", {"bdev_null_create Null0 64 512"}},
          {"firmware", {{"NVME_EMULATION_ENABLE", "1"}, {"NVME_EMULATION_NUM_PF", "2"}}},
          {"ready_timeout_s", ready_timeout_s}};
}

}  // namespace dpustor::testing
