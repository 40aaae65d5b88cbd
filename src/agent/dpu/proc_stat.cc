#include "agent/dpu/proc_stat.h"

#include "agent/dpu/text_fields.h"

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>
#include <vector>

namespace dpustor::agent::dpu {
namespace {

double Percent(std::uint64_t part, std::uint64_t whole) {
  const double p = 100.0 * static_cast<double>(part) / static_cast<double>(whole);
  return std::round(p * 100.0) / 100.0;
}

// Field-wise now - before; false when any counter went backwards.
bool Delta(const CpuTimes& before, const CpuTimes& now, CpuTimes* out) {
  const std::array<std::uint64_t CpuTimes::*, 8> fields = {
      &CpuTimes::user,   &CpuTimes::nice, &CpuTimes::system,  &CpuTimes::idle,
      &CpuTimes::iowait, &CpuTimes::irq,  &CpuTimes::softirq, &CpuTimes::steal};
  for (auto field : fields) {
    if (now.*field < before.*field) return false;
    out->*field = now.*field - before.*field;
  }
  return true;
}

// Busy percentage over a delta, or null when no time elapsed.
nlohmann::json BusyPercent(const CpuTimes& d) {
  const std::uint64_t total = d.Total();
  if (total == 0) return nullptr;
  return Percent(total - d.Idle(), total);
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view text, std::string* error) {
  ProcStat stat;
  bool have_aggregate = false;
  std::size_t line_no = 0;
  for (const std::string_view line : SplitLines(text)) {
    ++line_no;
    if (line.substr(0, 3) != "cpu") continue;

    const auto fields = SplitWhitespace(line);
    const std::string where = "proc/stat line " + std::to_string(line_no) + ": ";
    const std::string_view name = fields[0];
    if (fields.size() < 5) {
      SetError(error, where + "'" + std::string(name) + "' has fewer than 4 counters");
      return std::nullopt;
    }
    CpuTimes t;
    std::array<std::uint64_t*, 8> slots = {&t.user,   &t.nice, &t.system,  &t.idle,
                                           &t.iowait, &t.irq,  &t.softirq, &t.steal};
    for (std::size_t i = 1; i < fields.size(); ++i) {
      const auto v = ParseNumber<std::uint64_t>(fields[i]);
      if (!v) {
        SetError(error, where + "non-numeric counter '" + std::string(fields[i]) + "'");
        return std::nullopt;
      }
      if (i - 1 < slots.size()) *slots[i - 1] = *v;  // guest, guest_nice: part of user/nice
    }
    if (name == "cpu") {
      if (have_aggregate) {
        SetError(error, where + "duplicate aggregate 'cpu' line");
        return std::nullopt;
      }
      stat.aggregate = t;
      have_aggregate = true;
      continue;
    }
    const auto index = ParseNumber<int>(name.substr(3));
    if (!index || *index < 0) {
      SetError(error, where + "malformed cpu name '" + std::string(name) + "'");
      return std::nullopt;
    }
    if (!stat.cpus.emplace(*index, t).second) {
      SetError(error, where + "duplicate '" + std::string(name) + "'");
      return std::nullopt;
    }
  }
  if (!have_aggregate) {
    SetError(error, "proc/stat: no aggregate 'cpu' line");
    return std::nullopt;
  }
  return stat;
}

nlohmann::json CpuUsage::Sample(const ProcStat& now) {
  nlohmann::json out = {{"cores", now.cpus.size()},
                        {"usage_percent", nullptr},
                        {"breakdown", nullptr},
                        {"per_cpu", nullptr}};
  CpuTimes d;
  if (previous_ && Delta(previous_->aggregate, now.aggregate, &d) && d.Total() > 0) {
    const std::uint64_t total = d.Total();
    out["usage_percent"] = BusyPercent(d);
    out["breakdown"] = {{"user", Percent(d.user, total)},       {"nice", Percent(d.nice, total)},
                        {"system", Percent(d.system, total)},   {"idle", Percent(d.idle, total)},
                        {"iowait", Percent(d.iowait, total)},   {"irq", Percent(d.irq, total)},
                        {"softirq", Percent(d.softirq, total)}, {"steal", Percent(d.steal, total)}};
    nlohmann::json per_cpu = nlohmann::json::array();
    for (const auto& [index, times] : now.cpus) {
      nlohmann::json usage = nullptr;
      const auto it = previous_->cpus.find(index);
      CpuTimes cd;
      if (it != previous_->cpus.end() && Delta(it->second, times, &cd)) usage = BusyPercent(cd);
      per_cpu.push_back({{"cpu", index}, {"usage_percent", std::move(usage)}});
    }
    out["per_cpu"] = std::move(per_cpu);
  }
  previous_ = now;
  return out;
}

}  // namespace dpustor::agent::dpu
