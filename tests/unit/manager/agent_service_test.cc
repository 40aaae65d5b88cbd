#include <gtest/gtest.h>

#include "agent/common/agent_session.h"
#include "common/agent_protocol.h"
#include "common/rpc_client.h"
#include "test_env.h"

namespace dpustor::manager {
namespace {

using namespace std::chrono_literals;

json HelloParams(const std::string& name, const std::string& token = "tok", int proto = 1) {
  return {{"name", name},      {"kind", "dpu"},  {"version", "t"},
          {"protocol", proto}, {"token", token}, {"capabilities", json::object()}};
}

TEST(AgentService, HelloThenReportUpdatesInventory) {
  ManagerCore core(TestDir("hello"));
  auto c = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE(c.ok());
  auto hello = (*c)->Call(protocol::kHello, HelloParams("dpu-1"), 2s);
  ASSERT_TRUE(hello.ok()) << hello.error().message;
  EXPECT_EQ((*hello)["protocol"], 1);
  auto rep = (*c)->Call(protocol::kReport, {{"status", {{"host", "h1"}}}}, 2s);
  ASSERT_TRUE(rep.ok());
  auto rec = core.inventory().Get("dpu-1");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->state, kOnline);
  EXPECT_EQ((*rec->status)["host"], "h1");
  EXPECT_EQ(rec->reports, 1u);
}

TEST(AgentService, RefusesBadTokenVersionNameAndPreHelloCalls) {
  ManagerCore core(TestDir("refuse"));
  auto c = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE(c.ok());
  auto r = (*c)->Call(protocol::kReport, {{"status", json::object()}}, 2s);
  EXPECT_EQ(r.error().code, rpc::kUnauthorized);
  r = (*c)->Call(protocol::kHello, HelloParams("dpu-1", "wrong"), 2s);
  EXPECT_EQ(r.error().code, rpc::kUnauthorized);
  r = (*c)->Call(protocol::kHello, HelloParams("dpu-1", "tok", 99), 2s);
  EXPECT_EQ(r.error().code, rpc::kUnsupportedVersion);
  r = (*c)->Call(protocol::kHello, HelloParams("bad name/with slash"), 2s);
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  json no_kind = HelloParams("x");
  no_kind.erase("kind");
  r = (*c)->Call(protocol::kHello, no_kind, 2s);
  EXPECT_EQ(r.error().message, "invalid params: 'kind': required");
  EXPECT_TRUE(core.inventory().List().empty());  // nothing registered by any of these
  EXPECT_GE(core.service().stats().hellos_refused.load(), 2u);
  // Still usable afterwards.
  EXPECT_TRUE((*c)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
  r = (*c)->Call(protocol::kReport, {{"status", "not an object"}}, 2s);
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  r = (*c)->Call("agent.unknown", nullptr, 2s);
  EXPECT_EQ(r.error().code, rpc::kMethodNotFound);
}

TEST(AgentService, NameKeepsItsKind) {
  ManagerCore core(TestDir("kind"));
  auto c = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE((*c)->Call(protocol::kHello, HelloParams("x1"), 2s).ok());
  auto d = rpc::RpcClient::Connect(core.socket(), 2s);
  json p = HelloParams("x1");
  p["kind"] = "ceph";
  auto r = (*d)->Call(protocol::kHello, p, 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
}

TEST(AgentService, DisconnectMakesUnreachableAndRecordsEvent) {
  ManagerCore core(TestDir("disc"));
  {
    auto c = rpc::RpcClient::Connect(core.socket(), 2s);
    ASSERT_TRUE((*c)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
  }
  ASSERT_TRUE(Eventually([&] { return core.inventory().Get("dpu-1")->state == kUnreachable; }));
  EXPECT_NE(core.inventory().Get("dpu-1")->state_reason.find("connection lost"), std::string::npos);
  ASSERT_TRUE(Eventually([&] { return core.events().Recent(10, "dpu/dpu-1").size() == 2; }));
  auto ev = core.events().Recent(10, "dpu/dpu-1");
  EXPECT_EQ(ev[0].type, "agent.registered");
  EXPECT_EQ(ev[1].type, "agent.unreachable");
}

TEST(AgentService, SilentAgentTimesOut) {
  ManagerCore core(TestDir("silent"), 300ms);
  auto c = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE((*c)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Eventually([&] { return core.inventory().Get("dpu-1")->state == kUnreachable; }));
  // Far under the 10 s default: the 300 ms setting is what fired (loose for slow runners).
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_NE(core.inventory().Get("dpu-1")->state_reason.find("no message for 300 ms"),
            std::string::npos);
}

TEST(AgentService, NewSessionSupersedesOld) {
  ManagerCore core(TestDir("supersede"));
  auto old_client = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE((*old_client)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
  auto new_client = rpc::RpcClient::Connect(core.socket(), 2s);
  ASSERT_TRUE((*new_client)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
  // The old connection is closed by the manager; the agent stays online via the new one.
  auto r = (*old_client)->Call(protocol::kReport, {{"status", json::object()}}, 2s);
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE((*new_client)->Call(protocol::kReport, {{"status", json::object()}}, 2s).ok());
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(core.inventory().Get("dpu-1")->state, kOnline);
}

TEST(AgentService, InventorySurvivesRestart) {
  auto dir = TestDir("restart");
  {
    ManagerCore core(dir);
    auto c = rpc::RpcClient::Connect(core.socket(), 2s);
    ASSERT_TRUE((*c)->Call(protocol::kHello, HelloParams("dpu-1"), 2s).ok());
    ASSERT_TRUE((*c)->Call(protocol::kReport, {{"status", {{"host", "h9"}}}}, 2s).ok());
    core.store().Flush();
  }
  ManagerCore core(dir);
  auto rec = core.inventory().Get("dpu-1");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->state, kUnreachable);
  EXPECT_EQ(rec->kind, "dpu");
  ASSERT_TRUE(rec->status);
  EXPECT_EQ((*rec->status)["host"], "h9");
  EXPECT_FALSE(core.events().Recent(10).empty());
}

TEST(AgentSession, RegistersReportsAndReconnects) {
  auto dir = TestDir("session");
  auto core = std::make_unique<ManagerCore>(dir);
  boost::asio::io_context ioc;
  agent::SessionOptions so;
  so.manager = "unix:" + core->socket();
  so.report_interval = 50ms;
  so.backoff_initial = 50ms;
  so.backoff_max = 200ms;
  std::atomic<int> collected{0};
  auto session = agent::AgentSession::Create(
      ioc, agent::AgentIdentity{"dpu-s", "dpu", "t", json::object(), "tok"}, so, [&] {
        return json{{"n", ++collected}};
      });
  session->Start();
  std::thread t([&] {
    auto guard = boost::asio::make_work_guard(ioc);
    ioc.run();
  });
  EXPECT_TRUE(Eventually([&] {
    auto r = core->inventory().Get("dpu-s");
    return r && r->reports >= 3;
  }));
  // The manager goes away and comes back on the same socket: the session re-registers.
  core.reset();
  core = std::make_unique<ManagerCore>(dir);
  EXPECT_TRUE(Eventually([&] {
    auto r = core->inventory().Get("dpu-s");
    return r && r->state == kOnline && r->reports >= 1;
  }));
  session->Stop();
  ioc.stop();
  t.join();
}

TEST(AgentSession, SlowCollectionKeepsTheAgentOnline) {
  // Collection takes four heartbeat timeouts (a ceph CLI on a loaded admin node): the
  // agent's heartbeats keep it online, on one session, until the report comes.
  ManagerCore core(TestDir("session-slow"), 300ms);
  boost::asio::io_context ioc;
  agent::SessionOptions so;
  so.manager = "unix:" + core.socket();
  so.report_interval = 50ms;
  auto session = agent::AgentSession::Create(
      ioc, agent::AgentIdentity{"ceph-s", "ceph", "t", json::object(), "tok"}, so, [] {
        std::this_thread::sleep_for(1200ms);
        return json{{"slow", true}};
      });
  session->Start();
  std::thread t([&] {
    auto guard = boost::asio::make_work_guard(ioc);
    ioc.run();
  });
  ASSERT_TRUE(Eventually([&] {
    auto r = core.inventory().Get("ceph-s");
    return r && r->reports >= 1;
  }));
  auto r = core.inventory().Get("ceph-s");
  EXPECT_EQ(r->state, kOnline);
  EXPECT_EQ((*r->status)["slow"], true);
  auto ev = core.events().Recent(10, "ceph/ceph-s");
  ASSERT_EQ(ev.size(), 1u);  // registered once, never unreachable
  EXPECT_EQ(ev[0].type, "agent.registered");
  session->Stop();
  ioc.stop();
  t.join();
}

TEST(AgentSession, BadTokenKeepsRetryingWithoutRegistering) {
  ManagerCore core(TestDir("session-bad"));
  boost::asio::io_context ioc;
  agent::SessionOptions so;
  so.manager = "unix:" + core.socket();
  so.backoff_initial = 20ms;
  so.backoff_max = 50ms;
  auto session = agent::AgentSession::Create(
      ioc, agent::AgentIdentity{"dpu-x", "dpu", "t", json::object(), "nope"}, so,
      [] { return json::object(); });
  session->Start();
  ioc.run_for(500ms);
  EXPECT_FALSE(session->connected());
  EXPECT_FALSE(core.inventory().Get("dpu-x").has_value());
  EXPECT_GE(core.service().stats().hellos_refused.load(), 3u);  // it retried with backoff
  session->Stop();
  ioc.run_for(50ms);
}

}  // namespace
}  // namespace dpustor::manager
