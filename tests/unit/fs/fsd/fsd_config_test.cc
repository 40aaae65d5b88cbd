// dpustor-fsd's config: good files, and refusals that name the offending key or share.
#include "fs/fsd/fsd_config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace dpustor::fs::fsd {
namespace {

using nlohmann::json;

json TwoShares() {
  return json::parse(R"({
    "control_socket": "/run/dpustor/fsd.sock",
    "shares": [
      {"name": "scratch", "transport": "fuse", "mount": "/mnt/scratch", "backend": "memory:",
       "threads": 2, "read_only": false, "writeback": true},
      {"name": "home", "mount": "/mnt/home", "backend": "local:/srv/home", "read_only": true,
       "max_pages": 64}
    ]})");
}

std::string ErrorOf(const json& doc) {
  auto c = ParseFsdConfig(doc);
  return c.ok() ? std::string("(accepted)") : c.error().message;
}

TEST(FsdConfig, GoodConfig) {
  auto c = ParseFsdConfig(TwoShares());
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->control_socket, "/run/dpustor/fsd.sock");
  ASSERT_EQ(c->shares.size(), 2u);
  EXPECT_EQ(c->shares[0].name, "scratch");
  EXPECT_EQ(c->shares[0].threads, 2u);
  EXPECT_TRUE(c->shares[0].writeback);
  EXPECT_EQ(c->shares[0].max_pages, 256u);
  EXPECT_EQ(c->shares[1].transport, "fuse");  // default
  EXPECT_EQ(c->shares[1].threads, 4u);        // default
  EXPECT_TRUE(c->shares[1].read_only);
  EXPECT_EQ(c->shares[1].max_pages, 64u);
}

TEST(FsdConfig, UnknownKeysNamed) {
  json top = TwoShares();
  top["controll_socket"] = "/x";
  EXPECT_NE(ErrorOf(top).find("unknown key 'controll_socket'"), std::string::npos) << ErrorOf(top);
  json share = TwoShares();
  share["shares"][1]["treads"] = 3;
  EXPECT_NE(ErrorOf(share).find("shares[1]: unknown key 'treads'"), std::string::npos)
      << ErrorOf(share);
}

TEST(FsdConfig, DuplicatesRefused) {
  json names = TwoShares();
  names["shares"][1]["name"] = "scratch";
  EXPECT_NE(ErrorOf(names).find("'scratch' is used by another share"), std::string::npos)
      << ErrorOf(names);
  json mounts = TwoShares();
  mounts["shares"][1]["mount"] = "/mnt/./scratch/";
  EXPECT_NE(ErrorOf(mounts).find("is used by another share"), std::string::npos) << ErrorOf(mounts);
}

TEST(FsdConfig, BadTypesNamed) {
  struct Case {
    const char* key;
    json value;
    const char* expect;
  } cases[] = {
      {"threads", "4", "shares[0].threads: expected a non-negative integer"},
      {"threads", -1, "shares[0].threads: expected a non-negative integer"},
      {"threads", 0, "shares[0].threads: 1-"},
      {"threads", 1e10, "shares[0].threads"},
      {"read_only", 1, "shares[0].read_only: expected true or false"},
      {"name", 7, "shares[0].name: expected a string"},
      {"mount", nullptr, "shares[0].mount: expected a string"},
      {"max_pages", 0, "shares[0].max_pages: 1-"},
  };
  for (const Case& c : cases) {
    json doc = TwoShares();
    doc["shares"][0][c.key] = c.value;
    EXPECT_NE(ErrorOf(doc).find(c.expect), std::string::npos) << c.key << ": " << ErrorOf(doc);
  }
  EXPECT_NE(ErrorOf(json::array()).find("expected a JSON object"), std::string::npos);
  EXPECT_NE(ErrorOf(json{{"shares", 3}}).find("config.shares"), std::string::npos);
  EXPECT_NE(ErrorOf(json{{"shares", json::array()}}).find("no shares"), std::string::npos);
  EXPECT_NE(ErrorOf(json{{"shares", {1}}}).find("shares[0]: expected an object"),
            std::string::npos);
}

TEST(FsdConfig, BadValuesRefused) {
  struct Case {
    const char* key;
    json value;
    const char* expect;
  } cases[] = {
      {"transport", "vhost-user", "socket: a socket path is required"},
      {"transport", "nbd", "'nbd' is unknown (known: fuse, vhost-user, doca)"},
      {"manager", "mlx5_0", "manager and function belong to the doca transport"},
      {"socket", "/run/x.sock", "socket and tag belong to the vhost-user transport"},
      {"squash", "some", "squash 'some': none, root or all"},
      {"mount", "mnt/x", "must be an absolute path"},
      {"backend", "ftp://x/y", "unknown backend 'ftp'"},
      {"backend", "local:relative", "absolute"},
      {"name", "a b", "only letters"},
      {"name", "", "1-64 characters"},
  };
  for (const Case& c : cases) {
    json doc = TwoShares();
    doc["shares"][0][c.key] = c.value;
    EXPECT_NE(ErrorOf(doc).find(c.expect), std::string::npos) << c.key << ": " << ErrorOf(doc);
  }
  json no_name = TwoShares();
  no_name["shares"][0].erase("name");
  EXPECT_NE(ErrorOf(no_name).find("shares[0].name: required"), std::string::npos);
  json no_backend = TwoShares();
  no_backend["shares"][0].erase("backend");
  EXPECT_NE(ErrorOf(no_backend).find("backend URL is required"), std::string::npos);
}

TEST(FsdConfig, VhostUserShares) {
  json share = {{"name", "vm1"},   {"transport", "vhost-user"}, {"socket", "/run/vm1.sock"},
                {"tag", "data"},   {"backend", "memory:"},      {"request_queues", 4},
                {"squash", "all"}, {"anon_uid", 1000},          {"anon_gid", 1000}};
  auto ok = ParseFsdConfig(json{{"shares", {share}}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  const ShareConfig& c = ok->shares[0];
  EXPECT_EQ(c.socket, "/run/vm1.sock");
  EXPECT_EQ(c.tag, "data");
  EXPECT_EQ(c.request_queues, 4u);
  EXPECT_EQ(c.queue_size, 1024u);
  EXPECT_EQ(c.squash, "all");
  EXPECT_EQ(c.anon_uid, 1000u);
  EXPECT_EQ(ParseShareConfig(ShareConfigJson(c), "x").value(), c);  // round trip

  struct Case {
    const char* key;
    json value;
    const char* expect;
  } cases[] = {
      {"socket", "run/vm1.sock", "must be an absolute path"},
      {"tag", "", "tag: 1-36 bytes"},
      {"tag", std::string(37, 't'), "tag: 1-36 bytes"},
      {"tag", "a\nb", "control characters"},
      {"request_queues", 0, "request_queues: 1-64"},
      {"request_queues", 65, "request_queues: 1-64"},
      {"queue_size", 1000, "power of two"},
      {"mount", "/mnt/x", "mount belongs to the fuse transport"},
      {"anon_uid", -1, "non-negative integer"},
  };
  for (const Case& c : cases) {
    json bad = share;
    bad[c.key] = c.value;
    EXPECT_NE(ErrorOf(json{{"shares", {bad}}}).find(c.expect), std::string::npos)
        << c.key << ": " << ErrorOf(json{{"shares", {bad}}});
  }
  json twin = share;
  twin["name"] = "vm2";
  EXPECT_NE(ErrorOf(json{{"shares", {share, twin}}}).find("socket '/run/vm1.sock' is used"),
            std::string::npos);
  twin["socket"] = "/run/vm2.sock";
  EXPECT_TRUE(ParseFsdConfig(json{{"shares", {share, twin}}}).ok());  // same tag is fine
}

TEST(FsdConfig, DocaTransportOnlyWhereBuilt) {
  json share = {{"name", "bf"},        {"transport", "doca"},
                {"manager", "mlx5_0"}, {"function", "MT2334XZ0000VFSD0D0F2"},
                {"tag", "data"},       {"backend", "memory:"}};
  auto parsed = ParseFsdConfig(json{{"shares", {share}}});
  if (DocaTransportBuilt()) {
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    share.erase("function");
    EXPECT_NE(ErrorOf(json{{"shares", {share}}}).find("needs manager and function"),
              std::string::npos);
  } else {
    ASSERT_FALSE(parsed.ok());
    EXPECT_NE(parsed.error().message.find("'doca' is not built"), std::string::npos);
  }
}

TEST(FsdConfig, NoSharesNeedsAControlSocket) {
  EXPECT_NE(ErrorOf(json{{"shares", json::array()}}).find("no control socket"), std::string::npos);
  auto managed =
      ParseFsdConfig(json{{"control_socket", "/run/fsd.sock"}, {"shares", json::array()}});
  ASSERT_TRUE(managed.ok()) << managed.error().message;
  EXPECT_TRUE(managed->shares.empty());
}

TEST(FsdConfig, FileLoading) {
  std::string path = ::testing::TempDir() + "fsd_config_test.json";
  { std::ofstream(path) << TwoShares().dump(); }
  auto good = LoadFsdConfigFile(path);
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->shares.size(), 2u);
  { std::ofstream(path) << "{\"shares\": ["; }
  auto bad = LoadFsdConfigFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not valid JSON"), std::string::npos);
  std::remove(path.c_str());
  auto missing = LoadFsdConfigFile(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot be read"), std::string::npos);
}

TEST(FsdConfig, DefaultShareName) {
  EXPECT_EQ(DefaultShareName("/mnt/scratch"), "scratch");
  EXPECT_EQ(DefaultShareName("/mnt/scratch/"), "scratch");
  EXPECT_EQ(DefaultShareName("/"), "root");
}

}  // namespace
}  // namespace dpustor::fs::fsd
