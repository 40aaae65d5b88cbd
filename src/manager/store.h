// Store persists the manager's inventory in SQLite (WAL): every agent ever registered, the
// latest status of each, a bounded status history, and events. Status updates arrive at
// report rate (thousands per second in large fleets), so they are queued and written by a
// background thread in one transaction per flush; registrations and events are queued the
// same way but flushed at once. Observed status is re-sent by agents anyway, so losing the
// last flush interval on a crash loses nothing that matters.
// Thread-safety: all public methods may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

struct sqlite3;

namespace dpustor::manager {

using json = nlohmann::json;
using Clock = std::chrono::system_clock;

struct StoredAgent {
  std::string name;
  std::string kind;
  std::string version;
  json capabilities = json::object();
  std::int64_t first_seen_ms = 0;
  std::int64_t last_seen_ms = 0;
  std::int64_t last_report_ms = 0;
  json status;  // latest reported status, null if none
};

struct StoredEvent {
  std::int64_t id = 0;
  std::int64_t ts_ms = 0;
  std::string subject;  // e.g. "dpu/dpu-a"
  std::string type;     // e.g. "agent.unreachable"
  std::string message;
  json detail;
};

struct StoreOptions {
  std::string path;
  std::chrono::milliseconds flush_interval{2000};
  std::chrono::seconds history_interval{60};  // at most one history row per agent per interval
  std::size_t history_limit = 1440;           // rows kept per agent
  std::size_t event_limit = 100000;           // rows kept in all
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();  // flushes what is queued
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  std::vector<StoredAgent> LoadAgents();
  std::vector<StoredEvent> LoadEvents(std::size_t limit);
  // History rows of one agent, newest first.
  std::vector<std::pair<std::int64_t, json>> History(const std::string& name, std::size_t limit);

  void UpsertAgent(const StoredAgent& agent);  // identity fields; status untouched
  void SaveStatus(const std::string& name, std::int64_t ts_ms, std::shared_ptr<const json> status);
  void AppendEvent(const StoredEvent& event);
  void Flush();  // blocks until everything queued so far is on disk

  // Desired state (volumes) is written at once, not batched: a REST call that returned has
  // its change on disk. Each volume is one JSON document keyed by name.
  Status PutVolume(const std::string& name, const json& doc);
  Status DeleteVolume(const std::string& name);
  std::vector<json> LoadVolumes();
  // File shares, the same way.
  Status PutShare(const std::string& name, const json& doc);
  Status DeleteShare(const std::string& name);
  std::vector<json> LoadShares();
  // SNAP deployments and DPU groups, the same way.
  Status PutDeployment(const std::string& name, const json& doc);
  Status DeleteDeployment(const std::string& name);
  std::vector<json> LoadDeployments();
  Status PutGroup(const std::string& name, const json& doc);
  Status DeleteGroup(const std::string& name);
  std::vector<json> LoadGroups();

  std::uint64_t flushes() const;

 private:
  explicit Store(StoreOptions options);
  Status Init();
  void WriterLoop();
  void WriteBatch();
  // One JSON document per name in a desired-state table (volumes, shares, ...).
  Status PutDoc(const char* table, const std::string& name, const json& doc);
  Status DeleteDoc(const char* table, const std::string& name);
  std::vector<json> LoadDocs(const char* table);

  StoreOptions options_;
  sqlite3* db_ = nullptr;
  mutable std::mutex mu_;  // guards the queues below and db_ use by readers
  std::condition_variable cv_;
  std::condition_variable flushed_cv_;
  std::map<std::string, StoredAgent> agent_upserts_;
  std::map<std::string, std::pair<std::int64_t, std::shared_ptr<const json>>> status_updates_;
  std::map<std::string, std::int64_t> last_history_ms_;
  std::vector<StoredEvent> events_;
  std::uint64_t requested_ = 0, completed_ = 0, flushes_ = 0;
  bool urgent_ = false;
  bool stop_ = false;
  std::mutex db_mu_;  // serialises use of the connection
  std::thread writer_;
};

std::int64_t NowMs();

}  // namespace dpustor::manager
