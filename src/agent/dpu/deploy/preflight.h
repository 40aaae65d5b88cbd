// Pre-flight checks of a SNAP deployment: that the card is a BlueField able to run what the
// spec asks, that the hugepages and the container's memory limit leave the Arm OS enough
// memory (too many hugepages on a 16 GB DPU bricks it), and that the tools the flavour needs
// are installed. Each check returns a Status whose message says, with the numbers, why it
// refuses. Pure functions over facts gathered by the caller; safe from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "agent/dpu/deploy/deploy_spec.h"
#include "common/status.h"

namespace dpustor::agent::dpu::deploy {

// What the Arm OS keeps beyond SNAP's hugepages and memory limit.
inline constexpr std::uint64_t kArmOsReserveBytes = std::uint64_t{2} << 30;
inline constexpr std::uint64_t kHugepageBytes = std::uint64_t{2} << 20;

struct PreflightFacts {
  std::string device_type;            // mlxconfig's "Device type:" (BlueField3, BlueField2)
  std::uint64_t mem_total_bytes = 0;  // /proc/meminfo MemTotal
  bool kubelet_present = false;
  bool crictl_present = false;
  bool systemctl_present = false;
};

// Refuses a card that is not a BlueField, and virtio-fs emulation on anything but a
// BlueField-3 (NVIDIA's virtio-fs exists only there).
Status CheckModel(const DeploySpec& spec, const std::string& device_type);
// Refuses when hugepages_2m * 2 MiB + memory_limit + 2 GiB > MemTotal.
Status CheckMemory(const DeploySpec& spec, std::uint64_t mem_total_bytes);
// All checks in order; the first refusal wins.
Status Preflight(const DeploySpec& spec, const PreflightFacts& facts);

// MemTotal from /proc/meminfo text, in bytes.
Result<std::uint64_t> MemTotalBytes(const std::string& meminfo_text);

}  // namespace dpustor::agent::dpu::deploy
