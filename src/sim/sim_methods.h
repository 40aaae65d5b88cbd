// The simulator's JSON-RPC surface: one registration function per method file, each adding
// `rpc::MethodTable<SimState>` lines. A table for a dialect is the dialect's SNAP methods, the
// SPDK bdev methods both dialects share, and the two common methods (rpc_get_methods,
// spdk_get_version), which must be added last because rpc_get_methods lists the table.
// Handlers decode their params completely (rpc::Params, RejectUnknown where SNAP is strict)
// before they call SimState, so a bad request changes nothing.
#pragma once

#include <optional>
#include <string_view>

#include "common/method_table.h"
#include "sim/sim_state.h"

namespace dpustor::sim {

enum class Dialect { kSnap4, kSnap3 };

// "snap4" / "snap3".
std::string_view DialectName(Dialect dialect);
std::optional<Dialect> ParseDialect(std::string_view name);

using SimMethodTable = rpc::MethodTable<SimState>;

void AddBdevMethods(SimMethodTable& table);   // bdev_methods.cc
void AddSnap4Methods(SimMethodTable& table);  // snap4_methods.cc
void AddSnap3Methods(SimMethodTable& table);  // snap3_methods.cc
// DOCA SNAP virtio-fs (SNAP-4 on a BlueField-3 with virtio-fs only).
void AddVirtioFsMethods(SimMethodTable& table);  // virtio_fs_methods.cc
// REQUIRES: every other method of the table is already registered.
void AddCommonMethods(SimMethodTable& table, Dialect dialect);  // common_methods.cc

}  // namespace dpustor::sim
