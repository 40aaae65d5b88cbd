// Synthetic agent.report status documents shaped like the DPU agent's: the system part
// (cpu, memory with hugepages, load, uptime, temperatures, links with counters) and a SNAP
// part (emulation functions, NVMe subsystem/controllers, virtio-blk, bdevs, iostat), so the
// manager parses, stores and serialises the same structure it gets from real DPUs.
// Thread-safety: pure functions; a document is owned by its caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace dpustor::bench {

using json = nlohmann::json;

// A status document for agent `name`. With target_bytes == 0 it is the realistic DPU
// document (a few KiB); otherwise links are added (or, for targets below the realistic
// size, a minimal document is grown) until the compact JSON is at least target_bytes.
json MakeDpuStatus(const std::string& name, std::size_t target_bytes);

// Sets the per-agent identity fields of a document made by MakeDpuStatus.
void SetIdentity(json& doc, const std::string& name);

// Changes the numbers a real agent's next report would change (CPU, memory, counters,
// iostat, uptime), derived from `seq` (the agent's report number) and `noise`.
void VaryDpuStatus(json& doc, std::uint64_t seq, std::uint64_t noise);

}  // namespace dpustor::bench
