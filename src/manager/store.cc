#include "manager/store.h"

#include <sqlite3.h>

#include <spdlog/spdlog.h>

#include "common/json_rpc.h"

namespace dpustor::manager {

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

namespace {

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  version TEXT NOT NULL,
  capabilities TEXT NOT NULL,
  first_seen_ms INTEGER NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  last_report_ms INTEGER NOT NULL DEFAULT 0,
  status TEXT
);
CREATE TABLE IF NOT EXISTS status_history (
  agent TEXT NOT NULL,
  ts_ms INTEGER NOT NULL,
  status TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_agent_ts ON status_history(agent, ts_ms);
CREATE TABLE IF NOT EXISTS volumes (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS shares (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS deployments (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dpu_groups (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ms INTEGER NOT NULL,
  subject TEXT NOT NULL,
  type TEXT NOT NULL,
  message TEXT NOT NULL,
  detail TEXT
);
)sql";

// A prepared statement that finalises itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK)
      spdlog::error("sqlite prepare: {}", sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s_); }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int i, std::int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  bool Step() { return sqlite3_step(s_) == SQLITE_ROW; }
  bool Done() { return sqlite3_step(s_) == SQLITE_DONE; }
  void Run() {
    sqlite3_step(s_);
    sqlite3_reset(s_);
  }
  std::string Text(int col) {
    auto* p = sqlite3_column_text(s_, col);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  std::int64_t Int(int col) { return sqlite3_column_int64(s_, col); }

 private:
  sqlite3_stmt* s_ = nullptr;
};

json ParseOrNull(const std::string& text) {
  if (text.empty()) return nullptr;
  return json::parse(text, nullptr, false);
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  std::unique_ptr<Store> s(new Store(std::move(options)));
  auto st = s->Init();
  if (!st.ok()) return st.error();
  s->writer_ = std::thread([p = s.get()] { p->WriterLoop(); });
  return s;
}

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Status Store::Init() {
  if (sqlite3_open_v2(options_.path.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
    return Error{rpc::kFailed, "cannot open database " + options_.path + ": " + why};
  }
  sqlite3_busy_timeout(db_, 5000);
  char* err = nullptr;
  std::string setup = std::string("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;") + kSchema;
  if (sqlite3_exec(db_, setup.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "?";
    sqlite3_free(err);
    return Error{rpc::kFailed, "cannot initialise database " + options_.path + ": " + why};
  }
  return Status::Ok();
}

Store::~Store() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  sqlite3_close(db_);
}

std::vector<StoredAgent> Store::LoadAgents() {
  std::lock_guard lock(db_mu_);
  std::vector<StoredAgent> out;
  Stmt q(db_,
         "SELECT name, kind, version, capabilities, first_seen_ms, last_seen_ms, last_report_ms, "
         "status FROM agents ORDER BY name");
  while (q.Step()) {
    StoredAgent a;
    a.name = q.Text(0);
    a.kind = q.Text(1);
    a.version = q.Text(2);
    a.capabilities = ParseOrNull(q.Text(3));
    a.first_seen_ms = q.Int(4);
    a.last_seen_ms = q.Int(5);
    a.last_report_ms = q.Int(6);
    a.status = ParseOrNull(q.Text(7));
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<StoredEvent> Store::LoadEvents(std::size_t limit) {
  std::lock_guard lock(db_mu_);
  std::vector<StoredEvent> out;
  Stmt q(db_,
         "SELECT id, ts_ms, subject, type, message, detail FROM events ORDER BY id DESC LIMIT ?");
  q.Bind(1, static_cast<std::int64_t>(limit));
  while (q.Step()) {
    out.push_back(
        StoredEvent{q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Text(4), ParseOrNull(q.Text(5))});
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::pair<std::int64_t, json>> Store::History(const std::string& name,
                                                          std::size_t limit) {
  std::lock_guard lock(db_mu_);
  std::vector<std::pair<std::int64_t, json>> out;
  Stmt q(db_,
         "SELECT ts_ms, status FROM status_history WHERE agent = ? ORDER BY ts_ms DESC LIMIT ?");
  q.Bind(1, name).Bind(2, static_cast<std::int64_t>(limit));
  while (q.Step()) out.emplace_back(q.Int(0), ParseOrNull(q.Text(1)));
  return out;
}

void Store::UpsertAgent(const StoredAgent& agent) {
  {
    std::lock_guard lock(mu_);
    agent_upserts_[agent.name] = agent;
    urgent_ = true;
  }
  cv_.notify_all();
}

void Store::SaveStatus(const std::string& name, std::int64_t ts_ms,
                       std::shared_ptr<const json> status) {
  std::lock_guard lock(mu_);
  status_updates_[name] = {ts_ms, std::move(status)};
}

void Store::AppendEvent(const StoredEvent& event) {
  {
    std::lock_guard lock(mu_);
    events_.push_back(event);
    urgent_ = true;
  }
  cv_.notify_all();
}

void Store::Flush() {
  std::unique_lock lock(mu_);
  std::uint64_t want = ++requested_;
  urgent_ = true;
  cv_.notify_all();
  flushed_cv_.wait(lock, [&] { return completed_ >= want || stop_; });
}

Status Store::PutVolume(const std::string& name, const json& doc) {
  std::lock_guard lock(db_mu_);
  Stmt q(db_,
         "INSERT INTO volumes(name, doc) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET doc = ?2");
  q.Bind(1, name).Bind(2, doc.dump());
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

Status Store::DeleteVolume(const std::string& name) {
  std::lock_guard lock(db_mu_);
  Stmt q(db_, "DELETE FROM volumes WHERE name = ?1");
  q.Bind(1, name);
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

std::vector<json> Store::LoadVolumes() {
  std::lock_guard lock(db_mu_);
  std::vector<json> out;
  Stmt q(db_, "SELECT doc FROM volumes ORDER BY name");
  while (q.Step()) {
    json doc = ParseOrNull(q.Text(0));
    if (doc.is_object()) out.push_back(std::move(doc));
  }
  return out;
}

Status Store::PutShare(const std::string& name, const json& doc) {
  std::lock_guard lock(db_mu_);
  Stmt q(db_,
         "INSERT INTO shares(name, doc) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET doc = ?2");
  q.Bind(1, name).Bind(2, doc.dump());
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

Status Store::DeleteShare(const std::string& name) {
  std::lock_guard lock(db_mu_);
  Stmt q(db_, "DELETE FROM shares WHERE name = ?1");
  q.Bind(1, name);
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

std::vector<json> Store::LoadShares() {
  std::lock_guard lock(db_mu_);
  std::vector<json> out;
  Stmt q(db_, "SELECT doc FROM shares ORDER BY name");
  while (q.Step()) {
    json doc = ParseOrNull(q.Text(0));
    if (doc.is_object()) out.push_back(std::move(doc));
  }
  return out;
}

Status Store::PutDoc(const char* table, const std::string& name, const json& doc) {
  std::lock_guard lock(db_mu_);
  std::string sql = std::string("INSERT INTO ") + table +
                    "(name, doc) VALUES(?1, ?2) ON CONFLICT(name) DO UPDATE SET doc = ?2";
  Stmt q(db_, sql.c_str());
  q.Bind(1, name).Bind(2, doc.dump());
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

Status Store::DeleteDoc(const char* table, const std::string& name) {
  std::lock_guard lock(db_mu_);
  std::string sql = std::string("DELETE FROM ") + table + " WHERE name = ?1";
  Stmt q(db_, sql.c_str());
  q.Bind(1, name);
  if (!q.Done()) return Error{rpc::kFailed, std::string("store: ") + sqlite3_errmsg(db_)};
  return Status::Ok();
}

std::vector<json> Store::LoadDocs(const char* table) {
  std::lock_guard lock(db_mu_);
  std::vector<json> out;
  std::string sql = std::string("SELECT doc FROM ") + table + " ORDER BY name";
  Stmt q(db_, sql.c_str());
  while (q.Step()) {
    json doc = ParseOrNull(q.Text(0));
    if (doc.is_object()) out.push_back(std::move(doc));
  }
  return out;
}

Status Store::PutDeployment(const std::string& name, const json& doc) {
  return PutDoc("deployments", name, doc);
}

Status Store::DeleteDeployment(const std::string& name) {
  return DeleteDoc("deployments", name);
}

std::vector<json> Store::LoadDeployments() {
  return LoadDocs("deployments");
}

Status Store::PutGroup(const std::string& name, const json& doc) {
  return PutDoc("dpu_groups", name, doc);
}

Status Store::DeleteGroup(const std::string& name) {
  return DeleteDoc("dpu_groups", name);
}

std::vector<json> Store::LoadGroups() {
  return LoadDocs("dpu_groups");
}

std::uint64_t Store::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

void Store::WriterLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait_for(lock, options_.flush_interval, [&] { return urgent_ || stop_; });
    std::uint64_t target = requested_;
    urgent_ = false;
    lock.unlock();
    WriteBatch();
    lock.lock();
    completed_ = std::max(completed_, target);
    ++flushes_;
    flushed_cv_.notify_all();
    if (stop_ && agent_upserts_.empty() && status_updates_.empty() && events_.empty()) break;
  }
}

void Store::WriteBatch() {
  std::map<std::string, StoredAgent> agents;
  std::map<std::string, std::pair<std::int64_t, std::shared_ptr<const json>>> statuses;
  std::vector<StoredEvent> events;
  {
    std::lock_guard lock(mu_);
    agents.swap(agent_upserts_);
    statuses.swap(status_updates_);
    events.swap(events_);
  }
  if (agents.empty() && statuses.empty() && events.empty()) return;

  std::lock_guard db_lock(db_mu_);
  sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr);
  {
    Stmt up(db_,
            "INSERT INTO agents(name, kind, version, capabilities, first_seen_ms, last_seen_ms) "
            "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name) DO UPDATE SET kind = ?2, "
            "version = ?3, capabilities = ?4, last_seen_ms = MAX(last_seen_ms, ?6)");
    for (const auto& [name, a] : agents) {
      up.Bind(1, name).Bind(2, a.kind).Bind(3, a.version).Bind(4, a.capabilities.dump());
      up.Bind(5, a.first_seen_ms).Bind(6, a.last_seen_ms).Run();
    }
    Stmt st(db_,
            "UPDATE agents SET status = ?2, last_report_ms = ?3, "
            "last_seen_ms = MAX(last_seen_ms, ?3) WHERE name = ?1");
    Stmt hist(db_, "INSERT INTO status_history(agent, ts_ms, status) VALUES(?1, ?2, ?3)");
    Stmt prune(db_,
               "DELETE FROM status_history WHERE agent = ?1 AND ts_ms < (SELECT ts_ms FROM "
               "status_history WHERE agent = ?1 ORDER BY ts_ms DESC LIMIT 1 OFFSET ?2)");
    auto history_gap =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.history_interval).count();
    for (const auto& [name, entry] : statuses) {
      std::string text = entry.second->dump(-1, ' ', false, json::error_handler_t::replace);
      st.Bind(1, name).Bind(2, text).Bind(3, entry.first).Run();
      auto [last, first] = last_history_ms_.try_emplace(name, entry.first);
      if (first || entry.first - last->second >= history_gap) {
        last->second = entry.first;
        hist.Bind(1, name).Bind(2, entry.first).Bind(3, text).Run();
        prune.Bind(1, name).Bind(2, static_cast<std::int64_t>(options_.history_limit - 1)).Run();
      }
    }
    Stmt ev(db_,
            "INSERT INTO events(ts_ms, subject, type, message, detail) VALUES(?1, ?2, ?3, ?4, ?5)");
    for (const auto& e : events) {
      ev.Bind(1, e.ts_ms).Bind(2, e.subject).Bind(3, e.type).Bind(4, e.message);
      ev.Bind(5, e.detail.is_null() ? std::string() : e.detail.dump()).Run();
    }
    if (!events.empty()) {
      Stmt trim(db_, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1");
      trim.Bind(1, static_cast<std::int64_t>(options_.event_limit)).Run();
    }
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    spdlog::error("store commit failed: {}", sqlite3_errmsg(db_));
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

}  // namespace dpustor::manager
