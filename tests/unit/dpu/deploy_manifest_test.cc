// The rendered static pod against the structure of NVIDIA's doca_snap.yaml (reference
// snap-rpc.md, "Deploying SNAP on a DPU"): parsed back as YAML, field by field.
#include "agent/dpu/deploy/manifest.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>

namespace dpustor::agent::dpu::deploy {
namespace {

DeploySpec Spec() {
  DeploySpec s;
  s.name = "snap-bf3";
  s.image = "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0";
  s.version = "4.6.0";
  s.cpu_mask = "0xffff";
  s.hugepages_2m = 2048;
  s.memory_request = "2Gi";
  s.memory_limit = "4Gi";
  s.cpu_request = 8;
  s.cpu_limit = 16;
  s.env = {{"SNAP_RPC_LOG_ENABLE", "1"}};
  return s;
}

std::map<std::string, std::string> Env(const YAML::Node& container) {
  std::map<std::string, std::string> env;
  for (const auto& e : container["env"]) {
    EXPECT_FALSE(env.count(e["name"].as<std::string>())) << "twice: " << e["name"];
    env[e["name"].as<std::string>()] = e["value"].as<std::string>();
  }
  return env;
}

TEST(ManifestTest, HasDocaSnapStructure) {
  ManifestHost host;
  host.conf_dir = "/etc/nvda_snap";
  host.rpc_dir = "/var/tmp";
  std::string text = RenderManifest(Spec(), 7, host);
  YAML::Node pod = YAML::Load(text);

  EXPECT_EQ(pod["apiVersion"].as<std::string>(), "v1");
  EXPECT_EQ(pod["kind"].as<std::string>(), "Pod");
  EXPECT_EQ(pod["metadata"]["name"].as<std::string>(), "snap");
  EXPECT_EQ(pod["metadata"]["namespace"].as<std::string>(), "default");
  YAML::Node ann = pod["metadata"]["annotations"];
  EXPECT_EQ(ann["dpustor.io/managed-by"].as<std::string>(), "dpustor-dpu-agent");
  EXPECT_EQ(ann["dpustor.io/deployment"].as<std::string>(), "snap-bf3");
  EXPECT_EQ(ann["dpustor.io/generation"].as<std::string>(), "7");
  EXPECT_EQ(ann["dpustor.io/version"].as<std::string>(), "4.6.0");
  EXPECT_TRUE(pod["spec"]["hostNetwork"].as<bool>());

  ASSERT_EQ(pod["spec"]["containers"].size(), 1u);
  YAML::Node c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["name"].as<std::string>(), "snap");
  EXPECT_EQ(c["image"].as<std::string>(), "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0");
  EXPECT_TRUE(c["imagePullPolicy"].IsScalar());

  // Privileged, with the three capabilities SNAP needs.
  EXPECT_TRUE(c["securityContext"]["privileged"].as<bool>());
  std::vector<std::string> caps;
  for (const auto& cap : c["securityContext"]["capabilities"]["add"])
    caps.push_back(cap.as<std::string>());
  EXPECT_EQ(caps, (std::vector<std::string>{"IPC_LOCK", "SYS_RAWIO", "SYS_NICE"}));

  // Hugepages: requests equal limits (Kubernetes requires it), 2048 x 2 MiB.
  YAML::Node req = c["resources"]["requests"], lim = c["resources"]["limits"];
  EXPECT_EQ(req["hugepages-2Mi"].as<std::string>(), "4096Mi");
  EXPECT_EQ(lim["hugepages-2Mi"].as<std::string>(), "4096Mi");
  EXPECT_EQ(req["memory"].as<std::string>(), "2Gi");
  EXPECT_EQ(lim["memory"].as<std::string>(), "4Gi");
  EXPECT_EQ(req["cpu"].as<std::string>(), "8");
  EXPECT_EQ(lim["cpu"].as<std::string>(), "16");

  auto env = Env(c);
  EXPECT_EQ(env["APP_ARGS"], "-m 0xffff");
  EXPECT_EQ(env["SNAP_RPC_INIT_CONF"], "/etc/nvda_snap/snap_rpc_init.conf");
  EXPECT_TRUE(env.count("SPDK_RPC_INIT_CONF"));
  EXPECT_EQ(env["XLIO_ENABLED"], "0");
  EXPECT_EQ(env["SNAP_RPC_LOG_ENABLE"], "1");
  EXPECT_EQ(env["SNAP_SPDK_SOCK"], "/var/tmp/spdk.sock");

  // Every mount SNAP needs: a volumeMount in the container and a hostPath volume.
  std::map<std::string, std::string> mount_paths, host_paths;
  for (const auto& m : c["volumeMounts"])
    mount_paths[m["name"].as<std::string>()] = m["mountPath"].as<std::string>();
  for (const auto& v : pod["spec"]["volumes"])
    host_paths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
  std::map<std::string, std::string> by_mount;
  for (const auto& [name, path] : mount_paths) {
    ASSERT_TRUE(host_paths.count(name)) << "no volume for mount " << name;
    by_mount[path] = host_paths[name];
  }
  for (const char* dir : {"/dev/hugepages", "/dev/shm", "/dev/infiniband", "/dev/vfio",
                          "/etc/nvda_snap", "/var/log/snap-log", "/var/tmp"})
    EXPECT_EQ(by_mount[dir], dir) << dir;
}

TEST(ManifestTest, MapsHostDirectoriesAndKeepsUserXlio) {
  DeploySpec s = Spec();
  s.env = {{"XLIO_ENABLED", "1"}};
  ManifestHost host;
  host.conf_dir = "/scratch/etc/nvda_snap";
  host.rpc_dir = "/scratch/run";
  host.rpc_socket_name = "snap.sock";
  YAML::Node pod = YAML::Load(RenderManifest(s, 1, host));
  YAML::Node c = pod["spec"]["containers"][0];
  auto env = Env(c);
  EXPECT_EQ(env["XLIO_ENABLED"], "1");
  EXPECT_EQ(env["SNAP_SPDK_SOCK"], "/var/tmp/snap.sock");
  std::map<std::string, std::string> host_paths;
  for (const auto& v : pod["spec"]["volumes"])
    host_paths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
  EXPECT_EQ(host_paths["snap-conf"], "/scratch/etc/nvda_snap");
  EXPECT_EQ(host_paths["snap-rpc"], "/scratch/run");
}

TEST(ManifestTest, DeterministicPerGeneration) {
  ManifestHost host;
  EXPECT_EQ(RenderManifest(Spec(), 3, host), RenderManifest(Spec(), 3, host));
  EXPECT_NE(RenderManifest(Spec(), 3, host), RenderManifest(Spec(), 4, host));
}

}  // namespace
}  // namespace dpustor::agent::dpu::deploy
