// What the simulator's method handlers share: turning a SimState error into the CallError the
// dispatcher replies with, and decoding the parameters several methods take the same way
// (which emulation function a controller goes on, block sizes). Header-only; stateless.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/params.h"
#include "sim/sim_state.h"

namespace dpustor::sim {

inline void Check(const Status& status) {
  if (!status.ok()) throw rpc::CallError(status.error().code, status.error().message);
}

template <class T>
T Check(Result<T> result) {
  if (!result.ok()) throw rpc::CallError(result.error().code, result.error().message);
  return std::move(result.value());
}

// Keys a function may be selected by, in the order they are tried.
struct FunctionKeys {
  std::string_view bdf = "pci_bdf";
  std::string_view vuid = "vuid";
  std::string_view pf = "pf_id";
  std::string_view vf = "vf_id";
};

// Decodes which `type` function the params name: exactly one of pci_bdf, vuid or pf_id
// (with vf_id optional, only together with pf_id). A missing function is kNotFound.
inline const EmulationFunction& SelectFunction(const SimState& state, const rpc::Params& p,
                                               FunctionType type, FunctionKeys keys = {}) {
  auto bdf = p.Optional<std::string>(keys.bdf);
  auto vuid = p.Optional<std::string>(keys.vuid);
  auto pf = p.Optional<int>(keys.pf);
  auto vf = p.Optional<int>(keys.vf);
  int given = int(bdf.has_value()) + int(vuid.has_value()) + int(pf.has_value());
  std::string choices = "one of '" + std::string(keys.bdf) + "', '" + std::string(keys.vuid) +
                        "' or '" + std::string(keys.pf) + "'";
  if (given == 0) throw rpc::ParamError(keys.pf, choices + " is required");
  if (given > 1) throw rpc::ParamError(keys.pf, "give only " + choices);
  if (vf && !pf)
    throw rpc::ParamError(keys.vf, "only valid together with '" + std::string(keys.pf) + "'");
  if (pf && *pf < 0) throw rpc::ParamError(keys.pf, "must not be negative");
  if (vf && *vf < 0) throw rpc::ParamError(keys.vf, "must not be negative");

  const EmulationFunction* f = nullptr;
  std::string what;
  if (bdf) {
    f = state.FindFunctionByBdf(*bdf);
    what = "pci_bdf " + *bdf;
  } else if (vuid) {
    f = state.FindFunctionByVuid(*vuid);
    what = "vuid " + *vuid;
  } else {
    f = state.FindFunction(type, *pf, vf);
    what = "pf_id " + std::to_string(*pf) + (vf ? " vf_id " + std::to_string(*vf) : "");
  }
  std::string kind = type == FunctionType::kNvme        ? "NVMe"
                     : type == FunctionType::kVirtioBlk ? "virtio-blk"
                                                        : "virtio-fs";
  if (f == nullptr) Check(Status(NoSuchDevice("no " + kind + " emulation function at " + what)));
  if (f->type != type) Check(Status(NoSuchDevice(what + " is not a " + kind + " function")));
  return *f;
}

// SPDK accepts block sizes that are multiples of 512.
inline std::uint32_t DecodeBlockSize(const rpc::Params& p, std::string_view field) {
  auto bs = p.Required<std::uint32_t>(field);
  if (bs == 0 || bs % 512 != 0) throw rpc::ParamError(field, "must be a multiple of 512");
  return bs;
}

// A string parameter that must be one of `allowed` (when present).
inline std::string DecodeChoice(const rpc::Params& p, std::string_view field,
                                std::initializer_list<std::string_view> allowed,
                                std::string fallback) {
  auto v = p.Optional<std::string>(field);
  if (!v) return fallback;
  for (auto a : allowed)
    if (*v == a) return *v;
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  throw rpc::ParamError(field, "must be one of: " + list);
}

}  // namespace dpustor::sim
