#include "manager/views.h"

#include <gtest/gtest.h>

#include "cli/table.h"

namespace dpustor::manager {
namespace {

AgentRecord Dpu(const std::string& name, json status) {
  AgentRecord r;
  r.name = name;
  r.kind = "dpu";
  r.state = kOnline;
  r.status = std::make_shared<const json>(std::move(status));
  return r;
}

TEST(Views, DpuSummaryReadsReportAndLeavesMissingNull) {
  json status = {{"host", "h1"},
                 {"system",
                  {{"cpu", {{"cores", 8}, {"usage_percent", 12.5}}},
                   {"temperatures", {{{"celsius", 40.0}}, {{"celsius", 71.5}}, {{"label", "x"}}}}}},
                 {"snap",
                  {{"reachable", true},
                   {"dialect", "snap4"},
                   {"nvme_controllers", {1, 2}},
                   {"virtio_blk_controllers", {3}},
                   {"bdevs", json::array()}}}};
  json d = DpuSummary(Dpu("a", status));
  EXPECT_EQ(d["host"], "h1");
  EXPECT_EQ(d["cpu_percent"], 12.5);
  EXPECT_EQ(d["max_temperature_c"], 71.5);
  EXPECT_EQ(d["controllers"], 3);
  EXPECT_EQ(d["bdevs"], 0);
  EXPECT_TRUE(d["memory_total_bytes"].is_null());  // not reported: null, not zero
  EXPECT_TRUE(d["emulation_functions"].is_null());

  AgentRecord empty;
  empty.name = "never-reported";
  json e = DpuSummary(empty);
  EXPECT_TRUE(e["host"].is_null());
  EXPECT_TRUE(e["controllers"].is_null());
}

TEST(Views, HostsGroupDpus) {
  auto a = Dpu("a", {{"host", "h1"}});
  auto b = Dpu("b", {{"host", "h1"}});
  auto c = Dpu("c", {{"host", "h2"}});
  c.state = kUnreachable;
  json hosts = HostsView({a, b, c});
  ASSERT_EQ(hosts.size(), 2u);
  EXPECT_EQ(hosts[0]["dpus"], json({"a", "b"}));
  EXPECT_EQ(hosts[1]["state"], kUnreachable);
}

TEST(Views, PoolsAndImagesFilter) {
  AgentRecord c1;
  c1.name = "c1";
  c1.kind = "ceph";
  c1.status = std::make_shared<const json>(
      json{{"pools", {{{"name", "p1"}}, {{"name", "p2"}}}},
           {"images", {{{"pool", "p1"}, {"name", "i1"}}, {{"pool", "p2"}, {"name", "i2"}}}}});
  AgentRecord c2 = c1;
  c2.name = "c2";
  EXPECT_EQ(PoolsView({c1, c2}, "").size(), 4u);
  EXPECT_EQ(PoolsView({c1, c2}, "c2").size(), 2u);
  json imgs = ImagesView({c1, c2}, "c1", "p2");
  ASSERT_EQ(imgs.size(), 1u);
  EXPECT_EQ(imgs[0]["name"], "i2");
  EXPECT_EQ(imgs[0]["cluster"], "c1");
}

TEST(Table, AlignsAndFormats) {
  json rows = {{{"name", "a"}, {"size", 1073741824}, {"t", 1000}},
               {{"name", "longer-name"}, {"size", nullptr}, {"t", 0}}};
  std::string out = cli::RenderTable(
      rows,
      {{"NAME", "name"}, {"SIZE", "size", cli::Format::kBytes}, {"SEEN", "t", cli::Format::kAge}},
      61000);
  EXPECT_EQ(out,
            "NAME          SIZE      SEEN\n"
            "a             1.0 GiB   60s ago\n"
            "longer-name   -         never\n");
  EXPECT_EQ(cli::FormatBytes(512), "512 B");
  EXPECT_EQ(cli::FormatBytes(96.0 * 1024 * 1024), "96 MiB");
}

}  // namespace
}  // namespace dpustor::manager
