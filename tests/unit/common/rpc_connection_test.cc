#include "common/rpc_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>

#include "common/method_table.h"
#include "common/rpc_client.h"
#include "common/rpc_server.h"

namespace dpustor::rpc {
namespace {

using namespace std::chrono_literals;

// Serves a small method table on a Unix socket from a background io_context thread.
class TestServer : public ConnectionHandler {
 public:
  explicit TestServer(ConnectionOptions options = {})
      : dir_(std::filesystem::temp_directory_path() /
             ("rpc-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++))),
        server_(ioc_, options, [this](std::shared_ptr<RpcConnection> c) {
          last_ = c;
          c->Start(std::shared_ptr<ConnectionHandler>(this, [](ConnectionHandler*) {}));
        }) {
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "s.sock").string();
    table_.Add("echo", "returns params", [](TestServer&, const json& p) { return p; });
    table_.AddAsync("never", "does not answer",
                    [](TestServer& s, const json&, Reply r) { s.parked_.push_back(std::move(r)); });
    table_.AddAsync("ask_back", "calls the client's echo and returns its answer",
                    [](TestServer& s, const json& p, Reply r) {
                      s.last_->Call("echo", p, [r](Result<json> got) { r(std::move(got)); });
                    });
    auto ep = net::ParseEndpoint("unix:" + path_);
    EXPECT_TRUE(server_.Listen(*ep).ok());
    thread_ = std::thread([this] {
      auto guard = boost::asio::make_work_guard(ioc_);
      ioc_.run();
    });
  }
  ~TestServer() override {
    boost::asio::post(ioc_, [this] {
      server_.Stop();
      if (last_) last_->Close();
    });
    ioc_.stop();
    thread_.join();
    std::filesystem::remove_all(dir_);
  }

  void OnRequest(RpcConnection&, Message&& m, Reply reply) override {
    table_.Dispatch(*this, m.method, m.params, std::move(reply));
  }
  void OnNotification(RpcConnection&, Message&& m) override { notes_.push_back(m.method); }

  const std::string& path() const { return path_; }
  std::vector<std::string> notes_;

 private:
  static inline std::atomic<int> counter_{0};
  std::filesystem::path dir_;
  std::string path_;
  boost::asio::io_context ioc_;
  RpcServer server_;
  MethodTable<TestServer> table_;
  std::shared_ptr<RpcConnection> last_;
  std::vector<Reply> parked_;
  std::thread thread_;
};

// A plain blocking socket, to send bytes no well-behaved client would.
class RawSocket {
 public:
  explicit RawSocket(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  ~RawSocket() { ::close(fd_); }
  void Send(std::string_view s) { ASSERT_EQ(::write(fd_, s.data(), s.size()), ssize_t(s.size())); }
  // Next line from the peer, or "" on EOF/timeout.
  std::string Line() {
    while (true) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return "";
      char b[4096];
      ssize_t n = ::read(fd_, b, sizeof b);
      if (n <= 0) return "";
      buf_.append(b, size_t(n));
    }
  }
  bool ClosedByPeer() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    char b;
    return ::read(fd_, &b, 1) == 0;
  }

 private:
  int fd_;
  std::string buf_;
};

TEST(RpcConnection, ClientCallRoundTrip) {
  TestServer server;
  auto client = RpcClient::Connect(server.path(), 2s);
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto r = (*client)->Call("echo", {{"k", "v"}}, 2s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value()["k"], "v");
}

TEST(RpcConnection, UnknownMethodIsAnErrorNotACrash) {
  TestServer server;
  auto client = RpcClient::Connect(server.path(), 2s);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Call("no.such.method", nullptr, 2s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kMethodNotFound);
  EXPECT_TRUE((*client)->Call("echo", json::object(), 2s).ok());  // still usable
}

TEST(RpcConnection, SeveralMessagesInOneWrite) {
  TestServer server;
  RawSocket s(server.path());
  s.Send(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"n":1}})"
         "\n"
         R"({"jsonrpc":"2.0","id":2,"method":"echo","params":{"n":2}})");
  auto a = json::parse(s.Line());
  auto b = json::parse(s.Line());
  EXPECT_EQ(a["id"], 1);
  EXPECT_EQ(a["result"]["n"], 1);
  EXPECT_EQ(b["id"], 2);
}

TEST(RpcConnection, PartialWritesAreReassembled) {
  TestServer server;
  RawSocket s(server.path());
  std::string msg = R"({"jsonrpc":"2.0","id":5,"method":"echo","params":{"s":"x"}})";
  for (std::size_t i = 0; i < msg.size(); i += 7) {
    s.Send(msg.substr(i, 7));
    std::this_thread::sleep_for(1ms);
  }
  auto a = json::parse(s.Line());
  EXPECT_EQ(a["id"], 5);
  EXPECT_EQ(a["result"]["s"], "x");
}

TEST(RpcConnection, MalformedJsonGetsParseErrorAndConnectionStays) {
  TestServer server;
  RawSocket s(server.path());
  s.Send("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":}\n");
  auto e = json::parse(s.Line());
  EXPECT_EQ(e["error"]["code"], kParseError);
  EXPECT_TRUE(e["id"].is_null());
  s.Send(R"({"jsonrpc":"2.0","id":2,"method":"echo"})");
  EXPECT_EQ(json::parse(s.Line())["id"], 2);
}

TEST(RpcConnection, InvalidRequestKeepsItsId) {
  TestServer server;
  RawSocket s(server.path());
  s.Send(R"({"jsonrpc":"2.0","id":4,"method":["x"]})");
  auto e = json::parse(s.Line());
  EXPECT_EQ(e["error"]["code"], kInvalidRequest);
  EXPECT_EQ(e["id"], 4);
}

TEST(RpcConnection, GarbageGetsErrorThenClose) {
  TestServer server;
  RawSocket s(server.path());
  s.Send("GET / HTTP/1.1\r\n\r\n");
  auto e = json::parse(s.Line());
  EXPECT_EQ(e["error"]["code"], kParseError);
  EXPECT_TRUE(s.ClosedByPeer());
}

TEST(RpcConnection, OversizeMessageGetsErrorThenClose) {
  ConnectionOptions options;
  options.max_message_bytes = 1024;
  TestServer server(options);
  RawSocket s(server.path());
  s.Send(R"({"jsonrpc":"2.0","id":1,"method":"echo","params":{"s":")" + std::string(2000, 'a'));
  auto e = json::parse(s.Line());
  EXPECT_EQ(e["error"]["code"], kInvalidRequest);
  EXPECT_NE(e["error"]["message"].get<std::string>().find("1024"), std::string::npos);
  EXPECT_TRUE(s.ClosedByPeer());
}

TEST(RpcConnection, NotificationGetsNoReply) {
  TestServer server;
  RawSocket s(server.path());
  s.Send(R"({"jsonrpc":"2.0","method":"echo","params":{}})"
         "\n"
         R"({"jsonrpc":"2.0","id":9,"method":"echo"})");
  EXPECT_EQ(json::parse(s.Line())["id"], 9);  // the first reply is for the request
}

TEST(RpcConnection, CallTimesOut) {
  TestServer server;
  auto client = RpcClient::Connect(server.path(), 2s);
  ASSERT_TRUE(client.ok());
  auto start = std::chrono::steady_clock::now();
  auto r = (*client)->Call("never", nullptr, 200ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(RpcConnection, ServerCallsBackIntoClient) {
  // Both directions on one connection: the server's handler calls the client's "echo".
  TestServer server;
  boost::asio::io_context ioc;
  auto ep = net::ParseEndpoint(server.path());
  net::Protocol::socket sock(ioc);
  sock.connect(ep->address);
  struct ClientSide : ConnectionHandler {
    void OnRequest(RpcConnection&, Message&& m, Reply reply) override { reply(m.params); }
  };
  auto conn = RpcConnection::Create(net::MakeSocketStream(std::move(sock)));
  conn->Start(std::make_shared<ClientSide>());
  std::optional<Result<json>> got;
  conn->Call("ask_back", {{"v", 42}}, [&](Result<json> r) {
    got = std::move(r);
    conn->Close();
  });
  ioc.run_for(5s);
  ASSERT_TRUE(got.has_value());
  ASSERT_TRUE(got->ok());
  EXPECT_EQ(got->value()["v"], 42);
}

TEST(RpcConnection, ConnectToNothingFailsClearly) {
  auto r = RpcClient::Connect("unix:/nonexistent-dir/x.sock", 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cannot connect"), std::string::npos);
}

}  // namespace
}  // namespace dpustor::rpc
