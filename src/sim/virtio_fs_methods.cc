// DOCA SNAP's Virtio-fs service (BlueField-3, SNAP-4 dialect only), after the flow in
// shared/reference/snap-rpc.md: transport -> manager -> transport start -> fsdev ->
// device create -> device modify (bind to a VIRTIO_FS function) -> device start; queries and
// teardown. Served only by a simulator configured with virtio-fs (SimConfig::virtio_fs).
// Result shapes of the queries and the fsdev delete / list names are not documented by
// NVIDIA (unconfirmed); they are kept here, one handler each.
#include <nlohmann/json.hpp>

#include "sim/handler_support.h"
#include "sim/sim_methods.h"

namespace dpustor::sim {

namespace {

using json = nlohmann::json;
using rpc::Params;

json TransportCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"transport_name"});
  Check(s.CreateVirtioFsTransport(p.Required<std::string>("transport_name")));
  return true;
}

json TransportStart(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"transport_name"});
  Check(s.StartVirtioFsTransport(p.Get<std::string>("transport_name", "DOCA")));
  return true;
}

json ManagerCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"manager"});
  Check(s.CreateVirtioFsManager(p.Required<std::string>("manager")));
  return true;
}

json FunctionCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"manager"});
  return Check(s.CreateVirtioFsFunction(p.Required<std::string>("manager")))->vuid;
}

json FsdevNfsCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name", "server", "exportname", "nfs_version"});
  Fsdev f;
  f.kind = "nfs";
  f.name = p.Required<std::string>("name");
  f.server = p.Required<std::string>("server");
  f.exportname = p.Required<std::string>("exportname");
  if (p.Get<int>("nfs_version", 3) != 3) throw rpc::ParamError("nfs_version", "only 3");
  if (f.server.empty()) throw rpc::ParamError("server", "must not be empty");
  if (!f.exportname.starts_with("/")) throw rpc::ParamError("exportname", "must start with '/'");
  Check(s.CreateFsdev(f));
  return f.name;
}

json FsdevAioCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown(
      {"name", "root_path", "enable_xattr", "enable_writeback_cache", "max_write", "skip_rw"});
  Fsdev f;
  f.kind = "aio";
  f.name = p.Required<std::string>("name");
  f.root_path = p.Required<std::string>("root_path");
  p.Get<bool>("enable_xattr", false);
  p.Get<bool>("enable_writeback_cache", false);
  p.Get<bool>("skip_rw", false);
  p.Get<std::uint32_t>("max_write", 0);
  if (!f.root_path.starts_with("/")) throw rpc::ParamError("root_path", "must be absolute");
  Check(s.CreateFsdev(f));
  return f.name;
}

rpc::MethodTable<SimState>::SyncHandler FsdevDelete(std::string kind) {
  return [kind](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"name"});
    Check(s.DeleteFsdev(p.Required<std::string>("name"), kind));
    return true;
  };
}

json FsdevList(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"name"});
  auto only = p.Optional<std::string>("name");
  if (only && !s.fsdevs().count(*only)) Check(Status(NoSuchDevice("fsdev " + *only)));
  json out = json::array();
  for (const auto& [name, f] : s.fsdevs()) {
    if (only && *only != name) continue;
    json j = {{"name", name}, {"module", f.kind}};
    if (f.kind == "nfs") {
      j["server"] = f.server;
      j["exportname"] = f.exportname;
    } else {
      j["root_path"] = f.root_path;
    }
    out.push_back(std::move(j));
  }
  return out;
}

json DeviceCreate(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"transport_name", "dev_name", "tag", "fsdev", "num_request_queues", "queue_size",
                   "driver_platform"});
  VirtioFsDeviceSpec d;
  d.transport_name = p.Required<std::string>("transport_name");
  d.dev_name = p.Required<std::string>("dev_name");
  d.tag = p.Required<std::string>("tag");
  d.fsdev = p.Required<std::string>("fsdev");
  d.num_request_queues = p.Get<std::uint32_t>("num_request_queues", d.num_request_queues);
  d.queue_size = p.Get<std::uint32_t>("queue_size", d.queue_size);
  d.driver_platform = DecodeChoice(p, "driver_platform", {"x86_64", "aarch64"}, "x86_64");
  Check(s.CreateVirtioFsDevice(d));
  return d.dev_name;
}

json DeviceModify(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"dev_name", "manager", "vuid"});
  auto dev = p.Required<std::string>("dev_name");
  auto manager = p.Required<std::string>("manager");
  auto vuid = p.Required<std::string>("vuid");
  Check(s.ModifyVirtioFsDevice(dev, manager, vuid));
  return true;
}

// start / stop / hotplug / destroy: {dev_name} each.
rpc::MethodTable<SimState>::SyncHandler DeviceStep(Status (SimState::*step)(const std::string&)) {
  return [step](SimState& s, const json& params) -> json {
    Params p(params);
    p.RejectUnknown({"dev_name"});
    Check((s.*step)(p.Required<std::string>("dev_name")));
    return true;
  };
}

json DeviceJson(const std::string& name, const VirtioFsDevice& d) {
  return {{"dev_name", name},
          {"transport_name", d.spec.transport_name},
          {"tag", d.spec.tag},
          {"fsdev", d.spec.fsdev},
          {"num_request_queues", d.spec.num_request_queues},
          {"queue_size", d.spec.queue_size},
          {"driver_platform", d.spec.driver_platform},
          {"manager", d.manager},
          {"vuid", d.vuid},
          {"hotplugged", d.hotplugged},
          {"state", d.started ? "started" : "stopped"}};
}

json GetDevices(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"dev_name"});
  auto only = p.Optional<std::string>("dev_name");
  if (only && !s.virtio_fs_devices().count(*only))
    Check(Status(NoSuchDevice("virtio-fs device " + *only)));
  json out = json::array();
  for (const auto& [name, d] : s.virtio_fs_devices())
    if (!only || *only == name) out.push_back(DeviceJson(name, d));
  return out;
}

json GetStat(SimState& s, const json& params) {
  Params p(params);
  p.RejectUnknown({"dev_name"});
  auto dev = p.Required<std::string>("dev_name");
  auto it = s.virtio_fs_devices().find(dev);
  if (it == s.virtio_fs_devices().end()) Check(Status(NoSuchDevice("virtio-fs device " + dev)));
  const VirtioFsStat& st = it->second.stat;
  return {{"dev_name", dev},
          {"requests", st.requests},
          {"errors", st.errors},
          {"bytes_read", st.bytes_read},
          {"bytes_written", st.bytes_written}};
}

}  // namespace

void AddVirtioFsMethods(SimMethodTable& t) {
  t.Add("virtio_fs_transport_create", "{transport_name:\"DOCA\"}", TransportCreate);
  t.Add("virtio_fs_doca_manager_create", "{manager}", ManagerCreate);
  t.Add("virtio_fs_transport_start", "{transport_name?}", TransportStart);
  t.Add("virtio_fs_doca_function_create", "hot-plug a VIRTIO_FS PF {manager} -> vuid",
        FunctionCreate);
  t.Add("fsdev_nfs_create", "{name, server, exportname, nfs_version?} -> name", FsdevNfsCreate);
  t.Add("fsdev_nfs_delete", "{name}", FsdevDelete("nfs"));
  t.Add("fsdev_aio_create", "{name, root_path, ...} -> name", FsdevAioCreate);
  t.Add("fsdev_aio_delete", "{name}", FsdevDelete("aio"));
  t.Add("fsdev_get_fsdevs", "fsdevs {name?}", FsdevList);
  t.Add("virtio_fs_device_create",
        "{transport_name, dev_name, tag, fsdev, num_request_queues?, queue_size?, "
        "driver_platform?}",
        DeviceCreate);
  t.Add("virtio_fs_doca_device_modify", "bind to a function {dev_name, manager, vuid}",
        DeviceModify);
  t.Add("virtio_fs_device_start", "{dev_name}", DeviceStep(&SimState::StartVirtioFsDevice));
  t.Add("virtio_fs_device_stop", "{dev_name}", DeviceStep(&SimState::StopVirtioFsDevice));
  t.Add("virtio_fs_doca_device_hotplug", "{dev_name} (started)",
        DeviceStep(&SimState::HotplugVirtioFsDevice));
  t.Add("virtio_fs_device_destroy", "{dev_name} (stopped)",
        DeviceStep(&SimState::DestroyVirtioFsDevice));
  t.Add("virtio_fs_get_devices", "virtio-fs devices {dev_name?}", GetDevices);
  t.Add("virtio_fs_device_get_stat", "{dev_name} -> counters", GetStat);
}

}  // namespace dpustor::sim
