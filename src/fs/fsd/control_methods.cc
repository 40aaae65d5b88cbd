#include "fs/fsd/control_methods.h"

#include <string>

namespace dpustor::fs::fsd {

namespace {

using nlohmann::json;

json ShareJson(const ShareView& s) {
  json j = ShareConfigJson(s.config());
  j["state"] = s.serving() ? "serving" : "stopped";
  j["inflight"] = s.inflight();
  j["initialized"] = s.initialized();
  json device = s.device();
  if (!device.is_null()) j["device"] = std::move(device);
  return j;
}

const ShareView* Find(const ControlContext& ctx, const std::string& name) {
  for (const ShareView* s : ctx.shares)
    if (s->config().name == name) return s;
  return nullptr;
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

json ShareCreate(ControlContext& ctx, const json& params) {
  auto config = ParseShareConfig(params, "params");
  if (!config.ok()) throw rpc::CallError(rpc::kInvalidParams, config.error().message);
  if (const ShareView* existing = Find(ctx, config->name)) {
    if (existing->config() == *config) return ShareJson(*existing);  // already there
    throw rpc::CallError(rpc::kAlreadyExists,
                         "share '" + config->name + "' exists with a different config");
  }
  std::vector<const ShareConfig*> others;
  for (const ShareView* s : ctx.shares) others.push_back(&s->config());
  if (Status s = CheckShareConflicts(others, *config, "params"); !s.ok())
    throw rpc::CallError(rpc::kAlreadyExists, s.error().message);
  auto created = ctx.create(*config);
  if (!created.ok()) throw rpc::CallError(rpc::kFailed, created.error().message);
  return ShareJson(**created);
}

json ShareDelete(ControlContext& ctx, const json& params) {
  rpc::Params p(params);
  p.RejectUnknown({"name"});
  auto name = p.Required<std::string>("name");
  if (!Find(ctx, name)) throw rpc::CallError(rpc::kNotFound, "no share named '" + name + "'");
  ctx.remove(name);
  return {{"name", name}, {"deleted", true}};
}

json Version(ControlContext&, const json& params) {
  rpc::Params p(params);
  p.RejectUnknown({});
  json transports = {"fuse", "vhost-user"};
  if (DocaTransportBuilt()) transports.push_back("doca");
  return {{"program", "dpustor-fsd"}, {"version", DPUSTOR_VERSION}, {"transports", transports}};
}

}  // namespace

ControlMethodTable BuildControlMethodTable() {
  ControlMethodTable t;
  t.Add("fsd.shares", "every share: name, transport, mount, backend, state, counters", Shares);
  t.Add("fsd.stats", "per-opcode counts, errors and latency histograms (one share by name)", Stats);
  t.Add("fsd.share_create", "start serving a share (idempotent for the same config)", ShareCreate);
  t.Add("fsd.share_delete", "stop a share and wait for its requests", ShareDelete);
  t.Add("fsd.version", "program name, version and built transports", Version);
  return t;
}

}  // namespace dpustor::fs::fsd
