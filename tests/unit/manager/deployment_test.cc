// SNAP deployments in the manager: spec validation with errors that name the field, group
// resolution, the reconciler's decisions (what to send when), the REST errors, and the
// reconciler against a real agent session whose deploy.apply records what it was sent.
#include "manager/deployment_service.h"

#include <atomic>

#include <gtest/gtest.h>

#include "agent/common/agent_session.h"
#include "common/agent_protocol.h"
#include "common/rpc_client.h"
#include "manager/rest_api.h"
#include "test_env.h"

namespace dpustor::manager {
namespace {

using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

json Body() {
  return {{"name", "snap"},
          {"dpu", "dpu-a"},
          {"image", "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0"},
          {"version", "4.6.0"}};
}

// The error ParseDeployment gives `body`, or "ok".
std::string SpecError(const json& body) {
  try {
    ParseDeployment(body);
    return "ok";
  } catch (const rpc::CallError& e) {
    return e.what();
  }
}

std::string With(const char* key, json value) {
  json b = Body();
  b[key] = std::move(value);
  return SpecError(b);
}

TEST(DeploymentSpec, FillsDefaults) {
  Deployment d = ParseDeployment(Body());
  EXPECT_EQ(d.dpu, "dpu-a");
  EXPECT_EQ(d.group, "");
  EXPECT_EQ(d.Target(), "dpu/dpu-a");
  EXPECT_EQ(d.spec, (json{{"name", "snap"},
                          {"flavour", "snap4"},
                          {"image", "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0"},
                          {"version", "4.6.0"},
                          {"cpu_mask", "0xff"},
                          {"hugepages_2m", 2048},
                          {"memory_request", "2Gi"},
                          {"memory_limit", "4Gi"},
                          {"cpu_request", 8},
                          {"cpu_limit", 16},
                          {"rpc_init", json::array()},
                          {"firmware", json::object()},
                          {"ready_timeout_s", 300},
                          {"env", json::object()}}));
  // snap3 is a service: no image needed.
  json b = Body();
  b.erase("image");
  b["flavour"] = "snap3";
  EXPECT_EQ(ParseDeployment(b).spec["image"], "");
  json full = Body();
  full.erase("dpu");
  full.update({{"group", "rack1"},
               {"cpu_mask", "0xf0"},
               {"hugepages_2m", 0},
               {"memory_request", "512Mi"},
               {"memory_limit", "1G"},
               {"cpu_request", 2},
               {"cpu_limit", 4},
               {"rpc_init", {"nvme_subsystem_create --nqn nqn.x"}},
               {"firmware", {{"NVME_EMULATION_ENABLE", "1"}, {"NVME_EMULATION_NUM_PF", "2"}}},
               {"ready_timeout_s", 60},
               {"env", {{"XLIO_ENABLED", "0"}}}});
  Deployment g = ParseDeployment(full);
  EXPECT_EQ(g.Target(), "group/rack1");
  EXPECT_EQ(g.spec["firmware"]["NVME_EMULATION_NUM_PF"], "2");
  EXPECT_EQ(g.spec["rpc_init"][0], "nvme_subsystem_create --nqn nqn.x");
}

TEST(DeploymentSpec, RefusesWithTheFieldNamed) {
  json b = Body();
  b.erase("version");
  EXPECT_EQ(SpecError(b), "invalid params: 'version': required");
  b = Body();
  b.erase("image");
  EXPECT_EQ(SpecError(b), "invalid params: 'image': required");
  b = Body();
  b.erase("dpu");
  EXPECT_EQ(SpecError(b),
            "invalid params: 'dpu': give exactly one target: a DPU (dpu) or a DPU "
            "group (group)");
  EXPECT_EQ(With("group", "g"),
            "invalid params: 'group': give exactly one target: a DPU (dpu) "
            "or a DPU group (group)");
  EXPECT_EQ(With("name", "a/b").rfind("invalid params: 'name': 1-63 characters", 0), 0u);
  EXPECT_EQ(With("dpu", "-x").rfind("invalid params: 'dpu': 1-63 characters", 0), 0u);
  EXPECT_EQ(With("flavour", "snap5"),
            "invalid params: 'flavour': must be \"snap4\" (DOCA SNAP "
            "container) or \"snap3\" (mlnx_snap service)");
  EXPECT_EQ(With("image", "a b").rfind("invalid params: 'image':", 0), 0u);
  EXPECT_EQ(With("version", 4), "invalid params: 'version': expected a string");
  EXPECT_EQ(With("cpu_mask", "ff").rfind("invalid params: 'cpu_mask': a core mask", 0), 0u);
  EXPECT_EQ(With("cpu_mask", "0xFG").rfind("invalid params: 'cpu_mask': a core mask", 0), 0u);
  EXPECT_EQ(With("cpu_mask", "0x000"), "invalid params: 'cpu_mask': selects no core");
  EXPECT_EQ(With("hugepages_2m", -1),
            "invalid params: 'hugepages_2m': must be from 0 to 1048576 (2 MiB pages)");
  EXPECT_EQ(With("hugepages_2m", "2048"), "invalid params: 'hugepages_2m': expected an integer");
  EXPECT_EQ(With("memory_limit", "4GB"),
            "invalid params: 'memory_limit': a memory quantity such as 2Gi, 512Mi or 4G");
  EXPECT_EQ(With("memory_request", "8Gi"),
            "invalid params: 'memory_request': is more than memory_limit (4Gi)");
  EXPECT_EQ(With("cpu_request", 32), "ok");  // the limit follows a larger request by default
  json cpu = Body();
  cpu.update({{"cpu_request", 8}, {"cpu_limit", 4}});
  EXPECT_EQ(SpecError(cpu), "invalid params: 'cpu_request': is more than cpu_limit (4)");
  EXPECT_EQ(With("cpu_limit", 0), "invalid params: 'cpu_limit': must be from 1 to 1024 cores");
  EXPECT_EQ(With("rpc_init", "x"), "invalid params: 'rpc_init': expected an array of strings");
  EXPECT_EQ(With("rpc_init", {"ok", 3}), "invalid params: 'rpc_init[1]': expected a string");
  EXPECT_EQ(With("rpc_init", {"a\nb"}).rfind("invalid params: 'rpc_init[0]': one SNAP RPC", 0), 0u);
  EXPECT_EQ(With("firmware", {{"nvme", "1"}}),
            "invalid params: 'firmware.nvme': the key must be [A-Z0-9_]{1,64}");
  EXPECT_EQ(With("firmware", {{"NVME_EMULATION_ENABLE", 1}}),
            "invalid params: 'firmware.NVME_EMULATION_ENABLE': expected a string");
  EXPECT_EQ(With("firmware", {{"SRIOV_EN", "1; reboot"}}),
            "invalid params: 'firmware.SRIOV_EN': the value must be 1-64 of [A-Za-z0-9_.()-]");
  EXPECT_EQ(With("firmware", json::array()),
            "invalid params: 'firmware': expected an object of strings");
  EXPECT_EQ(With("ready_timeout_s", 0),
            "invalid params: 'ready_timeout_s': must be from 1 to 86400 seconds");
  EXPECT_EQ(With("env", {{"APP_ARGS", "-m 0x1"}}),
            "invalid params: 'env.APP_ARGS': set by cpu_mask");
  EXPECT_EQ(With("env", {{"SNAP_SPDK_SOCK", "/x"}}),
            "invalid params: 'env.SNAP_SPDK_SOCK': set by the DPU agent (its --snap-socket)");
  EXPECT_EQ(With("env", {{"1X", "y"}}),
            "invalid params: 'env.1X': the key must be [A-Za-z_][A-Za-z0-9_]*");
  EXPECT_EQ(With("colour", "red"), "invalid params: 'colour': unknown parameter");
}

TEST(DpuGroupSpec, ParsesSortsAndRefuses) {
  DpuGroup g = ParseGroup({{"name", "rack1"}, {"dpus", {"b", "a"}}});
  EXPECT_EQ(g.dpus, (std::vector<std::string>{"a", "b"}));
  auto error = [](const json& body) {
    try {
      ParseGroup(body);
      return std::string("ok");
    } catch (const rpc::CallError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(error({{"name", "r"}, {"dpus", json::array()}}),
            "invalid params: 'dpus': a non-empty array of DPU names");
  EXPECT_EQ(error({{"name", "r"}, {"dpus", {"a", "a"}}}),
            "invalid params: 'dpus[1]': 'a' is listed twice");
  EXPECT_EQ(error({{"name", "r"}, {"dpus", {"a", "b c"}}}).rfind("invalid params: 'dpus[1]'", 0),
            0u);
  EXPECT_EQ(error({{"name", "r"}}), "invalid params: 'dpus': required");
  EXPECT_EQ(error({{"name", "r"}, {"dpus", {"a"}}, {"x", 1}}),
            "invalid params: 'x': unknown parameter");
}

TEST(DeploymentDesired, ResolvesGroupsDeletionsAndReleases) {
  std::map<std::string, DpuGroup> groups = {{"rack", DpuGroup{"rack", {"a", "b"}, 0, 0}}};
  Deployment one = ParseDeployment(Body());
  one.generation = 10;
  json gb = Body();
  gb.erase("dpu");
  gb["group"] = "rack";
  gb["name"] = "fleet";
  Deployment fleet = ParseDeployment(gb);
  fleet.generation = 20;
  fleet.released = {{"c", 21}, {"b", 19}};  // b rejoined: the spec wins over its release
  EXPECT_EQ(TargetDpus(fleet, groups), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(TargetDpus(fleet, {}).empty());  // a missing group targets nothing

  auto want = DesiredByDpu({{"snap", one}, {"fleet", fleet}}, groups);
  ASSERT_EQ(want.size(), 4u);
  EXPECT_EQ(want["dpu-a"].deployment, "snap");
  EXPECT_EQ(want["dpu-a"].generation, 10);
  EXPECT_EQ(want["dpu-a"].spec["version"], "4.6.0");
  EXPECT_EQ(want["a"].generation, 20);
  EXPECT_EQ(want["b"].generation, 20);
  EXPECT_FALSE(want["b"].spec.is_null());
  EXPECT_TRUE(want["c"].spec.is_null());
  EXPECT_EQ(want["c"].generation, 21);

  one.deleting = true;
  one.removal_generation = 30;
  one.removing = {"dpu-a"};
  want = DesiredByDpu({{"snap", one}}, groups);
  EXPECT_TRUE(want["dpu-a"].spec.is_null());
  EXPECT_EQ(want["dpu-a"].generation, 30);
  one.removing.clear();
  EXPECT_TRUE(DesiredByDpu({{"snap", one}}, groups).empty());
}

TEST(DeploymentReconcile, DecidesWhatToSendWhen) {
  DpuDesired want{"snap", 100, {{"version", "4.6.0"}}};
  DpuDesired remove{"snap", 200, nullptr};
  auto now = Steady::now();
  auto seen = [](std::int64_t gen, const std::string& state) {
    DeployObserved o;
    o.present = true;
    o.generation = gen;
    o.state = state;
    return o;
  };
  // Offline: never. Nothing sent this session (new spec, or the agent reconnected): at once.
  EXPECT_FALSE(ShouldSend(want, std::nullopt, std::nullopt, false, now, 5s));
  EXPECT_TRUE(ShouldSend(want, std::nullopt, std::nullopt, true, now, 5s));
  EXPECT_TRUE(ShouldSend(want, seen(100, "ready"), std::nullopt, true, now, 5s));
  // Sent an older generation (the spec changed): at once.
  EXPECT_TRUE(ShouldSend(want, seen(90, "ready"), Sent{90, now}, true, now, 5s));
  // Sent and taken (in progress or done, whatever the outcome): not again.
  EXPECT_FALSE(ShouldSend(want, seen(100, "deploying"), Sent{100, now - 1h}, true, now, 5s));
  EXPECT_FALSE(ShouldSend(want, seen(100, "rolled-back"), Sent{100, now - 1h}, true, now, 5s));
  // Sent but not taken: again once the retry interval passed.
  EXPECT_FALSE(ShouldSend(want, seen(90, "ready"), Sent{100, now - 1s}, true, now, 5s));
  EXPECT_TRUE(ShouldSend(want, seen(90, "ready"), Sent{100, now - 6s}, true, now, 5s));
  EXPECT_TRUE(ShouldSend(want, std::nullopt, Sent{100, now - 6s}, true, now, 5s));
  // Refused by the agent: not again for this generation.
  EXPECT_FALSE(ShouldSend(want, seen(90, "ready"), Sent{100, now - 1h, true}, true, now, 5s));
  // Removal: an agent that holds nothing has taken it.
  EXPECT_FALSE(ShouldSend(remove, DeployObserved{}, Sent{200, now - 1h}, true, now, 5s));
  EXPECT_TRUE(ShouldSend(remove, seen(100, "ready"), Sent{200, now - 6s}, true, now, 5s));

  EXPECT_TRUE(Reached(want, seen(100, "ready")));
  EXPECT_FALSE(Reached(want, seen(100, "power-cycle-required")));
  EXPECT_FALSE(Reached(want, seen(90, "ready")));
  EXPECT_TRUE(Reached(remove, DeployObserved{}));
  EXPECT_TRUE(Reached(remove, seen(200, "removed")));
  EXPECT_FALSE(Reached(remove, seen(200, "removing")));
  EXPECT_TRUE(TerminalNotReady("rolled-back"));
  EXPECT_TRUE(TerminalNotReady("power-cycle-required"));
  EXPECT_FALSE(TerminalNotReady("deploying"));
}

TEST(DeploymentSection, ReadsReportsAndEvents) {
  DeployObserved o = ObservedFromSection({{"name", "snap"},
                                          {"generation", 7},
                                          {"version", "4.6.0"},
                                          {"phase", "ready"},
                                          {"state", "ready"},
                                          {"since", 123},
                                          {"previous", {{"version", "4.5.0"}}}});
  EXPECT_TRUE(o.present);
  EXPECT_EQ(o.deployment, "snap");
  EXPECT_EQ(o.generation, 7);
  EXPECT_EQ(o.previous["version"], "4.5.0");
  EXPECT_EQ(ObservedFromSection({{"deployment", "x"}, {"generation", 1}}).deployment, "x");
  EXPECT_FALSE(ObservedFromSection(nullptr).present);
  EXPECT_EQ(ObservedFromSection({{"generation", "bad"}}).generation, -1);
}

// A DPU registered over the real protocol, its connection kept open.
struct Registered {
  std::unique_ptr<rpc::RpcClient> client;
};
Registered Register(ManagerCore& core, const std::string& name) {
  auto c = rpc::RpcClient::Connect(core.socket(), 2s);
  EXPECT_TRUE(c.ok());
  auto r = (*c)->Call(protocol::kHello,
                      {{"name", name},
                       {"kind", "dpu"},
                       {"version", "t"},
                       {"protocol", 1},
                       {"token", "tok"},
                       {"capabilities", json::object()}},
                      2s);
  EXPECT_TRUE(r.ok());
  return Registered{std::move(*c)};
}

TEST(DeploymentService, RestErrorsAndPersistence) {
  std::string dir = TestDir("deploy-rest");
  ManagerCore core(dir);
  auto a = Register(core, "dpu-a");
  auto b = Register(core, "dpu-b");
  bool created = false;
  {
    DeploymentService ds(core.store(), core.inventory(), core.events(), core.service(), {});
    auto code = [&](const json& body) {
      auto r = ds.Apply(body, &created);
      return r.ok() ? 0 : r.error().code;
    };
    json bad = Body();
    bad["hugepages_2m"] = -5;
    EXPECT_EQ(code(bad), rpc::kInvalidParams);
    json unknown = Body();
    unknown["dpu"] = "nope";
    auto r = ds.Apply(unknown, &created);
    EXPECT_EQ(r.error().code, rpc::kNotFound);
    EXPECT_EQ(r.error().message, "no DPU named 'nope'");
    json in_group = Body();
    in_group.erase("dpu");
    in_group["group"] = "rack";
    r = ds.Apply(in_group, &created);
    EXPECT_EQ(r.error().message, "no DPU group named 'rack'");
    EXPECT_TRUE(ds.List().empty());
    EXPECT_TRUE(core.store().LoadDeployments().empty());

    r = ds.Apply(Body(), &created);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_TRUE(created);
    std::int64_t gen = (*r)["generation"];
    EXPECT_EQ((*r)["target"], "dpu/dpu-a");
    EXPECT_EQ((*r)["dpus"][0]["dpu"], "dpu-a");
    EXPECT_EQ((*r)["dpus"][0]["state"], "pending");
    // The same spec again: nothing changes, not even the generation.
    r = ds.Apply(Body(), &created);
    EXPECT_FALSE(created);
    EXPECT_EQ((*r)["generation"], gen);
    // Another version: an update with a newer generation.
    json up = Body();
    up["version"] = "4.7.0";
    r = ds.Apply(up, &created);
    EXPECT_FALSE(created);
    EXPECT_GT((*r)["generation"].get<std::int64_t>(), gen);
    EXPECT_EQ((*r)["version"], "4.7.0");
    // Moving it elsewhere is refused.
    json moved = up;
    moved["dpu"] = "dpu-b";
    r = ds.Apply(moved, &created);
    EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
    EXPECT_EQ(r.error().message,
              "deployment 'snap' targets dpu/dpu-a, not dpu/dpu-b; delete it first to move it");

    // A group that overlaps an existing deployment cannot carry another one.
    r = ds.PutGroup({{"name", "rack"}, {"dpus", {"dpu-a", "dpu-b"}}}, &created);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(created);
    r = ds.Apply(in_group, &created);
    EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
    in_group["name"] = "fleet";
    r = ds.Apply(in_group, &created);
    EXPECT_EQ(r.error().message,
              "dpu 'dpu-a' is already targeted by deployment 'snap' (dpu/dpu-a)");
    r = ds.PutGroup({{"name", "rack"}, {"dpus", {"dpu-b"}}}, &created);
    EXPECT_FALSE(created);
    r = ds.Apply(in_group, &created);
    ASSERT_TRUE(r.ok()) << r.error().message;
    // Now the group is in use: it cannot be deleted, nor grow onto dpu-a.
    r = ds.DeleteGroup("rack");
    EXPECT_EQ(r.error().code, rpc::kBusy);
    EXPECT_EQ(r.error().message, "group 'rack' is used by deployment 'fleet'");
    r = ds.PutGroup({{"name", "rack"}, {"dpus", {"dpu-a", "dpu-b"}}}, &created);
    EXPECT_EQ(r.error().code, rpc::kAlreadyExists);
    EXPECT_EQ(ds.Group("rack")->at("dpus"), json({"dpu-b"}));
    EXPECT_EQ(ds.Group("rack")->at("deployment"), "fleet");
    EXPECT_EQ(ds.DeleteGroup("nope").error().code, rpc::kNotFound);
    EXPECT_EQ(ds.Get("nope").error().code, rpc::kNotFound);
    EXPECT_EQ(ds.Delete("nope", false).error().code, rpc::kNotFound);
  }
  // Everything survives a restart of the service.
  DeploymentService again(core.store(), core.inventory(), core.events(), core.service(), {});
  ASSERT_EQ(again.List().size(), 2u);
  EXPECT_EQ(again.Get("snap")->at("version"), "4.7.0");
  EXPECT_EQ(again.Get("fleet")->at("target"), "group/rack");
  EXPECT_EQ(again.Groups().size(), 1u);
  // Deleting waits for the DPU to confirm the removal; --force forgets at once.
  auto del = again.Delete("snap", false);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ((*del)["state"], "deleting");
  EXPECT_EQ((*del)["dpus"][0]["dpu"], "dpu-a");
  EXPECT_TRUE(again.Get("snap").ok());
  json moved = Body();
  moved["name"] = "other";
  auto r = again.Apply(moved, &created);
  EXPECT_EQ(r.error().message,
            "dpu 'dpu-a' is still being cleared by deployment 'snap' (being deleted)");
  EXPECT_EQ((*again.Delete("snap", true))["state"], "deleted");
  EXPECT_EQ(again.Get("snap").error().code, rpc::kNotFound);
  EXPECT_EQ(core.store().LoadDeployments().size(), 1u);
}

TEST(DeploymentRest, StatusCodes) {
  ManagerCore core(TestDir("deploy-http"));
  auto a = Register(core, "dpu-a");
  VolumeService vs(core.store(), core.inventory(), core.events(), core.service(), {});
  ShareService ss(core.store(), core.inventory(), core.events(), core.service(), {});
  DeploymentService ds(core.store(), core.inventory(), core.events(), core.service(), {});
  Router router;
  RegisterRestApi(router, RestContext{core.inventory(), core.events(), core.store(), core.service(),
                                      vs, ss, ds, 0});
  auto call = [&](const std::string& method, const std::string& path, const std::string& body,
                  std::map<std::string, std::string> query = {}) {
    return router.Handle(HttpRequest{method, path, std::move(query), body});
  };
  auto error = [](const HttpResponse& r) { return json::parse(r.body).value("error", ""); };
  HttpResponse r = call("POST", "/api/v1/deployments", "{not json");
  EXPECT_EQ(r.status, 400);
  json bad = Body();
  bad["cpu_mask"] = "0x0";
  r = call("POST", "/api/v1/deployments", bad.dump());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error(r), "invalid params: 'cpu_mask': selects no core");
  json nowhere = Body();
  nowhere["dpu"] = "dpu-z";
  EXPECT_EQ(call("POST", "/api/v1/deployments", nowhere.dump()).status, 404);
  EXPECT_EQ(call("POST", "/api/v1/deployments", Body().dump()).status, 201);
  EXPECT_EQ(call("POST", "/api/v1/deployments", Body().dump()).status, 200);
  json other = Body();
  other["name"] = "other";
  r = call("POST", "/api/v1/deployments", other.dump());
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error(r), "dpu 'dpu-a' is already targeted by deployment 'snap' (dpu/dpu-a)");
  EXPECT_EQ(call("GET", "/api/v1/deployments/snap", "").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/deployments/nope", "").status, 404);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/deployments", "").body).size(), 1u);
  EXPECT_EQ(call("DELETE", "/api/v1/deployments/snap", "", {{"force", "maybe"}}).status, 400);
  EXPECT_EQ(call("DELETE", "/api/v1/deployments/nope", "").status, 404);
  EXPECT_EQ(call("PUT", "/api/v1/deployments/snap", "").status, 405);

  r = call("POST", "/api/v1/groups", R"({"name":"rack","dpus":["dpu-a","dpu-a"]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error(r), "invalid params: 'dpus[1]': 'dpu-a' is listed twice");
  EXPECT_EQ(call("POST", "/api/v1/groups", R"({"name":"rack","dpus":["dpu-b"]})").status, 201);
  EXPECT_EQ(call("POST", "/api/v1/groups", R"({"name":"rack","dpus":["dpu-b"]})").status, 200);
  json g = other;
  g.erase("dpu");
  g["group"] = "rack";
  EXPECT_EQ(call("POST", "/api/v1/deployments", g.dump()).status, 201);
  EXPECT_EQ(call("DELETE", "/api/v1/groups/rack", "").status, 409);
  EXPECT_EQ(call("GET", "/api/v1/groups/rack", "").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/groups/none", "").status, 404);
  EXPECT_EQ(json::parse(call("GET", "/api/v1/groups", "").body)[0]["deployment"], "other");
  // dpu-b never registered: nothing to remove there, so the deployment goes at once.
  EXPECT_EQ(call("DELETE", "/api/v1/deployments/other", "").status, 200);
  EXPECT_EQ(call("GET", "/api/v1/deployments/other", "").status, 404);
  EXPECT_EQ(call("DELETE", "/api/v1/groups/rack", "").status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/groups/rack", "").status, 404);
}

// An agent session with a recording deploy.apply and a deployer-like report section.
class FakeDeployer {
 public:
  FakeDeployer(ManagerCore& core, const std::string& name) : name_(name) {
    options_.manager = "unix:" + core.socket();
    options_.report_interval = 50ms;
    options_.backoff_initial = 20ms;
    options_.backoff_max = 100ms;
    session_ = MakeSession();
    session_->Start();
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  ~FakeDeployer() {
    boost::asio::post(ioc_, [this] {
      session_->Stop();
      boost::asio::post(ioc_, [this] { ioc_.stop(); });
    });
    thread_.join();
  }
  std::vector<json> applies() {
    std::lock_guard lock(mu_);
    return applies_;
  }
  void Refuse(bool on) {
    std::lock_guard lock(mu_);
    refuse_ = on;
  }
  void Event(const json& detail) {
    boost::asio::post(ioc_, [this, detail] { session_->SendEvent("deploy.phase", detail); });
  }
  // As a restarted agent process: a new session, the deployer's state kept.
  void Restart() {
    boost::asio::post(ioc_, [this] {
      session_->Stop();
      session_ = MakeSession();
      session_->Start();
    });
  }

 private:
  std::shared_ptr<agent::AgentSession> MakeSession() {
    auto session = agent::AgentSession::Create(
        ioc_, agent::AgentIdentity{name_, "dpu", "t", json::object(), "tok"}, options_, [this] {
          std::lock_guard lock(mu_);
          return json{{"deployment", section_}};
        });
    session->methods().Add("deploy.apply", "record",
                           [this](agent::AgentSession&, const json& p) { return Apply(p); });
    return session;
  }
  json Apply(const json& p) {
    std::lock_guard lock(mu_);
    if (refuse_) throw rpc::ParamError("deployment.image", "no");
    applies_.push_back(p);
    std::int64_t gen = p["generation"];
    if (p["deployment"].is_null()) {
      section_ = {{"name", section_.is_object() ? section_.value("name", "") : ""},
                  {"generation", gen},
                  {"phase", "removed"},
                  {"state", "removed"}};
    } else {
      section_ = {{"name", p["deployment"]["name"]},
                  {"generation", gen},
                  {"version", p["deployment"]["version"]},
                  {"phase", "ready"},
                  {"state", "ready"}};
    }
    return {{"accepted", true}, {"generation", gen}};
  }

  std::string name_;
  agent::SessionOptions options_;
  boost::asio::io_context ioc_;
  std::shared_ptr<agent::AgentSession> session_;
  std::mutex mu_;
  std::vector<json> applies_;
  json section_ = nullptr;
  bool refuse_ = false;
  std::thread thread_;
};

TEST(DeploymentService, ReconcilesAgainstAnAgentSession) {
  ManagerCore core(TestDir("deploy-loop"));
  DeploymentServiceOptions o;
  o.pass_interval = 20ms;
  o.retry_interval = 300ms;
  DeploymentService ds(core.store(), core.inventory(), core.events(), core.service(), o);
  core.service().OnRegistered(
      [&](const std::string& n, const std::string& k) { ds.AgentRegistered(n, k); });
  core.service().OnReport([&](const std::string& n, const std::string&,
                              const std::shared_ptr<const json>& s) { ds.DpuReported(n, *s); });
  core.service().OnEvent([&](const std::string& n, const std::string& k, const std::string& t,
                             const json& d) { return ds.AgentEvent(n, k, t, d); });
  ds.Start();
  FakeDeployer agent(core, "dpu-a");
  ASSERT_TRUE(Eventually([&] {
    auto r = core.inventory().Get("dpu-a");
    return r && r->state == kOnline;
  }));
  bool created = false;
  auto r = ds.Apply(Body(), &created);
  ASSERT_TRUE(r.ok());
  std::int64_t gen = (*r)["generation"];
  ASSERT_TRUE(Eventually([&] { return ds.Get("snap")->at("state") == "ready"; }))
      << ds.Get("snap")->dump();
  ASSERT_EQ(agent.applies().size(), 1u);
  EXPECT_EQ(agent.applies()[0]["generation"], gen);
  EXPECT_EQ(agent.applies()[0]["deployment"]["version"], "4.6.0");
  json dpu = ds.Get("snap")->at("dpus")[0];
  EXPECT_EQ(dpu["generation"], gen);
  EXPECT_EQ(dpu["version"], "4.6.0");
  // Taken: not sent again, and the same spec posted again sends nothing.
  ds.Apply(Body(), &created);
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(agent.applies().size(), 1u);

  // Phase events become deployment events for the DPU and the deployment, once each.
  agent.Event({{"deployment", "snap"},
               {"generation", gen + 1},
               {"phase", "preflight"},
               {"state", "deploying"},
               {"message", "checks"}});
  agent.Event({{"deployment", "snap"},
               {"generation", gen + 1},
               {"phase", "manifest"},
               {"state", "deploying"},
               {"message", ""}});
  ASSERT_TRUE(Eventually([&] { return core.events().Recent(100, "deployment/snap").size() >= 4; }));
  auto types = [&](const std::string& subject) {
    std::vector<std::string> out;
    for (const auto& e : core.events().Recent(100, subject)) out.push_back(e.type);
    return out;
  };
  EXPECT_EQ(types("deployment/snap"),
            (std::vector<std::string>{"deployment.requested", "deployment.ready",
                                      "deployment.deploying", "deployment.phase"}));
  EXPECT_EQ(types("dpu/dpu-a").back(), "deployment.phase");
  for (const auto& t : types("dpu/dpu-a")) EXPECT_NE(t, "agent.deploy.phase");

  // The agent reconnects: the same generation is sent again (the deployer makes it a no-op).
  agent.Restart();
  ASSERT_TRUE(Eventually([&] { return agent.applies().size() == 2; }));
  EXPECT_EQ(agent.applies()[1]["generation"], gen);

  // A spec the agent refuses is shown failed with its reason and not sent in a loop.
  agent.Refuse(true);
  json up = Body();
  up["version"] = "4.7.0";
  ds.Apply(up, &created);
  ASSERT_TRUE(Eventually([&] { return ds.Get("snap")->at("state") == "failed"; }));
  EXPECT_EQ(ds.Get("snap")->at("dpus")[0]["message"],
            "deploy.apply refused by dpu-a: invalid params: 'deployment.image': no");
  std::this_thread::sleep_for(800ms);
  EXPECT_EQ(ds.Get("snap")->at("state"), "failed");
  agent.Refuse(false);
  up["version"] = "4.8.0";
  ds.Apply(up, &created);
  ASSERT_TRUE(Eventually([&] { return ds.Get("snap")->at("state") == "ready"; }));
  EXPECT_EQ(agent.applies().back()["deployment"]["version"], "4.8.0");

  // Deletion sends null and the record goes once the agent reports the removal.
  ASSERT_TRUE(ds.Delete("snap", false).ok());
  ASSERT_TRUE(Eventually([&] { return !ds.Get("snap").ok(); })) << ds.Get("snap")->dump();
  EXPECT_TRUE(agent.applies().back()["deployment"].is_null());
  EXPECT_TRUE(core.store().LoadDeployments().empty());
  EXPECT_TRUE(Eventually([&] { return types("deployment/snap").back() == "deployment.deleted"; }));
  ds.Stop();
}

TEST(DeploymentService, GroupMembersJoinAndLeave) {
  ManagerCore core(TestDir("deploy-group"));
  DeploymentServiceOptions o;
  o.pass_interval = 20ms;
  o.retry_interval = 300ms;
  DeploymentService ds(core.store(), core.inventory(), core.events(), core.service(), o);
  core.service().OnRegistered(
      [&](const std::string& n, const std::string& k) { ds.AgentRegistered(n, k); });
  core.service().OnReport([&](const std::string& n, const std::string&,
                              const std::shared_ptr<const json>& s) { ds.DpuReported(n, *s); });
  ds.Start();
  FakeDeployer a(core, "dpu-a"), b(core, "dpu-b");
  bool created = false;
  ASSERT_TRUE(
      ds.PutGroup({{"name", "rack"}, {"dpus", {"dpu-a", "dpu-b", "dpu-later"}}}, &created).ok());
  json body = Body();
  body.erase("dpu");
  body["group"] = "rack";
  ASSERT_TRUE(ds.Apply(body, &created).ok());
  // The two registered DPUs get ready; the one that never registered stays pending.
  ASSERT_TRUE(Eventually([&] {
    auto s = ds.Get("snap")->at("summary").get<std::string>();
    return s == "dpu-a=ready dpu-b=ready dpu-later=pending";
  })) << ds.Get("snap")->dump();
  EXPECT_EQ(ds.Get("snap")->at("state"), "pending");
  // dpu-b leaves the group: it is told to remove SNAP, and is no longer shown once it did.
  ASSERT_TRUE(ds.PutGroup({{"name", "rack"}, {"dpus", {"dpu-a"}}}, &created).ok());
  ASSERT_TRUE(Eventually([&] { return ds.Get("snap")->at("state") == "ready"; }))
      << ds.Get("snap")->dump();
  EXPECT_TRUE(b.applies().back()["deployment"].is_null());
  EXPECT_EQ(ds.Get("snap")->at("summary"), "dpu-a=ready");
  EXPECT_FALSE(a.applies().back()["deployment"].is_null());
  ds.Stop();
}

}  // namespace
}  // namespace dpustor::manager
