// The SPDK bdev methods of dpustor-snap-sim: null/malloc bdevs, listings, iostat, and rbd
// bdevs both through a fake RbdOpener (the success paths) and through the real librbd opener
// failing without a Ceph cluster (no Ceph in unit tests).
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "sim_harness.h"

namespace dpustor::sim::testing {
namespace {

// A Ceph stand-in for the success paths: pools hold images of given sizes.
struct FakeCeph {
  std::map<std::string, std::uint64_t> images;  // "pool/image" -> size
  std::string secret = "good";                  // a key file must hold this
  int open_images = 0;
  int connections = 0;
};

class FakeImage : public RbdImage {
 public:
  FakeImage(std::shared_ptr<FakeCeph> ceph, std::string key) : ceph_(ceph), key_(key) {
    ++ceph_->open_images;
  }
  ~FakeImage() override { --ceph_->open_images; }
  Result<std::uint64_t> Size() override {
    auto it = ceph_->images.find(key_);
    if (it == ceph_->images.end()) return RbdError("rbd_get_size", -ENOENT);
    return it->second;
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
  std::string key_;
};

class FakeCluster : public RbdCluster {
 public:
  explicit FakeCluster(std::shared_ptr<FakeCeph> ceph) : ceph_(ceph) { ++ceph_->connections; }
  ~FakeCluster() override { --ceph_->connections; }
  Result<std::unique_ptr<RbdImage>> Open(const std::string& pool,
                                         const std::string& image) override {
    bool pool_exists = false;
    for (const auto& [k, _] : ceph_->images) pool_exists |= k.rfind(pool + "/", 0) == 0;
    if (!pool_exists) return RbdError("rados_ioctx_create(pool '" + pool + "')", -ENOENT);
    if (!ceph_->images.count(pool + "/" + image))
      return RbdError("rbd_open('" + pool + "/" + image + "')", -ENOENT);
    return std::unique_ptr<RbdImage>(new FakeImage(ceph_, pool + "/" + image));
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
};

class FakeOpener : public RbdOpener {
 public:
  explicit FakeOpener(std::shared_ptr<FakeCeph> ceph) : ceph_(ceph) {}
  Result<std::shared_ptr<RbdCluster>> Connect(const RbdClusterConfig& config) override {
    if (config.key_file.empty()) return std::shared_ptr<RbdCluster>(new FakeCluster(ceph_));
    std::ifstream in(config.key_file);
    std::string secret;
    in >> secret;
    if (secret != ceph_->secret) return RbdError("rados_connect(client.admin)", -EACCES);
    return std::shared_ptr<RbdCluster>(new FakeCluster(ceph_));
  }

 private:
  std::shared_ptr<FakeCeph> ceph_;
};

TEST(BdevMethods, NullAndMallocBdevsListAndCount) {
  SimHarness sim(Dialect::kSnap4);
  EXPECT_EQ(sim.Ok("bdev_null_create", {{"name", "Null0"},
                                        {"num_blocks", 100},
                                        {"block_size", 4096},
                                        {"uuid", "0b8b2f0a-1111-4222-8333-444455556666"}}),
            "Null0");
  EXPECT_EQ(sim.Ok("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 512}}), "Malloc0");
  EXPECT_EQ(sim.Ok("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 512}}), "Malloc1");

  json all = sim.Ok("bdev_get_bdevs");
  ASSERT_EQ(all.size(), 3u);
  json one = sim.Ok("bdev_get_bdevs", {{"name", "Null0"}});
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["product_name"], "Null disk");
  EXPECT_EQ(one[0]["block_size"], 4096);
  EXPECT_EQ(one[0]["num_blocks"], 100);
  EXPECT_EQ(one[0]["uuid"], "0b8b2f0a-1111-4222-8333-444455556666");
  EXPECT_EQ(one[0]["claimed"], false);
  EXPECT_TRUE(one[0]["driver_specific"].empty());
  EXPECT_EQ(sim.Ok("bdev_get_bdevs", {{"name", "Malloc0"}})[0]["product_name"], "Malloc disk");
  EXPECT_EQ(sim.Ok("bdev_get_bdevs", {{"name", "Malloc0"}})[0]["uuid"].get<std::string>().size(),
            36u);

  Error e = sim.Fails("bdev_get_bdevs", {{"name", "Nope"}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_EQ(e.message, "No such device: bdev Nope");

  json stat = sim.Ok("bdev_get_iostat");
  EXPECT_EQ(stat["tick_rate"], 1000000000);
  EXPECT_TRUE(stat["ticks"].is_number_unsigned());
  ASSERT_EQ(stat["bdevs"].size(), 3u);
  for (const char* k : {"name", "bytes_read", "num_read_ops", "bytes_written", "num_write_ops",
                        "bytes_unmapped", "num_unmap_ops"})
    EXPECT_TRUE(stat["bdevs"][0].contains(k)) << k;
  json single = sim.Ok("bdev_get_iostat", {{"name", "Malloc1"}});
  ASSERT_EQ(single["bdevs"].size(), 1u);
  EXPECT_EQ(single["bdevs"][0]["name"], "Malloc1");
  EXPECT_EQ(single["bdevs"][0]["num_read_ops"], 0);
  EXPECT_EQ(sim.Fails("bdev_get_iostat", {{"name", "Nope"}}).code, rpc::kNotFound);

  // A delete of the wrong kind is a missing bdev, as in SPDK.
  EXPECT_EQ(sim.Fails("bdev_null_delete", {{"name", "Malloc0"}}).code, rpc::kNotFound);
  EXPECT_EQ(sim.Ok("bdev_malloc_delete", {{"name", "Malloc0"}}), true);
  EXPECT_EQ(sim.Ok("bdev_null_delete", {{"name", "Null0"}}), true);
  EXPECT_EQ(sim.Ok("bdev_get_bdevs").size(), 1u);
}

TEST(BdevMethods, BadParamsNameTheField) {
  SimHarness sim(Dialect::kSnap3);
  EXPECT_EQ(sim.Fails("bdev_null_create", {{"name", "N"}, {"num_blocks", 8}}).message,
            "invalid params: 'block_size': required");
  EXPECT_EQ(sim.Fails("bdev_null_create", {{"name", "N"}, {"num_blocks", 8}, {"block_size", 1000}})
                .message,
            "invalid params: 'block_size': must be a multiple of 512");
  EXPECT_EQ(sim.Fails("bdev_null_create", {{"name", "N"}, {"num_blocks", 0}, {"block_size", 512}})
                .message,
            "invalid params: 'num_blocks': must be greater than 0");
  EXPECT_EQ(
      sim.Fails("bdev_malloc_create", {{"num_blocks", 8}, {"block_size", 512}, {"sz", 1}}).message,
      "invalid params: 'sz': unknown parameter");
  EXPECT_EQ(sim.Fails("bdev_null_create", json::array({1, 2})).code, rpc::kInvalidParams);
  EXPECT_EQ(sim.Fails("bdev_rbd_create", {{"rbd_name", "img"}, {"block_size", 512}}).message,
            "invalid params: 'pool_name': required");
  EXPECT_EQ(sim.Fails("bdev_rbd_register_cluster", {{"config_file", "/x"}}).message,
            "invalid params: 'name': required");
  EXPECT_TRUE(sim.Ok("bdev_get_bdevs").empty());
}

TEST(BdevMethods, RbdWithRealLibrbdFailsCleanlyWithoutCeph) {
  SimHarness sim(Dialect::kSnap4);  // the real librbd opener
  // A cluster that was never registered.
  Error e = sim.Fails("bdev_rbd_create", {{"name", "Ceph0"},
                                          {"pool_name", "rbd"},
                                          {"rbd_name", "vol1"},
                                          {"block_size", 512},
                                          {"cluster_name", "nope"}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_EQ(e.message, "No such device: rbd cluster nope");

  // A config file that does not exist / cannot be read as one: librados' errno text.
  std::string missing = (sim.dir() / "absent.conf").string();
  e = sim.Fails("bdev_rbd_register_cluster", {{"name", "c1"}, {"config_file", missing}});
  EXPECT_NE(e.message.find("rados_conf_read_file('" + missing + "')"), std::string::npos)
      << e.message;
  EXPECT_NE(e.message.find("No such file or directory"), std::string::npos) << e.message;
  e = sim.Fails("bdev_rbd_register_cluster",
                {{"name", "c1"}, {"config_file", sim.dir().string()}, {"user_id", "dpu1"}});
  EXPECT_NE(e.message.find("rados_conf_read_file"), std::string::npos) << e.message;

  EXPECT_TRUE(sim.Ok("bdev_rbd_get_clusters_info").empty());
  EXPECT_TRUE(sim.Ok("bdev_get_bdevs").empty());
  EXPECT_EQ(sim.Fails("bdev_rbd_unregister_cluster", {{"name", "c1"}}).code, rpc::kNotFound);
}

TEST(BdevMethods, RbdLifecycleThroughTheOpener) {
  auto ceph = std::make_shared<FakeCeph>();
  ceph->images["rbd/vol1"] = 8 << 20;
  ceph->images["rbd/vol2"] = 1 << 20;
  SimHarness sim(Dialect::kSnap4, {}, std::make_unique<FakeOpener>(ceph));

  std::string good_key = (sim.dir() / "good.key").string();
  std::string bad_key = (sim.dir() / "bad.key").string();
  std::ofstream(good_key) << "good\n";
  std::ofstream(bad_key) << "stale\n";

  Error e = sim.Fails("bdev_rbd_register_cluster",
                      {{"name", "c1"}, {"user_id", "dpu1"}, {"key_file", bad_key}});
  EXPECT_EQ(e.code, rpc::kFailed);
  EXPECT_EQ(e.message, "rados_connect(client.admin): Permission denied (-13)");
  EXPECT_EQ(sim.Ok("bdev_rbd_register_cluster",
                   {{"name", "c1"}, {"user_id", "dpu1"}, {"key_file", good_key}}),
            "c1");
  EXPECT_EQ(sim.Fails("bdev_rbd_register_cluster", {{"name", "c1"}}).code, rpc::kAlreadyExists);
  json info = sim.Ok("bdev_rbd_get_clusters_info", {{"name", "c1"}});
  EXPECT_EQ(info["user_id"], "dpu1");
  EXPECT_EQ(info["key_file"], good_key);
  EXPECT_EQ(ceph->connections, 1);

  // Wrong pool, wrong image: errno text, nothing created.
  e = sim.Fails("bdev_rbd_create", {{"name", "Ceph0"},
                                    {"pool_name", "nopool"},
                                    {"rbd_name", "vol1"},
                                    {"block_size", 512},
                                    {"cluster_name", "c1"}});
  EXPECT_EQ(e.code, rpc::kNotFound);
  EXPECT_EQ(e.message, "rados_ioctx_create(pool 'nopool'): No such file or directory (-2)");
  e = sim.Fails(
      "bdev_rbd_create",
      {{"pool_name", "rbd"}, {"rbd_name", "nope"}, {"block_size", 512}, {"cluster_name", "c1"}});
  EXPECT_NE(e.message.find("rbd_open('rbd/nope')"), std::string::npos) << e.message;
  EXPECT_TRUE(sim.Ok("bdev_get_bdevs").empty());
  EXPECT_EQ(ceph->open_images, 0);

  // Success: size from the image; a resize shows in bdev_get_bdevs.
  EXPECT_EQ(sim.Ok("bdev_rbd_create", {{"pool_name", "rbd"},
                                       {"rbd_name", "vol1"},
                                       {"block_size", 4096},
                                       {"cluster_name", "c1"}}),
            "Ceph0");
  json b = sim.Ok("bdev_get_bdevs", {{"name", "Ceph0"}})[0];
  EXPECT_EQ(b["product_name"], "Ceph Rbd Disk");
  EXPECT_EQ(b["num_blocks"], (8 << 20) / 4096);
  EXPECT_EQ(b["driver_specific"]["rbd"]["pool_name"], "rbd");
  EXPECT_EQ(b["driver_specific"]["rbd"]["rbd_name"], "vol1");
  EXPECT_EQ(b["driver_specific"]["rbd"]["cluster_name"], "c1");
  ceph->images["rbd/vol1"] = 16 << 20;
  EXPECT_EQ(sim.Ok("bdev_get_bdevs", {{"name", "Ceph0"}})[0]["num_blocks"], (16 << 20) / 4096);
  EXPECT_EQ(ceph->open_images, 1);

  // A bdev with its own connection (no cluster_name).
  EXPECT_EQ(
      sim.Ok("bdev_rbd_create",
             {{"name", "own"}, {"pool_name", "rbd"}, {"rbd_name", "vol2"}, {"block_size", 512}}),
      "own");
  EXPECT_EQ(ceph->connections, 2);
  EXPECT_EQ(sim.Fails("bdev_rbd_create", {{"pool_name", "rbd"},
                                          {"rbd_name", "vol2"},
                                          {"block_size", 512},
                                          {"cluster_name", "c1"},
                                          {"user_id", "x"}})
                .code,
            rpc::kInvalidParams);

  // In use: the cluster by its bdev, the bdev by a namespace.
  EXPECT_EQ(sim.Fails("bdev_rbd_unregister_cluster", {{"name", "c1"}}).code, rpc::kBusy);
  sim.Ok("nvme_subsystem_create", {{"nqn", "nqn.rbd"}});
  sim.Ok("nvme_namespace_create", {{"nqn", "nqn.rbd"}, {"bdev_name", "Ceph0"}});
  EXPECT_EQ(sim.Fails("bdev_rbd_delete", {{"name", "Ceph0"}}).code, rpc::kBusy);
  sim.Ok("nvme_subsystem_destroy", {{"nqn", "nqn.rbd"}, {"force", true}});

  // Deletes close images (and a bdev's own connection).
  sim.Ok("bdev_rbd_delete", {{"name", "own"}});
  EXPECT_EQ(ceph->connections, 1);
  sim.Ok("bdev_rbd_delete", {{"name", "Ceph0"}});
  EXPECT_EQ(ceph->open_images, 0);
  EXPECT_EQ(sim.Fails("bdev_rbd_delete", {{"name", "Ceph0"}}).code, rpc::kNotFound);
  sim.Ok("bdev_rbd_unregister_cluster", {{"name", "c1"}});
  EXPECT_EQ(ceph->connections, 0);
  EXPECT_TRUE(sim.Ok("bdev_rbd_get_clusters_info").empty());
}

}  // namespace
}  // namespace dpustor::sim::testing
