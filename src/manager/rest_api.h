// RestApi registers the manager's HTTP routes (docs/protocol.md, "REST API") on a Router:
// read-only JSON views of agents, DPUs, hosts, Ceph clusters, pools, images and events, the
// desired-state resources (volumes, shares, SNAP deployments, DPU groups), plus /metrics
// (Prometheus text) and /healthz.
// Thread-safety: handlers only read Inventory, EventLog and Store, which lock.
#pragma once

#include "manager/agent_service.h"
#include "manager/deployment_service.h"
#include "manager/event_log.h"
#include "manager/http_server.h"
#include "manager/inventory.h"
#include "manager/share_service.h"
#include "manager/store.h"
#include "manager/volume_service.h"

namespace dpustor::manager {

struct RestContext {
  Inventory& inventory;
  EventLog& events;
  Store& store;
  const AgentService& agents;
  VolumeService& volumes;
  ShareService& shares;
  DeploymentService& deployments;
  std::int64_t started_ms;
};

void RegisterRestApi(Router& router, RestContext ctx);

// Prometheus text exposition of the manager's own counters and the fleet's latest status.
std::string RenderMetrics(const RestContext& ctx);

}  // namespace dpustor::manager
