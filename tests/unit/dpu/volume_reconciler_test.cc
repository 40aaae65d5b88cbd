// VolumeReconciler (spec.apply) against the in-process SNAP simulator in both dialects, with a
// fake Ceph behind the simulator's RbdOpener (no Ceph needed). The reconciler talks to SNAP
// through a recording proxy, so a test can see every method it called, and can hide methods
// (a SNAP without the RBD bdev module).
#include "agent/dpu/volume_reconciler.h"

#include <sys/stat.h>

#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/endpoint.h"
#include "common/rpc_client.h"
#include "common/rpc_server.h"
#include "sim_harness.h"
#include "snap/snap_volume_ops.h"

namespace dpustor::agent::dpu {
namespace {

using json = nlohmann::json;
using sim::testing::SimHarness;
using sim::testing::TempDir;
using namespace std::chrono_literals;

constexpr const char* kKey = "AQBdpustorTESTkey0000000000000000000000==";

// --- a Ceph stand-in behind the simulator ---------------------------------------------------

struct FakeCeph {
  std::map<std::string, std::uint64_t> images;  // "pool/image" -> size
  std::string key = kKey;                       // the keyring must hold this key
  int connections = 0;
};

class FakeImage : public sim::RbdImage {
 public:
  FakeImage(std::shared_ptr<FakeCeph> ceph, std::string key) : ceph_(ceph), key_(key) {}
  Result<std::uint64_t> Size() override {
    auto it = ceph_->images.find(key_);
    if (it == ceph_->images.end()) return sim::RbdError("rbd_get_size", -ENOENT);
    return it->second;
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
  std::string key_;
};

class FakeCluster : public sim::RbdCluster {
 public:
  explicit FakeCluster(std::shared_ptr<FakeCeph> ceph) : ceph_(ceph) { ++ceph_->connections; }
  ~FakeCluster() override { --ceph_->connections; }
  Result<std::unique_ptr<sim::RbdImage>> Open(const std::string& pool,
                                              const std::string& image) override {
    if (!ceph_->images.count(pool + "/" + image))
      return sim::RbdError("rbd_open('" + pool + "/" + image + "')", -ENOENT);
    return std::unique_ptr<sim::RbdImage>(new FakeImage(ceph_, pool + "/" + image));
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Connects like librados would: the config file must name the cluster, the keyring must hold
// the key (when one is given).
class FakeOpener : public sim::RbdOpener {
 public:
  explicit FakeOpener(std::shared_ptr<FakeCeph> ceph) : ceph_(ceph) {}
  Result<std::shared_ptr<sim::RbdCluster>> Connect(const sim::RbdClusterConfig& config) override {
    if (!config.config_file.empty() &&
        ReadFile(config.config_file).find("fsid = ") == std::string::npos)
      return sim::RbdError("rados_conf_read_file(" + config.config_file + ")", -ENOENT);
    if (!config.key_file.empty() &&
        ReadFile(config.key_file).find("key = " + ceph_->key) == std::string::npos)
      return sim::RbdError("rados_connect(client." + config.user_id + ")", -EACCES);
    return std::shared_ptr<sim::RbdCluster>(new FakeCluster(ceph_));
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
};

// --- a recording proxy in front of the simulator ---------------------------------------------

class SnapProxy : public rpc::ConnectionHandler {
 public:
  SnapProxy(std::string upstream, std::set<std::string> hidden)
      : upstream_(std::move(upstream)),
        hidden_(std::move(hidden)),
        server_(ioc_, {}, [this](std::shared_ptr<rpc::RpcConnection> c) {
          std::lock_guard lock(mu_);
          conns_.push_back(c);
          c->Start(std::shared_ptr<rpc::ConnectionHandler>(this, [](rpc::ConnectionHandler*) {}));
        }) {
    path_ = (dir_.path() / "proxy.sock").string();
    EXPECT_TRUE(server_.Listen(*net::ParseEndpoint("unix:" + path_)).ok());
    thread_ = std::thread([this] {
      auto work = boost::asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  ~SnapProxy() override {
    boost::asio::post(ioc_, [this] {
      server_.Stop();
      std::lock_guard lock(mu_);
      for (auto& c : conns_) c->Close();
    });
    ioc_.stop();
    thread_.join();
  }

  void OnRequest(rpc::RpcConnection&, rpc::Message&& m, rpc::Reply reply) override {
    std::lock_guard lock(mu_);
    calls_.push_back(m.method);
    if (hidden_.count(m.method)) return reply(Error{rpc::kMethodNotFound, "Method not found"});
    if (!upstream_client_) {
      auto c = rpc::RpcClient::Connect("unix:" + upstream_, 5s);
      if (!c.ok()) return reply(c.error());
      upstream_client_ = std::move(*c);
    }
    auto r = upstream_client_->Call(m.method, m.params, 5s);
    if (r.ok() && m.method == "rpc_get_methods" && r->is_array()) {
      json kept = json::array();
      for (const auto& name : *r)
        if (!hidden_.count(name.get<std::string>())) kept.push_back(name);
      r = kept;
    }
    reply(std::move(r));
  }

  const std::string& path() const { return path_; }
  std::vector<std::string> TakeCalls() {
    std::lock_guard lock(mu_);
    return std::exchange(calls_, {});
  }

 private:
  TempDir dir_;
  std::string path_;
  std::string upstream_;
  std::set<std::string> hidden_;
  boost::asio::io_context ioc_;
  rpc::RpcServer server_;
  std::mutex mu_;
  std::vector<std::shared_ptr<rpc::RpcConnection>> conns_;
  std::unique_ptr<rpc::RpcClient> upstream_client_;
  std::vector<std::string> calls_;
  std::thread thread_;
};

bool ReadOnly(const std::string& method) {
  auto ends_with = [&](std::string_view s) {
    return method.size() >= s.size() && method.compare(method.size() - s.size(), s.size(), s) == 0;
  };
  return ends_with("_list") || method.rfind("bdev_get_", 0) == 0 || method == "rpc_get_methods" ||
         method == "spdk_get_version" || method == "bdev_rbd_get_clusters_info";
}

// --- specs -----------------------------------------------------------------------------------

json Cluster(const std::string& key = kKey) {
  return {{"fsid", "6f1c8e2a-0b7d-4c36-9d51-2f0e7a1b9c44"},
          {"mon_host", "[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]"},
          {"user_id", "dpustor.dpu-a"},
          {"key", key}};
}

json Nvme(const std::string& volume, int pf, json vf = nullptr, int nsid = 1) {
  return {{"volume", volume},   {"cluster", "ceph-lab"}, {"pool", "rbd"},  {"image", volume},
          {"protocol", "nvme"}, {"pf_index", pf},        {"vf_index", vf}, {"nsid", nsid}};
}

json Vblk(const std::string& volume, int pf, json vf = nullptr) {
  return {{"volume", volume},         {"cluster", "ceph-lab"}, {"pool", "rbd"},  {"image", volume},
          {"protocol", "virtio-blk"}, {"pf_index", pf},        {"vf_index", vf}, {"nsid", 1}};
}

json Spec(std::int64_t generation, json attachments, json clusters = nullptr) {
  if (clusters.is_null()) clusters = {{"ceph-lab", Cluster()}};
  return {{"generation", generation}, {"clusters", clusters}, {"attachments", attachments}};
}

// --- fixture ---------------------------------------------------------------------------------

class VolumeReconcilerTest : public ::testing::TestWithParam<sim::Dialect> {
 protected:
  VolumeReconcilerTest() : VolumeReconcilerTest(std::set<std::string>{}) {}
  explicit VolumeReconcilerTest(std::set<std::string> hidden)
      : ceph_(std::make_shared<FakeCeph>()),
        sim_(GetParam(), sim::SimConfig{.pfs = 2, .vfs = 2}, std::make_unique<FakeOpener>(ceph_)),
        proxy_(sim_.socket(), std::move(hidden)),
        client_(proxy_.path(), 5s),
        reconciler_(client_, (state_.path() / "state").string()) {
    for (const char* v : {"vol1", "vol2", "vol3", "vol4", "vol9"})
      ceph_->images[std::string("rbd/") + v] = 1 << 30;
  }

  bool snap4() const { return GetParam() == sim::Dialect::kSnap4; }

  // The controller name SNAP ends up with for a volume on a function.
  std::string Ctrl(const std::string& volume, bool nvme, int pf, std::optional<int> vf = {}) {
    if (snap4()) return "dpustor-" + volume;
    return std::string(nvme ? "NvmeEmu0pf" : "VblkEmu0pf") + std::to_string(pf) +
           (vf ? "vf" + std::to_string(*vf) : "");
  }

  json Apply(const json& spec) {
    auto r = reconciler_.Apply(spec);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? *r : json();
  }

  // SNAP's whole state, read past the proxy.
  json State() {
    snap::SnapClient raw(sim_.socket(), 5s);
    json s = raw.CollectStatus(/*with_iostat=*/false);
    EXPECT_EQ(s["reachable"], true);
    EXPECT_FALSE(s.contains("errors")) << s.dump();
    return s;
  }

  static json Named(const json& list, const std::string& name, const char* key = "name") {
    for (const auto& x : list)
      if (x[key] == name) return x;
    return nullptr;
  }

  static std::set<std::string> Names(const json& list, const char* key = "name") {
    std::set<std::string> out;
    for (const auto& x : list) out.insert(x[key].get<std::string>());
    return out;
  }

  // Raw RPC in the simulator's dialect, past the reconciler.
  std::string ForeignNvmeController(const std::string& nqn, int pf) {
    if (snap4()) {
      sim_.Ok("nvme_subsystem_create", {{"nqn", nqn}});
      return sim_.Ok("nvme_controller_create", {{"nqn", nqn}, {"pf_id", pf}})["ctrl_id"];
    }
    sim_.Ok("subsystem_nvme_create", {{"nqn", nqn}, {"serial_number", "F"}, {"model_number", "F"}});
    return sim_.Ok("controller_nvme_create",
                   {{"nqn", nqn}, {"emulation_manager", "mlx5_0"}, {"pf_id", pf}})["name"];
  }
  std::string ForeignVblkController(const std::string& bdev, int pf) {
    if (snap4()) return sim_.Ok("virtio_blk_controller_create", {{"pf_id", pf}, {"bdev", bdev}});
    return sim_.Ok(
        "controller_virtio_blk_create",
        {{"emulation_manager", "mlx5_0"}, {"pf_id", pf}, {"bdev_type", "spdk"}, {"bdev", bdev}});
  }

  // Checks an attachment entry and what SNAP holds for it.
  void ExpectNvme(const json& state, const json& entry, const std::string& volume, int pf,
                  std::optional<int> vf, int nsid) {
    SCOPED_TRACE(volume);
    std::string nqn = "nqn.2024-11.io.dpustor:" + volume;
    std::string ctrl = Ctrl(volume, true, pf, vf);
    EXPECT_EQ(entry["volume"], volume);
    EXPECT_EQ(entry["state"], "attached") << entry.dump();
    EXPECT_FALSE(entry.contains("error")) << entry.dump();
    EXPECT_EQ(entry["bdev"], "dpustor-" + volume);
    EXPECT_EQ(entry["controller"], ctrl);
    EXPECT_EQ(entry["nqn"], nqn);
    EXPECT_EQ(entry["size_bytes"], 1 << 30);
    EXPECT_EQ(entry["protocol"], "nvme");
    EXPECT_EQ(entry["pf_index"], pf);
    EXPECT_EQ(entry["vf_index"], vf ? json(*vf) : json(nullptr));

    json bdev = Named(state["bdevs"], "dpustor-" + volume);
    EXPECT_EQ(bdev["driver"], "rbd");
    EXPECT_EQ(bdev["rbd"]["pool_name"], "rbd");
    EXPECT_EQ(bdev["rbd"]["rbd_name"], volume);
    EXPECT_EQ(bdev["rbd"]["cluster_name"], "dpustor-ceph-lab");
    json sub = Named(state["nvme_subsystems"], nqn, "nqn");
    ASSERT_TRUE(sub.is_object());
    ASSERT_EQ(sub["namespaces"].size(), 1u);
    EXPECT_EQ(sub["namespaces"][0]["nsid"], nsid);
    EXPECT_EQ(sub["namespaces"][0]["bdev"], "dpustor-" + volume);
    EXPECT_EQ(sub["namespaces"][0]["controllers"], json::array({ctrl}));
    json c = Named(state["nvme_controllers"], ctrl);
    ASSERT_TRUE(c.is_object());
    EXPECT_EQ(c["nqn"], nqn);
    EXPECT_EQ(c["pf_index"], pf);
    EXPECT_EQ(c["vf_index"], vf ? json(*vf) : json(nullptr));
    EXPECT_EQ(c["namespaces"], json::array({nsid}));
    if (snap4()) {
      EXPECT_EQ(c["suspended"], false);
    }
  }

  void ExpectVblk(const json& state, const json& entry, const std::string& volume, int pf,
                  std::optional<int> vf = {}) {
    SCOPED_TRACE(volume);
    std::string ctrl = Ctrl(volume, false, pf, vf);
    EXPECT_EQ(entry["state"], "attached") << entry.dump();
    EXPECT_EQ(entry["bdev"], "dpustor-" + volume);
    EXPECT_EQ(entry["controller"], ctrl);
    EXPECT_FALSE(entry.contains("nqn"));
    EXPECT_EQ(entry["size_bytes"], 1 << 30);
    EXPECT_EQ(entry["protocol"], "virtio-blk");
    json c = Named(state["virtio_blk_controllers"], ctrl);
    ASSERT_TRUE(c.is_object());
    EXPECT_EQ(c["bdev"], "dpustor-" + volume);
    EXPECT_EQ(c["pf_index"], pf);
    if (snap4()) {
      EXPECT_EQ(c["suspended"], false);
    }
  }

  TempDir state_;
  std::shared_ptr<FakeCeph> ceph_;
  SimHarness sim_;
  SnapProxy proxy_;
  snap::SnapClient client_;
  VolumeReconciler reconciler_;
};

json ThreeVolumes() {
  return json::array({Nvme("vol1", 0), Vblk("vol2", 0), Nvme("vol3", 1, 1, 5)});
}

TEST_P(VolumeReconcilerTest, AppliesNvmeAndVirtioBlkAttachments) {
  EXPECT_EQ(reconciler_.spec_generation(), nullptr);
  json r = Apply(Spec(7, ThreeVolumes()));
  SCOPED_TRACE(r.dump(1));
  EXPECT_EQ(r["generation"], 7);
  EXPECT_FALSE(r.contains("errors"));
  ASSERT_EQ(r["attachments"].size(), 3u);
  json s = State();
  ExpectNvme(s, r["attachments"][0], "vol1", 0, {}, 1);
  ExpectVblk(s, r["attachments"][1], "vol2", 0);
  ExpectNvme(s, r["attachments"][2], "vol3", 1, 1, 5);
  // Exactly these objects and nothing else.
  EXPECT_EQ(Names(s["bdevs"]),
            (std::set<std::string>{"dpustor-vol1", "dpustor-vol2", "dpustor-vol3"}));
  EXPECT_EQ(s["nvme_subsystems"].size(), 2u);
  EXPECT_EQ(s["nvme_controllers"].size(), 2u);
  EXPECT_EQ(s["virtio_blk_controllers"].size(), 1u);
  json clusters = sim_.Ok("bdev_rbd_get_clusters_info");
  ASSERT_EQ(clusters.size(), 1u);
  EXPECT_EQ(clusters[0]["cluster_name"], "dpustor-ceph-lab");
  EXPECT_EQ(clusters[0]["user_id"], "dpustor.dpu-a");
  EXPECT_EQ(clusters[0]["config_file"], reconciler_.CephConfPath("ceph-lab"));
  EXPECT_EQ(clusters[0]["key_file"], reconciler_.KeyringPath("ceph-lab"));
  EXPECT_EQ(reconciler_.spec_generation(), 7);
  // The key is in no answer.
  EXPECT_EQ(r.dump().find(kKey), std::string::npos);
  EXPECT_EQ(reconciler_.Observed().dump().find(kKey), std::string::npos);
}

TEST_P(VolumeReconcilerTest, NvmeBringUpFollowsTheDialectsOrder) {
  proxy_.TakeCalls();
  Apply(Spec(1, json::array({Nvme("vol1", 0)})));
  std::vector<std::string> mutations;
  for (const auto& m : proxy_.TakeCalls())
    if (!ReadOnly(m)) mutations.push_back(m);
  std::vector<std::string> expected =
      snap4() ? std::vector<std::string>{"bdev_rbd_register_cluster", "bdev_rbd_create",
                                         "nvme_subsystem_create",     "nvme_namespace_create",
                                         "nvme_controller_create",    "nvme_controller_attach_ns",
                                         "nvme_controller_resume"}
              : std::vector<std::string>{"bdev_rbd_register_cluster", "bdev_rbd_create",
                                         "subsystem_nvme_create", "controller_nvme_create",
                                         "controller_nvme_namespace_attach"};
  EXPECT_EQ(mutations, expected);
}

TEST_P(VolumeReconcilerTest, ReapplyingTheSameSpecChangesNothing) {
  Apply(Spec(1, ThreeVolumes()));
  json before = State();
  int mutations = reconciler_.mutations();
  proxy_.TakeCalls();
  json r = Apply(Spec(2, ThreeVolumes()));
  for (const auto& a : r["attachments"]) EXPECT_EQ(a["state"], "attached") << a.dump();
  EXPECT_EQ(reconciler_.mutations(), mutations);
  for (const auto& m : proxy_.TakeCalls()) EXPECT_TRUE(ReadOnly(m)) << m;
  EXPECT_EQ(State(), before);
  EXPECT_EQ(reconciler_.spec_generation(), 2);
}

TEST_P(VolumeReconcilerTest, RemovingAnAttachmentRemovesOnlyItsObjects) {
  Apply(Spec(1, ThreeVolumes()));
  json before = State();
  json r = Apply(Spec(2, json::array({Vblk("vol2", 0), Nvme("vol3", 1, 1, 5)})));
  ASSERT_EQ(r["attachments"].size(), 2u);
  json s = State();
  ExpectVblk(s, r["attachments"][0], "vol2", 0);
  ExpectNvme(s, r["attachments"][1], "vol3", 1, 1, 5);
  EXPECT_EQ(Names(s["bdevs"]), (std::set<std::string>{"dpustor-vol2", "dpustor-vol3"}));
  EXPECT_EQ(Names(s["nvme_subsystems"], "nqn"),
            (std::set<std::string>{"nqn.2024-11.io.dpustor:vol3"}));
  EXPECT_EQ(Names(s["nvme_controllers"]), (std::set<std::string>{Ctrl("vol3", true, 1, 1)}));
  // The others are exactly as they were.
  EXPECT_EQ(Named(s["nvme_controllers"], Ctrl("vol3", true, 1, 1)),
            Named(before["nvme_controllers"], Ctrl("vol3", true, 1, 1)));
  EXPECT_EQ(Named(s["bdevs"], "dpustor-vol2"), Named(before["bdevs"], "dpustor-vol2"));

  // Nothing left: everything of ours goes, and so does the cluster registration.
  r = Apply(Spec(3, json::array(), json::object()));
  EXPECT_TRUE(r["attachments"].empty());
  s = State();
  EXPECT_TRUE(s["bdevs"].empty());
  EXPECT_TRUE(s["nvme_subsystems"].empty());
  EXPECT_TRUE(s["nvme_controllers"].empty());
  EXPECT_TRUE(s["virtio_blk_controllers"].empty());
  EXPECT_TRUE(sim_.Ok("bdev_rbd_get_clusters_info").empty());
  EXPECT_EQ(ceph_->connections, 0);
  EXPECT_FALSE(std::filesystem::exists(reconciler_.KeyringPath("ceph-lab")));
}

TEST_P(VolumeReconcilerTest, ForeignObjectsAreNeverTouched) {
  sim_.Ok("bdev_null_create", {{"name", "Null0"}, {"num_blocks", 64}, {"block_size", 512}});
  sim_.Ok("bdev_null_create", {{"name", "Null1"}, {"num_blocks", 64}, {"block_size", 512}});
  std::string foreign_nvme = ForeignNvmeController("nqn.2016-06.io.spdk:cnode1", 1);
  std::string foreign_vblk = ForeignVblkController("Null1", 1);
  if (snap4()) {
    EXPECT_EQ(foreign_nvme, "NVMeCtrl1");
    sim_.Ok("nvme_namespace_create",
            {{"nqn", "nqn.2016-06.io.spdk:cnode1"}, {"bdev_name", "Null0"}, {"nsid", 1}});
    sim_.Ok("nvme_controller_attach_ns", {{"ctrl_id", foreign_nvme}, {"nsid", 1}});
  }
  json foreign = State();
  auto foreign_parts = [&](const json& s) {
    return json{{"bdevs", {Named(s["bdevs"], "Null0"), Named(s["bdevs"], "Null1")}},
                {"sub", Named(s["nvme_subsystems"], "nqn.2016-06.io.spdk:cnode1", "nqn")},
                {"nvme", Named(s["nvme_controllers"], foreign_nvme)},
                {"vblk", Named(s["virtio_blk_controllers"], foreign_vblk)}};
  };

  // vol4 wants the NVMe PF the foreign controller sits on: it fails, naming it; the others go.
  json r = Apply(Spec(1, json::array({Nvme("vol1", 0), Nvme("vol4", 1), Vblk("vol2", 0)})));
  SCOPED_TRACE(r.dump(1));
  json s = State();
  ExpectNvme(s, r["attachments"][0], "vol1", 0, {}, 1);
  ExpectVblk(s, r["attachments"][2], "vol2", 0);
  json failed = r["attachments"][1];
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(failed["error"], "NVMe pf 1 already carries controller " + foreign_nvme +
                                 ", which dpustor does not own; remove it or attach the volume "
                                 "to another function");
  EXPECT_EQ(failed["bdev"], nullptr);  // nothing was made for it
  EXPECT_EQ(foreign_parts(s), foreign_parts(foreign));

  // Half of the foreign state on a volume of ours' function: same for virtio-blk.
  r = Apply(Spec(2, json::array({Vblk("vol2", 1)})));
  EXPECT_EQ(r["attachments"][0]["state"], "failed");
  EXPECT_NE(r["attachments"][0]["error"].get<std::string>().find(foreign_vblk), std::string::npos);

  // Removing all of ours leaves all of theirs.
  Apply(Spec(3, json::array(), json::object()));
  s = State();
  EXPECT_EQ(foreign_parts(s), foreign_parts(foreign));
  EXPECT_EQ(Names(s["bdevs"]), (std::set<std::string>{"Null0", "Null1"}));
}

TEST_P(VolumeReconcilerTest, HalfMadeStateIsRolledForward) {
  Apply(Spec(1, json::array({Nvme("vol1", 0), Vblk("vol2", 0)})));
  std::string nqn = "nqn.2024-11.io.dpustor:vol1";
  std::string ctrl = Ctrl("vol1", true, 0);
  // Break it by raw RPC: vol1 loses its controller (bdev, subsystem and namespace stay),
  // vol9's bdev is made by hand with our name, a stray null bdev of ours appears.
  if (snap4()) {
    sim_.Ok("nvme_controller_destroy", {{"ctrl_id", ctrl}, {"force", true}});
  } else {
    sim_.Ok("controller_nvme_namespace_detach", {{"ctrl", ctrl}, {"nsid", 1}});
    sim_.Ok("controller_nvme_delete", {{"name", ctrl}});
  }
  sim_.Ok("bdev_rbd_create", {{"name", "dpustor-vol9"},
                              {"cluster_name", "dpustor-ceph-lab"},
                              {"pool_name", "rbd"},
                              {"rbd_name", "vol9"},
                              {"block_size", 512}});
  std::string vol9_uuid = Named(State()["bdevs"], "dpustor-vol9")["uuid"];
  sim_.Ok("bdev_null_create", {{"name", "dpustor-stray"}, {"num_blocks", 8}, {"block_size", 512}});

  json r = Apply(Spec(2, json::array({Nvme("vol1", 0), Vblk("vol2", 0), Vblk("vol9", 1)})));
  SCOPED_TRACE(r.dump(1));
  json s = State();
  ExpectNvme(s, r["attachments"][0], "vol1", 0, {}, 1);
  ExpectVblk(s, r["attachments"][2], "vol9", 1);
  EXPECT_EQ(Named(s["bdevs"], "dpustor-vol9")["uuid"], vol9_uuid);  // used, not re-made
  EXPECT_TRUE(Named(s["bdevs"], "dpustor-stray").is_null());

  if (snap4()) {
    // A controller of ours created suspended with nothing attached, and a suspended one.
    sim_.Ok("nvme_controller_destroy", {{"ctrl_id", ctrl}, {"force", true}});
    sim_.Ok("nvme_controller_create",
            {{"nqn", nqn}, {"ctrl", ctrl}, {"pf_id", 0}, {"suspended", true}});
    sim_.Ok("virtio_blk_controller_suspend", {{"ctrl", "dpustor-vol2"}});
    json observed = reconciler_.Observed();
    EXPECT_EQ(observed["attachments"][0]["state"], "failed");
    EXPECT_EQ(observed["attachments"][0]["error"],
              "incomplete: namespace 1 is not attached to dpustor-vol1; controller dpustor-vol1 "
              "is suspended");
    EXPECT_EQ(observed["attachments"][1]["error"],
              "incomplete: controller dpustor-vol2 is suspended");
    r = Apply(Spec(3, json::array({Nvme("vol1", 0), Vblk("vol2", 0), Vblk("vol9", 1)})));
    s = State();
    ExpectNvme(s, r["attachments"][0], "vol1", 0, {}, 1);
    ExpectVblk(s, r["attachments"][1], "vol2", 0);
    // A namespace of ours detached from its controller, which is left running.
    sim_.Ok("nvme_controller_detach_ns", {{"ctrl_id", ctrl}, {"nsid", 1}});
  } else {
    // The namespace detached (which destroys it in SNAP 3).
    sim_.Ok("controller_nvme_namespace_detach", {{"ctrl", ctrl}, {"nsid", 1}});
  }
  r = Apply(Spec(4, json::array({Nvme("vol1", 0), Vblk("vol2", 0), Vblk("vol9", 1)})));
  ExpectNvme(State(), r["attachments"][0], "vol1", 0, {}, 1);
}

TEST_P(VolumeReconcilerTest, MovedAttachmentsAreTornDownAndRecreated) {
  Apply(Spec(1, json::array({Nvme("vol1", 0), Vblk("vol2", 0), Nvme("vol3", 1)})));
  // vol1 moves to a VF of its PF, vol2 becomes NVMe (on the PF vol1 left), vol3 changes nsid.
  json r = Apply(Spec(2, json::array({Nvme("vol1", 0, 0), Nvme("vol2", 0, nullptr, 2),
                                      Nvme("vol3", 1, nullptr, 7)})));
  SCOPED_TRACE(r.dump(1));
  json s = State();
  ExpectNvme(s, r["attachments"][0], "vol1", 0, 0, 1);
  ExpectNvme(s, r["attachments"][1], "vol2", 0, {}, 2);
  ExpectNvme(s, r["attachments"][2], "vol3", 1, {}, 7);
  EXPECT_TRUE(s["virtio_blk_controllers"].empty());
  EXPECT_EQ(s["nvme_controllers"].size(), 3u);

  // Back to virtio-blk, and an image change (the bdev must be re-made on the new image).
  json moved = Vblk("vol2", 1);
  moved["image"] = "vol4";
  r = Apply(Spec(3, json::array({moved})));
  s = State();
  ExpectVblk(s, r["attachments"][0], "vol2", 1);
  EXPECT_EQ(Named(s["bdevs"], "dpustor-vol2")["rbd"]["rbd_name"], "vol4");
  EXPECT_TRUE(s["nvme_controllers"].empty());
  EXPECT_TRUE(s["nvme_subsystems"].empty());
  EXPECT_EQ(Names(s["bdevs"]), (std::set<std::string>{"dpustor-vol2"}));
}

TEST_P(VolumeReconcilerTest, BadSpecChangesNothing) {
  Apply(Spec(1, json::array({Nvme("vol1", 0)})));
  json before = State();
  int mutations = reconciler_.mutations();
  auto fails = [&](json spec, const std::string& field) {
    auto r = reconciler_.Apply(spec);
    ASSERT_FALSE(r.ok()) << spec.dump();
    EXPECT_EQ(r.error().code, rpc::kInvalidParams);
    EXPECT_NE(r.error().message.find("'" + field + "'"), std::string::npos)
        << r.error().message << " (expected " << field << ")";
    EXPECT_EQ(r.error().message.find(kKey), std::string::npos);
  };
  auto with = [&](const char* key, json value) {
    json a = Nvme("vol2", 1);
    a[key] = value;
    return Spec(9, json::array({Nvme("vol1", 0), a}));
  };
  fails(with("volume", "bad name!"), "attachments[1].volume");
  fails(with("volume", "../x"), "attachments[1].volume");
  fails(with("protocol", "scsi"), "attachments[1].protocol");
  fails(with("pf_index", -1), "attachments[1].pf_index");
  fails(with("pf_index", "0"), "attachments[1].pf_index");
  fails(with("vf_index", 1.5), "attachments[1].vf_index");
  fails(with("nsid", 0), "attachments[1].nsid");
  fails(with("cluster", "elsewhere"), "attachments[1].cluster");
  fails(with("pool", ""), "attachments[1].pool");
  fails(with("colour", "red"), "attachments[1].colour");
  fails(with("volume", "vol1"), "attachments[1].volume");  // attached twice
  fails(with("pf_index", 0), "attachments[1]");            // one function, two volumes
  json bad_key = Spec(9, json::array({Nvme("vol1", 0)}),
                      {{"ceph-lab", Cluster(std::string(kKey) + "\n[global]")}});
  fails(bad_key, "clusters.ceph-lab.key");
  json bad_mon = Cluster();
  bad_mon["mon_host"] = "10.0.0.1\nkeyring = /tmp/x";
  fails(Spec(9, json::array(), {{"ceph-lab", bad_mon}}), "clusters.ceph-lab.mon_host");
  fails(json{{"generation", 9}, {"attachments", json::array()}}, "clusters");
  fails(json{{"clusters", json::object()}, {"attachments", json::array()}}, "generation");
  EXPECT_EQ(State(), before);
  EXPECT_EQ(reconciler_.mutations(), mutations);
  EXPECT_EQ(reconciler_.spec_generation(), 1);
  EXPECT_NE(ReadFile(reconciler_.KeyringPath("ceph-lab")).find(kKey), std::string::npos);
}

TEST_P(VolumeReconcilerTest, MissingFunctionFailsThatAttachmentOnly) {
  json r = Apply(Spec(1, json::array({Nvme("vol1", 7), Vblk("vol2", 0, 3), Vblk("vol3", 1, 1)})));
  SCOPED_TRACE(r.dump(1));
  EXPECT_EQ(r["attachments"][0]["state"], "failed");
  EXPECT_EQ(r["attachments"][0]["error"],
            "this DPU has no NVMe emulation function at pf 7 (it has: pf 0, pf 0 vf 0, pf 0 vf 1, "
            "pf 1, pf 1 vf 0, pf 1 vf 1)");
  EXPECT_EQ(r["attachments"][1]["state"], "failed");
  EXPECT_NE(r["attachments"][1]["error"].get<std::string>().find("virtio-blk emulation function "
                                                                 "at pf 0 vf 3"),
            std::string::npos);
  json s = State();
  ExpectVblk(s, r["attachments"][2], "vol3", 1, 1);
  EXPECT_EQ(Names(s["bdevs"]), (std::set<std::string>{"dpustor-vol3"}));
  // A Ceph error fails the attachment too (and nothing of it stays).
  r = Apply(Spec(2, json::array({Vblk("vol3", 1, 1), Vblk("nope", 0)})));
  EXPECT_EQ(r["attachments"][0]["state"], "attached");
  EXPECT_EQ(r["attachments"][1]["state"], "failed");
  EXPECT_NE(r["attachments"][1]["error"].get<std::string>().find("cannot create bdev dpustor-nope"),
            std::string::npos);
  // Observed carries the last apply's error for what SNAP does not hold.
  json observed = reconciler_.Observed();
  EXPECT_EQ(observed["generation"], 2);
  EXPECT_EQ(observed["attachments"][1]["error"], r["attachments"][1]["error"]);
}

TEST_P(VolumeReconcilerTest, WrongKeyFailsEveryAttachmentOfThatCluster) {
  json r = Apply(Spec(1, json::array({Nvme("vol1", 0)}), {{"ceph-lab", Cluster("AQBwrong==")}}));
  EXPECT_EQ(r["attachments"][0]["state"], "failed");
  EXPECT_NE(r["attachments"][0]["error"].get<std::string>().find("Ceph cluster ceph-lab"),
            std::string::npos)
      << r.dump();
  EXPECT_EQ(r.dump().find("AQBwrong"), std::string::npos);
  // The right key: the files change and the cluster is registered.
  r = Apply(Spec(2, json::array({Nvme("vol1", 0)})));
  ExpectNvme(State(), r["attachments"][0], "vol1", 0, {}, 1);
}

TEST_P(VolumeReconcilerTest, CredentialFilesAreWrittenPrivately) {
  Apply(Spec(1, json::array({Nvme("vol1", 0)})));
  std::string keyring = reconciler_.KeyringPath("ceph-lab");
  std::string conf = reconciler_.CephConfPath("ceph-lab");
  EXPECT_EQ(ReadFile(keyring), std::string("[client.dpustor.dpu-a]\n\tkey = ") + kKey + "\n");
  EXPECT_EQ(ReadFile(conf),
            "[global]\nfsid = 6f1c8e2a-0b7d-4c36-9d51-2f0e7a1b9c44\n"
            "mon_host = [v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0]\n");
  for (const auto& path : {keyring, conf}) {
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << path;
  }
  struct stat dir;
  ASSERT_EQ(::stat((state_.path() / "state" / "ceph").c_str(), &dir), 0);
  EXPECT_EQ(dir.st_mode & 07777, 0700u);
  // No temporary files left behind; a permission change is repaired.
  ::chmod(keyring.c_str(), 0644);
  Apply(Spec(2, json::array({Nvme("vol1", 0)})));
  struct stat st;
  ASSERT_EQ(::stat(keyring.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::set<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(state_.path() / "state" / "ceph"))
    files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"ceph-lab.conf", "ceph-lab.keyring"}));
}

TEST_P(VolumeReconcilerTest, ObservedReadsWhatSnapHoldsWithoutASpec) {
  Apply(Spec(5, ThreeVolumes()));
  json applied = reconciler_.Apply(Spec(6, ThreeVolumes())).value();
  // A fresh reconciler (an agent restart) knows no spec but sees the same attachments.
  snap::SnapClient other(sim_.socket(), 5s);
  VolumeReconciler fresh(other, (state_.path() / "state").string());
  json observed = fresh.Observed();
  EXPECT_EQ(observed["generation"], nullptr);
  EXPECT_EQ(fresh.spec_generation(), nullptr);
  ASSERT_EQ(observed["attachments"].size(), 3u);
  std::map<std::string, json> by_volume;
  for (const auto& a : observed["attachments"]) by_volume[a["volume"]] = a;
  for (const auto& a : applied["attachments"]) EXPECT_EQ(by_volume[a["volume"]], a);

  // From someone else's snapshot (as the agent's status collector does).
  json snapshot = other.CollectStatus();
  json from = reconciler_.ObservedFrom(snapshot, reconciler_.ApplySequence());
  EXPECT_EQ(from["generation"], 6);
  EXPECT_EQ(from["attachments"], applied["attachments"]);
  // A snapshot taken while an apply ran is not trusted: the last result stands in.
  json stale = reconciler_.ObservedFrom(json{{"reachable", true}, {"bdevs", json::array()}},
                                        reconciler_.ApplySequence() + 1);
  EXPECT_EQ(stale["attachments"], applied["attachments"]);
  // SNAP gone: every wanted attachment is reported failed, with the reason.
  json gone = reconciler_.ObservedFrom(json{{"reachable", false}, {"error", "connect: refused"}},
                                       reconciler_.ApplySequence());
  for (const auto& a : gone["attachments"]) {
    EXPECT_EQ(a["state"], "failed");
    EXPECT_NE(a["error"].get<std::string>().find("connect: refused"), std::string::npos);
  }
}

TEST_P(VolumeReconcilerTest, SnapUnreachableFailsEveryAttachment) {
  sim_.Stop();
  json r = Apply(Spec(1, json::array({Nvme("vol1", 0), Vblk("vol2", 0)})));
  for (const auto& a : r["attachments"]) {
    EXPECT_EQ(a["state"], "failed");
    EXPECT_EQ(a["error"].get<std::string>().rfind("SNAP: ", 0), 0u) << a.dump();
  }
  EXPECT_EQ(reconciler_.spec_generation(), 1);
}

INSTANTIATE_TEST_SUITE_P(BothDialects, VolumeReconcilerTest,
                         ::testing::Values(sim::Dialect::kSnap4, sim::Dialect::kSnap3),
                         [](const auto& info) {
                           return std::string(sim::DialectName(info.param));
                         });

// SNAP built without the RBD bdev module: every attachment fails with the actionable error,
// and nothing is created.
class WithoutRbdModule : public VolumeReconcilerTest {
 protected:
  WithoutRbdModule()
      : VolumeReconcilerTest(
            std::set<std::string>{"bdev_rbd_create", "bdev_rbd_delete", "bdev_rbd_register_cluster",
                                  "bdev_rbd_unregister_cluster", "bdev_rbd_get_clusters_info"}) {}
};

TEST_P(WithoutRbdModule, AttachmentsFailWithTheNvmeOfAdvice) {
  json r = Apply(Spec(1, json::array({Nvme("vol1", 0), Vblk("vol2", 0)})));
  for (const auto& a : r["attachments"]) {
    EXPECT_EQ(a["state"], "failed");
    EXPECT_EQ(a["error"],
              "SNAP on this DPU has no RBD bdev module (bdev_rbd_create missing); export the "
              "image through Ceph's NVMe-oF gateway and attach it with "
              "bdev_nvme_attach_controller");
  }
  EXPECT_EQ(reconciler_.mutations(), 0);
  for (const auto& m : proxy_.TakeCalls()) EXPECT_TRUE(ReadOnly(m)) << m;
}

INSTANTIATE_TEST_SUITE_P(BothDialects, WithoutRbdModule,
                         ::testing::Values(sim::Dialect::kSnap4, sim::Dialect::kSnap3),
                         [](const auto& info) {
                           return std::string(sim::DialectName(info.param));
                         });

TEST(SnapVolumeOps, RbdModuleProbe) {
  EXPECT_TRUE(snap::HasRbdModule({"bdev_get_bdevs", "bdev_rbd_create"}));
  EXPECT_FALSE(
      snap::HasRbdModule({"bdev_get_bdevs", "bdev_rbd_delete", "bdev_nvme_attach_controller"}));
}

TEST(VolumeSpec, Parses) {
  json spec = Spec(3, json::array({Nvme("vol1", 0, 2, 4), Vblk("vol2", 1)}));
  auto parsed = ParseVolumeSpec(spec);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->generation, 3);
  ASSERT_EQ(parsed->attachments.size(), 2u);
  EXPECT_EQ(parsed->attachments[0].function, (snap::FunctionAddress{0, 2}));
  EXPECT_EQ(parsed->attachments[0].nsid, 4u);
  EXPECT_EQ(parsed->attachments[1].protocol, AttachProtocol::kVirtioBlk);
  EXPECT_EQ(parsed->clusters.at("ceph-lab").user_id, "dpustor.dpu-a");
  // nsid may be left out for virtio-blk, not for NVMe.
  json a = Vblk("vol2", 1);
  a.erase("nsid");
  EXPECT_TRUE(ParseVolumeSpec(Spec(1, json::array({a}))).ok());
  a = Nvme("vol1", 1);
  a.erase("nsid");
  EXPECT_FALSE(ParseVolumeSpec(Spec(1, json::array({a}))).ok());
}

}  // namespace
}  // namespace dpustor::agent::dpu
