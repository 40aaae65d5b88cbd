// Methods both dialects serve, and what each dialect's table holds.
#include <algorithm>
#include <set>

#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::sim::testing {
namespace {

const std::set<std::string> kBdevMethods = {"bdev_null_create",
                                            "bdev_null_delete",
                                            "bdev_malloc_create",
                                            "bdev_malloc_delete",
                                            "bdev_rbd_register_cluster",
                                            "bdev_rbd_unregister_cluster",
                                            "bdev_rbd_get_clusters_info",
                                            "bdev_rbd_create",
                                            "bdev_rbd_delete",
                                            "bdev_get_bdevs",
                                            "bdev_get_iostat"};
const std::set<std::string> kCommon = {"rpc_get_methods", "spdk_get_version"};

const std::set<std::string> kSnap4 = {"emulation_function_list",
                                      "nvme_emulation_device_attach",
                                      "emulation_device_detach_prepare",
                                      "emulation_device_detach",
                                      "nvme_subsystem_create",
                                      "nvme_subsystem_list",
                                      "nvme_subsystem_destroy",
                                      "nvme_namespace_create",
                                      "nvme_namespace_destroy",
                                      "nvme_controller_create",
                                      "nvme_controller_list",
                                      "nvme_controller_destroy",
                                      "nvme_controller_suspend",
                                      "nvme_controller_resume",
                                      "nvme_controller_attach_ns",
                                      "nvme_controller_detach_ns",
                                      "virtio_blk_controller_create",
                                      "virtio_blk_controller_list",
                                      "virtio_blk_controller_destroy",
                                      "virtio_blk_controller_suspend",
                                      "virtio_blk_controller_resume",
                                      "virtio_blk_controller_bdev_attach",
                                      "virtio_blk_controller_bdev_detach"};

const std::set<std::string> kSnap3 = {"emulation_managers_list",
                                      "emulation_functions_list",
                                      "emulation_device_attach",
                                      "emulation_device_detach",
                                      "subsystem_nvme_create",
                                      "subsystem_nvme_delete",
                                      "subsystem_nvme_list",
                                      "controller_nvme_create",
                                      "controller_nvme_delete",
                                      "controller_list",
                                      "controller_nvme_namespace_attach",
                                      "controller_nvme_namespace_detach",
                                      "controller_nvme_namespace_list",
                                      "controller_virtio_blk_create",
                                      "controller_virtio_blk_delete",
                                      "controller_virtio_blk_bdev_attach",
                                      "controller_virtio_blk_bdev_detach",
                                      "controller_virtio_blk_bdev_list",
                                      "controller_virtio_blk_suspend",
                                      "controller_virtio_blk_resume",
                                      "controller_virtio_blk_get_iostat"};

std::set<std::string> Union(std::initializer_list<const std::set<std::string>*> sets) {
  std::set<std::string> out;
  for (auto* s : sets) out.insert(s->begin(), s->end());
  return out;
}

std::set<std::string> Served(SimHarness& sim) {
  json names = sim.Ok("rpc_get_methods");
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  return names.get<std::set<std::string>>();
}

TEST(CommonMethods, RpcGetMethodsListsExactlyTheDialectsMethods) {
  SimHarness snap4(Dialect::kSnap4);
  EXPECT_EQ(Served(snap4), Union({&kSnap4, &kBdevMethods, &kCommon}));
  EXPECT_EQ(Served(snap4).size(), 36u);
  SimHarness snap3(Dialect::kSnap3);
  EXPECT_EQ(Served(snap3), Union({&kSnap3, &kBdevMethods, &kCommon}));
  EXPECT_EQ(Served(snap3).size(), 34u);
  EXPECT_EQ(snap3.Ok("rpc_get_methods", {{"current", true}}).size(), 34u);
  EXPECT_EQ(snap3.Fails("rpc_get_methods", {{"verbose", true}}).code, rpc::kInvalidParams);
}

TEST(CommonMethods, SpdkGetVersionSaysSimulator) {
  for (Dialect d : {Dialect::kSnap4, Dialect::kSnap3}) {
    SimHarness sim(d);
    json v = sim.Ok("spdk_get_version");
    EXPECT_EQ(v["simulator"], true);
    EXPECT_EQ(v["dialect"], std::string(DialectName(d)));
    EXPECT_NE(v["version"].get<std::string>().find("dpustor-snap-sim"), std::string::npos);
    EXPECT_TRUE(v["fields"]["major"].is_number_integer());
    EXPECT_EQ(sim.Fails("spdk_get_version", json::object()).message,
              "spdk_get_version method requires no parameters");
  }
}

TEST(CommonMethods, OtherDialectsMethodsAreUnknown) {
  SimHarness snap3(Dialect::kSnap3);
  Error e = snap3.Fails("nvme_subsystem_list");
  EXPECT_EQ(e.code, rpc::kMethodNotFound);
  EXPECT_EQ(e.message, "method not found: nvme_subsystem_list");
  SimHarness snap4(Dialect::kSnap4);
  EXPECT_EQ(snap4.Fails("subsystem_nvme_list").code, rpc::kMethodNotFound);
  EXPECT_EQ(snap4.Fails("no_such_method").code, rpc::kMethodNotFound);
}

TEST(CommonMethods, DialectNamesRoundTrip) {
  EXPECT_EQ(ParseDialect("snap4"), Dialect::kSnap4);
  EXPECT_EQ(ParseDialect("snap3"), Dialect::kSnap3);
  EXPECT_FALSE(ParseDialect("snap5"));
  EXPECT_EQ(DialectName(Dialect::kSnap3), "snap3");
}

TEST(CommonMethods, SocketFileIsRemovedOnStop) {
  auto sim = std::make_unique<SimHarness>(Dialect::kSnap4);
  std::string path = sim->socket();
  EXPECT_TRUE(std::filesystem::exists(path));
  sim->Stop();
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(sim->Call("spdk_get_version").ok());
}

TEST(CommonMethods, ALiveSocketIsNotStolen) {
  SimHarness first(Dialect::kSnap4);
  SnapSimOptions options;
  options.dialect = Dialect::kSnap3;
  SimThread second(first.socket(), options);
  EXPECT_FALSE(second.status().ok());
  EXPECT_EQ(first.Ok("spdk_get_version")["dialect"], "snap4");
}

TEST(CommonMethods, ConfigIsValidated) {
  EXPECT_TRUE(ValidateSimConfig({}).ok());
  EXPECT_FALSE(ValidateSimConfig({.pfs = -1}).ok());
  EXPECT_FALSE(ValidateSimConfig({.pfs = 4, .vfs = 100}).ok());
  EXPECT_FALSE(ValidateSimConfig({.pfs = 1, .vfs = 1, .serial = ""}).ok());
}

}  // namespace
}  // namespace dpustor::sim::testing
