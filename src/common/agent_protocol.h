// Names and numbers of the agent <-> manager protocol (docs/protocol.md), shared by the
// manager and every agent so the two sides cannot drift apart.
#pragma once

namespace dpustor::protocol {

// Bumped on any incompatible change; the manager refuses other versions in agent.hello.
inline constexpr int kVersion = 1;

// agent -> manager
inline constexpr const char* kHello = "agent.hello";
inline constexpr const char* kReport = "agent.report";
inline constexpr const char* kEvent = "agent.event";
// Sent when nothing else went to the manager for a third of its heartbeat timeout (a slow
// status collection must not make a live agent look dead).
inline constexpr const char* kHeartbeat = "agent.heartbeat";
// manager -> agent
inline constexpr const char* kPing = "agent.ping";
inline constexpr const char* kCollect = "agent.collect";

inline constexpr const char* kKindDpu = "dpu";
inline constexpr const char* kKindCeph = "ceph";

}  // namespace dpustor::protocol
