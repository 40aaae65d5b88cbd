#include "agent/dpu/deploy/manifest.h"

#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace dpustor::agent::dpu::deploy {

namespace {

struct Mount {
  const char* name;
  std::string host_path;
  std::string mount_path;
};

void Map(YAML::Emitter& out, const std::vector<std::pair<std::string, std::string>>& kv) {
  out << YAML::BeginMap;
  for (const auto& [k, v] : kv) out << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  out << YAML::EndMap;
}

}  // namespace

std::string RenderManifest(const DeploySpec& spec, std::int64_t generation,
                           const ManifestHost& host) {
  const std::string hugepages = std::to_string(spec.hugepages_2m * 2) + "Mi";
  // SNAP's own directories, the same path on both sides, plus the two the deployer maps.
  const std::vector<Mount> mounts = {
      {"hugepages", "/dev/hugepages", "/dev/hugepages"},
      {"shm", "/dev/shm", "/dev/shm"},
      {"infiniband", "/dev/infiniband", "/dev/infiniband"},
      {"vfio", "/dev/vfio", "/dev/vfio"},
      {"snap-conf", host.conf_dir, kContainerConfDir},
      {"snap-log", "/var/log/snap-log", "/var/log/snap-log"},
      {"snap-rpc", host.rpc_dir, kContainerRpcDir},
  };
  std::vector<std::pair<std::string, std::string>> env = {
      {"APP_ARGS", "-m " + spec.cpu_mask},
      {"SNAP_RPC_INIT_CONF", std::string(kContainerConfDir) + "/" + kRpcInitFile},
      {"SNAP_SPDK_SOCK", std::string(kContainerRpcDir) + "/" + host.rpc_socket_name},
  };
  // Defaults the spec's own env may override.
  if (!spec.env.count("SPDK_RPC_INIT_CONF")) env.emplace_back("SPDK_RPC_INIT_CONF", "");
  if (!spec.env.count("XLIO_ENABLED")) env.emplace_back("XLIO_ENABLED", "0");
  for (const auto& [k, v] : spec.env) env.emplace_back(k, v);

  YAML::Emitter out;
  out << YAML::Comment("Written by dpustor-dpu-agent; changes are overwritten on the next deploy");
  out << YAML::BeginMap;
  out << YAML::Key << "apiVersion" << YAML::Value << "v1";
  out << YAML::Key << "kind" << YAML::Value << "Pod";
  out << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << kPodName;
  out << YAML::Key << "namespace" << YAML::Value << host.namespace_name;
  out << YAML::Key << "annotations" << YAML::Value;
  Map(out, {{kAnnotationManagedBy, "dpustor-dpu-agent"},
            {kAnnotationDeployment, spec.name},
            {kAnnotationGeneration, std::to_string(generation)},
            {kAnnotationVersion, spec.version}});
  out << YAML::EndMap;  // metadata

  out << YAML::Key << "spec" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "hostNetwork" << YAML::Value << true;
  out << YAML::Key << "containers" << YAML::Value << YAML::BeginSeq << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << kContainerName;
  out << YAML::Key << "image" << YAML::Value << spec.image;
  // The DPU's kubelet usually has no registry credentials; a pre-pulled image is used as is.
  out << YAML::Key << "imagePullPolicy" << YAML::Value << "IfNotPresent";
  out << YAML::Key << "securityContext" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "privileged" << YAML::Value << true;
  out << YAML::Key << "capabilities" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "add" << YAML::Value << YAML::Flow << YAML::BeginSeq << "IPC_LOCK"
      << "SYS_RAWIO"
      << "SYS_NICE" << YAML::EndSeq;
  out << YAML::EndMap << YAML::EndMap;  // capabilities, securityContext

  out << YAML::Key << "resources" << YAML::Value << YAML::BeginMap;
  // Kubernetes wants hugepages requests equal to limits.
  out << YAML::Key << "requests" << YAML::Value;
  Map(out, {{"hugepages-2Mi", hugepages},
            {"memory", spec.memory_request},
            {"cpu", std::to_string(spec.cpu_request)}});
  out << YAML::Key << "limits" << YAML::Value;
  Map(out, {{"hugepages-2Mi", hugepages},
            {"memory", spec.memory_limit},
            {"cpu", std::to_string(spec.cpu_limit)}});
  out << YAML::EndMap;  // resources

  out << YAML::Key << "env" << YAML::Value << YAML::BeginSeq;
  for (const auto& [k, v] : env)
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << k << YAML::Key << "value"
        << YAML::Value << YAML::DoubleQuoted << v << YAML::EndMap;
  out << YAML::EndSeq;

  out << YAML::Key << "volumeMounts" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : mounts)
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << m.name << YAML::Key
        << "mountPath" << YAML::Value << m.mount_path << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::EndMap << YAML::EndSeq;  // the container, containers

  out << YAML::Key << "volumes" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : mounts) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << m.name;
    out << YAML::Key << "hostPath" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "path" << YAML::Value << m.host_path;
    // SNAP creates its log and socket directories' contents; the devices must exist.
    out << YAML::Key << "type" << YAML::Value
        << (m.host_path.starts_with("/dev/") ? "Directory" : "DirectoryOrCreate");
    out << YAML::EndMap << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;  // spec
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string RpcInitText(const DeploySpec& spec) {
  std::string text;
  for (const auto& line : spec.rpc_init) text += line + "\n";
  return text;
}

}  // namespace dpustor::agent::dpu::deploy
