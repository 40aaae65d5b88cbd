// The SNAP-4 table of dpustor-snap-sim, over a real socket: lifecycles, state errors and
// parameter errors.
#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::sim::testing {
namespace {

constexpr const char* kSnap4Nqn = "nqn.2022-10.io.nvda.nvme:test";

class Snap4Test : public ::testing::Test {
 protected:
  Snap4Test() : sim_(Dialect::kSnap4, SimConfig{.pfs = 2, .vfs = 2}) {}

  void MakeNull(const std::string& name, std::uint64_t blocks = 2048, std::uint32_t bs = 4096) {
    sim_.Ok("bdev_null_create", {{"name", name}, {"num_blocks", blocks}, {"block_size", bs}});
  }
  void MakeSubsystem(const std::string& nqn = kSnap4Nqn) {
    sim_.Ok("nvme_subsystem_create", {{"nqn", nqn}, {"serial_number", "SN1"}});
  }
  json Controller(const std::string& ctrl_id) {
    json list = sim_.Ok("nvme_controller_list", {{"ctrl_id", ctrl_id}});
    EXPECT_EQ(list.size(), 1u);
    return list.empty() ? json() : list[0];
  }
  // Everything a request could change, to show a failed request changed nothing.
  json Snapshot() {
    return {{"f", sim_.Ok("emulation_function_list", {{"all", true}})},
            {"s", sim_.Ok("nvme_subsystem_list")},
            {"c", sim_.Ok("nvme_controller_list")},
            {"v", sim_.Ok("virtio_blk_controller_list")},
            {"b", sim_.Ok("bdev_get_bdevs")}};
  }

  SimHarness sim_;
};

TEST_F(Snap4Test, EmulationFunctionListHasPfsAndVfsWithAll) {
  json pfs = sim_.Ok("emulation_function_list");
  ASSERT_EQ(pfs.size(), 4u);  // 2 NVMe + 2 virtio-blk PFs
  EXPECT_EQ(pfs[0]["emulation_type"], "NVME");
  EXPECT_EQ(pfs[0]["pci_bdf"], "25:00.2");
  EXPECT_EQ(pfs[0]["vuid"], "MT2334X00000NVMES0D0F2");
  EXPECT_EQ(pfs[0]["pf_index"], 0);
  EXPECT_EQ(pfs[0]["hotplugged"], false);
  EXPECT_EQ(pfs[0]["ctrl_id"], "");
  EXPECT_TRUE(pfs[0]["vfs"].empty());
  EXPECT_EQ(pfs[2]["emulation_type"], "VBLK");
  EXPECT_EQ(pfs[2]["pci_bdf"], "25:00.4");
  EXPECT_EQ(pfs[2]["vuid"], "MT2334X00000VBLKS0D0F4");

  json all = sim_.Ok("emulation_function_list", {{"all", true}});
  ASSERT_EQ(all[0]["vfs"].size(), 2u);
  EXPECT_EQ(all[0]["vfs"][1]["vf_index"], 1);
  EXPECT_EQ(all[0]["vfs"][1]["pf_index"], 0);
  EXPECT_EQ(all[0]["vfs"][1]["pci_bdf"], "26:00.1");

  EXPECT_EQ(sim_.Fails("emulation_function_list", {{"all", "yes"}}).message,
            "invalid params: 'all': expected a boolean");
}

TEST_F(Snap4Test, NvmeLifecycleCreateSuspendedAttachResumeThenTearDown) {
  MakeNull("Null0", 2048, 4096);
  MakeSubsystem();
  EXPECT_EQ(
      sim_.Ok("nvme_namespace_create",
              {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 1}, {"bdev_type", "spdk"}}),
      true);
  json created =
      sim_.Ok("nvme_controller_create",
              {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"suspended", true}, {"num_queues", 8}});
  ASSERT_EQ(created["ctrl_id"], "NVMeCtrl1");
  EXPECT_EQ(Controller("NVMeCtrl1")["suspended"], true);

  sim_.Ok("nvme_controller_attach_ns", {{"ctrl_id", "NVMeCtrl1"}, {"nsid", 1}});
  EXPECT_EQ(Controller("NVMeCtrl1")["suspended"], true);  // stays suspended until resume
  sim_.Ok("nvme_controller_resume", {{"ctrl_id", "NVMeCtrl1"}});

  json c = Controller("NVMeCtrl1");
  EXPECT_EQ(c["suspended"], false);
  EXPECT_EQ(c["nqn"], kSnap4Nqn);
  EXPECT_EQ(c["pci_bdf"], "25:00.2");
  EXPECT_EQ(c["num_queues"], 8);
  ASSERT_EQ(c["namespaces"].size(), 1u);
  EXPECT_EQ(c["namespaces"][0]["nsid"], 1);

  json subs = sim_.Ok("nvme_subsystem_list");
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0]["sn"], "SN1");
  EXPECT_EQ(subs[0]["controllers"][0]["ctrl_id"], "NVMeCtrl1");
  json ns = subs[0]["namespaces"][0];
  EXPECT_EQ(ns["bdev"], "Null0");
  EXPECT_EQ(ns["controllers"][0]["ctrl_id"], "NVMeCtrl1");
  EXPECT_EQ(ns["block_size"], 4096);  // sizes come from the bdev
  EXPECT_EQ(ns["num_blocks"], 2048);
  EXPECT_EQ(ns["uuid"], sim_.Ok("bdev_get_bdevs", {{"name", "Null0"}})[0]["uuid"]);
  EXPECT_EQ(sim_.Ok("emulation_function_list")[0]["ctrl_id"], "NVMeCtrl1");
  EXPECT_EQ(sim_.Ok("bdev_get_bdevs", {{"name", "Null0"}})[0]["claimed"], true);

  // Tear down in the order SNAP requires.
  sim_.Ok("nvme_controller_detach_ns", {{"ctrl_id", "NVMeCtrl1"}, {"nsid", 1}});
  sim_.Ok("nvme_controller_destroy", {{"ctrl_id", "NVMeCtrl1"}});
  sim_.Ok("nvme_namespace_destroy", {{"nqn", kSnap4Nqn}, {"nsid", 1}});
  sim_.Ok("nvme_subsystem_destroy", {{"nqn", kSnap4Nqn}});
  sim_.Ok("bdev_null_delete", {{"name", "Null0"}});
  EXPECT_TRUE(sim_.Ok("nvme_subsystem_list").empty());
  EXPECT_TRUE(sim_.Ok("nvme_controller_list").empty());
  EXPECT_TRUE(sim_.Ok("bdev_get_bdevs").empty());
  EXPECT_EQ(sim_.Ok("emulation_function_list")[0]["ctrl_id"], "");
}

TEST_F(Snap4Test, ControllersGoOnExistingFreeFunctionsOfTheirType) {
  MakeSubsystem();
  // A VF, named, by pf_id/vf_id; then by vuid and by pci_bdf with the PCI domain.
  EXPECT_EQ(sim_.Ok("nvme_controller_create",
                    {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"vf_id", 1}, {"ctrl", "vf1"}})["ctrl_id"],
            "vf1");
  EXPECT_EQ(Controller("vf1")["vf_index"], 1);
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"vuid", "MT2334X00000NVMES0D0F3"}});
  EXPECT_EQ(Controller("NVMeCtrl1")["pci_bdf"], "25:00.3");
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pci_bdf", "0000:25:00.2"}});
  EXPECT_EQ(Controller("NVMeCtrl2")["pf_index"], 0);

  Error e = sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 7}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_NE(e.message.find("No such device"), std::string::npos) << e.message;
  EXPECT_EQ(
      sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"vf_id", 9}}).code,
      rpc::kNotFound);
  e = sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}});
  EXPECT_EQ(e.code, rpc::kBusy);
  EXPECT_NE(e.message.find("NVMeCtrl2"), std::string::npos) << e.message;
  e = sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pci_bdf", "25:00.4"}});
  EXPECT_EQ(e.code, rpc::kNotFound);  // a virtio-blk function
  EXPECT_EQ(sim_.Fails("nvme_controller_create", {{"nqn", "nqn.none"}, {"pf_id", 1}}).code,
            rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("nvme_controller_create",
                       {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"vf_id", 0}, {"ctrl", "vf1"}})
                .code,
            rpc::kAlreadyExists);

  // Parameter errors name the field.
  EXPECT_EQ(sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}}).message,
            "invalid params: 'pf_id': one of 'pci_bdf', 'vuid' or 'pf_id' is required");
  EXPECT_EQ(sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"vf_id", 0}}).code,
            rpc::kInvalidParams);
  e = sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"vf_id", 0}, {"vuid", "x"}});
  EXPECT_EQ(e.message, "invalid params: 'vf_id': only valid together with 'pf_id'");
  e = sim_.Fails("nvme_controller_create",
                 {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"pci_bdf", "25:00.3"}});
  EXPECT_EQ(e.code, rpc::kInvalidParams);
  e = sim_.Fails("nvme_controller_create", {{"pf_id", 1}});
  EXPECT_EQ(e.message, "invalid params: 'nqn': required");
  e = sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"num_queus", 4}});
  EXPECT_EQ(e.message, "invalid params: 'num_queus': unknown parameter");
}

TEST_F(Snap4Test, DuplicateNamesAreRejected) {
  MakeSubsystem();
  EXPECT_EQ(sim_.Fails("nvme_subsystem_create", {{"nqn", kSnap4Nqn}}).code, rpc::kAlreadyExists);
  MakeNull("Null0");
  Error e =
      sim_.Fails("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 8}, {"block_size", 512}});
  EXPECT_EQ(e.code, rpc::kAlreadyExists);
  EXPECT_NE(e.message.find("File exists"), std::string::npos) << e.message;
  sim_.Ok("virtio_blk_controller_create", {{"pf_id", 0}, {"ctrl", "shared"}});
  EXPECT_EQ(
      sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"ctrl", "shared"}})
          .code,
      rpc::kAlreadyExists);
}

TEST_F(Snap4Test, NamespaceRules) {
  MakeSubsystem();
  MakeNull("Null0");
  MakeNull("Null1");
  Error e =
      sim_.Fails("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Nope"}, {"nsid", 1}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_NE(e.message.find("Nope"), std::string::npos);
  sim_.Ok("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 1}});
  EXPECT_EQ(
      sim_.Fails("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null1"}, {"nsid", 1}})
          .code,
      rpc::kAlreadyExists);
  e = sim_.Fails("nvme_namespace_create",
                 {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 2}});
  EXPECT_EQ(e.code, rpc::kBusy);  // one claim per bdev
  // Without nsid the lowest free one is taken.
  sim_.Ok("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null1"}});
  EXPECT_EQ(sim_.Ok("nvme_subsystem_list")[0]["namespaces"][1]["nsid"], 2);

  sim_.Ok("nvme_subsystem_create", {{"nqn", "nqn.small"}, {"nn", 4}});
  MakeNull("Null2");
  EXPECT_EQ(sim_.Fails("nvme_namespace_create",
                       {{"nqn", "nqn.small"}, {"bdev_name", "Null2"}, {"nsid", 5}})
                .code,
            rpc::kInvalidParams);
  EXPECT_EQ(sim_.Fails("nvme_namespace_create",
                       {{"nqn", "nqn.small"}, {"bdev_name", "Null2"}, {"bdev_type", "nvme"}})
                .message,
            "invalid params: 'bdev_type': must be one of: spdk");
  EXPECT_EQ(sim_.Fails("nvme_namespace_create",
                       {{"nqn", kSnap4Nqn}, {"bdev_name", "Null2"}, {"nsid", -1}})
                .message,
            "invalid params: 'nsid': expected a non-negative integer");
  EXPECT_EQ(sim_.Fails("nvme_namespace_destroy", {{"nqn", kSnap4Nqn}, {"nsid", 9}}).code,
            rpc::kNotFound);
}

TEST_F(Snap4Test, DestroyingWhatIsInUseIsBusy) {
  MakeSubsystem();
  MakeNull("Null0");
  sim_.Ok("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 1}});
  Error e = sim_.Fails("nvme_subsystem_destroy", {{"nqn", kSnap4Nqn}});
  EXPECT_EQ(e.code, rpc::kBusy);
  EXPECT_NE(e.message.find("Device or resource busy"), std::string::npos) << e.message;
  EXPECT_EQ(sim_.Fails("bdev_null_delete", {{"name", "Null0"}}).code, rpc::kBusy);

  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"ctrl", "c0"}});
  sim_.Ok("nvme_controller_attach_ns", {{"ctrl_id", "c0"}, {"nsid", 1}});
  EXPECT_EQ(sim_.Fails("nvme_namespace_destroy", {{"nqn", kSnap4Nqn}, {"nsid", 1}}).code,
            rpc::kBusy);
  EXPECT_EQ(sim_.Fails("nvme_controller_destroy", {{"ctrl_id", "c0"}}).code, rpc::kBusy);
  EXPECT_EQ(sim_.Fails("nvme_subsystem_destroy", {{"nqn", kSnap4Nqn}}).code, rpc::kBusy);

  // force detaches the namespaces; the namespace itself stays in the subsystem.
  sim_.Ok("nvme_controller_destroy", {{"ctrl_id", "c0"}, {"force", true}});
  json subs = sim_.Ok("nvme_subsystem_list");
  EXPECT_TRUE(subs[0]["controllers"].empty());
  EXPECT_TRUE(subs[0]["namespaces"][0]["controllers"].empty());
  EXPECT_EQ(sim_.Fails("nvme_controller_destroy", {{"ctrl_id", "c0"}}).code, rpc::kNotFound);

  // Subsystem destroy with force takes its namespaces (and controllers) along.
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"ctrl", "c1"}});
  sim_.Ok("nvme_subsystem_destroy", {{"nqn", kSnap4Nqn}, {"force", true}});
  EXPECT_TRUE(sim_.Ok("nvme_controller_list").empty());
  sim_.Ok("bdev_null_delete", {{"name", "Null0"}});
}

TEST_F(Snap4Test, AttachAndDetachRules) {
  MakeSubsystem();
  MakeNull("Null0");
  sim_.Ok("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 1}});
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"ctrl", "a"}});
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"ctrl", "b"}});

  EXPECT_EQ(sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "a"}, {"nsid", 7}}).code,
            rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "zz"}, {"nsid", 1}}).code,
            rpc::kNotFound);
  sim_.Ok("nvme_controller_attach_ns", {{"ctrl_id", "a"}, {"nsid", 1}});
  EXPECT_EQ(sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "a"}, {"nsid", 1}}).code,
            rpc::kAlreadyExists);
  EXPECT_EQ(sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "b"}, {"nsid", 1}}).code,
            rpc::kBusy);  // SNAP does not share namespaces between controllers
  EXPECT_EQ(sim_.Fails("nvme_controller_detach_ns", {{"ctrl_id", "b"}, {"nsid", 1}}).code,
            rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "a"}}).message,
            "invalid params: 'nsid': required");
  sim_.Ok("nvme_controller_detach_ns", {{"ctrl_id", "a"}, {"nsid", 1}});
  sim_.Ok("nvme_controller_attach_ns", {{"ctrl_id", "b"}, {"nsid", 1}});
}

TEST_F(Snap4Test, SuspendAndResumeAreIdempotent) {
  MakeSubsystem();
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}});
  EXPECT_EQ(Controller("NVMeCtrl1")["suspended"], false);
  sim_.Ok("nvme_controller_resume", {{"ctrl_id", "NVMeCtrl1"}});  // running: a no-op
  sim_.Ok("nvme_controller_suspend", {{"ctrl_id", "NVMeCtrl1"}});
  sim_.Ok("nvme_controller_suspend", {{"ctrl_id", "NVMeCtrl1"}});  // suspended: a no-op
  EXPECT_EQ(Controller("NVMeCtrl1")["suspended"], true);
  sim_.Ok("nvme_controller_resume", {{"ctrl_id", "NVMeCtrl1"}});
  EXPECT_EQ(Controller("NVMeCtrl1")["suspended"], false);
  EXPECT_EQ(sim_.Fails("nvme_controller_suspend", {{"ctrl_id", "NVMeCtrl9"}}).code, rpc::kNotFound);
  EXPECT_EQ(sim_.Fails("virtio_blk_controller_resume", {{"ctrl", "NVMeCtrl1"}}).code,
            rpc::kNotFound);
}

TEST_F(Snap4Test, VirtioBlkLifecycle) {
  EXPECT_EQ(sim_.Ok("bdev_malloc_create", {{"num_blocks", 1024}, {"block_size", 512}}), "Malloc0");
  std::string name = sim_.Ok("virtio_blk_controller_create", {{"pf_id", 0},
                                                              {"bdev", "Malloc0"},
                                                              {"suspended", true},
                                                              {"num_queues", 4},
                                                              {"queue_size", 256}});
  EXPECT_EQ(name, "VblkCtrl1");
  json list = sim_.Ok("virtio_blk_controller_list");
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["bdev"], "Malloc0");
  EXPECT_EQ(list[0]["suspended"], true);
  EXPECT_EQ(list[0]["pci_bdf"], "25:00.4");
  EXPECT_EQ(list[0]["capacity"], 1024);  // 512-byte sectors, from the bdev
  EXPECT_EQ(list[0]["queue_size"], 256);
  EXPECT_EQ(sim_.Ok("emulation_function_list")[2]["ctrl_id"], "VblkCtrl1");

  EXPECT_EQ(sim_.Fails("bdev_malloc_delete", {{"name", "Malloc0"}}).code, rpc::kBusy);
  sim_.Ok("virtio_blk_controller_resume", {{"ctrl", "VblkCtrl1"}});
  Error e = sim_.Fails("virtio_blk_controller_bdev_detach", {{"ctrl", "VblkCtrl1"}});
  EXPECT_EQ(e.code, rpc::kBusy);  // running
  EXPECT_NE(e.message.find("suspend"), std::string::npos) << e.message;
  sim_.Ok("virtio_blk_controller_suspend", {{"ctrl", "VblkCtrl1"}});
  sim_.Ok("virtio_blk_controller_bdev_detach", {{"ctrl", "VblkCtrl1"}});
  EXPECT_EQ(sim_.Ok("virtio_blk_controller_list")[0]["bdev"], "");
  EXPECT_EQ(sim_.Fails("virtio_blk_controller_bdev_detach", {{"ctrl", "VblkCtrl1"}}).code,
            rpc::kNotFound);
  EXPECT_EQ(
      sim_.Fails("virtio_blk_controller_bdev_attach", {{"ctrl", "VblkCtrl1"}, {"bdev", "X"}}).code,
      rpc::kNotFound);
  sim_.Ok("virtio_blk_controller_bdev_attach", {{"ctrl", "VblkCtrl1"}, {"bdev", "Malloc0"}});
  sim_.Ok("bdev_malloc_create", {{"name", "M1"}, {"num_blocks", 8}, {"block_size", 512}});
  EXPECT_EQ(
      sim_.Fails("virtio_blk_controller_bdev_attach", {{"ctrl", "VblkCtrl1"}, {"bdev", "M1"}}).code,
      rpc::kBusy);  // already has one
  EXPECT_EQ(sim_.Fails("virtio_blk_controller_create", {{"pf_id", 1}, {"bdev", "Malloc0"}}).code,
            rpc::kBusy);  // Malloc0 is claimed
  EXPECT_EQ(sim_.Fails("virtio_blk_controller_create", {{"pf_id", 1}, {"queue_size", 100}}).message,
            "invalid params: 'queue_size': must be a power of two");
  EXPECT_TRUE(sim_.Ok("virtio_blk_controller_list").size() == 1);

  sim_.Ok("virtio_blk_controller_destroy", {{"ctrl", "VblkCtrl1"}});
  sim_.Ok("bdev_malloc_delete", {{"name", "Malloc0"}});
  EXPECT_TRUE(sim_.Ok("virtio_blk_controller_list").empty());
  EXPECT_EQ(sim_.Ok("emulation_function_list")[2]["ctrl_id"], "");
}

TEST_F(Snap4Test, HotplugAndUnplug) {
  std::string vuid = sim_.Ok("nvme_emulation_device_attach", {{"protocol", "nvme"}});
  EXPECT_EQ(vuid, "MT2334X00000NVMES1D0F0");
  json pfs = sim_.Ok("emulation_function_list");
  ASSERT_EQ(pfs.size(), 5u);
  EXPECT_EQ(pfs[4]["hotplugged"], true);
  EXPECT_EQ(pfs[4]["pf_index"], 2);
  EXPECT_EQ(pfs[4]["pci_bdf"], "28:00.0");

  MakeSubsystem();
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"vuid", vuid}, {"ctrl", "hp"}});
  EXPECT_EQ(sim_.Fails("emulation_device_detach", {{"vuid", vuid}}).code, rpc::kBusy);
  sim_.Ok("emulation_device_detach_prepare", {{"vuid", vuid}});
  EXPECT_EQ(sim_.Fails("emulation_device_detach", {{"vuid", vuid}}).code, rpc::kBusy);
  sim_.Ok("nvme_controller_destroy", {{"ctrl_id", "hp"}});
  sim_.Ok("emulation_device_detach", {{"vuid", vuid}});
  EXPECT_EQ(sim_.Ok("emulation_function_list").size(), 4u);
  EXPECT_EQ(sim_.Fails("emulation_device_detach", {{"vuid", vuid}}).code, rpc::kNotFound);

  // Without prepare only with force; static functions never.
  std::string other = sim_.Ok("nvme_emulation_device_attach", {{"protocol", "nvme"}});
  EXPECT_EQ(sim_.Fails("emulation_device_detach", {{"vuid", other}}).code, rpc::kBusy);
  sim_.Ok("emulation_device_detach", {{"vuid", other}, {"force", true}});
  EXPECT_EQ(
      sim_.Fails("emulation_device_detach", {{"vuid", "MT2334X00000NVMES0D0F2"}, {"force", true}})
          .code,
      rpc::kFailed);
  EXPECT_EQ(sim_.Fails("nvme_emulation_device_attach", {{"protocol", "virtio_blk"}}).message,
            "invalid params: 'protocol': must be one of: nvme");
  EXPECT_EQ(sim_.Fails("nvme_emulation_device_attach").message,
            "invalid params: 'protocol': required");
}

TEST_F(Snap4Test, FailedRequestsChangeNothing) {
  MakeSubsystem();
  MakeNull("Null0");
  sim_.Ok("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 1}});
  sim_.Ok("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}, {"suspended", true}});
  json before = Snapshot();

  sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"mdts", "big"}});
  sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 1}, {"num_queues", 0}});
  sim_.Fails("nvme_controller_create", {{"nqn", kSnap4Nqn}, {"pf_id", 0}});
  sim_.Fails("nvme_namespace_create", {{"nqn", kSnap4Nqn}, {"bdev_name", "Null0"}, {"nsid", 2}});
  sim_.Fails("nvme_subsystem_destroy", {{"nqn", kSnap4Nqn}});
  sim_.Fails("nvme_controller_destroy", {{"ctrl_id", "NVMeCtrl1"}, {"force", "yes"}});
  sim_.Fails("virtio_blk_controller_create", {{"pf_id", 0}, {"bdev", "Null0"}});
  sim_.Fails("bdev_null_create", {{"name", "N"}, {"num_blocks", 0}, {"block_size", 512}});
  sim_.Fails("bdev_null_delete", {{"name", "Null0"}});
  sim_.Fails("emulation_device_detach", {{"vuid", "MT2334X00000NVMES0D0F2"}});
  sim_.Fails("nvme_controller_attach_ns", {{"ctrl_id", "NVMeCtrl1"}, {"nsid", 1}, {"x", 1}});

  EXPECT_EQ(Snapshot(), before);
}

}  // namespace
}  // namespace dpustor::sim::testing
