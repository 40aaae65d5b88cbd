// SnapClient against the in-process simulator in both dialects (one normalised shape), against
// a missing socket, across a SNAP restart, and against a server without rpc_get_methods.
#include "snap/snap_client.h"

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/endpoint.h"
#include "common/method_table.h"
#include "common/rpc_server.h"
#include "sim_dialect.h"
#include "sim_harness.h"

namespace dpustor::snap {
namespace {

using json = nlohmann::json;
using sim::testing::SimHarness;
using sim::testing::TempDir;
using namespace std::chrono_literals;

constexpr const char* kNqn = "nqn.2022-10.io.dpustor:vol1";

struct Expected {
  std::string nvme_ctrl;
  std::string vblk_ctrl;
};

// The same configuration through each dialect's own methods: an NVMe controller on PF 0 with
// namespace 1 (bdev Null0) and a virtio-blk controller on PF 0 (bdev Null1).
Expected BuildScenario(SimHarness& sim, Dialect d) {
  sim.Ok("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 256}, {"block_size", 4096}});
  sim.Ok("bdev_null_create", {{"name", "Null1"}, {"num_blocks", 128}, {"block_size", 512}});
  if (d == Dialect::kSnap4) {
    sim.Ok("nvme_subsystem_create", {{"nqn", kNqn}, {"serial_number", "SN1"}});
    sim.Ok("nvme_namespace_create", {{"nqn", kNqn}, {"bdev_name", "Null0"}, {"nsid", 1}});
    std::string ctrl = sim.Ok("nvme_controller_create",
                              {{"nqn", kNqn}, {"pf_id", 0}, {"suspended", true}})["ctrl_id"];
    sim.Ok("nvme_controller_attach_ns", {{"ctrl_id", ctrl}, {"nsid", 1}});
    sim.Ok("nvme_controller_resume", {{"ctrl_id", ctrl}});
    std::string vblk = sim.Ok("virtio_blk_controller_create", {{"pf_id", 0}, {"bdev", "Null1"}});
    return {ctrl, vblk};
  }
  sim.Ok("subsystem_nvme_create", {{"nqn", kNqn}, {"serial_number", "SN1"}, {"model_number", "M"}});
  std::string ctrl = sim.Ok("controller_nvme_create",
                            {{"nqn", kNqn}, {"emulation_manager", "mlx5_0"}, {"pf_id", 0}})["name"];
  sim.Ok("controller_nvme_namespace_attach",
         {{"ctrl", ctrl}, {"bdev_type", "spdk"}, {"bdev", "Null0"}, {"nsid", 1}});
  std::string vblk = sim.Ok(
      "controller_virtio_blk_create",
      {{"emulation_manager", "mlx5_0"}, {"pf_id", 0}, {"bdev_type", "spdk"}, {"bdev", "Null1"}});
  return {ctrl, vblk};
}

// The structure of a JSON value: object keys recursively, arrays by their first element,
// scalars (including null, which stands for "not reported") as one leaf.
json Shape(const json& v) {
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, x] : v.items()) out[k] = Shape(x);
    return out;
  }
  if (v.is_array()) return v.empty() ? json::array() : json::array({Shape(v[0])});
  return "leaf";
}

sim::SnapSimOptions SimOptions(sim::Dialect d) {
  sim::SnapSimOptions o;
  o.dialect = d;
  return o;
}

json CollectScenario(Dialect d, Expected* expected) {
  SimHarness sim(SimDialect(d), sim::SimConfig{.pfs = 2, .vfs = 2});
  *expected = BuildScenario(sim, d);
  SnapClient client(sim.socket(), 5s);
  auto probed = client.Probe();
  EXPECT_TRUE(probed.ok());
  if (probed.ok()) {
    EXPECT_EQ(*probed, d);
  }
  return client.CollectStatus();
}

class SnapClientDialects : public ::testing::TestWithParam<Dialect> {};

TEST_P(SnapClientDialects, CollectStatusNormalises) {
  Dialect d = GetParam();
  Expected e;
  json s = CollectScenario(d, &e);
  SCOPED_TRACE(s.dump(1));
  ASSERT_EQ(s["reachable"], true);
  EXPECT_FALSE(s.contains("errors"));
  EXPECT_EQ(s["dialect"], std::string(DialectName(d)));
  EXPECT_EQ(s["simulator"], true);
  EXPECT_NE(s["version"]["version"].get<std::string>().find("dpustor-snap-sim"), std::string::npos);

  // 2 PFs of each type, each followed by its 2 VFs.
  json fns = s["emulation_functions"];
  ASSERT_EQ(fns.size(), 12u);
  EXPECT_EQ(fns[0], json({{"type", "nvme"},
                          {"pf_index", 0},
                          {"vf_index", nullptr},
                          {"pci_bdf", "25:00.2"},
                          {"vuid", "MT2334X00000NVMES0D0F2"},
                          {"hotplugged", false},
                          {"controller", e.nvme_ctrl}}));
  EXPECT_EQ(fns[1]["vf_index"], 0);
  EXPECT_EQ(fns[1]["pf_index"], 0);
  EXPECT_EQ(fns[1]["pci_bdf"], "26:00.0");
  EXPECT_EQ(fns[1]["controller"], nullptr);
  EXPECT_EQ(fns[6]["type"], "virtio_blk");
  EXPECT_EQ(fns[6]["controller"], e.vblk_ctrl);

  ASSERT_EQ(s["nvme_subsystems"].size(), 1u);
  json sub = s["nvme_subsystems"][0];
  EXPECT_EQ(sub["nqn"], kNqn);
  EXPECT_EQ(sub["serial_number"], "SN1");
  EXPECT_EQ(sub["controllers"], json({e.nvme_ctrl}));
  ASSERT_EQ(sub["namespaces"].size(), 1u);
  EXPECT_EQ(sub["namespaces"][0]["nsid"], 1);
  EXPECT_EQ(sub["namespaces"][0]["bdev"], "Null0");
  EXPECT_EQ(sub["namespaces"][0]["size_bytes"], 256 * 4096);
  EXPECT_EQ(sub["namespaces"][0]["controllers"], json({e.nvme_ctrl}));
  EXPECT_TRUE(sub["namespaces"][0]["uuid"].is_string());

  ASSERT_EQ(s["nvme_controllers"].size(), 1u);
  json c = s["nvme_controllers"][0];
  EXPECT_EQ(c["name"], e.nvme_ctrl);
  EXPECT_EQ(c["nqn"], kNqn);
  EXPECT_EQ(c["cntlid"], 0);
  EXPECT_EQ(c["pci_bdf"], "25:00.2");
  EXPECT_EQ(c["pf_index"], 0);
  EXPECT_EQ(c["vf_index"], nullptr);
  EXPECT_EQ(c["vuid"], "MT2334X00000NVMES0D0F2");
  EXPECT_EQ(c["namespaces"], json({1}));
  EXPECT_EQ(c["suspended"], d == Dialect::kSnap4 ? json(false) : json(nullptr));

  ASSERT_EQ(s["virtio_blk_controllers"].size(), 1u);
  json v = s["virtio_blk_controllers"][0];
  EXPECT_EQ(v["name"], e.vblk_ctrl);
  EXPECT_EQ(v["bdev"], "Null1");
  EXPECT_EQ(v["size_bytes"], 128 * 512);
  EXPECT_EQ(v["pci_bdf"], "25:00.4");
  EXPECT_EQ(v["pf_index"], 0);

  ASSERT_EQ(s["bdevs"].size(), 2u);
  EXPECT_EQ(s["bdevs"][0]["name"], "Null0");
  EXPECT_EQ(s["bdevs"][0]["driver"], "null");
  EXPECT_EQ(s["bdevs"][0]["size_bytes"], 256 * 4096);
  EXPECT_EQ(s["bdevs"][0]["claimed"], true);
  EXPECT_FALSE(s["bdevs"][0].contains("rbd"));
  EXPECT_EQ(s["iostat"]["tick_rate"], 1000000000);
  EXPECT_EQ(s["iostat"]["bdevs"]["Null1"]["num_write_ops"], 0);
  EXPECT_EQ(s["iostat"]["bdevs"].size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(BothDialects, SnapClientDialects,
                         ::testing::Values(Dialect::kSnap4, Dialect::kSnap3),
                         [](const auto& info) { return std::string(DialectName(info.param)); });

TEST(SnapClient, BothDialectsGiveOneShape) {
  Expected e4, e3;
  json snap4 = CollectScenario(Dialect::kSnap4, &e4);
  json snap3 = CollectScenario(Dialect::kSnap3, &e3);
  EXPECT_EQ(Shape(snap4), Shape(snap3)) << Shape(snap4).dump(1) << "\n" << Shape(snap3).dump(1);
}

TEST(SnapClient, MissingSocketIsUnreachable) {
  TempDir dir;
  SnapClient client((dir.path() / "spdk.sock").string(), 1s);
  json s = client.CollectStatus();
  EXPECT_EQ(s["reachable"], false);
  EXPECT_NE(s["error"].get<std::string>().find("cannot connect"), std::string::npos) << s;
  EXPECT_EQ(s.size(), 2u);
  EXPECT_FALSE(client.Probe().ok());
}

TEST(SnapClient, ReconnectsAfterSnapRestarts) {
  TempDir dir;
  std::string path = (dir.path() / "spdk.sock").string();
  SnapClient client(path, 2s);
  {
    sim::SimThread snap4(path, SimOptions(sim::Dialect::kSnap4));
    ASSERT_TRUE(snap4.status().ok());
    EXPECT_EQ(client.CollectStatus()["dialect"], "snap4");
  }
  EXPECT_EQ(client.CollectStatus()["reachable"], false);
  {
    // Back, and upgraded... to the other dialect: re-probed on the new connection.
    sim::SimThread snap3(path, SimOptions(sim::Dialect::kSnap3));
    ASSERT_TRUE(snap3.status().ok());
    json s = client.CollectStatus();
    EXPECT_EQ(s["reachable"], true);
    EXPECT_EQ(s["dialect"], "snap3");
    EXPECT_TRUE(client.Call("emulation_managers_list").ok());
  }
  {
    // A restart between two collections while the client holds a connection.
    sim::SimThread snap4(path, SimOptions(sim::Dialect::kSnap4));
    EXPECT_EQ(client.CollectStatus()["dialect"], "snap4");
  }
}

// A bare JSON-RPC server with a given method table, for SNAP builds the simulator does not
// imitate (no rpc_get_methods).
class BareServer : public rpc::ConnectionHandler {
 public:
  explicit BareServer(rpc::MethodTable<BareServer> table)
      : table_(std::move(table)), server_(ioc_, {}, [this](std::shared_ptr<rpc::RpcConnection> c) {
          conns_.push_back(c);
          c->Start(std::shared_ptr<rpc::ConnectionHandler>(this, [](rpc::ConnectionHandler*) {}));
        }) {
    path_ = (dir_.path() / "spdk.sock").string();
    EXPECT_TRUE(server_.Listen(*net::ParseEndpoint("unix:" + path_)).ok());
    thread_ = std::thread([this] {
      auto work = boost::asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  ~BareServer() override {
    boost::asio::post(ioc_, [this] {
      server_.Stop();
      for (auto& c : conns_) c->Close();
    });
    ioc_.stop();
    thread_.join();
  }
  void OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) override {
    table_.Dispatch(*this, m.method, m.params, std::move(reply));
  }
  const std::string& path() const { return path_; }

 private:
  TempDir dir_;
  std::string path_;
  rpc::MethodTable<BareServer> table_;
  boost::asio::io_context ioc_;
  rpc::RpcServer server_;
  std::vector<std::shared_ptr<rpc::RpcConnection>> conns_;
  std::thread thread_;
};

TEST(SnapClient, ProbeFallsBackToSpdkGetVersionAndMarkers) {
  rpc::MethodTable<BareServer> t;
  t.Add("spdk_get_version", "", [](BareServer&, const json&) -> json {
    return {{"version", "SPDK v21.04"}};
  });
  t.Add("subsystem_nvme_list", "", [](BareServer&, const json&) -> json { return json::array(); });
  BareServer server(std::move(t));
  SnapClient client(server.path(), 2s);
  auto d = client.Probe();
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(*d, Dialect::kSnap3);
  json s = client.CollectStatus();
  EXPECT_EQ(s["reachable"], true);
  EXPECT_EQ(s["dialect"], "snap3");
  EXPECT_EQ(s["simulator"], false);
  EXPECT_TRUE(s["errors"].contains("emulation_functions")) << s;  // not served here
}

TEST(SnapClient, UnrecognisedServerIsReachableWithAnError) {
  rpc::MethodTable<BareServer> t;
  t.Add("rpc_get_methods", "", [](BareServer&, const json&) -> json {
    return json::array({"rpc_get_methods", "spdk_get_version"});
  });
  t.Add("spdk_get_version", "", [](BareServer&, const json&) -> json {
    return {{"version", "SPDK v23.01"}};
  });
  BareServer server(std::move(t));
  SnapClient client(server.path(), 2s);
  json s = client.CollectStatus();
  EXPECT_EQ(s["reachable"], true);
  EXPECT_NE(s["error"].get<std::string>().find("neither"), std::string::npos) << s;
  EXPECT_EQ(s["version"]["version"], "SPDK v23.01");
}

}  // namespace
}  // namespace dpustor::snap
