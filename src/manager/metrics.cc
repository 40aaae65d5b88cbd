// Prometheus text exposition (format 0.0.4) of the manager and the fleet.
#include <sstream>

#include <fmt/format.h>

#include "common/agent_protocol.h"
#include "manager/rest_api.h"
#include "manager/views.h"

namespace dpustor::manager {

namespace {

// Label values escape backslash, quote and newline, as the format requires.
std::string Escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

class MetricsWriter {
 public:
  void Family(const char* name, const char* type, const char* help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  void Sample(const char* name, std::initializer_list<std::pair<const char*, std::string>> labels,
              double value) {
    out_ << name;
    if (labels.size() > 0) {
      out_ << '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        out_ << (first ? "" : ",") << k << "=\"" << Escape(v) << '"';
        first = false;
      }
      out_ << '}';
    }
    out_ << ' ' << fmt::format("{}", value) << '\n';
  }
  // Emits only when the agent reported the value.
  void Optional(const char* name, std::initializer_list<std::pair<const char*, std::string>> labels,
                const json& value) {
    if (value.is_number()) Sample(name, labels, value.get<double>());
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string RenderMetrics(const RestContext& ctx) {
  MetricsWriter w;
  auto agents = ctx.inventory.List();
  const auto& st = ctx.agents.stats();

  w.Family("dpustor_manager_start_time_seconds", "gauge", "When the manager started.");
  w.Sample("dpustor_manager_start_time_seconds", {}, ctx.started_ms / 1000.0);
  w.Family("dpustor_agent_connections", "gauge", "Open agent connections.");
  w.Sample("dpustor_agent_connections", {}, static_cast<double>(st.connections_open.load()));
  w.Family("dpustor_agent_hellos_total", "counter", "agent.hello calls by outcome.");
  w.Sample("dpustor_agent_hellos_total", {{"outcome", "accepted"}}, st.hellos_accepted.load());
  w.Sample("dpustor_agent_hellos_total", {{"outcome", "refused"}}, st.hellos_refused.load());
  w.Family("dpustor_agent_requests_refused_total", "counter",
           "Agent requests answered with an error.");
  w.Sample("dpustor_agent_requests_refused_total", {}, st.requests_refused.load());
  w.Family("dpustor_agent_reports_total", "counter", "agent.report calls accepted.");
  w.Sample("dpustor_agent_reports_total", {}, static_cast<double>(ctx.inventory.reports_total()));
  w.Family("dpustor_store_flushes_total", "counter", "Batched writes to the store.");
  w.Sample("dpustor_store_flushes_total", {}, static_cast<double>(ctx.store.flushes()));

  w.Family("dpustor_agent_up", "gauge", "1 if the agent is online, 0 if unreachable.");
  for (const auto& r : agents)
    w.Sample("dpustor_agent_up", {{"agent", r.name}, {"kind", r.kind}}, r.state == kOnline);
  w.Family("dpustor_agent_last_report_seconds", "gauge", "Time of the agent's latest report.");
  for (const auto& r : agents)
    if (r.last_report_ms > 0)
      w.Sample("dpustor_agent_last_report_seconds", {{"agent", r.name}, {"kind", r.kind}},
               r.last_report_ms / 1000.0);

  std::vector<json> dpus;
  for (const auto& r : agents)
    if (r.kind == protocol::kKindDpu) dpus.push_back(DpuSummary(r));
  struct DpuGauge {
    const char* name;
    const char* key;
    const char* help;
  };
  const DpuGauge gauges[] = {
      {"dpustor_dpu_cpu_percent", "cpu_percent", "Arm core utilisation, percent."},
      {"dpustor_dpu_load1", "load1", "1-minute load average."},
      {"dpustor_dpu_memory_total_bytes", "memory_total_bytes", "DPU memory."},
      {"dpustor_dpu_memory_available_bytes", "memory_available_bytes", "DPU memory available."},
      {"dpustor_dpu_hugepages_total", "hugepages_total", "Hugepages configured."},
      {"dpustor_dpu_hugepages_free", "hugepages_free", "Hugepages free."},
      {"dpustor_dpu_temperature_max_celsius", "max_temperature_c", "Hottest sensor."},
      {"dpustor_dpu_snap_controllers", "controllers", "NVMe and virtio-blk controllers."},
      {"dpustor_dpu_snap_bdevs", "bdevs", "Block devices in SNAP."},
  };
  for (const auto& g : gauges) {
    w.Family(g.name, "gauge", g.help);
    for (const auto& d : dpus) w.Optional(g.name, {{"dpu", d["name"]}}, d[g.key]);
  }
  w.Family("dpustor_dpu_snap_up", "gauge", "1 if SNAP answered the agent's last probe.");
  for (const auto& d : dpus)
    if (d["snap"]["reachable"].is_boolean())
      w.Sample("dpustor_dpu_snap_up", {{"dpu", d["name"]}}, d["snap"]["reachable"].get<bool>());

  w.Family("dpustor_ceph_health", "gauge", "Ceph health: 0 OK, 1 WARN, 2 ERR.");
  w.Family("dpustor_ceph_osds_up", "gauge", "OSDs up.");
  w.Family("dpustor_ceph_used_bytes", "gauge", "Raw capacity used.");
  w.Family("dpustor_ceph_total_bytes", "gauge", "Raw capacity.");
  w.Family("dpustor_ceph_pool_stored_bytes", "gauge", "Bytes stored per pool.");
  for (const auto& r : agents) {
    if (r.kind != protocol::kKindCeph || !r.status) continue;
    json c = ClusterSummary(r);
    if (c["health"].is_string()) {
      auto h = c["health"].get<std::string>();
      w.Sample("dpustor_ceph_health", {{"cluster", r.name}},
               h == "HEALTH_OK"     ? 0
               : h == "HEALTH_WARN" ? 1
                                    : 2);
    }
    w.Optional("dpustor_ceph_osds_up", {{"cluster", r.name}}, c["osds_up"]);
    w.Optional("dpustor_ceph_used_bytes", {{"cluster", r.name}}, c["used_bytes"]);
    w.Optional("dpustor_ceph_total_bytes", {{"cluster", r.name}}, c["total_bytes"]);
    const json& pools = At(*r.status, "pools");
    if (pools.is_array())
      for (const auto& p : pools)
        if (At(p, "name").is_string())
          w.Optional("dpustor_ceph_pool_stored_bytes",
                     {{"cluster", r.name}, {"pool", p["name"].get<std::string>()}},
                     At(p, "stored_bytes"));
  }
  return w.str();
}

}  // namespace dpustor::manager
