// SnapDialect names the JSON-RPC methods the DPU agent uses on each SNAP generation: SNAP-4 /
// DOCA SNAP on BlueField-3 and SNAP 3.x (mlnx_snap) on BlueField-2, both to read SNAP's state
// (SnapClient) and to change it (SnapVolumeOps). This is the one place to correct a method or
// key name (see shared/reference/snap-rpc.md for the sources). An empty name means the
// dialect has no such method (or step) and the caller derives the data or skips the step.
// Plain constant data; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dpustor::snap {

enum class Dialect { kSnap4, kSnap3 };

// "snap4" / "snap3".
std::string_view DialectName(Dialect dialect);
std::optional<Dialect> ParseDialect(std::string_view name);

struct DialectMethods {
  std::string_view list_functions;               // emulated PCIe functions (with VFs)
  std::string_view list_subsystems;              // NVMe subsystems
  std::string_view list_nvme_controllers;        // NVMe controllers
  std::string_view list_controller_namespaces;   // per-controller namespaces; "" if in subsystems
  std::string_view controller_namespaces_key;    // its controller-name parameter
  std::string_view list_virtio_blk_controllers;  // virtio-blk controllers
  std::string_view virtio_blk_controller_bdev;   // per-controller bdev; "" if in the list
  std::string_view virtio_blk_controller_bdev_key;  // its controller-name parameter
  // Methods both dialects share (SPDK's).
  std::string_view list_bdevs = "bdev_get_bdevs";
  std::string_view iostat = "bdev_get_iostat";
  std::string_view version = "spdk_get_version";
  std::string_view list_methods = "rpc_get_methods";
  // A method only this dialect has: its presence in rpc_get_methods identifies the dialect.
  std::string_view marker;

  // --- volume operations (the DPU agent's reconciler, via SnapVolumeOps) -----------------
  // SNAP 3 controller creates name an emulation manager (from this list); "" if not needed.
  std::string_view list_emulation_managers;
  std::string_view create_subsystem;   // {nqn, serial_number, model_number}
  std::string_view destroy_subsystem;  // {nqn}
  // A namespace as an object of its own ({nqn, nsid, bdev_name}, {nqn, nsid}). "" when the
  // dialect creates a namespace by attaching a bdev to a controller and destroys it by
  // detaching (SNAP 3).
  std::string_view create_namespace;
  std::string_view destroy_namespace;
  std::string_view create_nvme_controller;     // on a function; see the keys below
  std::string_view destroy_nvme_controller;    // {<nvme_controller_key>, force}
  std::string_view nvme_controller_key;        // how an existing NVMe controller is named
  std::string_view nvme_controller_name_key;   // the name given at creation; "" if SNAP names it
  std::string_view nvme_create_suspended_key;  // create suspended; "" if the dialect cannot
  std::string_view attach_namespace;           // {<namespace_controller_key>, nsid (, bdev)}
  std::string_view detach_namespace;
  std::string_view namespace_controller_key;
  std::string_view suspend_nvme_controller;  // "" if the dialect has none
  std::string_view resume_nvme_controller;
  std::string_view create_virtio_blk_controller;  // on a function, with its bdev
  std::string_view destroy_virtio_blk_controller;
  std::string_view virtio_blk_controller_key;
  std::string_view virtio_blk_controller_name_key;  // "" if SNAP names it
  std::string_view suspend_virtio_blk_controller;
  std::string_view resume_virtio_blk_controller;
  // SPDK's bdev methods inside SNAP (both dialects).
  std::string_view rbd_register_cluster = "bdev_rbd_register_cluster";
  std::string_view rbd_unregister_cluster = "bdev_rbd_unregister_cluster";
  std::string_view rbd_clusters_info = "bdev_rbd_get_clusters_info";
  std::string_view rbd_create = "bdev_rbd_create";
  std::string_view rbd_delete = "bdev_rbd_delete";
  std::string_view null_delete = "bdev_null_delete";
  std::string_view malloc_delete = "bdev_malloc_delete";
};

const DialectMethods& MethodsOf(Dialect dialect);

// The dialect whose marker method is among `methods`, if exactly one matches.
std::optional<Dialect> DialectFromMethods(const std::vector<std::string>& methods);

}  // namespace dpustor::snap
