#include "agent/dpu/deploy/deploy_state.h"

#include "agent/dpu/deploy/tools.h"

namespace dpustor::agent::dpu::deploy {

using json = nlohmann::json;

namespace {

json ReadyToJson(const ReadyDeployment& r) {
  return {{"spec", ToJson(r.spec)},
          {"generation", r.generation},
          {"manifest", r.manifest},
          {"init_conf", r.init_conf}};
}

Result<ReadyDeployment> ReadyFromJson(const json& j) {
  auto spec = ParseDeploySpec(j.at("spec"), "ready.spec");
  if (!spec.ok()) return spec.error();
  return ReadyDeployment{*spec, j.at("generation").get<std::int64_t>(),
                         j.at("manifest").get<std::string>(), j.at("init_conf").get<std::string>()};
}

}  // namespace

json ToJson(const DeployState& s) {
  json created = json::object();
  for (const auto& [path, before] : s.created)
    created[path] = before ? json(*before) : json(nullptr);
  return {{"generation", s.generation},
          {"name", s.name},
          {"spec", s.spec ? ToJson(*s.spec) : json(nullptr)},
          {"phase", s.phase},
          {"state", s.state},
          {"message", s.message},
          {"since_ms", s.since_ms},
          {"history", s.history},
          {"snap_version", s.snap_version},
          {"ready", s.ready ? ReadyToJson(*s.ready) : json(nullptr)},
          {"previous", s.previous},
          {"original_nr_hugepages",
           s.original_nr_hugepages ? json(*s.original_nr_hugepages) : json(nullptr)},
          {"created", created}};
}

Result<DeployState> DeployStateFromJson(const json& j) {
  try {
    DeployState s;
    s.generation = j.at("generation").get<std::int64_t>();
    s.name = j.at("name").get<std::string>();
    if (!j.at("spec").is_null()) {
      auto spec = ParseDeploySpec(j.at("spec"), "spec");
      if (!spec.ok()) return spec.error();
      s.spec = *spec;
    }
    s.phase = j.at("phase").get<std::string>();
    s.state = j.at("state").get<std::string>();
    s.message = j.at("message").get<std::string>();
    s.since_ms = j.at("since_ms").get<std::int64_t>();
    s.history = j.at("history");
    s.snap_version = j.value("snap_version", json(nullptr));
    if (!j.at("ready").is_null()) {
      auto ready = ReadyFromJson(j.at("ready"));
      if (!ready.ok()) return ready.error();
      s.ready = *ready;
    }
    s.previous = j.value("previous", json(nullptr));
    if (!j.at("original_nr_hugepages").is_null())
      s.original_nr_hugepages = j.at("original_nr_hugepages").get<std::int64_t>();
    for (const auto& [path, before] : j.at("created").items())
      s.created[path] =
          before.is_null() ? std::nullopt : std::optional<std::string>(before.get<std::string>());
    return s;
  } catch (const json::exception& e) {
    return Error{0, std::string("deploy state: ") + e.what()};
  }
}

Result<DeployState> LoadDeployState(const std::string& path) {
  auto text = ReadFileIfExists(path);
  if (!text.ok()) return text.error();
  if (!*text) return DeployState{};
  json j = json::parse(**text, nullptr, false);
  if (j.is_discarded()) return Error{0, path + ": not JSON"};
  auto state = DeployStateFromJson(j);
  if (!state.ok()) return Error{0, path + ": " + state.error().message};
  return state;
}

Status SaveDeployState(const std::string& path, const DeployState& state) {
  return WriteFileAtomic(
      path, ToJson(state).dump(2, ' ', false, json::error_handler_t::replace) + "\n", 0600);
}

}  // namespace dpustor::agent::dpu::deploy
