#include "snap/snap_fs_ops.h"

#include <algorithm>

#include "common/json_rpc.h"

namespace dpustor::snap {

namespace {

using json = nlohmann::json;

// DOCA SNAP's virtio-fs methods (shared/reference/snap-rpc.md). The fsdev list and the NFS
// fsdev delete are SPDK's fsdev naming, not confirmed on a DOCA SNAP image (unconfirmed).
struct VirtioFsMethods {
  const char* transport_create = "virtio_fs_transport_create";
  const char* manager_create = "virtio_fs_doca_manager_create";
  const char* transport_start = "virtio_fs_transport_start";
  const char* nfs_create = "fsdev_nfs_create";
  const char* nfs_delete = "fsdev_nfs_delete";  // (unconfirmed)
  const char* aio_delete = "fsdev_aio_delete";
  const char* list_fsdevs = "fsdev_get_fsdevs";  // (unconfirmed)
  const char* device_create = "virtio_fs_device_create";
  const char* device_modify = "virtio_fs_doca_device_modify";
  const char* device_start = "virtio_fs_device_start";
  const char* device_stop = "virtio_fs_device_stop";
  const char* device_destroy = "virtio_fs_device_destroy";
  const char* list_devices = "virtio_fs_get_devices";
  const char* device_stat = "virtio_fs_device_get_stat";
  const char* list_functions = "emulation_function_list";
  const char* transport = "DOCA";
  const char* driver_platform = "x86_64";
};
const VirtioFsMethods kVirtioFsMethods;

std::uint32_t U32(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_number_unsigned() ? it->get<std::uint32_t>() : 0;
}

// SPDK's wording for an object that already exists.
bool Exists(const Error& e) {
  return e.code == rpc::kAlreadyExists || e.message.find("File exists") != std::string::npos;
}

Error Named(const std::string& method, const Error& e) {
  return Error{e.code, method + ": " + e.message};
}

}  // namespace

SnapFsOps::SnapFsOps(SnapClient& client, std::string emulation_manager)
    : client_(client), manager_(std::move(emulation_manager)) {}

Result<json> SnapFsOps::Read(const std::string& method, const json& params) {
  auto r = client_.Call(method, params);
  if (!r.ok()) return Named(method, r.error());
  return r;
}

Result<json> SnapFsOps::Mutate(const std::string& method, const json& params) {
  ++mutations_;
  return Read(method, params);
}

Result<bool> SnapFsOps::Available() {
  auto methods = Read("rpc_get_methods");
  if (!methods.ok()) return methods.error();
  if (!methods->is_array()) return false;
  return std::find(methods->begin(), methods->end(), kVirtioFsMethods.device_create) !=
         methods->end();
}

Result<std::vector<SnapFsDevice>> SnapFsOps::ListDevices() {
  auto r = Read(kVirtioFsMethods.list_devices);
  if (!r.ok()) return r.error();
  std::vector<SnapFsDevice> out;
  for (const auto& d : r->is_array() ? *r : json::array()) {
    SnapFsDevice dev;
    dev.name = rpc::StringField(d, "dev_name");
    dev.tag = rpc::StringField(d, "tag");
    dev.fsdev = rpc::StringField(d, "fsdev");
    dev.num_request_queues = U32(d, "num_request_queues");
    dev.queue_size = U32(d, "queue_size");
    dev.vuid = rpc::StringField(d, "vuid");
    std::string state = rpc::StringField(d, "state");
    dev.started = state == "started" || state == "running";
    if (!dev.name.empty()) out.push_back(std::move(dev));
  }
  return out;
}

Result<std::vector<SnapFsdev>> SnapFsOps::ListFsdevs() {
  auto r = Read(kVirtioFsMethods.list_fsdevs);
  if (!r.ok()) return r.error();
  std::vector<SnapFsdev> out;
  for (const auto& f : r->is_array() ? *r : json::array()) {
    SnapFsdev fs{rpc::StringField(f, "name"), rpc::StringField(f, "module"),
                 rpc::StringField(f, "server"), rpc::StringField(f, "exportname")};
    if (!fs.name.empty()) out.push_back(std::move(fs));
  }
  return out;
}

Result<std::vector<SnapFsFunction>> SnapFsOps::ListFunctions() {
  auto r = Read(kVirtioFsMethods.list_functions, {{"all", true}});
  if (!r.ok()) return r.error();
  std::vector<SnapFsFunction> out;
  for (const auto& f : r->is_array() ? *r : json::array()) {
    if (rpc::StringField(f, "emulation_type") != "VIRTIO_FS") continue;
    auto pf = f.find("pf_index");
    if (pf == f.end() || !pf->is_number_integer()) continue;
    out.push_back({pf->get<int>(), rpc::StringField(f, "vuid"), rpc::StringField(f, "ctrl_id")});
  }
  return out;
}

Result<json> SnapFsOps::DeviceStat(const std::string& device) {
  return Read(kVirtioFsMethods.device_stat, {{"dev_name", device}});
}

Status SnapFsOps::EnsureTransport() {
  const auto& m = kVirtioFsMethods;
  for (auto [method, params] :
       {std::pair<const char*, json>{m.transport_create, {{"transport_name", m.transport}}},
        {m.manager_create, {{"manager", manager_}}},
        {m.transport_start, {{"transport_name", m.transport}}}}) {
    auto r = Mutate(method, params);
    if (!r.ok() && !Exists(r.error())) return r.error();
  }
  return Status::Ok();
}

Status SnapFsOps::CreateNfsFsdev(const std::string& name, const std::string& server,
                                 const std::string& exportname) {
  auto r = Mutate(kVirtioFsMethods.nfs_create,
                  {{"name", name}, {"server", server}, {"exportname", exportname}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::DeleteFsdev(const std::string& name, const std::string& module) {
  const char* method = module == "aio" ? kVirtioFsMethods.aio_delete : kVirtioFsMethods.nfs_delete;
  auto r = Mutate(method, {{"name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::CreateDevice(const std::string& name, const std::string& tag,
                               const std::string& fsdev, std::uint32_t num_request_queues,
                               std::uint32_t queue_size) {
  auto r = Mutate(kVirtioFsMethods.device_create,
                  {{"transport_name", kVirtioFsMethods.transport},
                   {"dev_name", name},
                   {"tag", tag},
                   {"fsdev", fsdev},
                   {"num_request_queues", num_request_queues},
                   {"queue_size", queue_size},
                   {"driver_platform", kVirtioFsMethods.driver_platform}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::BindDevice(const std::string& name, const std::string& vuid) {
  auto r = Mutate(kVirtioFsMethods.device_modify,
                  {{"dev_name", name}, {"manager", manager_}, {"vuid", vuid}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::StartDevice(const std::string& name) {
  auto r = Mutate(kVirtioFsMethods.device_start, {{"dev_name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::StopDevice(const std::string& name) {
  auto r = Mutate(kVirtioFsMethods.device_stop, {{"dev_name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

Status SnapFsOps::DestroyDevice(const std::string& name) {
  auto r = Mutate(kVirtioFsMethods.device_destroy, {{"dev_name", name}});
  if (!r.ok()) return r.error();
  return Status::Ok();
}

}  // namespace dpustor::snap
