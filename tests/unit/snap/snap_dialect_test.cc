// The client's dialect tables against what the simulator of each dialect serves. The two are
// written independently (the simulator after NVIDIA's method pages), so a misspelt name on
// either side shows here.
#include "snap/snap_dialect.h"

#include <algorithm>

#include <gtest/gtest.h>

#include "sim_dialect.h"
#include "sim_harness.h"

namespace dpustor::snap {
namespace {

using sim::testing::SimHarness;

TEST(SnapDialect, EveryMethodTheClientUsesIsServedByThatDialect) {
  for (Dialect d : {Dialect::kSnap4, Dialect::kSnap3}) {
    SimHarness sim(SimDialect(d));
    auto served = sim.Ok("rpc_get_methods").get<std::vector<std::string>>();
    auto serves = [&](std::string_view m) {
      return std::find(served.begin(), served.end(), m) != served.end();
    };
    const DialectMethods& m = MethodsOf(d);
    for (std::string_view name :
         {m.list_functions, m.list_subsystems, m.list_nvme_controllers,
          m.list_controller_namespaces, m.list_virtio_blk_controllers, m.virtio_blk_controller_bdev,
          m.list_bdevs, m.iostat, m.version, m.list_methods, m.marker}) {
      if (!name.empty()) {
        EXPECT_TRUE(serves(name)) << DialectName(d) << ": " << name;
      }
    }
    // The volume operations (SnapVolumeOps).
    for (std::string_view name : {m.list_emulation_managers,
                                  m.create_subsystem,
                                  m.destroy_subsystem,
                                  m.create_namespace,
                                  m.destroy_namespace,
                                  m.create_nvme_controller,
                                  m.destroy_nvme_controller,
                                  m.attach_namespace,
                                  m.detach_namespace,
                                  m.suspend_nvme_controller,
                                  m.resume_nvme_controller,
                                  m.create_virtio_blk_controller,
                                  m.destroy_virtio_blk_controller,
                                  m.suspend_virtio_blk_controller,
                                  m.resume_virtio_blk_controller,
                                  m.rbd_register_cluster,
                                  m.rbd_unregister_cluster,
                                  m.rbd_clusters_info,
                                  m.rbd_create,
                                  m.rbd_delete,
                                  m.null_delete,
                                  m.malloc_delete}) {
      if (!name.empty()) {
        EXPECT_TRUE(serves(name)) << DialectName(d) << ": " << name;
      }
    }
    EXPECT_EQ(DialectFromMethods(served), d);
  }
}

TEST(SnapDialect, DialectFromMethods) {
  EXPECT_EQ(DialectFromMethods({"spdk_get_version", "nvme_subsystem_list"}), Dialect::kSnap4);
  EXPECT_EQ(DialectFromMethods({"subsystem_nvme_list"}), Dialect::kSnap3);
  EXPECT_FALSE(DialectFromMethods({"spdk_get_version", "bdev_get_bdevs"}));
  EXPECT_FALSE(DialectFromMethods({"subsystem_nvme_list", "nvme_subsystem_list"}));
  EXPECT_EQ(ParseDialect(DialectName(Dialect::kSnap3)), Dialect::kSnap3);
  EXPECT_FALSE(ParseDialect("SNAP4"));
}

}  // namespace
}  // namespace dpustor::snap
