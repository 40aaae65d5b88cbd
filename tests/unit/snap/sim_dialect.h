// The simulator dialect that plays a SNAP dialect the client speaks.
#pragma once

#include "sim/sim_methods.h"
#include "snap/snap_dialect.h"

namespace dpustor::snap {

inline sim::Dialect SimDialect(Dialect d) {
  return d == Dialect::kSnap4 ? sim::Dialect::kSnap4 : sim::Dialect::kSnap3;
}

}  // namespace dpustor::snap
