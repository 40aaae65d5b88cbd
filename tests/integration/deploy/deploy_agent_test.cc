// deploy.apply through the real dpustor-dpu-agent: a test-only manager (agent.hello,
// agent.report, agent.event; it sends deploy.apply once the agent reports) drives the agent,
// which is killed with SIGKILL in the middle of a deployment and restarted: it resumes from
// its state file and finishes.
#include <sys/stat.h>

#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "common/agent_protocol.h"
#include "common/rpc_server.h"
#include "deploy_lab.h"
#include "harness/lab.h"

namespace dpustor::testing {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kImage = "nvcr.io/nvidia/doca/doca_snap:4.6.0-doca2.10.0";

// Just enough of a manager for one DPU agent: accepts it, keeps its hello, last status and
// events, and sends it `deploy` (deploy.apply params) after its first report on every
// connection, as the real manager re-sends desired state on registration.
class TestManager {
 public:
  explicit TestManager(json deploy) : deploy_(std::move(deploy)) {
    rpc::ConnectionOptions options;
    options.max_message_bytes = 16 << 20;
    server_ = std::make_unique<rpc::RpcServer>(
        ioc_, options, [this](auto conn) { conn->Start(std::make_shared<Handler>(this)); });
    Status s = server_->Listen(*net::ParseEndpoint("127.0.0.1:0"));
    EXPECT_TRUE(s.ok()) << s.error().message;
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~TestManager() {
    boost::asio::post(ioc_, [this] { server_->Stop(); });
    ioc_.stop();
    thread_.join();
  }
  std::string address() const { return server_->local_address(); }

  json hello() {
    std::lock_guard lock(mu_);
    return hello_;
  }
  json status() {
    std::lock_guard lock(mu_);
    return status_;
  }
  json events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  int deploys_sent() {
    std::lock_guard lock(mu_);
    return deploys_sent_;
  }
  // A call on the agent's current connection.
  Result<json> Call(const std::string& method, const json& params) {
    std::shared_ptr<rpc::RpcConnection> conn;
    {
      std::lock_guard lock(mu_);
      conn = conn_.lock();
    }
    if (!conn) return Error{-1, "no agent connected"};
    auto done = std::make_shared<std::promise<Result<json>>>();
    auto future = done->get_future();
    conn->Call(method, params, [done](Result<json> r) { done->set_value(std::move(r)); });
    return future.get();
  }

 private:
  class Handler : public rpc::ConnectionHandler {
   public:
    explicit Handler(TestManager* m) : m_(m) {}
    void OnRequest(rpc::RpcConnection& conn, rpc::Message&& request, rpc::Reply reply) override {
      if (request.method == protocol::kHello) {
        std::lock_guard lock(m_->mu_);
        m_->hello_ = request.params;
        m_->conn_ = conn.shared_from_this();
        reply(json{
            {"session", 1}, {"protocol", protocol::kVersion}, {"heartbeat_timeout_ms", 15000}});
        return;
      }
      if (request.method == protocol::kReport) {
        bool first = !reported_;
        reported_ = true;
        {
          std::lock_guard lock(m_->mu_);
          m_->status_ = request.params["status"];
          if (first) ++m_->deploys_sent_;
        }
        reply(json{{"ack", true}});
        if (first) conn.Call("deploy.apply", m_->deploy_, [](Result<json>) {});
        return;
      }
      reply(Error{rpc::kMethodNotFound, "method not found: " + request.method});
    }
    void OnNotification(rpc::RpcConnection&, rpc::Message&& note) override {
      if (note.method != protocol::kEvent) return;
      std::lock_guard lock(m_->mu_);
      m_->events_.push_back(note.params);
    }

   private:
    TestManager* m_;
    bool reported_ = false;  // on this connection
  };

  boost::asio::io_context ioc_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::thread thread_;
  const json deploy_;
  std::mutex mu_;
  json hello_, status_, events_ = json::array();
  std::weak_ptr<rpc::RpcConnection> conn_;
  int deploys_sent_ = 0;
};

json State(const DeployLab& lab) {
  std::string path = lab.Path("state/deploy/state.json");
  if (!std::filesystem::exists(path)) return nullptr;
  return json::parse(ReadFile(path), nullptr, false);
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(DeployAgentTest, AgentKilledMidDeployResumesAndFinishes) {
  DeployLab lab("agent");
  WriteFile(lab.Path("token"), "test-token\n");
  TestManager manager({{"generation", 5}, {"deployment", Snap4Spec("4.6.0", kImage, 120)}});
  std::vector<std::string> argv = {Bin("src/agent/dpu/dpustor-dpu-agent"),
                                   "--manager",
                                   manager.address(),
                                   "--name",
                                   "dpu-k",
                                   "--token-file",
                                   lab.Path("token"),
                                   "--report-interval-ms",
                                   "300"};
  auto args = lab.AgentArgs();
  argv.insert(argv.end(), args.begin(), args.end());

  // No kubelet yet: the agent writes the manifest and waits for the container.
  ChildProcess agent(argv, lab.Path("logs/agent-1.log"));
  ASSERT_TRUE(WaitFor(
      [&] {
        json s = State(lab);
        return s.is_object() && s["phase"] == "container";
      },
      30s))
      << agent.Log();
  EXPECT_EQ(manager.hello()["capabilities"]["deploy"], json({"snap4", "snap3"}));
  // Phases reach the manager as agent.event "deploy.phase" and in the report.
  ASSERT_TRUE(WaitFor([&] { return manager.status()["deployment"]["phase"] == "container"; }, 10s))
      << manager.status().dump(2);
  bool saw_manifest_event = false;
  for (const auto& e : manager.events())
    saw_manifest_event =
        saw_manifest_event ||
        (e["type"] == "deploy.phase" && e["detail"]["phase"] == "manifest" &&
         e["detail"]["generation"] == 5 && e["detail"]["deployment"] == "snap-bf3");
  EXPECT_TRUE(saw_manifest_event) << manager.events().dump(2);
  ASSERT_TRUE(std::filesystem::exists(lab.manifest()));
  ino_t manifest_inode = Inode(lab.manifest());
  EXPECT_EQ(lab.NrHugepages(), 512);

  agent.Kill();
  agent.Wait(5s);
  json killed = State(lab);
  EXPECT_EQ(killed["state"], "deploying");
  EXPECT_EQ(killed["phase"], "container");

  // The kubelet comes up, the agent restarts: it resumes at the container phase (the manager
  // sending the same request again changes nothing) and finishes.
  lab.StartKubelet();
  agent = ChildProcess(argv, lab.Path("logs/agent-2.log"));
  ASSERT_TRUE(WaitFor([&] { return manager.status()["deployment"]["state"] == "ready"; }, 60s))
      << manager.status()["deployment"].dump(2) << "\n"
      << agent.Log();
  EXPECT_GE(manager.deploys_sent(), 2);
  json d = manager.status()["deployment"];
  EXPECT_EQ(d["generation"], 5);
  EXPECT_EQ(d["version"], "4.6.0");
  std::vector<std::string> phases;
  for (const auto& h : d["history"]) phases.push_back(h["phase"]);
  // One run: preflight..container before the kill, container again after it, then the rest.
  EXPECT_EQ(phases,
            (std::vector<std::string>{"preflight", "firmware", "hugepages", "manifest", "container",
                                      "container", "rpc", "reapply", "ready"}));
  EXPECT_EQ(Inode(lab.manifest()), manifest_inode);  // not written again
  EXPECT_EQ(lab.SnapVersion()["simulator"], true);
  EXPECT_EQ(manager.status()["snap"]["reachable"], true);

  // A bad request through the agent is refused naming the field, and changes nothing.
  json bad = Snap4Spec("4.7.0", kImage);
  bad["hugepages_2m"] = "lots";
  auto r = manager.Call("deploy.apply", {{"generation", 6}, {"deployment", bad}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, rpc::kInvalidParams);
  EXPECT_NE(r.error().message.find("'deployment.hugepages_2m'"), std::string::npos)
      << r.error().message;
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(manager.status()["deployment"]["generation"], 5);
  EXPECT_EQ(Inode(lab.manifest()), manifest_inode);

  agent.Stop();
}

}  // namespace
}  // namespace dpustor::testing
