// EventLog records what happened (agent registered, went unreachable, reported an event)
// with a timestamp: the recent ones in memory for the REST API, all of them in the Store.
// Thread-safety: all methods may be called from any thread.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "manager/store.h"

namespace dpustor::manager {

class EventLog {
 public:
  EventLog(Store* store, std::size_t keep) : store_(store), keep_(keep) {}

  void Load(std::vector<StoredEvent> events);
  void Add(const std::string& subject, const std::string& type, const std::string& message,
           json detail = nullptr);
  // Newest last; `subject` filters by prefix ("dpu/" or "dpu/dpu-a").
  std::vector<StoredEvent> Recent(std::size_t limit, const std::string& subject = "") const;

 private:
  Store* store_;
  std::size_t keep_;
  mutable std::mutex mu_;
  std::deque<StoredEvent> recent_;
  std::int64_t next_id_ = 1;
};

}  // namespace dpustor::manager
