#include "agent/dpu/deploy/preflight.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "fixtures.h"

namespace dpustor::agent::dpu::deploy {
namespace {

constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;

DeploySpec Spec(std::int64_t hugepages, const std::string& limit) {
  DeploySpec s;
  s.name = "d";
  s.image = "doca_snap:4.6.0";
  s.version = "4.6.0";
  s.hugepages_2m = hugepages;
  s.memory_request = "1Gi";
  s.memory_limit = limit;
  return s;
}

PreflightFacts Facts(std::uint64_t total) {
  PreflightFacts f;
  f.device_type = "BlueField3";
  f.mem_total_bytes = total;
  f.kubelet_present = f.crictl_present = f.systemctl_present = true;
  return f;
}

TEST(PreflightTest, MemoryArithmetic) {
  // 2048 x 2 MiB = 4 GiB, + 4 GiB limit + 2 GiB reserve = 10 GiB.
  EXPECT_TRUE(CheckMemory(Spec(2048, "4Gi"), 10 * kGiB).ok());
  Status s = CheckMemory(Spec(2048, "4Gi"), 10 * kGiB - 1);
  ASSERT_FALSE(s.ok());
  // A 16 GB BlueField-2 asked for 6000 hugepages (about 11.7 GiB): refused, and the message
  // gives every number.
  Status big = CheckMemory(Spec(6000, "4Gi"), 15995124ull * 1024);
  ASSERT_FALSE(big.ok());
  const std::string& m = big.error().message;
  EXPECT_NE(m.find("6000 hugepages of 2 MiB (12000 MiB)"), std::string::npos) << m;
  EXPECT_NE(m.find("memory limit 4Gi (4096 MiB)"), std::string::npos) << m;
  EXPECT_NE(m.find("2048 MiB kept for the Arm OS = 18144 MiB"), std::string::npos) << m;
  EXPECT_NE(m.find("the DPU's 15620 MiB (MemTotal)"), std::string::npos) << m;
  EXPECT_TRUE(CheckMemory(Spec(0, "1Gi"), 4 * kGiB).ok());
}

TEST(PreflightTest, MemTotalFromMeminfo) {
  auto total = MemTotalBytes(Fixture("deploy/meminfo_16g"));
  ASSERT_TRUE(total.ok()) << total.error().message;
  EXPECT_EQ(*total, 15995124ull * 1024);
  EXPECT_FALSE(MemTotalBytes("garbage").ok());
}

TEST(PreflightTest, Model) {
  DeploySpec fs = Spec(1024, "2Gi");
  fs.firmware["VIRTIO_FS_EMULATION_ENABLE"] = "1";
  EXPECT_TRUE(CheckModel(fs, "BlueField3").ok());
  Status bf2 = CheckModel(fs, "BlueField2");
  ASSERT_FALSE(bf2.ok());
  EXPECT_NE(bf2.error().message.find("needs a BlueField3"), std::string::npos);
  EXPECT_TRUE(CheckModel(Spec(1024, "2Gi"), "BlueField2").ok());
  EXPECT_FALSE(CheckModel(Spec(1024, "2Gi"), "ConnectX7").ok());
}

TEST(PreflightTest, Tools) {
  DeploySpec snap4 = Spec(1024, "2Gi");
  PreflightFacts f = Facts(32 * kGiB);
  EXPECT_TRUE(Preflight(snap4, f).ok());
  f.kubelet_present = false;
  EXPECT_NE(Preflight(snap4, f).error().message.find("kubelet"), std::string::npos);
  f = Facts(32 * kGiB);
  f.crictl_present = false;
  EXPECT_NE(Preflight(snap4, f).error().message.find("crictl"), std::string::npos);
  DeploySpec snap3 = snap4;
  snap3.flavour = Flavour::kSnap3;
  EXPECT_TRUE(Preflight(snap3, f).ok());  // snap3 needs no kubelet or crictl
  f.systemctl_present = false;
  EXPECT_NE(Preflight(snap3, f).error().message.find("systemctl"), std::string::npos);
}

}  // namespace
}  // namespace dpustor::agent::dpu::deploy
