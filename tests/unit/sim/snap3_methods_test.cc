// The SNAP 3.x table of dpustor-snap-sim (BlueField-2's mlnx_snap dialect).
#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::sim::testing {
namespace {

constexpr const char* kSnap3Nqn = "nqn.2014.08.org.nvmexpress.snap:cnode1";

class Snap3Test : public ::testing::Test {
 protected:
  Snap3Test() : sim_(Dialect::kSnap3, SimConfig{.pfs = 2, .vfs = 2}) {}

  void MakeNull(const std::string& name) {
    sim_.Ok("bdev_null_create", {{"name", name}, {"num_blocks", 1024}, {"block_size", 512}});
  }
  void MakeSubsystem() {
    EXPECT_EQ(sim_.Ok("subsystem_nvme_create",
                      {{"nqn", kSnap3Nqn}, {"serial_number", "MNC12"}, {"model_number", "Model"}}),
              true);
  }

  SimHarness sim_;
};

TEST_F(Snap3Test, ManagersAndFunctions) {
  json managers = sim_.Ok("emulation_managers_list");
  ASSERT_EQ(managers.size(), 1u);
  EXPECT_EQ(managers[0]["emulation_manager"], "mlx5_0");
  EXPECT_EQ(managers[0]["supported_types"], json({"nvme", "virtio_blk"}));

  json fns = sim_.Ok("emulation_functions_list");
  ASSERT_EQ(fns.size(), 4u);
  EXPECT_EQ(fns[0]["emulation_type"], "nvme");
  EXPECT_EQ(fns[0]["pci_index"], 0);
  EXPECT_EQ(fns[0]["pci_bdf"], "25:00.2");
  EXPECT_EQ(fns[0]["total_vf"], 2);
  EXPECT_EQ(fns[0]["virtual_functions"][1]["vf_bdf"], "26:00.1");
  EXPECT_EQ(fns[2]["emulation_type"], "virtio_blk");
  EXPECT_EQ(sim_.Fails("emulation_functions_list", {{"all", true}}).message,
            "invalid params: 'all': unknown parameter");
}

TEST_F(Snap3Test, NvmeLifecycle) {
  MakeNull("Null0");
  MakeSubsystem();
  json created = sim_.Ok("controller_nvme_create",
                         {{"nqn", kSnap3Nqn}, {"emulation_manager", "mlx5_0"}, {"pf_id", 0}});
  EXPECT_EQ(created, json({{"name", "NvmeEmu0pf0"}, {"cntlid", 0}}));
  json vf = sim_.Ok("controller_nvme_create", {{"nqn", kSnap3Nqn},
                                               {"emulation_manager", "mlx5_0"},
                                               {"pf_id", 0},
                                               {"vf_id", 1},
                                               {"nr_io_queues", 4}});
  EXPECT_EQ(vf, json({{"name", "NvmeEmu0pf0vf1"}, {"cntlid", 1}}));

  EXPECT_EQ(
      sim_.Ok("controller_nvme_namespace_attach",
              {{"ctrl", "NvmeEmu0pf0"}, {"bdev_type", "spdk"}, {"bdev", "Null0"}, {"nsid", 1}}),
      true);
  json list = sim_.Ok("controller_nvme_namespace_list", {{"name", "NvmeEmu0pf0"}});
  EXPECT_EQ(list["name"], "NvmeEmu0pf0");
  ASSERT_EQ(list["Namespaces"].size(), 1u);
  EXPECT_EQ(list["Namespaces"][0]["bdev"], "Null0");
  EXPECT_EQ(list["Namespaces"][0]["num_blocks"], 1024);
  // Addressed by subsystem nqn + cntlid too.
  EXPECT_EQ(sim_.Ok("controller_nvme_namespace_list", {{"subnqn", kSnap3Nqn}, {"cntlid", 0}}),
            list);

  json ctrls = sim_.Ok("controller_list");
  ASSERT_EQ(ctrls.size(), 2u);
  EXPECT_EQ(ctrls[0]["type"], "nvme");
  EXPECT_EQ(ctrls[0]["subnqn"], kSnap3Nqn);
  EXPECT_EQ(ctrls[0]["pci_bdf"], "25:00.2");
  EXPECT_EQ(ctrls[1]["vf_index"], 1);
  EXPECT_EQ(sim_.Ok("controller_list", {{"type", "virtio_blk"}}).size(), 0u);
  json subs = sim_.Ok("subsystem_nvme_list");
  EXPECT_EQ(subs[0]["serial_number"], "MNC12");
  EXPECT_EQ(subs[0]["controllers"].size(), 2u);

  EXPECT_EQ(sim_.Fails("subsystem_nvme_delete", {{"nqn", kSnap3Nqn}}).code, rpc::kBusy);
  EXPECT_EQ(sim_.Fails("controller_nvme_delete", {{"name", "NvmeEmu0pf0"}}).code, rpc::kBusy);
  EXPECT_EQ(sim_.Fails("bdev_null_delete", {{"name", "Null0"}}).code, rpc::kBusy);

  sim_.Ok("controller_nvme_namespace_detach", {{"ctrl", "NvmeEmu0pf0"}, {"nsid", 1}});
  EXPECT_TRUE(
      sim_.Ok("controller_nvme_namespace_list", {{"ctrl", "NvmeEmu0pf0"}})["Namespaces"].empty());
  sim_.Ok("controller_nvme_delete", {{"name", "NvmeEmu0pf0"}});
  sim_.Ok("controller_nvme_delete", {{"subnqn", kSnap3Nqn}, {"cntlid", 1}});
  sim_.Ok("subsystem_nvme_delete", {{"nqn", kSnap3Nqn}});
  sim_.Ok("bdev_null_delete", {{"name", "Null0"}});
  EXPECT_TRUE(sim_.Ok("controller_list").empty());
  EXPECT_TRUE(sim_.Ok("subsystem_nvme_list").empty());
}

TEST_F(Snap3Test, NvmeErrors) {
  MakeNull("Null0");
  MakeSubsystem();
  EXPECT_EQ(sim_.Fails("subsystem_nvme_create",
                       {{"nqn", kSnap3Nqn}, {"serial_number", "x"}, {"model_number", "y"}})
                .code,
            rpc::kAlreadyExists);
  EXPECT_EQ(sim_.Fails("subsystem_nvme_create", {{"nqn", "n2"}, {"model_number", "y"}}).message,
            "invalid params: 'serial_number': required");
  EXPECT_EQ(sim_.Fails("controller_nvme_create", {{"nqn", kSnap3Nqn}, {"pf_id", 0}}).message,
            "invalid params: 'emulation_manager': required");
  EXPECT_EQ(sim_.Fails("controller_nvme_create",
                       {{"nqn", kSnap3Nqn}, {"emulation_manager", "mlx5_9"}, {"pf_id", 0}})
                .code,
            rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("controller_nvme_create",
                       {{"nqn", kSnap3Nqn}, {"emulation_manager", "mlx5_0"}, {"pf_id", 5}})
                .code,
            rpc::kNotFound);
  sim_.Ok("controller_nvme_create",
          {{"nqn", kSnap3Nqn}, {"emulation_manager", "mlx5_0"}, {"pf_id", 0}});
  EXPECT_EQ(
      sim_.Fails("controller_nvme_create",
                 {{"nqn", kSnap3Nqn}, {"emulation_manager", "mlx5_0"}, {"pci_bdf", "25:00.2"}})
          .code,
      rpc::kBusy);

  // A missing bdev: nothing is created.
  Error e =
      sim_.Fails("controller_nvme_namespace_attach",
                 {{"ctrl", "NvmeEmu0pf0"}, {"bdev_type", "spdk"}, {"bdev", "Nope"}, {"nsid", 1}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_TRUE(
      sim_.Ok("controller_nvme_namespace_list", {{"ctrl", "NvmeEmu0pf0"}})["Namespaces"].empty());
  sim_.Ok("controller_nvme_namespace_attach",
          {{"ctrl", "NvmeEmu0pf0"}, {"bdev_type", "spdk"}, {"bdev", "Null0"}, {"nsid", 1}});
  MakeNull("Null1");
  EXPECT_EQ(
      sim_.Fails("controller_nvme_namespace_attach",
                 {{"ctrl", "NvmeEmu0pf0"}, {"bdev_type", "spdk"}, {"bdev", "Null1"}, {"nsid", 1}})
          .code,
      rpc::kAlreadyExists);
  EXPECT_EQ(sim_.Fails("controller_nvme_namespace_attach",
                       {{"ctrl", "NvmeEmu0pf0"}, {"bdev", "Null1"}, {"nsid", 2}})
                .message,
            "invalid params: 'bdev_type': required");
  EXPECT_EQ(
      sim_.Fails("controller_nvme_namespace_detach", {{"ctrl", "NvmeEmu0pf0"}, {"nsid", 3}}).code,
      rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("controller_nvme_namespace_list", {{"ctrl", "x"}, {"name", "y"}}).code,
            rpc::kInvalidParams);
  EXPECT_EQ(sim_.Fails("controller_nvme_namespace_list", {{"subnqn", kSnap3Nqn}}).message,
            "invalid params: 'cntlid': required together with 'subnqn'");
  // force detaches the namespaces (and, in SNAP 3, they go with the controller's attach).
  sim_.Ok("controller_nvme_delete", {{"name", "NvmeEmu0pf0"}, {"force", true}});
}

TEST_F(Snap3Test, VirtioBlkLifecycle) {
  MakeNull("Null0");
  std::string name = sim_.Ok("controller_virtio_blk_create", {{"emulation_manager", "mlx5_0"},
                                                              {"pf_id", 1},
                                                              {"bdev_type", "spdk"},
                                                              {"bdev", "Null0"},
                                                              {"serial", "ABC"},
                                                              {"suspend", true}});
  EXPECT_EQ(name, "VblkEmu0pf1");
  json bdev = sim_.Ok("controller_virtio_blk_bdev_list", {{"ctrl", name}});
  EXPECT_EQ(bdev["bdev"]["bdev"], "Null0");
  EXPECT_EQ(bdev["bdev"]["num_blocks"], 1024);
  json ctrls = sim_.Ok("controller_list", {{"type", "virtio_blk"}});
  ASSERT_EQ(ctrls.size(), 1u);
  EXPECT_EQ(ctrls[0]["pci_bdf"], "25:00.5");
  json stat = sim_.Ok("controller_virtio_blk_get_iostat", {{"name", name}});
  EXPECT_EQ(stat["controllers"][0]["name"], name);
  EXPECT_EQ(stat["controllers"][0]["read_ios"], 0);

  EXPECT_EQ(sim_.Fails("controller_virtio_blk_create",
                       {{"emulation_manager", "mlx5_0"}, {"pf_id", 0}, {"bdev_type", "spdk"}})
                .message,
            "invalid params: 'bdev': required with bdev_type 'spdk'");
  sim_.Ok("controller_virtio_blk_resume", {{"name", name}});
  EXPECT_EQ(sim_.Fails("controller_virtio_blk_bdev_detach", {{"name", name}}).code, rpc::kBusy);
  sim_.Ok("controller_virtio_blk_suspend", {{"name", name}});
  sim_.Ok("controller_virtio_blk_bdev_detach", {{"name", name}});
  EXPECT_EQ(sim_.Ok("controller_virtio_blk_bdev_list", {{"ctrl", name}})["bdev"]["bdev_type"],
            "none");
  sim_.Ok("controller_virtio_blk_bdev_attach",
          {{"name", name}, {"bdev_type", "spdk"}, {"bdev", "Null0"}});
  sim_.Ok("controller_virtio_blk_delete", {{"name", name}, {"force", true}});
  EXPECT_EQ(sim_.Fails("controller_virtio_blk_delete", {{"name", name}}).code, rpc::kNotFound);
  sim_.Ok("bdev_null_delete", {{"name", "Null0"}});
}

TEST_F(Snap3Test, HotplugAttachAndDetach) {
  json dev = sim_.Ok("emulation_device_attach",
                     {{"emulation_manager", "mlx5_0"}, {"device_type", "virtio_blk"}});
  EXPECT_EQ(dev["emulation_type"], "virtio_blk");
  EXPECT_EQ(dev["pci_index"], 2);
  EXPECT_EQ(dev["pci_type"], "physical function");
  std::string vuid = dev["vuid"];
  std::string name =
      sim_.Ok("controller_virtio_blk_create", {{"emulation_manager", "mlx5_0"}, {"vuid", vuid}});
  EXPECT_EQ(name, "VblkEmu0pf2");
  EXPECT_EQ(
      sim_.Fails("emulation_device_detach",
                 {{"emulation_manager", "mlx5_0"}, {"device_type", "virtio_blk"}, {"vuid", vuid}})
          .code,
      rpc::kBusy);
  sim_.Ok("controller_virtio_blk_delete", {{"vuid", vuid}});
  sim_.Ok("emulation_device_detach", {{"emulation_manager", "mlx5_0"},
                                      {"device_type", "virtio_blk"},
                                      {"pci_bdf", dev["pci_bdf"]}});
  EXPECT_EQ(sim_.Ok("emulation_functions_list").size(), 4u);
  EXPECT_EQ(sim_.Fails("emulation_device_attach",
                       {{"emulation_manager", "mlx5_0"}, {"device_type", "net"}})
                .message,
            "invalid params: 'device_type': must be one of: nvme, virtio_blk");
}

}  // namespace
}  // namespace dpustor::sim::testing
