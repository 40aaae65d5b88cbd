// DOCA SNAP virtio-fs on the SNAP-4 simulator of a BlueField-3 with virtio-fs: the bring-up
// flow, state errors as a real SNAP gives them, and that the methods exist only there.
#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::sim::testing {
namespace {

class VirtioFsTest : public ::testing::Test {
 protected:
  VirtioFsTest() : sim_(Dialect::kSnap4, SimConfig{.pfs = 2, .vfs = 1, .virtio_fs = true}) {}

  std::string FsVuid(int pf) {
    for (const auto& f : sim_.Ok("emulation_function_list", {{"all", true}}))
      if (f["emulation_type"] == "VIRTIO_FS" && f["pf_index"] == pf) return f["vuid"];
    return "";
  }
  void Transport() {
    sim_.Ok("virtio_fs_transport_create", {{"transport_name", "DOCA"}});
    sim_.Ok("virtio_fs_doca_manager_create", {{"manager", "mlx5_0"}});
    sim_.Ok("virtio_fs_transport_start", {{"transport_name", "DOCA"}});
  }
  void Device(const std::string& name, const std::string& fsdev) {
    sim_.Ok("virtio_fs_device_create", {{"transport_name", "DOCA"},
                                        {"dev_name", name},
                                        {"tag", name},
                                        {"fsdev", fsdev},
                                        {"num_request_queues", 2},
                                        {"queue_size", 256},
                                        {"driver_platform", "x86_64"}});
  }

  SimHarness sim_;
};

TEST_F(VirtioFsTest, FunctionsAreListedAsVirtioFsWithoutVfs) {
  json pfs = sim_.Ok("emulation_function_list", {{"all", true}});
  ASSERT_EQ(pfs.size(), 6u);  // 2 NVMe, 2 virtio-blk, 2 virtio-fs
  EXPECT_EQ(pfs[4]["emulation_type"], "VIRTIO_FS");
  EXPECT_EQ(pfs[4]["pci_bdf"], "25:00.6");
  EXPECT_EQ(pfs[4]["pf_index"], 0);
  EXPECT_TRUE(pfs[4]["vfs"].empty());
  json methods = sim_.Ok("rpc_get_methods");
  EXPECT_NE(std::find(methods.begin(), methods.end(), "virtio_fs_device_create"), methods.end());
}

TEST_F(VirtioFsTest, BringUpQueryAndTeardown) {
  Transport();
  EXPECT_EQ(sim_.Ok("fsdev_nfs_create",
                    {{"name", "fs0"}, {"server", "10.0.0.5"}, {"exportname", "/export"}}),
            "fs0");
  Device("dev0", "fs0");
  std::string vuid = FsVuid(1);
  sim_.Ok("virtio_fs_doca_device_modify",
          {{"dev_name", "dev0"}, {"manager", "mlx5_0"}, {"vuid", vuid}});
  sim_.Ok("virtio_fs_device_start", {{"dev_name", "dev0"}});
  json devices = sim_.Ok("virtio_fs_get_devices");
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0]["state"], "started");
  EXPECT_EQ(devices[0]["vuid"], vuid);
  EXPECT_EQ(devices[0]["num_request_queues"], 2);
  json stat = sim_.Ok("virtio_fs_device_get_stat", {{"dev_name", "dev0"}});
  EXPECT_EQ(stat["requests"], 0);
  // The function now carries the device.
  for (const auto& f : sim_.Ok("emulation_function_list"))
    if (f["vuid"] == vuid) {
      EXPECT_EQ(f["ctrl_id"], "dev0");
    }

  // Started twice, destroyed while started, fsdev deleted while used: refused.
  EXPECT_EQ(sim_.Fails("virtio_fs_device_start", {{"dev_name", "dev0"}}).code, rpc::kBusy);
  EXPECT_EQ(sim_.Fails("virtio_fs_device_destroy", {{"dev_name", "dev0"}}).code, rpc::kBusy);
  EXPECT_EQ(sim_.Fails("fsdev_nfs_delete", {{"name", "fs0"}}).code, rpc::kBusy);

  sim_.Ok("virtio_fs_device_stop", {{"dev_name", "dev0"}});
  sim_.Ok("virtio_fs_device_destroy", {{"dev_name", "dev0"}});
  sim_.Ok("fsdev_nfs_delete", {{"name", "fs0"}});
  EXPECT_TRUE(sim_.Ok("virtio_fs_get_devices").empty());
  EXPECT_TRUE(sim_.Ok("fsdev_get_fsdevs").empty());
  for (const auto& f : sim_.Ok("emulation_function_list"))
    if (f["vuid"] == vuid) {
      EXPECT_EQ(f["ctrl_id"], "");
    }
}

TEST_F(VirtioFsTest, StateAndParamErrorsChangeNothing) {
  EXPECT_EQ(sim_.Fails("virtio_fs_transport_create", {{"transport_name", "VHOST"}}).message,
            "invalid params: 'transport_name': unknown transport 'VHOST'");
  Transport();
  EXPECT_EQ(sim_.Fails("virtio_fs_transport_create", {{"transport_name", "DOCA"}}).code,
            rpc::kAlreadyExists);
  EXPECT_EQ(sim_.Fails("virtio_fs_doca_manager_create", {{"manager", "mlx5_9"}}).code,
            rpc::kNotFound);
  // A device on a missing fsdev.
  auto missing =
      sim_.Fails("virtio_fs_device_create",
                 {{"transport_name", "DOCA"}, {"dev_name", "d"}, {"tag", "t"}, {"fsdev", "nope"}});
  EXPECT_EQ(missing.message, "No such device: fsdev nope");
  sim_.Ok("fsdev_aio_create", {{"name", "a0"}, {"root_path", "/srv"}});
  Device("d", "a0");
  EXPECT_EQ(
      sim_.Fails("virtio_fs_device_create",
                 {{"transport_name", "DOCA"}, {"dev_name", "d"}, {"tag", "t2"}, {"fsdev", "a0"}})
          .code,
      rpc::kAlreadyExists);
  // No function yet: cannot start.
  EXPECT_EQ(sim_.Fails("virtio_fs_device_start", {{"dev_name", "d"}}).code, rpc::kInvalidParams);
  // Not a VIRTIO_FS function.
  std::string nvme_vuid = sim_.Ok("emulation_function_list")[0]["vuid"];
  EXPECT_EQ(sim_.Fails("virtio_fs_doca_device_modify",
                       {{"dev_name", "d"}, {"manager", "mlx5_0"}, {"vuid", nvme_vuid}})
                .code,
            rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("virtio_fs_device_create", {{"transport_name", "DOCA"},
                                                   {"dev_name", "e"},
                                                   {"tag", std::string(37, 'x')},
                                                   {"fsdev", "a0"}})
                .message,
            "invalid params: 'tag': must be 1-36 bytes");
  EXPECT_EQ(sim_.Fails("fsdev_nfs_create", {{"name", "n"}, {"server", "s"}, {"bogus", 1}}).message,
            "invalid params: 'bogus': unknown parameter");
  EXPECT_EQ(sim_.Ok("virtio_fs_get_devices").size(), 1u);
  EXPECT_EQ(sim_.Ok("fsdev_get_fsdevs").size(), 1u);
}

TEST(VirtioFsAbsentTest, PlainSimulatorHasNoVirtioFs) {
  SimHarness sim(Dialect::kSnap4, SimConfig{.pfs = 1, .vfs = 0});
  EXPECT_EQ(sim.Fails("virtio_fs_get_devices").code, rpc::kMethodNotFound);
  for (const auto& f : sim.Ok("emulation_function_list"))
    EXPECT_NE(f["emulation_type"], "VIRTIO_FS");
}

}  // namespace
}  // namespace dpustor::sim::testing
