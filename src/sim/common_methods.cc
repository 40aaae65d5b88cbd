// Methods every SPDK application serves, in both dialects: rpc_get_methods (the names this
// table serves, nothing else) and spdk_get_version (which is where the simulator says that it
// is one: "simulator": true and a version string naming dpustor-snap-sim).
#include <algorithm>

#include <nlohmann/json.hpp>

#include "sim/handler_support.h"
#include "sim/sim_methods.h"

#ifndef DPUSTOR_VERSION
#define DPUSTOR_VERSION "0.0.0"
#endif

namespace dpustor::sim {

namespace {
using json = nlohmann::json;
}  // namespace

void AddCommonMethods(SimMethodTable& t, Dialect dialect) {
  std::vector<std::string> names = t.Names();
  names.push_back("rpc_get_methods");
  names.push_back("spdk_get_version");
  std::sort(names.begin(), names.end());

  t.Add("rpc_get_methods", "the methods this server answers {current?, include_aliases?}",
        [names](SimState&, const json& params) -> json {
          rpc::Params p(params);
          p.RejectUnknown({"current", "include_aliases"});
          p.Get<bool>("current", false);
          p.Get<bool>("include_aliases", false);
          return names;
        });

  // The SPDK each SNAP line is built on: SNAP-4 on 23.x, SNAP 3.x on 21.x.
  bool snap4 = dialect == Dialect::kSnap4;
  std::string version = std::string(snap4 ? "SPDK v23.01" : "SPDK v21.07") +
                        " (dpustor-snap-sim " DPUSTOR_VERSION ", simulated " +
                        (snap4 ? "SNAP-4" : "SNAP 3.x") + ", no BlueField)";
  json fields = {{"major", snap4 ? 23 : 21},
                 {"minor", snap4 ? 1 : 7},
                 {"patch", 0},
                 {"suffix", "-dpustor-snap-sim"}};
  t.Add("spdk_get_version", "SPDK version; simulator:true marks dpustor-snap-sim",
        [version, fields, dialect](SimState&, const json& params) -> json {
          // As SPDK: any params at all, even {}, are refused.
          if (!params.is_null())
            throw rpc::CallError(rpc::kInvalidParams,
                                 "spdk_get_version method requires no parameters");
          return {{"version", version},
                  {"fields", fields},
                  {"simulator", true},
                  {"dialect", DialectName(dialect)}};
        });
}

}  // namespace dpustor::sim
