// ParseBackendUrl: the forms users write, and clear refusals for the rest.
#include "fs/backend/backend_url.h"

#include <gtest/gtest.h>

namespace dpustor::fs {
namespace {

TEST(BackendUrl, LocalAbsoluteDirectory) {
  auto url = ParseBackendUrl("local:/srv/share");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->scheme, "local");
  EXPECT_EQ(url->path, "/srv/share");
  EXPECT_EQ(url->text, "local:/srv/share");
  EXPECT_TRUE(url->host.empty());
  EXPECT_TRUE(url->query.empty());
}

TEST(BackendUrl, LocalOptionsAfterTheDirectory) {
  auto url = ParseBackendUrl("local:/srv/share?handles=off&cache=none");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->path, "/srv/share");
  EXPECT_EQ(url->query.at("handles"), "off");
  EXPECT_EQ(url->query.at("cache"), "none");
  auto odd = ParseBackendUrl("local:/srv/what?/x=1");  // '/' after '?': still a path
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->path, "/srv/what?/x=1");
  EXPECT_TRUE(odd->query.empty());
  EXPECT_FALSE(ParseBackendUrl("local:/srv?cache=none&cache=auto").ok());  // given twice
}

TEST(BackendUrl, LocalPathIsLiteralAndTrailingSlashDropped) {
  auto url = ParseBackendUrl("local:/srv/a%20b?x/");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->path, "/srv/a%20b?x");
  auto root = ParseBackendUrl("LOCAL:/");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->scheme, "local");
  EXPECT_EQ(root->path, "/");
  auto triple = ParseBackendUrl("local:///srv");
  ASSERT_TRUE(triple.ok());
  EXPECT_EQ(triple->path, "/srv");
}

TEST(BackendUrl, LocalRelativeOrEmptyRefused) {
  for (const char* text : {"local:srv/share", "local:", "local:./x", "local:~/x"}) {
    auto url = ParseBackendUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    EXPECT_NE(url.error().message.find("local:"), std::string::npos) << url.error().message;
  }
  EXPECT_NE(ParseBackendUrl("local:srv").error().message.find("absolute"), std::string::npos);
}

TEST(BackendUrl, Memory) {
  auto url = ParseBackendUrl("memory:");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->scheme, "memory");
  EXPECT_TRUE(url->path.empty());
  auto opts = ParseBackendUrl("memory:?capacity=1G");
  ASSERT_TRUE(opts.ok());
  EXPECT_EQ(opts->query.at("capacity"), "1G");
  EXPECT_FALSE(ParseBackendUrl("memory:/x").ok());
}

TEST(BackendUrl, NfsFull) {
  auto url = ParseBackendUrl(
      "nfs://server.lab:2050/exports/a%20dir?version=3&nfsport=2049&mountport=20048");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->scheme, "nfs");
  EXPECT_EQ(url->host, "server.lab");
  EXPECT_EQ(url->path, "/exports/a dir");
  EXPECT_EQ(url->query.at("version"), "3");
  EXPECT_EQ(url->query.at("nfsport"), "2049");
  EXPECT_EQ(url->query.at("mountport"), "20048");
  EXPECT_EQ(url->query.at("port"), "2050");
  EXPECT_EQ(url->query.size(), 4u);
}

TEST(BackendUrl, NfsMinimalIpv6AndDecodedQuery) {
  auto url = ParseBackendUrl("nfs://10.0.0.1/");
  ASSERT_TRUE(url.ok()) << url.error().message;
  EXPECT_EQ(url->host, "10.0.0.1");
  EXPECT_EQ(url->path, "/");
  EXPECT_TRUE(url->query.empty());

  auto v6 = ParseBackendUrl("nfs://[fd00::1]:2049/e?opt%3Dx=a%26b&flag");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_EQ(v6->query.at("port"), "2049");
  EXPECT_EQ(v6->query.at("opt=x"), "a&b");
  EXPECT_EQ(v6->query.at("flag"), "");
}

TEST(BackendUrl, NfsBadFormsRefused) {
  for (const char* text : {
           "nfs:server/export",          // no //
           "nfs://",                     // no host
           "nfs:///export",              // no host
           "nfs://server",               // no export
           "nfs://server:/export",       // empty port
           "nfs://server:99999/export",  // port out of range
           "nfs://server:0/export", "nfs://server:2x/export",
           "nfs://[fd00::1/export",  // unterminated [
           "nfs://user@server/export",
           "nfs://server/e%zz",  // bad escape
           "nfs://server/e%00",
           "nfs://server/e?version=3&version=4",  // duplicate key
           "nfs://server/e?=3",                   // empty key
           "nfs://server:2049/e?port=2049",       // port twice
       }) {
    auto url = ParseBackendUrl(text);
    EXPECT_FALSE(url.ok()) << text;
    if (!url.ok()) {
      EXPECT_NE(url.error().message.find(text), std::string::npos) << url.error().message;
    }
  }
}

TEST(BackendUrl, UnknownSchemeListsKnownOnes) {
  for (const char* text : {"ftp://host/x", "cephfs:", "/srv/share", "", "srv"}) {
    auto url = ParseBackendUrl(text);
    ASSERT_FALSE(url.ok()) << text;
    const std::string& m = url.error().message;
    EXPECT_NE(m.find("local:"), std::string::npos) << m;
    EXPECT_NE(m.find("memory:"), std::string::npos) << m;
    EXPECT_NE(m.find("nfs://"), std::string::npos) << m;
  }
  EXPECT_NE(ParseBackendUrl("ftp://h/x").error().message.find("unknown backend 'ftp'"),
            std::string::npos);
}

TEST(BackendRegistry, OpensMemoryAndRefusesUnbuiltOrUnknown) {
#if DPUSTOR_TEST_HAVE_MEMORY
  auto url = ParseBackendUrl("memory:");
  ASSERT_TRUE(url.ok());
  auto backend = OpenBackend(*url);
  ASSERT_TRUE(backend.ok()) << backend.error().message;
  EXPECT_NE(backend->get(), nullptr);
#endif
  BackendUrl bogus;
  bogus.text = "bogus:";
  bogus.scheme = "bogus";
  auto refused = OpenBackend(bogus);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("'bogus' is not built"), std::string::npos)
      << refused.error().message;
}

}  // namespace
}  // namespace dpustor::fs
