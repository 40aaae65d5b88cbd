// SnapDialect names the JSON-RPC methods the DPU agent uses on each SNAP generation: SNAP-4 /
// DOCA SNAP on BlueField-3 and SNAP 3.x (mlnx_snap) on BlueField-2. This is the one place to
// correct a method name (see shared/reference/snap-rpc.md for the sources). An empty name
// means the dialect has no such method and the client derives the data another way.
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
};

const DialectMethods& MethodsOf(Dialect dialect);

// The dialect whose marker method is among `methods`, if exactly one matches.
std::optional<Dialect> DialectFromMethods(const std::vector<std::string>& methods);

}  // namespace dpustor::snap
