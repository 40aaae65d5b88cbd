// share.apply's share spec: the rules the manager and the DPU agent both apply.
#include "common/share_spec.h"

#include <gtest/gtest.h>

#include "common/json_rpc.h"
#include "common/params.h"

namespace dpustor::protocol {
namespace {

using json = nlohmann::json;

// The error DecodeShareSpec gives, or "ok".
std::string Error(const json& j, const std::string& path = "") {
  try {
    DecodeShareSpec(j, path);
    return "ok";
  } catch (const rpc::CallError& e) {
    EXPECT_EQ(e.code(), rpc::kInvalidParams);
    return e.what();
  }
}

TEST(CheckBackendUrlTest, AcceptsWhatFsdServesAndSaysWhyNot) {
  EXPECT_EQ(CheckBackendUrl("memory:"), "");
  EXPECT_EQ(CheckBackendUrl("local:/srv/share"), "");
  EXPECT_EQ(CheckBackendUrl("nfs://nfs1/export?version=3&nfsport=2049"), "");
  EXPECT_NE(CheckBackendUrl("local:relative"), "");
  EXPECT_NE(CheckBackendUrl("nfs://host"), "");
  EXPECT_NE(CheckBackendUrl("nfs:///export"), "");
  EXPECT_EQ(CheckBackendUrl("nfs://h/e?version=4"), "nfs:// backends speak NFSv3 only (version=3)");
  EXPECT_NE(CheckBackendUrl("nfs://h/e?colour=red").find("unknown nfs:// option 'colour'"),
            std::string::npos);
  EXPECT_EQ(CheckBackendUrl("ftp://x/y"),
            "'ftp://x/y' is not a backend URL (local:/DIR, memory: or nfs://HOST/EXPORT)");
}

TEST(ShareSpecTest, DefaultsAndRoundTrip) {
  ShareSpec s = DecodeShareSpec({{"name", "docs"}, {"backend", "memory:"}, {"tag", "docs"}}, "");
  EXPECT_EQ(s.squash, "none");
  EXPECT_EQ(s.anon_uid, 65534u);
  EXPECT_EQ(s.request_queues, 1u);
  EXPECT_EQ(s.data_plane, "auto");
  s.read_only = true;
  s.squash = "root";
  s.request_queues = 4;
  EXPECT_EQ(DecodeShareSpec(ToJson(s), ""), s);
}

TEST(ShareSpecTest, RefusesBadFieldsNamingThemUnderThePath) {
  json good = {{"name", "a"}, {"backend", "nfs://h/e"}, {"tag", "a"}};
  EXPECT_EQ(Error(good), "ok");
  auto with = [&](const char* key, json value) {
    json j = good;
    j[key] = std::move(value);
    return Error(j, "shares[3]");
  };
  EXPECT_EQ(with("name", "-x"),
            std::string("invalid params: 'shares[3].name': ") +
                "1-63 characters of letters, digits, '-', '_', '.', not starting with '-' or '.'");
  EXPECT_EQ(with("backend", "ftp://x"),
            "invalid params: 'shares[3].backend': 'ftp://x' is not a backend URL (local:/DIR, "
            "memory: or nfs://HOST/EXPORT)");
  EXPECT_EQ(with("tag", "two words"),
            "invalid params: 'shares[3].tag': 1-36 printable characters without spaces");
  EXPECT_EQ(with("tag", std::string(37, 't')),
            "invalid params: 'shares[3].tag': 1-36 printable characters without spaces");
  EXPECT_EQ(with("pf_index", 65536),
            "invalid params: 'shares[3].pf_index': must be from 0 to 65535");
  EXPECT_EQ(with("squash", "some"),
            "invalid params: 'shares[3].squash': must be \"none\", \"root\" or \"all\"");
  EXPECT_EQ(with("anon_uid", 4294967295u),
            "invalid params: 'shares[3].anon_uid': 4294967295 is not a valid id");
  EXPECT_EQ(with("anon_gid", -1),
            "invalid params: 'shares[3].anon_gid': expected a non-negative integer");
  EXPECT_EQ(with("request_queues", "2"),
            "invalid params: 'shares[3].request_queues': expected an integer");
  EXPECT_EQ(with("request_queues", 65),
            "invalid params: 'shares[3].request_queues': must be from 1 to 64");
  EXPECT_EQ(with("extra", 1), "invalid params: 'shares[3].extra': unknown parameter");
  EXPECT_EQ(Error(json::array(), "shares[3]"), "invalid params: 'shares[3]': expected an object");
  EXPECT_EQ(Error(json::array()), "invalid params: expected an object");
  json no_tag = good;
  no_tag.erase("tag");
  EXPECT_EQ(Error(no_tag), "invalid params: 'tag': required");
}

TEST(ShareSpecTest, SnapDataPlaneOnlyWhereSnapCanServe) {
  json nfs = {{"name", "a"}, {"backend", "nfs://h/e"}, {"tag", "a"}, {"data_plane", "snap"}};
  EXPECT_EQ(Error(nfs), "ok");
  json local = nfs;
  local["backend"] = "local:/srv";
  EXPECT_EQ(Error(local),
            "invalid params: 'data_plane': SNAP's virtio-fs serves only nfs:// backends");
  json ro = nfs;
  ro["read_only"] = true;
  EXPECT_EQ(Error(ro),
            "invalid params: 'data_plane': SNAP's virtio-fs has no read-only or squash option; "
            "use fsd");
  EXPECT_TRUE(SnapCanServe(DecodeShareSpec(nfs, "")));
  nfs["data_plane"] = "auto";
  nfs["squash"] = "all";
  EXPECT_FALSE(SnapCanServe(DecodeShareSpec(nfs, "")));
}

TEST(ShareSpecTest, ExtraKeysAreLetThroughOnlyWhenNamed) {
  json j = {{"name", "a"}, {"backend", "memory:"}, {"tag", "a"}, {"dpu", "bf3-0"}};
  EXPECT_EQ(Error(j), "invalid params: 'dpu': unknown parameter");
  EXPECT_EQ(DecodeShareSpec(j, "", {"dpu"}).name, "a");
}

TEST(ShareSpecTest, NfsTargetSplitsServerAndExport) {
  auto t = ParseNfsBackend("nfs://nfs1/srv/export?version=3");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->server, "nfs1");
  EXPECT_EQ(t->exportname, "/srv/export");
  EXPECT_FALSE(ParseNfsBackend("nfs:///x"));
  EXPECT_FALSE(ParseNfsBackend("local:/x"));
}

}  // namespace
}  // namespace dpustor::protocol
