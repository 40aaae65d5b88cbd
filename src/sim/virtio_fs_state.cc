// SimState's virtio-fs part: DOCA SNAP's Virtio-fs service on a BlueField-3 (transport,
// emulation managers, SPDK fsdevs, virtio-fs devices bound to VIRTIO_FS functions), with the
// checks a real SNAP makes before it changes anything.
#include <algorithm>

#include "common/json_rpc.h"
#include "sim/sim_state.h"

namespace dpustor::sim {

namespace {

constexpr std::size_t kMaxTagBytes = 36;  // virtio-fs config space: tag[36]

}  // namespace

Status SimState::CreateVirtioFsTransport(const std::string& name) {
  // DOCA SNAP has one virtio-fs transport, named "DOCA".
  if (name != "DOCA") return InvalidValue("transport_name", "unknown transport '" + name + "'");
  if (fs_transports_.count(name)) return AlreadyExists("transport " + name);
  fs_transports_[name] = false;
  return Status::Ok();
}

Status SimState::CreateVirtioFsManager(const std::string& manager) {
  if (manager != config_.emulation_manager) return NoSuchDevice("emulation manager " + manager);
  if (std::find(fs_managers_.begin(), fs_managers_.end(), manager) != fs_managers_.end())
    return AlreadyExists("virtio-fs manager " + manager);
  fs_managers_.push_back(manager);
  return Status::Ok();
}

Status SimState::StartVirtioFsTransport(const std::string& name) {
  auto it = fs_transports_.find(name);
  if (it == fs_transports_.end()) return NoSuchDevice("transport " + name);
  if (fs_managers_.empty())
    return InvalidValue("transport_name", "transport " + name + " has no emulation manager");
  if (it->second) return AlreadyExists("transport " + name + " is already started");
  it->second = true;
  return Status::Ok();
}

Result<const EmulationFunction*> SimState::CreateVirtioFsFunction(const std::string& manager) {
  if (std::find(fs_managers_.begin(), fs_managers_.end(), manager) == fs_managers_.end())
    return NoSuchDevice("virtio-fs manager " + manager);
  return &HotplugFunction(FunctionType::kVirtioFs);
}

Status SimState::CreateFsdev(Fsdev fsdev) {
  if (fsdev.name.empty()) return InvalidValue("name", "must not be empty");
  if (fsdevs_.count(fsdev.name)) return AlreadyExists("fsdev " + fsdev.name);
  std::string name = fsdev.name;
  fsdevs_[name] = std::move(fsdev);
  return Status::Ok();
}

Status SimState::DeleteFsdev(const std::string& name, const std::string& kind) {
  auto it = fsdevs_.find(name);
  if (it == fsdevs_.end() || it->second.kind != kind) return NoSuchDevice("fsdev " + name);
  for (const auto& [dev, d] : fs_devices_)
    if (d.spec.fsdev == name) return Busy("fsdev " + name + " is used by virtio-fs device " + dev);
  fsdevs_.erase(it);
  return Status::Ok();
}

Status SimState::CreateVirtioFsDevice(const VirtioFsDeviceSpec& spec) {
  if (!fs_transports_.count(spec.transport_name))
    return NoSuchDevice("transport " + spec.transport_name);
  if (spec.dev_name.empty()) return InvalidValue("dev_name", "must not be empty");
  if (spec.tag.empty() || spec.tag.size() > kMaxTagBytes)
    return InvalidValue("tag", "must be 1-36 bytes");
  if (spec.num_request_queues < 1 || spec.num_request_queues > 64)
    return InvalidValue("num_request_queues", "must be 1-64");
  if (spec.queue_size < 16 || spec.queue_size > 4096 ||
      (spec.queue_size & (spec.queue_size - 1)) != 0)
    return InvalidValue("queue_size", "must be a power of two from 16 to 4096");
  if (fs_devices_.count(spec.dev_name)) return AlreadyExists("virtio-fs device " + spec.dev_name);
  if (!fsdevs_.count(spec.fsdev)) return NoSuchDevice("fsdev " + spec.fsdev);
  for (const auto& [dev, d] : fs_devices_)
    if (d.spec.fsdev == spec.fsdev)
      return Busy("fsdev " + spec.fsdev + " is used by virtio-fs device " + dev);
  VirtioFsDevice device;
  device.spec = spec;
  fs_devices_[spec.dev_name] = std::move(device);
  return Status::Ok();
}

Status SimState::ModifyVirtioFsDevice(const std::string& dev_name, const std::string& manager,
                                      const std::string& vuid) {
  auto it = fs_devices_.find(dev_name);
  if (it == fs_devices_.end()) return NoSuchDevice("virtio-fs device " + dev_name);
  if (std::find(fs_managers_.begin(), fs_managers_.end(), manager) == fs_managers_.end())
    return NoSuchDevice("virtio-fs manager " + manager);
  VirtioFsDevice& d = it->second;
  if (d.started) return Busy("virtio-fs device " + dev_name + " is started; stop it first");
  if (d.vuid == vuid) return Status::Ok();
  auto fn = FreeFunction(vuid, FunctionType::kVirtioFs);
  if (!fn.ok()) return fn.error();
  if (EmulationFunction* old = MutableFunctionByVuid(d.vuid)) old->controller.clear();
  (*fn)->controller = dev_name;
  d.vuid = vuid;
  d.manager = manager;
  return Status::Ok();
}

Status SimState::StartVirtioFsDevice(const std::string& dev_name) {
  auto it = fs_devices_.find(dev_name);
  if (it == fs_devices_.end()) return NoSuchDevice("virtio-fs device " + dev_name);
  VirtioFsDevice& d = it->second;
  if (d.started) return Busy("virtio-fs device " + dev_name + " is already started");
  if (d.vuid.empty())
    return InvalidValue("dev_name", "virtio-fs device " + dev_name +
                                        " has no function (virtio_fs_doca_device_modify first)");
  if (!fs_transports_[d.spec.transport_name])
    return InvalidValue("dev_name", "transport " + d.spec.transport_name + " is not started");
  d.started = true;
  return Status::Ok();
}

Status SimState::StopVirtioFsDevice(const std::string& dev_name) {
  auto it = fs_devices_.find(dev_name);
  if (it == fs_devices_.end()) return NoSuchDevice("virtio-fs device " + dev_name);
  if (!it->second.started) return Busy("virtio-fs device " + dev_name + " is not started");
  it->second.started = false;
  return Status::Ok();
}

Status SimState::HotplugVirtioFsDevice(const std::string& dev_name) {
  auto it = fs_devices_.find(dev_name);
  if (it == fs_devices_.end()) return NoSuchDevice("virtio-fs device " + dev_name);
  if (!it->second.started) return Busy("virtio-fs device " + dev_name + " is not started");
  it->second.hotplugged = true;
  return Status::Ok();
}

Status SimState::DestroyVirtioFsDevice(const std::string& dev_name) {
  auto it = fs_devices_.find(dev_name);
  if (it == fs_devices_.end()) return NoSuchDevice("virtio-fs device " + dev_name);
  if (it->second.started)
    return Busy("virtio-fs device " + dev_name + " is started; stop it first");
  if (EmulationFunction* f = MutableFunctionByVuid(it->second.vuid)) f->controller.clear();
  fs_devices_.erase(it);
  return Status::Ok();
}

}  // namespace dpustor::sim
