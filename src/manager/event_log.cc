#include "manager/event_log.h"

#include <spdlog/spdlog.h>

namespace dpustor::manager {

void EventLog::Load(std::vector<StoredEvent> events) {
  std::lock_guard lock(mu_);
  for (auto& e : events) {
    next_id_ = std::max(next_id_, e.id + 1);
    recent_.push_back(std::move(e));
  }
  while (recent_.size() > keep_) recent_.pop_front();
}

void EventLog::Add(const std::string& subject, const std::string& type, const std::string& message,
                   json detail) {
  StoredEvent e{0, NowMs(), subject, type, message, std::move(detail)};
  spdlog::info("event {} {}: {}", subject, type, message);
  {
    std::lock_guard lock(mu_);
    e.id = next_id_++;
    recent_.push_back(e);
    if (recent_.size() > keep_) recent_.pop_front();
  }
  if (store_ != nullptr) store_->AppendEvent(e);
}

std::vector<StoredEvent> EventLog::Recent(std::size_t limit, const std::string& subject) const {
  std::lock_guard lock(mu_);
  std::vector<StoredEvent> out;
  for (auto it = recent_.rbegin(); it != recent_.rend() && out.size() < limit; ++it) {
    if (subject.empty() || it->subject.starts_with(subject)) out.push_back(*it);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

}  // namespace dpustor::manager
