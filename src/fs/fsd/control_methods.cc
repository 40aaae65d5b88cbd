#include "fs/fsd/control_methods.h"

#include <string>

namespace dpustor::fs::fsd {

namespace {

using nlohmann::json;

json ShareJson(const ShareView& s) {
  const ShareConfig& c = s.config();
  return {{"name", c.name},
          {"transport", c.transport},
          {"mount", c.mount},
          {"backend", c.backend},
          {"state", s.serving() ? "serving" : "stopped"},
          {"read_only", c.read_only},
          {"writeback", c.writeback},
          {"threads", c.threads},
          {"max_pages", c.max_pages},
          {"inflight", s.inflight()},
          {"initialized", s.initialized()}};
}

// Sums "count" and "errors" over the per-opcode objects of OpStats::ToJson().
json Totals(const json& ops) {
  uint64_t count = 0, errors = 0;
  for (const auto& [_, op] : ops.items()) {
    if (!op.is_object()) continue;
    count += op.value("count", uint64_t{0});
    errors += op.value("errors", uint64_t{0});
  }
  return {{"count", count}, {"errors", errors}};
}

json Shares(ControlContext& ctx, const json& params) {
  rpc::Params p(params);
  p.RejectUnknown({});
  json shares = json::array();
  for (const ShareView* s : ctx.shares) shares.push_back(ShareJson(*s));
  return shares;
}

json Stats(ControlContext& ctx, const json& params) {
  rpc::Params p(params);
  p.RejectUnknown({"name"});
  auto name = p.Optional<std::string>("name");
  json shares = json::array();
  uint64_t count = 0, errors = 0;
  for (const ShareView* s : ctx.shares) {
    if (name && s->config().name != *name) continue;
    json ops = s->op_stats();
    json totals = Totals(ops);
    count += totals["count"].get<uint64_t>();
    errors += totals["errors"].get<uint64_t>();
    shares.push_back({{"name", s->config().name},
                      {"inflight", s->inflight()},
                      {"ops", std::move(ops)},
                      {"totals", std::move(totals)}});
  }
  if (name && shares.empty())
    throw rpc::CallError(rpc::kNotFound, "no share named '" + *name + "'");
  return {{"shares", std::move(shares)}, {"totals", {{"count", count}, {"errors", errors}}}};
}

json Version(ControlContext&, const json& params) {
  rpc::Params p(params);
  p.RejectUnknown({});
  return {{"program", "dpustor-fsd"}, {"version", DPUSTOR_VERSION}, {"transports", {"fuse"}}};
}

}  // namespace

ControlMethodTable BuildControlMethodTable() {
  ControlMethodTable t;
  t.Add("fsd.shares", "every share: name, transport, mount, backend, state, counters", Shares);
  t.Add("fsd.stats", "per-opcode counts, errors and latency histograms (one share by name)", Stats);
  t.Add("fsd.version", "program name, version and built transports", Version);
  return t;
}

}  // namespace dpustor::fs::fsd
