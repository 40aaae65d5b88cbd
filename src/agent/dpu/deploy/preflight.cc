#include "agent/dpu/deploy/preflight.h"

#include "agent/dpu/meminfo.h"

namespace dpustor::agent::dpu::deploy {

namespace {

std::string MiB(std::uint64_t bytes) {
  return std::to_string(bytes >> 20) + " MiB";
}

bool WantsVirtioFs(const DeploySpec& spec) {
  auto it = spec.firmware.find("VIRTIO_FS_EMULATION_ENABLE");
  return it != spec.firmware.end() && it->second != "0" && it->second != "False";
}

}  // namespace

Status CheckModel(const DeploySpec& spec, const std::string& device_type) {
  if (device_type.find("BlueField") == std::string::npos)
    return Error{0, "device type '" + device_type + "' is not a BlueField DPU"};
  if (WantsVirtioFs(spec) && device_type.find("BlueField3") == std::string::npos)
    return Error{0,
                 "virtio-fs emulation (VIRTIO_FS_EMULATION_ENABLE) needs a BlueField3; this "
                 "card is a " +
                     device_type};
  return {};
}

Status CheckMemory(const DeploySpec& spec, std::uint64_t mem_total_bytes) {
  std::uint64_t huge = static_cast<std::uint64_t>(spec.hugepages_2m) * kHugepageBytes;
  std::uint64_t limit = ParseQuantity(spec.memory_limit).value_or(0);
  std::uint64_t needed = huge + limit + kArmOsReserveBytes;
  if (needed <= mem_total_bytes) return {};
  return Error{0, std::to_string(spec.hugepages_2m) + " hugepages of 2 MiB (" + MiB(huge) +
                      ") + memory limit " + spec.memory_limit + " (" + MiB(limit) + ") + " +
                      MiB(kArmOsReserveBytes) + " kept for the Arm OS = " + MiB(needed) +
                      ", more than the DPU's " + MiB(mem_total_bytes) +
                      " (MemTotal): that would starve the Arm OS"};
}

Status Preflight(const DeploySpec& spec, const PreflightFacts& facts) {
  if (Status s = CheckModel(spec, facts.device_type); !s.ok()) return s;
  if (Status s = CheckMemory(spec, facts.mem_total_bytes); !s.ok()) return s;
  if (spec.flavour == Flavour::kSnap4) {
    if (!facts.kubelet_present)
      return Error{0, "kubelet is not installed (snap4 runs as a static pod)"};
    if (!facts.crictl_present)
      return Error{0, "crictl is not installed (needed to see the SNAP container)"};
  } else if (!facts.systemctl_present) {
    return Error{0, "systemctl is not installed (snap3 runs as the mlnx_snap service)"};
  }
  return {};
}

Result<std::uint64_t> MemTotalBytes(const std::string& meminfo_text) {
  std::string error;
  auto parsed = ParseMeminfo(meminfo_text, &error);
  if (!parsed) return Error{0, "meminfo: " + error};
  return (*parsed)["total_bytes"].get<std::uint64_t>();
}

}  // namespace dpustor::agent::dpu::deploy
