#include "manager/inventory.h"

#include "common/json_rpc.h"

namespace dpustor::manager {

void Inventory::Load(const std::vector<StoredAgent>& agents) {
  std::lock_guard lock(mu_);
  auto now = NowMs();
  for (const auto& a : agents) {
    AgentRecord r;
    r.name = a.name;
    r.kind = a.kind;
    r.version = a.version;
    r.capabilities = a.capabilities;
    r.first_seen_ms = a.first_seen_ms;
    r.last_seen_ms = a.last_seen_ms;
    r.last_report_ms = a.last_report_ms;
    r.state_since_ms = now;
    if (!a.status.is_null()) r.status = std::make_shared<const json>(a.status);
    agents_[a.name] = std::move(r);
  }
}

StoredAgent Inventory::ToStored(const AgentRecord& r) const {
  StoredAgent s;
  s.name = r.name;
  s.kind = r.kind;
  s.version = r.version;
  s.capabilities = r.capabilities;
  s.first_seen_ms = r.first_seen_ms;
  s.last_seen_ms = r.last_seen_ms;
  return s;
}

Result<std::uint64_t> Inventory::Register(const Hello& hello, std::uint64_t* replaced) {
  std::lock_guard lock(mu_);
  auto now = NowMs();
  auto [it, inserted] = agents_.try_emplace(hello.name);
  AgentRecord& r = it->second;
  if (!inserted && r.kind != hello.kind) {
    return Error{rpc::kAlreadyExists, "agent name '" + hello.name + "' is registered as kind '" +
                                          r.kind + "', not '" + hello.kind + "'"};
  }
  if (inserted) {
    r.name = hello.name;
    r.first_seen_ms = now;
  }
  if (replaced != nullptr) *replaced = r.state == kOnline ? r.session : 0;
  r.kind = hello.kind;
  r.version = hello.version;
  r.capabilities = hello.capabilities;
  r.address = hello.address;
  r.state = kOnline;
  r.state_reason.clear();
  r.state_since_ms = now;
  r.last_seen_ms = now;
  r.session = next_session_++;
  if (store_ != nullptr) store_->UpsertAgent(ToStored(r));
  return r.session;
}

bool Inventory::Report(const std::string& name, std::uint64_t session,
                       std::shared_ptr<const json> shared) {
  auto now = NowMs();
  {
    std::lock_guard lock(mu_);
    auto it = agents_.find(name);
    if (it == agents_.end() || it->second.session != session) return false;
    AgentRecord& r = it->second;
    r.status = shared;
    r.last_seen_ms = now;
    r.last_report_ms = now;
    ++r.reports;
    ++reports_total_;
  }
  if (store_ != nullptr) store_->SaveStatus(name, now, std::move(shared));
  return true;
}

void Inventory::Touch(const std::string& name, std::uint64_t session) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(name);
  if (it != agents_.end() && it->second.session == session) it->second.last_seen_ms = NowMs();
}

bool Inventory::MarkUnreachable(const std::string& name, std::uint64_t session,
                                const std::string& why) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end() || it->second.session != session || it->second.state != kOnline)
    return false;
  AgentRecord& r = it->second;
  r.state = kUnreachable;
  r.state_reason = why;
  r.state_since_ms = NowMs();
  r.session = 0;
  if (store_ != nullptr) store_->UpsertAgent(ToStored(r));
  return true;
}

std::vector<std::pair<std::string, std::uint64_t>> Inventory::Silent(
    std::int64_t now_ms, std::int64_t timeout_ms) const {
  std::lock_guard lock(mu_);
  std::vector<std::pair<std::string, std::uint64_t>> out;
  for (const auto& [name, r] : agents_) {
    if (r.state == kOnline && now_ms - r.last_seen_ms > timeout_ms)
      out.emplace_back(name, r.session);
  }
  return out;
}

std::vector<AgentRecord> Inventory::List(const std::string& kind) const {
  std::lock_guard lock(mu_);
  std::vector<AgentRecord> out;
  for (const auto& [name, r] : agents_) {
    if (kind.empty() || r.kind == kind) out.push_back(r);
  }
  return out;
}

std::optional<AgentRecord> Inventory::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(name);
  if (it == agents_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t Inventory::reports_total() const {
  std::lock_guard lock(mu_);
  return reports_total_;
}

}  // namespace dpustor::manager
