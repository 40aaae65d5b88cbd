// The static pod manifest of DOCA SNAP (SNAP-4) that the deployer writes into the standalone
// kubelet's manifest directory, in the structure NVIDIA's doca_snap.yaml has (reference
// snap-rpc.md, "Deploying SNAP on a DPU"): one privileged container "snap" with the image,
// hugepages and memory/CPU resources, the SNAP environment, and the host directories SNAP
// needs. Annotations mark the pod as dpustor's, with the deployment's name and generation.
// Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "agent/dpu/deploy/deploy_spec.h"

namespace dpustor::agent::dpu::deploy {

// Paths inside the container that the deployer fixes (the host side comes from options).
inline constexpr const char* kPodName = "snap";
inline constexpr const char* kContainerName = "snap";
inline constexpr const char* kContainerConfDir = "/etc/nvda_snap";
inline constexpr const char* kRpcInitFile = "snap_rpc_init.conf";
inline constexpr const char* kContainerRpcDir = "/var/tmp";
inline constexpr const char* kManifestFile = "doca_snap.yaml";

// Annotation keys marking the pod as dpustor's.
inline constexpr const char* kAnnotationManagedBy = "dpustor.io/managed-by";
inline constexpr const char* kAnnotationDeployment = "dpustor.io/deployment";
inline constexpr const char* kAnnotationGeneration = "dpustor.io/generation";
inline constexpr const char* kAnnotationVersion = "dpustor.io/version";

struct ManifestHost {
  std::string conf_dir = "/etc/nvda_snap";  // host side of /etc/nvda_snap
  std::string rpc_dir = "/var/tmp";         // host directory of SNAP's RPC socket
  std::string rpc_socket_name = "spdk.sock";
  std::string namespace_name = "default";
};

// The manifest's YAML text. Deterministic: the same inputs give the same bytes, so an
// unchanged deployment never rewrites the file.
std::string RenderManifest(const DeploySpec& spec, std::int64_t generation,
                           const ManifestHost& host);

}  // namespace dpustor::agent::dpu::deploy
