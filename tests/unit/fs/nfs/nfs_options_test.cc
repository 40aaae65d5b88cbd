// nfs:// URL options: what is accepted, what is refused and why.
#include <gtest/gtest.h>

#include "fs/backend/backend_url.h"
#include "fs/backend/nfs/nfs_backend.h"

namespace dpustor::fs {
namespace {

BackendUrl Url(std::string host, std::string path, std::map<std::string, std::string> query) {
  BackendUrl u;
  u.scheme = "nfs";
  u.host = std::move(host);
  u.path = std::move(path);
  u.query = std::move(query);
  return u;
}

TEST(NfsOptions, DefaultsWithoutQuery) {
  auto o = ParseNfsOptions(Url("10.0.0.1", "/export", {}));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->server, "10.0.0.1");
  EXPECT_EQ(o->export_path, "/export");
  EXPECT_EQ(o->nfs_port, 0);
  EXPECT_EQ(o->mount_port, 0);
  EXPECT_EQ(o->connections, 4);
  EXPECT_EQ(o->timeout, std::chrono::seconds(30));
}

TEST(NfsOptions, ExplicitPortsConnectionsTimeout) {
  auto o = ParseNfsOptions(Url("h", "/a/b",
                               {{"version", "3"},
                                {"nfsport", "2049"},
                                {"mountport", "20048"},
                                {"connections", "8"},
                                {"timeout", "5"},
                                {"attr_timeout", "0"}}));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->nfs_port, 2049);
  EXPECT_EQ(o->mount_port, 20048);
  EXPECT_EQ(o->connections, 8);
  EXPECT_EQ(o->timeout, std::chrono::seconds(5));
  EXPECT_EQ(o->attr_timeout, 0.0);
}

TEST(NfsOptions, AuthorityPortIsTheNfsPort) {
  auto o = ParseNfsOptions(Url("h", "/e", {{"port", "3049"}}));
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->nfs_port, 3049);
}

TEST(NfsOptions, RefusesVersion4WithTheReason) {
  auto o = ParseNfsOptions(Url("h", "/e", {{"version", "4"}}));
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("version=4 is not supported"), std::string::npos);
  EXPECT_NE(o.error().message.find("version=3"), std::string::npos);
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"version", "2"}})));
}

TEST(NfsOptions, RefusesBadNumbersAndUnknownOptions) {
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"nfsport", "0"}})));
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"nfsport", "70000"}})));
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"mountport", "12x"}})));
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"connections", "0"}})));
  EXPECT_FALSE(ParseNfsOptions(Url("h", "/e", {{"connections", "65"}})));
  auto o = ParseNfsOptions(Url("h", "/e", {{"uid", "0"}}));
  ASSERT_FALSE(o);
  EXPECT_NE(o.error().message.find("'uid'"), std::string::npos);
  EXPECT_NE(o.error().message.find("credentials come from each request"), std::string::npos);
}

TEST(NfsOptions, NeedsServerAndExport) {
  EXPECT_FALSE(ParseNfsOptions(Url("", "/e", {})));
  EXPECT_FALSE(ParseNfsOptions(Url("h", "", {})));
  BackendUrl local = Url("h", "/e", {});
  local.scheme = "local";
  EXPECT_FALSE(ParseNfsOptions(local));
}

TEST(NfsOptions, ParsesThroughTheSharedUrlParser) {
  auto url = ParseBackendUrl("nfs://127.0.0.1/export?version=3&nfsport=2049&mountport=2050");
  ASSERT_TRUE(url) << url.error().message;
  auto o = ParseNfsOptions(*url);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->server, "127.0.0.1");
  EXPECT_EQ(o->export_path, "/export");
  EXPECT_EQ(o->nfs_port, 2049);
  EXPECT_EQ(o->mount_port, 2050);
}

}  // namespace
}  // namespace dpustor::fs
