// Inventory is the manager's live view of its agents: identity, connection state, and the
// latest status each reported. It is loaded from the Store at start (every agent known
// before starts as unreachable until it says hello again) and written through to it.
// Thread-safety: all methods may be called from any thread (one mutex; status JSON is
// shared immutably, so readers copy pointers, not documents).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "manager/store.h"

namespace dpustor::manager {

inline constexpr const char* kOnline = "online";
inline constexpr const char* kUnreachable = "unreachable";

struct AgentRecord {
  std::string name;
  std::string kind;
  std::string version;
  json capabilities = json::object();
  std::string address;  // peer address of the current or last session
  std::string state = kUnreachable;
  std::string state_reason = "not connected since the manager started";
  std::int64_t state_since_ms = 0;
  std::int64_t first_seen_ms = 0;
  std::int64_t last_seen_ms = 0;    // any message from the agent
  std::int64_t last_report_ms = 0;  // the report `status` came from
  std::uint64_t reports = 0;        // since the manager started
  std::uint64_t session = 0;        // id of the current session, 0 if none
  std::shared_ptr<const json> status;
};

struct Hello {
  std::string name;
  std::string kind;
  std::string version;
  json capabilities;
  std::string address;
};

class Inventory {
 public:
  explicit Inventory(Store* store) : store_(store) {}

  void Load(const std::vector<StoredAgent>& agents);

  // Starts a session for an agent that said hello; an older session of the same name is
  // superseded (its id is returned in `replaced`). Fails if the name is registered with
  // another kind.
  Result<std::uint64_t> Register(const Hello& hello, std::uint64_t* replaced);

  // Records a report of session `session`; false if that session is no longer current.
  bool Report(const std::string& name, std::uint64_t session, std::shared_ptr<const json> status);
  void Touch(const std::string& name, std::uint64_t session);

  // Marks the agent unreachable if `session` is still its current one; true if it was.
  bool MarkUnreachable(const std::string& name, std::uint64_t session, const std::string& why);

  // Online agents silent for longer than `timeout_ms`: {name, session} pairs.
  std::vector<std::pair<std::string, std::uint64_t>> Silent(std::int64_t now_ms,
                                                            std::int64_t timeout_ms) const;

  std::vector<AgentRecord> List(const std::string& kind = "") const;
  std::optional<AgentRecord> Get(const std::string& name) const;

  std::uint64_t reports_total() const;

 private:
  StoredAgent ToStored(const AgentRecord& r) const;

  Store* store_;
  mutable std::mutex mu_;
  std::map<std::string, AgentRecord> agents_;
  std::uint64_t next_session_ = 1;
  std::uint64_t reports_total_ = 0;
};

}  // namespace dpustor::manager
