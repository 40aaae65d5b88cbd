#include "agent/dpu/links.h"

#include <utility>

namespace dpustor::agent::dpu {
namespace {

using nlohmann::json;

// The string at `key`, or null when it is absent or not a string.
json StringOrNull(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it != obj.end() && it->is_string()) return *it;
  return nullptr;
}

void CopyCounters(const json& stats, const char* direction, json& out) {
  const auto dir = stats.find(direction);
  if (dir == stats.end() || !dir->is_object()) return;
  for (const char* counter : {"bytes", "packets", "errors", "dropped"}) {
    const auto it = dir->find(counter);
    if (it != dir->end() && it->is_number_unsigned()) {
      out[std::string(direction) + "_" + counter] = it->get<std::uint64_t>();
    }
  }
}

std::optional<std::uint64_t> Counter(const json& link, const char* key) {
  const auto it = link.find(key);
  if (it == link.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

json Rate(std::optional<std::uint64_t> before, std::optional<std::uint64_t> now, double seconds) {
  if (!before || !now || *now < *before || seconds <= 0) return nullptr;
  return static_cast<double>(*now - *before) / seconds;
}

}  // namespace

std::optional<json> ParseIpLinks(std::string_view json_text, std::string* error) {
  const json doc = json::parse(json_text.begin(), json_text.end(), nullptr,
                               /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    if (error != nullptr) *error = "ip link: output is not valid JSON";
    return std::nullopt;
  }
  if (!doc.is_array()) {
    if (error != nullptr)
      *error = std::string("ip link: expected a JSON array, got ") + doc.type_name();
    return std::nullopt;
  }
  json links = json::array();
  for (const json& in : doc) {
    if (!in.is_object()) continue;
    const json name = StringOrNull(in, "ifname");
    if (name.is_null()) continue;
    json out = {{"name", name},
                {"state", StringOrNull(in, "operstate")},
                {"mac", StringOrNull(in, "address")},
                {"link_type", StringOrNull(in, "link_type")}};
    if (const auto mtu = in.find("mtu"); mtu != in.end() && mtu->is_number_unsigned()) {
      out["mtu"] = mtu->get<std::uint64_t>();
    }
    json flags = json::array();
    if (const auto f = in.find("flags"); f != in.end() && f->is_array()) {
      for (const json& flag : *f) {
        if (flag.is_string()) flags.push_back(flag);
      }
    }
    out["flags"] = std::move(flags);
    auto stats = in.find("stats64");
    if (stats == in.end() || !stats->is_object()) stats = in.find("stats");
    if (stats != in.end() && stats->is_object()) {
      CopyCounters(*stats, "rx", out);
      CopyCounters(*stats, "tx", out);
    }
    links.push_back(std::move(out));
  }
  return links;
}

json LinkRates::Sample(const json& links, Clock::time_point at) {
  json out = links.is_array() ? links : json::array();
  double seconds = 0;
  if (previous_at_) seconds = std::chrono::duration<double>(at - *previous_at_).count();
  std::map<std::string, Counters> current;
  for (json& link : out) {
    if (!link.is_object()) continue;
    Counters now{Counter(link, "rx_bytes"), Counter(link, "tx_bytes")};
    json rx = nullptr;
    json tx = nullptr;
    const auto name = link.find("name");
    if (name != link.end() && name->is_string()) {
      const std::string& key = name->get_ref<const std::string&>();
      if (const auto it = previous_.find(key); previous_at_ && it != previous_.end()) {
        rx = Rate(it->second.rx_bytes, now.rx_bytes, seconds);
        tx = Rate(it->second.tx_bytes, now.tx_bytes, seconds);
      }
      current[key] = now;
    }
    link["rx_bytes_per_s"] = std::move(rx);
    link["tx_bytes_per_s"] = std::move(tx);
  }
  previous_ = std::move(current);
  previous_at_ = at;
  return out;
}

void LinkRates::Reset() {
  previous_at_.reset();
  previous_.clear();
}

}  // namespace dpustor::agent::dpu
