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
    .list_emulation_managers = "",
    .create_subsystem = "nvme_subsystem_create",
    .destroy_subsystem = "nvme_subsystem_destroy",
    .create_namespace = "nvme_namespace_create",
    .destroy_namespace = "nvme_namespace_destroy",
    .create_nvme_controller = "nvme_controller_create",  // {nqn, ctrl, pf_id[, vf_id], suspended}
    .destroy_nvme_controller = "nvme_controller_destroy",
    .nvme_controller_key = "ctrl_id",
    .nvme_controller_name_key = "ctrl",
    .nvme_create_suspended_key = "suspended",
    .attach_namespace = "nvme_controller_attach_ns",  // {ctrl_id, nsid}
    .detach_namespace = "nvme_controller_detach_ns",
    .namespace_controller_key = "ctrl_id",
    .suspend_nvme_controller = "nvme_controller_suspend",
    .resume_nvme_controller = "nvme_controller_resume",
    .create_virtio_blk_controller = "virtio_blk_controller_create",  // {ctrl, pf_id, bdev}
    .destroy_virtio_blk_controller = "virtio_blk_controller_destroy",
    .virtio_blk_controller_key = "ctrl",
    .virtio_blk_controller_name_key = "ctrl",
    .suspend_virtio_blk_controller = "virtio_blk_controller_suspend",
    .resume_virtio_blk_controller = "virtio_blk_controller_resume",
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
    .list_emulation_managers = "emulation_managers_list",
    .create_subsystem = "subsystem_nvme_create",
    .destroy_subsystem = "subsystem_nvme_delete",
    .create_namespace = "",   // controller_nvme_namespace_attach creates it
    .destroy_namespace = "",  // controller_nvme_namespace_detach destroys it
    .create_nvme_controller = "controller_nvme_create",  // {nqn, emulation_manager, pf_id}
    .destroy_nvme_controller = "controller_nvme_delete",
    .nvme_controller_key = "name",
    .nvme_controller_name_key = "",  // SNAP names it ("NvmeEmu0pf0")
    .nvme_create_suspended_key = "",
    .attach_namespace = "controller_nvme_namespace_attach",  // {ctrl, bdev_type, bdev, nsid}
    .detach_namespace = "controller_nvme_namespace_detach",
    .namespace_controller_key = "ctrl",
    .suspend_nvme_controller = "",
    .resume_nvme_controller = "",
    .create_virtio_blk_controller = "controller_virtio_blk_create",
    .destroy_virtio_blk_controller = "controller_virtio_blk_delete",
    .virtio_blk_controller_key = "name",
    .virtio_blk_controller_name_key = "",  // SNAP names it ("VblkEmu0pf0")
    .suspend_virtio_blk_controller = "controller_virtio_blk_suspend",
    .resume_virtio_blk_controller = "controller_virtio_blk_resume",
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
