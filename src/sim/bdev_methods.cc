// SPDK bdev methods, served by both dialects (SNAP embeds SPDK). Result shapes follow SPDK:
// creates return the bdev name, deletes return true, bdev_get_bdevs an array of bdev objects,
// bdev_get_iostat {tick_rate, ticks, bdevs:[...]}.
#include <nlohmann/json.hpp>

#include "sim/handler_support.h"
#include "sim/sim_methods.h"

namespace dpustor::sim {

namespace {

using json = nlohmann::json;
using rpc::Params;

const char* ProductName(BdevKind kind) {
  switch (kind) {
    case BdevKind::kNull:
      return "Null disk";
    case BdevKind::kMalloc:
      return "Malloc disk";
    case BdevKind::kRbd:
      return "Ceph Rbd Disk";
  }
  return "";
}

json BdevJson(const SimState& state, const Bdev& b) {
  bool is_rbd = b.kind == BdevKind::kRbd;
  json driver = json::object();
  if (is_rbd) {
    json rbd = {{"pool_name", b.pool_name}, {"rbd_name", b.rbd_name}};
    if (!b.cluster_name.empty()) rbd["cluster_name"] = b.cluster_name;
    driver["rbd"] = std::move(rbd);
  }
  return {
      {"name", b.name},
      {"aliases", json::array()},
      {"product_name", ProductName(b.kind)},
      {"block_size", b.block_size},
      {"num_blocks", b.num_blocks},
      {"uuid", b.uuid},
      {"assigned_rate_limits",
       {{"rw_ios_per_sec", 0},
        {"rw_mbytes_per_sec", 0},
        {"r_mbytes_per_sec", 0},
        {"w_mbytes_per_sec", 0}}},
      {"claimed", !state.BdevClaim(b.name).empty()},
      {"zoned", false},
      {"supported_io_types",
       {{"read", true},
        {"write", true},
        {"unmap", true},
        {"write_zeroes", true},
        {"flush", true},
        {"reset", true},
        {"nvme_admin", false},
        {"nvme_io", false}}},
      {"driver_specific", std::move(driver)},
  };
}

json IostatJson(const Bdev& b) {
  return {
      {"name", b.name},
      {"bytes_read", b.iostat.bytes_read},
      {"num_read_ops", b.iostat.num_read_ops},
      {"bytes_written", b.iostat.bytes_written},
      {"num_write_ops", b.iostat.num_write_ops},
      {"bytes_unmapped", b.iostat.bytes_unmapped},
      {"num_unmap_ops", b.iostat.num_unmap_ops},
      {"read_latency_ticks", 0},
      {"write_latency_ticks", 0},
      {"unmap_latency_ticks", 0},
  };
}

json ClusterJson(const RegisteredCluster& c) {
  json out = {{"cluster_name", c.name}};
  if (!c.config.user_id.empty()) out["user_id"] = c.config.user_id;
  if (!c.config.config_file.empty()) out["config_file"] = c.config.config_file;
  if (!c.config.key_file.empty()) out["key_file"] = c.config.key_file;
  if (!c.config.options.empty()) out["config_param"] = c.config.options;
  return out;
}

std::uint64_t DecodeNumBlocks(const Params& p) {
  auto n = p.Required<std::uint64_t>("num_blocks");
  if (n == 0) throw rpc::ParamError("num_blocks", "must be greater than 0");
  return n;
}

// A JSON object of string values (SPDK's config_param / config), as rados options.
std::map<std::string, std::string> DecodeOptions(const Params& p, std::string_view field) {
  std::map<std::string, std::string> out;
  auto v = p.Optional<json>(field);
  if (!v) return out;
  if (!v->is_object()) throw rpc::ParamError(field, "expected an object of strings");
  for (const auto& [key, value] : v->items()) {
    if (!value.is_string()) throw rpc::ParamError(field, "value of '" + key + "' must be a string");
    out[key] = value.get<std::string>();
  }
  return out;
}

json NullCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown(
      {"name", "num_blocks", "block_size", "uuid", "md_size", "dif_type", "dif_is_head_of_md"});
  auto name = p.Required<std::string>("name");
  auto num_blocks = DecodeNumBlocks(p);
  auto block_size = DecodeBlockSize(p, "block_size");
  auto uuid = p.Get<std::string>("uuid", "");
  p.Get<std::uint32_t>("md_size", 0);
  p.Get<std::uint32_t>("dif_type", 0);
  p.Get<bool>("dif_is_head_of_md", false);
  return Check(s.CreateNullBdev(name, num_blocks, block_size, uuid));
}

json MallocCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "num_blocks", "block_size", "uuid", "optimal_io_boundary", "md_size",
                   "md_interleave", "dif_type", "dif_is_head_of_md"});
  auto name = p.Get<std::string>("name", "");
  auto num_blocks = DecodeNumBlocks(p);
  auto block_size = DecodeBlockSize(p, "block_size");
  auto uuid = p.Get<std::string>("uuid", "");
  p.Get<std::uint32_t>("optimal_io_boundary", 0);
  p.Get<std::uint32_t>("md_size", 0);
  p.Get<bool>("md_interleave", false);
  p.Get<std::uint32_t>("dif_type", 0);
  p.Get<bool>("dif_is_head_of_md", false);
  return Check(s.CreateMallocBdev(name, num_blocks, block_size, uuid));
}

rpc::MethodTable<SimState>::SyncHandler DeleteOf(BdevKind kind) {
  return [kind](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"name"});
    Check(s.DeleteBdev(p.Required<std::string>("name"), kind));
    return true;
  };
}

json RbdRegisterCluster(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "user_id", "config_param", "config_file", "key_file", "core_mask"});
  auto name = p.Required<std::string>("name");
  RbdClusterConfig config;
  config.user_id = p.Get<std::string>("user_id", "");
  config.options = DecodeOptions(p, "config_param");
  config.config_file = p.Get<std::string>("config_file", "");
  config.key_file = p.Get<std::string>("key_file", "");
  p.Get<std::string>("core_mask", "");
  if (!config.options.empty() && !config.config_file.empty())
    throw rpc::ParamError("config_param", "give either 'config_param' or 'config_file'");
  Check(s.RegisterRbdCluster(name, config));
  return name;
}

json RbdUnregisterCluster(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name"});
  Check(s.UnregisterRbdCluster(p.Required<std::string>("name")));
  return true;
}

json RbdGetClustersInfo(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name"});
  if (auto name = p.Optional<std::string>("name")) {
    auto it = s.rbd_clusters().find(*name);
    if (it == s.rbd_clusters().end()) Check(Status(NoSuchDevice("rbd cluster " + *name)));
    return ClusterJson(it->second);
  }
  json out = json::array();
  for (const auto& [_, c] : s.rbd_clusters()) out.push_back(ClusterJson(c));
  return out;
}

json RbdCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown(
      {"name", "user_id", "pool_name", "rbd_name", "block_size", "config", "cluster_name", "uuid"});
  RbdBdevSpec spec;
  spec.name = p.Get<std::string>("name", "");
  spec.pool_name = p.Required<std::string>("pool_name");
  spec.rbd_name = p.Required<std::string>("rbd_name");
  spec.block_size = DecodeBlockSize(p, "block_size");
  spec.cluster_name = p.Get<std::string>("cluster_name", "");
  spec.uuid = p.Get<std::string>("uuid", "");
  spec.own_config.user_id = p.Get<std::string>("user_id", "");
  spec.own_config.options = DecodeOptions(p, "config");
  if (!spec.cluster_name.empty() && (p.Has("user_id") || p.Has("config")))
    throw rpc::ParamError("cluster_name",
                          "a registered cluster carries its own 'user_id' and 'config'");
  if (spec.pool_name.empty()) throw rpc::ParamError("pool_name", "must not be empty");
  if (spec.rbd_name.empty()) throw rpc::ParamError("rbd_name", "must not be empty");
  return Check(s.CreateRbdBdev(spec));
}

json GetBdevs(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "timeout"});
  p.Get<std::uint64_t>("timeout", 0);
  s.RefreshRbdSizes();
  if (auto name = p.Optional<std::string>("name")) {
    const Bdev* b = s.FindBdev(*name);
    if (b == nullptr) Check(Status(NoSuchDevice("bdev " + *name)));
    return json::array({BdevJson(s, *b)});
  }
  json out = json::array();
  for (const auto& [_, b] : s.bdevs()) out.push_back(BdevJson(s, b));
  return out;
}

json GetIostat(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "per_channel"});
  p.Get<bool>("per_channel", false);
  json bdevs = json::array();
  if (auto name = p.Optional<std::string>("name")) {
    const Bdev* b = s.FindBdev(*name);
    if (b == nullptr) Check(Status(NoSuchDevice("bdev " + *name)));
    bdevs.push_back(IostatJson(*b));
  } else {
    for (const auto& [_, b] : s.bdevs()) bdevs.push_back(IostatJson(b));
  }
  return {{"tick_rate", 1000000000}, {"ticks", s.ticks()}, {"bdevs", std::move(bdevs)}};
}

}  // namespace

void AddBdevMethods(SimMethodTable& t) {
  t.Add("bdev_null_create", "create a null bdev {name, num_blocks, block_size, uuid?}", NullCreate);
  t.Add("bdev_null_delete", "delete a null bdev {name}", DeleteOf(BdevKind::kNull));
  t.Add("bdev_malloc_create", "create a malloc bdev {name?, num_blocks, block_size, uuid?}",
        MallocCreate);
  t.Add("bdev_malloc_delete", "delete a malloc bdev {name}", DeleteOf(BdevKind::kMalloc));
  t.Add("bdev_rbd_register_cluster",
        "connect to a Ceph cluster {name, config_file? | config_param?, user_id?, key_file?}",
        RbdRegisterCluster);
  t.Add("bdev_rbd_unregister_cluster", "disconnect a registered Ceph cluster {name}",
        RbdUnregisterCluster);
  t.Add("bdev_rbd_get_clusters_info", "registered Ceph clusters {name?}", RbdGetClustersInfo);
  t.Add("bdev_rbd_create",
        "open an RBD image as a bdev {pool_name, rbd_name, block_size, name?, cluster_name?, "
        "user_id?, config?, uuid?}",
        RbdCreate);
  t.Add("bdev_rbd_delete", "close an rbd bdev {name}", DeleteOf(BdevKind::kRbd));
  t.Add("bdev_get_bdevs", "list bdevs {name?}", GetBdevs);
  t.Add("bdev_get_iostat", "per-bdev I/O counters {name?}", GetIostat);
}

}  // namespace dpustor::sim
