// The deployer works on deploy.apply's spec as the manager and the agent share it
// (common/deploy_spec.h), plus the one file it renders straight from the spec.
#pragma once

#include <string>

#include "common/deploy_spec.h"

namespace dpustor::agent::dpu::deploy {

using protocol::DeployRequest;
using protocol::DeploySpec;
using protocol::Flavour;
using protocol::FlavourName;
using protocol::ParseDeployRequest;
using protocol::ParseDeploySpec;
using protocol::ParseQuantity;

// The init RPC file's text: one line per RPC, as SNAP replays it.
std::string RpcInitText(const DeploySpec& spec);

}  // namespace dpustor::agent::dpu::deploy
