#include "manager/http_server.h"

#include <thread>

#include <gtest/gtest.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/table.h"

namespace dpustor::manager {
namespace {

using namespace std::chrono_literals;

TEST(HttpTarget, DecodesPathAndQuery) {
  HttpRequest r;
  ParseTarget("/api/v1/images?pool=a%20b&cluster=c+d&flag&bad=%zz", r);
  EXPECT_EQ(r.path, "/api/v1/images");
  EXPECT_EQ(r.query["pool"], "a b");
  EXPECT_EQ(r.query["cluster"], "c d");
  EXPECT_EQ(r.query["flag"], "");
  EXPECT_EQ(r.query["bad"], "%zz");
  HttpRequest t;
  ParseTarget("/x%", t);  // truncated escape stays literal
  EXPECT_EQ(t.path, "/x%");
}

TEST(Router, MatchesCapturesAnd404And405) {
  Router router;
  router.Add("GET", "/api/v1/dpus/{name}",
             [](const HttpRequest&, const std::vector<std::string>& c) {
               return HttpResponse{200, "application/json", nlohmann::json{{"name", c[0]}}.dump()};
             });
  HttpRequest r{"GET", "/api/v1/dpus/bf3-0", {}, ""};
  EXPECT_EQ(router.Handle(r).body, R"({"name":"bf3-0"})");
  r.path = "/api/v1/dpus/bf3-0/";  // trailing slash is the same resource
  EXPECT_EQ(router.Handle(r).status, 200);
  r.method = "DELETE";
  EXPECT_EQ(router.Handle(r).status, 405);
  r = HttpRequest{"GET", "/api/v1/dpus/a/b", {}, ""};
  EXPECT_EQ(router.Handle(r).status, 404);
}

TEST(HttpServer, ServesOverTcpAndSurvivesGarbage) {
  boost::asio::io_context ioc;
  Router router;
  router.Add("GET", "/ping", [](const HttpRequest& r, const std::vector<std::string>&) {
    return HttpResponse{200, "text/plain", "pong " + r.query.at("x")};
  });
  router.Add("GET", "/boom",
             [](const HttpRequest&, const std::vector<std::string>&) -> HttpResponse {
               throw std::runtime_error("kaput");
             });
  HttpServer server(ioc, router);
  ASSERT_TRUE(server.Listen("127.0.0.1:0").ok());
  std::thread t([&] { ioc.run(); });
  std::string url = "http://" + server.local_address();
  auto r = cli::HttpGet(url, "/ping?x=1", 2s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "pong 1");
  r = cli::HttpGet(url, "/boom", 2s);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 500);
  EXPECT_NE(r->body.find("kaput"), std::string::npos);
  // JSON-RPC bytes on the HTTP port: the server drops that connection and keeps serving.
  {
    boost::asio::io_context c;
    boost::asio::ip::tcp::socket sock(c);
    auto colon = server.local_address().rfind(':');
    sock.connect(
        {boost::asio::ip::make_address("127.0.0.1"),
         static_cast<unsigned short>(std::stoi(server.local_address().substr(colon + 1)))});
    std::string junk = "{\"jsonrpc\":\"2.0\"}\r\n\r\n";
    boost::asio::write(sock, boost::asio::buffer(junk));
    char buf[256];
    boost::system::error_code ec;
    sock.read_some(boost::asio::buffer(buf), ec);  // answered or closed, never hangs the server
  }
  EXPECT_TRUE(cli::HttpGet(url, "/ping?x=2", 2s).ok());
  EXPECT_FALSE(cli::HttpGet("http://127.0.0.1:1", "/", 1s).ok());
  server.Stop();
  ioc.stop();
  t.join();
}

}  // namespace
}  // namespace dpustor::manager
