// The vhost-user front end against real back-ends: QEMU's C virtiofsd (Debian's
// /usr/lib/qemu/virtiofsd) and dpustor-fsd's vhost-user transport, each started as a child
// on a fresh directory and stopped by PID. Proves the front end speaks real vhost-user:
// setup, FUSE INIT, create, write, read back, lookup + getattr, data on the host.
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/json_rpc.h"
#include "fs/vufs/frontend.h"
#include "fs/vufs/fuse_client.h"
#include "harness/child_process.h"

namespace dpustor::testing {
namespace {

namespace vu = dpustor::fs::vhost_user;
using fs::vufs::Frontend;
using fs::vufs::FrontendOptions;
using fs::vufs::FuseClient;
using fs::vufs::kRootNodeId;

constexpr char kVirtiofsd[] = "/usr/lib/qemu/virtiofsd";
const std::string kFsd = std::string(DPUSTOR_BINARY_DIR) + "/src/fs/fsd/dpustor-fsd";

std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 16);
  }
  return s;
}

std::string CommandOutput(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// dpustor-fsd serves vhost-user once its --help shows --socket.
bool FsdHasVhostUser() {
  if (!std::filesystem::exists(kFsd)) return false;
  return CommandOutput(kFsd + " --help 2>&1").find(" --socket") != std::string::npos;
}

enum class Server { kVirtiofsd, kDpustorFsd };

std::string Name(const ::testing::TestParamInfo<Server>& p) {
  return p.param == Server::kVirtiofsd ? "virtiofsd" : "dpustor_fsd";
}

class VufsFrontendTest : public ::testing::TestWithParam<Server> {
 protected:
  void SetUp() override {
    if (GetParam() == Server::kVirtiofsd && !std::filesystem::exists(kVirtiofsd))
      GTEST_SKIP() << kVirtiofsd << " is not installed (Debian: qemu-system-common)";
    if (GetParam() == Server::kDpustorFsd && !FsdHasVhostUser())
      GTEST_SKIP() << "dpustor-fsd has no vhost-user transport yet (no --socket in --help)";
    tmp_ = std::make_unique<TempDir>("vufs");
    data_ = *tmp_ / "data";
    socket_ = *tmp_ / "vhost.sock";
    std::filesystem::create_directory(data_);
  }

  // Starts the back-end; `request_queues` only matters to dpustor-fsd (virtiofsd has one).
  void StartServer(uint32_t request_queues = 1) {
    std::vector<std::string> argv;
    if (GetParam() == Server::kVirtiofsd) {
      // Default sandbox (namespaces); needs root, which integration tests have.
      argv = {kVirtiofsd, "-f",        "--socket-path=" + socket_, "-o", "source=" + data_,
              "-o",       "cache=auto"};
    } else {
      argv = {kFsd,    "--transport", "vhost-user", "--socket",      socket_,
              "--tag", "vufs",        "--backend",  "local:" + data_};
      if (CommandOutput(kFsd + " --help 2>&1").find("--request-queues") != std::string::npos) {
        argv.push_back("--request-queues");
        argv.push_back(std::to_string(request_queues));
      }
    }
    server_ = ChildProcess(argv, *tmp_ / "server.log");
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(socket_) || !server_.running(); },
                        std::chrono::seconds(20)))
        << server_.Log();
    ASSERT_TRUE(server_.running()) << server_.Log();
  }

  std::unique_ptr<Frontend> Connect(FrontendOptions o = {}) {
    o.socket_path = socket_;
    auto f = Frontend::Connect(o);
    EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message) << "\n" << server_.Log();
    return f.ok() ? std::move(*f) : nullptr;
  }

  void TearDown() override {
    if (server_.pid() > 0) server_.Stop();
  }

  std::unique_ptr<TempDir> tmp_;
  std::string data_, socket_;
  ChildProcess server_;
};

TEST_P(VufsFrontendTest, CreateWriteReadLookupGetattr) {
  StartServer();
  auto fe = Connect();
  ASSERT_TRUE(fe);
  EXPECT_TRUE(fe->features() & vu::Bit(vu::kFeatureVersion1));
  auto fuse = FuseClient::Create(*fe, 1);
  ASSERT_TRUE(fuse.ok()) << fuse.error().message;
  FuseClient& c = **fuse;

  auto init = c.Init();
  ASSERT_TRUE(init.ok()) << init.error().message;
  EXPECT_EQ(init->major, static_cast<uint32_t>(FUSE_KERNEL_VERSION));
  EXPECT_GE(init->max_write, 4096u);

  auto created = c.Create(kRootNodeId, "hello.dat", O_RDWR | O_CREAT, 0644);
  ASSERT_TRUE(created.ok()) << created.error().message;
  const uint64_t node = created->entry.nodeid, fh = created->open.fh;

  // 3 MiB + 100 bytes in writes of at most max_write, then read back in other sizes.
  const std::string data = Pattern((3 << 20) + 100, 1);
  const uint32_t chunk = std::min<uint32_t>(init->max_write, 1 << 20);
  for (size_t off = 0; off < data.size(); off += chunk) {
    const size_t n = std::min<size_t>(chunk, data.size() - off);
    auto w = c.Write(node, fh, off, {reinterpret_cast<const uint8_t*>(data.data()) + off, n});
    ASSERT_TRUE(w.ok()) << w.error().message;
    ASSERT_EQ(*w, n);
  }
  std::string back;
  for (uint64_t off = 0;; off += 777 * 1024) {
    auto r = c.Read(node, fh, off, 777 * 1024);
    ASSERT_TRUE(r.ok()) << r.error().message;
    if (r->empty()) break;
    back.append(r->begin(), r->end());
  }
  ASSERT_EQ(back.size(), data.size());
  EXPECT_TRUE(back == data) << "read-back differs from what was written";
  ASSERT_TRUE(c.Release(node, fh).ok());

  auto entry = c.Lookup(kRootNodeId, "hello.dat");
  ASSERT_TRUE(entry.ok()) << entry.error().message;
  EXPECT_EQ(entry->nodeid, node);
  auto attr = c.Getattr(node);
  ASSERT_TRUE(attr.ok()) << attr.error().message;
  EXPECT_EQ(attr->attr.size, data.size());
  EXPECT_TRUE(S_ISREG(attr->attr.mode));

  // The bytes are in the directory on the host.
  EXPECT_TRUE(ReadFile(data_ + "/hello.dat") == data);

  // Errors come back as -errno; directories and unlink work.
  auto missing = c.Lookup(kRootNodeId, "missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, -ENOENT);
  auto dir = c.Mkdir(kRootNodeId, "sub", 0755);
  ASSERT_TRUE(dir.ok()) << dir.error().message;
  EXPECT_TRUE(std::filesystem::is_directory(data_ + "/sub"));
  auto opened = c.Open(node, O_RDONLY);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  ASSERT_TRUE(c.Release(node, opened->fh).ok());
  ASSERT_TRUE(c.Unlink(kRootNodeId, "hello.dat").ok());
  EXPECT_FALSE(std::filesystem::exists(data_ + "/hello.dat"));
  // Two lookups of the file (create, lookup), one of the directory: give them back.
  ASSERT_TRUE(c.Forget(node, 2).ok());
  ASSERT_TRUE(c.Forget(dir->nodeid, 1).ok());

  // Raw access after setup: a GET_FEATURES answered as the first one was.
  ASSERT_TRUE(fe->channel().Send(vu::Request::kGetFeatures, 0, {}).ok());
  auto raw = fe->channel().Receive(std::chrono::seconds(5));
  ASSERT_TRUE(raw.ok()) << raw.error().message;
  EXPECT_EQ(raw->header.request, static_cast<uint32_t>(vu::Request::kGetFeatures));
  EXPECT_TRUE(raw->header.flags & vu::kFlagReply);
  EXPECT_EQ(raw->payload.size(), 8u);

  fuse->reset();
  ASSERT_TRUE(fe->Disconnect().ok());
  ASSERT_EQ(fe->stopped_bases().size(), 2u);
  EXPECT_GT(fe->stopped_bases()[1], 0u);  // the request queue consumed requests
}

// Other ring modes: no EVENT_IDX, indirect descriptors where offered.
TEST_P(VufsFrontendTest, WithoutEventIdxAndWithIndirect) {
  StartServer();
  FrontendOptions o;
  o.event_idx = false;
  o.indirect = true;
  o.queue_size = 64;
  auto fe = Connect(o);
  ASSERT_TRUE(fe);
  EXPECT_FALSE(fe->features() & vu::Bit(vu::kFeatureEventIdx));
  auto fuse = FuseClient::Create(*fe, 1);
  ASSERT_TRUE(fuse.ok());
  ASSERT_TRUE((*fuse)->Init().ok());
  auto created = (*fuse)->Create(kRootNodeId, "f", O_RDWR | O_CREAT, 0600);
  ASSERT_TRUE(created.ok()) << created.error().message;
  const std::string data = Pattern(64 << 10, 2);
  // More requests than descriptors in the ring: descriptors are recycled.
  for (int i = 0; i < 200; ++i) {
    auto w = (*fuse)->Write(created->entry.nodeid, created->open.fh, (i % 16) * data.size(),
                            {reinterpret_cast<const uint8_t*>(data.data()), data.size()});
    ASSERT_TRUE(w.ok()) << i << ": " << w.error().message;
  }
  auto r = (*fuse)->Read(created->entry.nodeid, created->open.fh, 5 * data.size(), data.size());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(std::string(r->begin(), r->end()) == data);
}

// Four request queues: dpustor-fsd serves them all; virtiofsd (C) offers one request queue
// only, and Connect says so instead of setting up rings the back-end does not have.
TEST_P(VufsFrontendTest, FourRequestQueues) {
  StartServer(4);
  FrontendOptions o;
  o.request_queues = 4;
  o.socket_path = socket_;
  auto fe = Frontend::Connect(o);
  if (GetParam() == Server::kVirtiofsd) {
    ASSERT_FALSE(fe.ok());
    EXPECT_NE(fe.error().message.find("offers 2 queues"), std::string::npos) << fe.error().message;
    return;
  }
  ASSERT_TRUE(fe.ok()) << fe.error().message << "\n" << server_.Log();
  for (uint32_t q = 1; q <= 4; ++q) {
    auto fuse = FuseClient::Create(**fe, q);
    ASSERT_TRUE(fuse.ok());
    if (q == 1) {
      ASSERT_TRUE((*fuse)->Init().ok());
    }
    auto attr = (*fuse)->Getattr(kRootNodeId);
    ASSERT_TRUE(attr.ok()) << "queue " << q << ": " << attr.error().message;
    EXPECT_TRUE(S_ISDIR(attr->attr.mode));
  }
}

// dpustor-fsd refuses a hostile message with a negative ack and keeps serving.
TEST_P(VufsFrontendTest, HostileMessageIsRefusedAndServingGoesOn) {
  if (GetParam() == Server::kVirtiofsd)
    GTEST_SKIP() << "virtiofsd (libvhost-user) ends the session on bad messages; not ours";
  StartServer();
  auto fe = Connect();
  ASSERT_TRUE(fe);
  ASSERT_TRUE(fe->protocol_features() & vu::Bit(vu::kProtocolReplyAck));
  const vu::VringState bad{99, 256};  // no such ring
  ASSERT_TRUE(fe->channel()
                  .Send(vu::Request::kSetVringNum, vu::kFlagNeedReply,
                        {reinterpret_cast<const uint8_t*>(&bad), sizeof bad})
                  .ok());
  auto ack = fe->channel().Receive(std::chrono::seconds(5));
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  ASSERT_EQ(ack->payload.size(), 8u);
  uint64_t v;
  std::memcpy(&v, ack->payload.data(), 8);
  EXPECT_NE(v, 0u);
  auto fuse = FuseClient::Create(*fe, 1);
  ASSERT_TRUE(fuse.ok());
  ASSERT_TRUE((*fuse)->Init().ok());
  EXPECT_TRUE((*fuse)->Getattr(kRootNodeId).ok());
}

INSTANTIATE_TEST_SUITE_P(Servers, VufsFrontendTest,
                         ::testing::Values(Server::kVirtiofsd, Server::kDpustorFsd), Name);

}  // namespace
}  // namespace dpustor::testing
