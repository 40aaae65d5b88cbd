#include "agent/dpu/links.h"

#include <gtest/gtest.h>

#include <string>

#include "agent/dpu/host_status.h"
#include "fixtures.h"

namespace dpustor::agent::dpu {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

json Link(const std::string& name, std::uint64_t rx, std::uint64_t tx) {
  return {{"name", name}, {"rx_bytes", rx}, {"tx_bytes", tx}};
}

TEST(LinksTest, ParsesIpLinkFixture) {
  std::string error;
  const auto links = ParseIpLinks(Fixture("ip_link.json"), &error);
  ASSERT_TRUE(links.has_value()) << error;
  ASSERT_EQ(links->size(), 4u);
  EXPECT_EQ((*links)[0]["name"], "lo");
  EXPECT_EQ((*links)[1]["name"], "oob_net0");
  EXPECT_EQ((*links)[3]["name"], "pf0hpf");

  const json& p0 = (*links)[2];
  EXPECT_EQ(p0, (json{{"name", "p0"},
                      {"state", "UP"},
                      {"mtu", 9216},
                      {"mac", "b8:3f:d2:4a:10:80"},
                      {"link_type", "ether"},
                      {"flags", {"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}},
                      {"rx_bytes", 18446744073ull},
                      {"rx_packets", 1503221887},
                      {"rx_errors", 3},
                      {"rx_dropped", 17},
                      {"tx_bytes", 9876543210987ull},
                      {"tx_packets", 1210987654},
                      {"tx_errors", 0},
                      {"tx_dropped", 2}}))
      << p0.dump(2);
  EXPECT_EQ((*links)[0]["state"], "UNKNOWN");
  EXPECT_EQ((*links)[1]["rx_dropped"], 1532);
}

TEST(LinksTest, ParsesThisMachinesShapeWithOldStatsKeyAndMissingFields) {
  const auto links = ParseIpLinks(R"([
      {"ifname": "eth9", "stats": {"rx": {"bytes": 5, "packets": 1}, "tx": {"bytes": 7}}},
      {"ifname": "bare"},
      {"ifindex": 3},
      "not an object",
      {"ifname": 42},
      {"ifname": "odd", "mtu": -1, "operstate": 5, "flags": "UP",
       "stats64": {"rx": {"bytes": -4, "errors": 1.5}, "tx": []}}
    ])");
  ASSERT_TRUE(links.has_value());
  ASSERT_EQ(links->size(), 3u);
  EXPECT_EQ((*links)[0]["rx_bytes"], 5);
  EXPECT_EQ((*links)[0]["rx_packets"], 1);
  EXPECT_EQ((*links)[0]["tx_bytes"], 7);
  EXPECT_FALSE((*links)[0].contains("tx_packets"));
  EXPECT_EQ((*links)[1], (json{{"name", "bare"},
                               {"state", nullptr},
                               {"mac", nullptr},
                               {"link_type", nullptr},
                               {"flags", json::array()}}));
  const json& odd = (*links)[2];
  EXPECT_TRUE(odd["state"].is_null());
  EXPECT_FALSE(odd.contains("mtu"));
  EXPECT_FALSE(odd.contains("rx_bytes"));
  EXPECT_FALSE(odd.contains("rx_errors"));
  EXPECT_EQ(odd["flags"], json::array());
}

TEST(LinksTest, EmptyArrayIsValid) {
  const auto links = ParseIpLinks("[]\n");
  ASSERT_TRUE(links.has_value());
  EXPECT_TRUE(links->empty());
}

TEST(LinksTest, MalformedJsonIsAnErrorNotAThrow) {
  for (const char* text : {"", "[", "[{\"ifname\": \"p0\",}]", "Device \"x\" does not exist.",
                           "[1,2]garbage", "\xff\xfe"}) {
    std::string error;
    std::optional<json> links;
    EXPECT_NO_THROW(links = ParseIpLinks(text, &error)) << text;
    EXPECT_FALSE(links.has_value()) << text;
    EXPECT_NE(error.find("not valid JSON"), std::string::npos) << error;
  }
  std::string error;
  EXPECT_FALSE(ParseIpLinks(R"({"ifname": "p0"})", &error).has_value());
  EXPECT_NE(error.find("expected a JSON array"), std::string::npos) << error;
}

TEST(LinkRatesTest, FirstSampleHasNullRates) {
  LinkRates rates;
  const auto links = ParseIpLinks(Fixture("ip_link.json"));
  ASSERT_TRUE(links.has_value());
  const json out = rates.Sample(*links, LinkRates::Clock::time_point(seconds(100)));
  ASSERT_EQ(out.size(), 4u);
  for (const json& link : out) {
    EXPECT_TRUE(link["rx_bytes_per_s"].is_null());
    EXPECT_TRUE(link["tx_bytes_per_s"].is_null());
    EXPECT_TRUE(link.contains("rx_bytes"));  // original fields are kept
  }
}

TEST(LinkRatesTest, ComputesBytesPerSecond) {
  LinkRates rates;
  const LinkRates::Clock::time_point t0(seconds(1000));
  rates.Sample(json::array({Link("p0", 1000, 5000), Link("p1", 0, 0)}), t0);
  const json out = rates.Sample(json::array({Link("p0", 3000, 5500), Link("p1", 100, 0)}),
                                t0 + milliseconds(2500));
  EXPECT_DOUBLE_EQ(out[0]["rx_bytes_per_s"].get<double>(), 800.0);
  EXPECT_DOUBLE_EQ(out[0]["tx_bytes_per_s"].get<double>(), 200.0);
  EXPECT_DOUBLE_EQ(out[1]["rx_bytes_per_s"].get<double>(), 40.0);
  EXPECT_DOUBLE_EQ(out[1]["tx_bytes_per_s"].get<double>(), 0.0);
}

TEST(LinkRatesTest, CounterDecreaseAndNewLinksGiveNull) {
  LinkRates rates;
  const LinkRates::Clock::time_point t0(seconds(50));
  rates.Sample(json::array({Link("p0", 1000, 1000), Link("gone", 1, 1)}), t0);
  // p0 was re-created (counters reset); pf0vf0 is new; "gone" disappeared.
  json out =
      rates.Sample(json::array({Link("p0", 10, 2000), Link("pf0vf0", 5, 5)}), t0 + seconds(1));
  EXPECT_TRUE(out[0]["rx_bytes_per_s"].is_null());
  EXPECT_DOUBLE_EQ(out[0]["tx_bytes_per_s"].get<double>(), 1000.0);
  EXPECT_TRUE(out[1]["rx_bytes_per_s"].is_null());
  EXPECT_TRUE(out[1]["tx_bytes_per_s"].is_null());
  // The reset sample is the new baseline.
  out = rates.Sample(json::array({Link("p0", 110, 2000), Link("gone", 2, 2)}), t0 + seconds(2));
  EXPECT_DOUBLE_EQ(out[0]["rx_bytes_per_s"].get<double>(), 100.0);
  EXPECT_TRUE(out[1]["rx_bytes_per_s"].is_null());  // "gone" was not in the previous sample
}

TEST(LinkRatesTest, NonAdvancingClockOrMissingCountersGiveNull) {
  LinkRates rates;
  const LinkRates::Clock::time_point t0(seconds(10));
  rates.Sample(json::array({Link("p0", 0, 0)}), t0);
  json out = rates.Sample(json::array({Link("p0", 100, 100)}), t0);  // same timestamp
  EXPECT_TRUE(out[0]["rx_bytes_per_s"].is_null());
  out = rates.Sample(json::array({Link("p0", 200, 200)}), t0 - seconds(1));  // clock went backwards
  EXPECT_TRUE(out[0]["tx_bytes_per_s"].is_null());
  out = rates.Sample(json::array({json{{"name", "p0"}}}), t0 + seconds(5));  // no counters
  EXPECT_TRUE(out[0]["rx_bytes_per_s"].is_null());
  EXPECT_NO_THROW(out = rates.Sample(json("not an array"), t0 + seconds(6)));
  EXPECT_EQ(out, json::array());
}

TEST(LinkRatesTest, ResetForgetsBaseline) {
  LinkRates rates;
  const LinkRates::Clock::time_point t0(seconds(10));
  rates.Sample(json::array({Link("p0", 0, 0)}), t0);
  rates.Reset();
  const json out = rates.Sample(json::array({Link("p0", 100, 100)}), t0 + seconds(1));
  EXPECT_TRUE(out[0]["rx_bytes_per_s"].is_null());
}

}  // namespace
}  // namespace dpustor::agent::dpu
