// dpustor-fsd started with only a control socket, the way the DPU agent runs it: vhost-user
// shares are created and deleted at run time, several at once, each answering vhost-user on
// its own socket; refusals change nothing; the daemon keeps running with no shares.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "common/rpc_client.h"
#include "common/unique_fd.h"
#include "fs/transport/vhost_user/message_io.h"
#include "harness/child_process.h"
#include "harness/lab.h"

namespace dpustor::testing {
namespace {

using nlohmann::json;
using namespace fs::vhost_user;

Result<json> Call(const std::string& socket, const std::string& method, const json& params) {
  auto client = rpc::RpcClient::Connect("unix:" + socket, std::chrono::seconds(5));
  if (!client.ok()) return client.error();
  return (*client)->Call(method, params, std::chrono::seconds(10));
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// GET_FEATURES over the share's socket: the virtio features the device offers, 0 if none.
uint64_t DeviceFeatures(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return 0;
  Message ask;
  ask.header = {static_cast<uint32_t>(Request::kGetFeatures), kVersion, 0};
  if (!WriteMessage(fd.get(), ask).ok()) return 0;
  auto reply = ReadMessage(fd.get());
  if (!reply.ok() || reply->payload.size() != 8) return 0;
  uint64_t features;
  std::memcpy(&features, reply->payload.data(), 8);
  return features;
}

json VhostShare(const TempDir& dir, const std::string& name) {
  return {{"name", name},         {"transport", "vhost-user"}, {"socket", dir / (name + ".sock")},
          {"tag", name + "-tag"}, {"backend", "memory:"},      {"request_queues", 2}};
}

TEST(FsdManagedShares, CreateServeDeleteAtRunTime) {
  TempDir dir("fsd-managed");
  const std::string control = dir / "fsd.sock";
  ChildProcess fsd({Bin("src/fs/fsd/dpustor-fsd"), "--control-socket", control}, dir / "fsd.log");
  // The socket file appears at bind(), a moment before the daemon listens on it.
  ASSERT_TRUE(
      WaitFor([&] { return Call(control, "fsd.version", nullptr).ok(); }, std::chrono::seconds(10)))
      << fsd.Log();
  auto none = Call(control, "fsd.shares", nullptr);
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());

  for (const char* name : {"vm1", "vm2"}) {
    auto made = Call(control, "fsd.share_create", VhostShare(dir, name));
    ASSERT_TRUE(made.ok()) << made.error().message << "\n" << fsd.Log();
    EXPECT_EQ((*made)["state"], "serving");
    EXPECT_EQ((*made)["device"]["connected"], false);
  }
  // Both devices answer on their own sockets, offering what virtio-fs needs.
  for (const char* name : {"vm1", "vm2"}) {
    uint64_t features = DeviceFeatures(dir / (std::string(name) + ".sock"));
    EXPECT_TRUE(features & Bit(kFeatureVersion1)) << name;
    EXPECT_TRUE(features & Bit(kFeatureEventIdx)) << name;
  }
  auto again = Call(control, "fsd.share_create", VhostShare(dir, "vm1"));
  ASSERT_TRUE(again.ok()) << again.error().message;  // idempotent

  // Refusals: same name other config, same socket, a socket path that is a file, bad URL.
  json changed = VhostShare(dir, "vm1");
  changed["read_only"] = true;
  json stolen = VhostShare(dir, "vm3");
  stolen["socket"] = dir / "vm1.sock";
  json on_file = VhostShare(dir, "vm4");
  on_file["socket"] = dir / "fsd.log";
  json bad_url = VhostShare(dir, "vm5");
  bad_url["backend"] = "ftp://x/y";
  for (const json& params : {changed, stolen, on_file, bad_url}) {
    auto r = Call(control, "fsd.share_create", params);
    EXPECT_FALSE(r.ok()) << params.dump();
  }
  auto listed = Call(control, "fsd.shares", nullptr);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0]["read_only"], false);
  EXPECT_FALSE(IsSocket(dir / "vm3.sock"));

  auto deleted = Call(control, "fsd.share_delete", {{"name", "vm1"}});
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_FALSE(IsSocket(dir / "vm1.sock"));
  EXPECT_TRUE(DeviceFeatures(dir / "vm2.sock") & Bit(kFeatureVersion1));
  ASSERT_TRUE(Call(control, "fsd.share_delete", {{"name", "vm2"}}).ok());
  EXPECT_FALSE(IsSocket(dir / "vm2.sock"));

  // No shares left: a managed daemon keeps running until it is told to stop.
  EXPECT_TRUE(fsd.running());
  EXPECT_EQ(fsd.Stop(std::chrono::seconds(10)), 0) << fsd.Log();
  EXPECT_FALSE(IsSocket(control));
}

}  // namespace
}  // namespace dpustor::testing
