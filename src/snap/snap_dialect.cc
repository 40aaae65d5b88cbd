#include "snap/snap_dialect.h"

#include <algorithm>

namespace dpustor::snap {

namespace {

// SNAP-4 / DOCA SNAP (BlueField-3).
const DialectMethods kSnap4 = {
    .list_functions = "emulation_function_list",  // with {"all": true} for VFs
    .list_subsystems = "nvme_subsystem_list",     // namespaces are listed per subsystem
    .list_nvme_controllers = "nvme_controller_list",
    .list_controller_namespaces = "",
    .controller_namespaces_key = "",
    .list_virtio_blk_controllers = "virtio_blk_controller_list",
    .virtio_blk_controller_bdev = "",
    .virtio_blk_controller_bdev_key = "",
    .marker = "nvme_subsystem_list",
};

// SNAP 3.x / mlnx_snap (BlueField-2).
const DialectMethods kSnap3 = {
    .list_functions = "emulation_functions_list",
    .list_subsystems = "subsystem_nvme_list",
    .list_nvme_controllers = "controller_list",  // with {"type": "nvme"}
    .list_controller_namespaces = "controller_nvme_namespace_list",
    .controller_namespaces_key = "ctrl",  // snap_rpc.py sends "ctrl"; older pages say "name"
    .list_virtio_blk_controllers = "controller_list",  // with {"type": "virtio_blk"}
    .virtio_blk_controller_bdev = "controller_virtio_blk_bdev_list",
    .virtio_blk_controller_bdev_key = "ctrl",
    .marker = "subsystem_nvme_list",
};

}  // namespace

std::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kSnap4 ? "snap4" : "snap3";
}

std::optional<Dialect> ParseDialect(std::string_view name) {
  if (name == "snap4") return Dialect::kSnap4;
  if (name == "snap3") return Dialect::kSnap3;
  return std::nullopt;
}

const DialectMethods& MethodsOf(Dialect dialect) {
  return dialect == Dialect::kSnap4 ? kSnap4 : kSnap3;
}

std::optional<Dialect> DialectFromMethods(const std::vector<std::string>& methods) {
  auto has = [&](std::string_view m) {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
  };
  bool snap4 = has(kSnap4.marker);
  bool snap3 = has(kSnap3.marker);
  if (snap4 == snap3) return std::nullopt;
  return snap4 ? Dialect::kSnap4 : Dialect::kSnap3;
}

}  // namespace dpustor::snap
