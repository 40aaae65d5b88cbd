#include "manager/store.h"

#include <gtest/gtest.h>

#include "manager/inventory.h"
#include "test_env.h"

namespace dpustor::manager {
namespace {

std::unique_ptr<Store> Open(const std::string& dir, std::size_t history_limit = 3) {
  StoreOptions o;
  o.path = dir + "/m.db";
  o.flush_interval = std::chrono::milliseconds(20);
  o.history_interval = std::chrono::seconds(0);
  o.history_limit = history_limit;
  o.event_limit = 5;
  auto s = Store::Open(o);
  EXPECT_TRUE(s.ok());
  return std::move(*s);
}

TEST(Store, AgentsStatusAndHistoryPersist) {
  auto dir = TestDir("store");
  {
    auto s = Open(dir);
    s->UpsertAgent(StoredAgent{"a", "dpu", "1", json::object(), 10, 10, 0, nullptr});
    for (int i = 1; i <= 5; ++i) {
      s->SaveStatus("a", 100 + i, std::make_shared<const json>(json{{"i", i}}));
      s->Flush();
    }
  }
  auto s = Open(dir);
  auto agents = s->LoadAgents();
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].kind, "dpu");
  EXPECT_EQ(agents[0].status["i"], 5);
  EXPECT_EQ(agents[0].last_report_ms, 105);
  auto h = s->History("a", 100);
  ASSERT_EQ(h.size(), 3u);  // bounded by history_limit
  EXPECT_EQ(h[0].first, 105);
  EXPECT_EQ(h[2].second["i"], 3);
}

TEST(Store, StatusesCoalesceBetweenFlushes) {
  auto dir = TestDir("coalesce");
  StoreOptions o;
  o.path = dir + "/m.db";
  o.flush_interval = std::chrono::hours(1);  // only explicit flushes
  o.history_interval = std::chrono::hours(1);
  auto s = std::move(*Store::Open(o));
  s->UpsertAgent(StoredAgent{"a", "dpu", "1", json::object(), 1, 1, 0, nullptr});
  for (int i = 0; i < 1000; ++i)
    s->SaveStatus("a", 1000 + i, std::make_shared<const json>(json{{"i", i}}));
  s->Flush();
  EXPECT_EQ(s->LoadAgents()[0].status["i"], 999);
  EXPECT_EQ(s->History("a", 10).size(), 1u);  // one history row per interval
}

TEST(Store, EventsAreBounded) {
  auto dir = TestDir("events");
  auto s = Open(dir);
  for (int i = 0; i < 12; ++i)
    s->AppendEvent(StoredEvent{0, i, "dpu/a", "t", std::to_string(i), nullptr});
  s->Flush();
  auto ev = s->LoadEvents(100);
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev.back().message, "11");
  EXPECT_EQ(ev.front().message, "7");
}

TEST(Store, UnopenablePathIsAClearError) {
  StoreOptions o;
  o.path = "/nonexistent-dir/sub/m.db";
  auto s = Store::Open(o);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot open database"), std::string::npos);
}

TEST(Inventory, ReportFromStaleSessionIsRejected) {
  Inventory inv(nullptr);
  std::uint64_t replaced = 0;
  auto s1 = inv.Register(Hello{"a", "dpu", "1", json::object(), "x"}, &replaced);
  auto s2 = inv.Register(Hello{"a", "dpu", "1", json::object(), "y"}, &replaced);
  EXPECT_EQ(replaced, *s1);
  EXPECT_FALSE(inv.Report("a", *s1, std::make_shared<const json>()));
  EXPECT_TRUE(inv.Report("a", *s2, std::make_shared<const json>()));
  EXPECT_FALSE(inv.MarkUnreachable("a", *s1, "old"));
  EXPECT_EQ(inv.Get("a")->state, kOnline);
  EXPECT_TRUE(inv.MarkUnreachable("a", *s2, "gone"));
  EXPECT_EQ(inv.Get("a")->state_reason, "gone");
}

}  // namespace
}  // namespace dpustor::manager
