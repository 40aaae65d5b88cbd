// dpustorctl: the operator's command line for dpustor, a client of the manager's REST API.
// Exit status: 0 success, 1 the manager answered with an error, 2 usage, 3 manager unreachable.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/table.h"

using namespace dpustor::cli;

namespace {

struct Resource {
  std::string path;
  std::vector<Column> columns;
};

const std::map<std::string, Resource>& Resources() {
  static const std::map<std::string, Resource> kResources = {
      {"dpus",
       {"/api/v1/dpus",
        {{"NAME", "name"},
         {"STATE", "state"},
         {"HOST", "host"},
         {"SNAP", "snap/dialect"},
         {"SNAP-UP", "snap/reachable"},
         {"CPU", "cpu_percent", Format::kPercent},
         {"MEM-AVAIL", "memory_available_bytes", Format::kBytes},
         {"HUGEPAGES-FREE", "hugepages_free"},
         {"TEMP", "max_temperature_c"},
         {"CTRLS", "controllers"},
         {"BDEVS", "bdevs"},
         {"REPORTED", "last_report_ms", Format::kAge}}}},
      {"clusters",
       {"/api/v1/clusters",
        {{"NAME", "name"},
         {"STATE", "state"},
         {"HEALTH", "health"},
         {"VERSION", "ceph_version"},
         {"MONS", "mons_in_quorum"},
         {"OSDS-UP", "osds_up"},
         {"OSDS", "osds"},
         {"USED", "used_bytes", Format::kBytes},
         {"TOTAL", "total_bytes", Format::kBytes},
         {"POOLS", "pools"},
         {"IMAGES", "images"},
         {"REPORTED", "last_report_ms", Format::kAge}}}},
      {"pools",
       {"/api/v1/pools",
        {{"CLUSTER", "cluster"},
         {"NAME", "name"},
         {"ID", "id"},
         {"SIZE", "size"},
         {"PGS", "pg_num"},
         {"APPS", "applications"},
         {"STORED", "stored_bytes", Format::kBytes},
         {"OBJECTS", "objects"},
         {"MAX-AVAIL", "max_avail_bytes", Format::kBytes}}}},
      {"images",
       {"/api/v1/images",
        {{"CLUSTER", "cluster"},
         {"POOL", "pool"},
         {"NAME", "name"},
         {"SIZE", "size_bytes", Format::kBytes},
         {"FORMAT", "format"}}}},
      {"agents",
       {"/api/v1/agents",
        {{"NAME", "name"},
         {"KIND", "kind"},
         {"STATE", "state"},
         {"VERSION", "version"},
         {"ADDRESS", "address"},
         {"LAST-SEEN", "last_seen_ms", Format::kAge},
         {"REASON", "state_reason"}}}},
      {"hosts", {"/api/v1/hosts", {{"NAME", "name"}, {"STATE", "state"}, {"DPUS", "dpus"}}}},
      {"events",
       {"/api/v1/events",
        {{"TIME", "ts_ms", Format::kAge},
         {"SUBJECT", "subject"},
         {"TYPE", "type"},
         {"MESSAGE", "message"}}}},
  };
  return kResources;
}

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Percent-encodes a path segment or query value.
std::string Encode(const std::string& s) {
  std::string out;
  const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

int Fetch(const std::string& server, const std::string& target, nlohmann::json* out) {
  auto r = HttpGet(server, target, std::chrono::seconds(10));
  if (!r.ok()) {
    std::cerr << "error: " << r.error().message << "\n";
    return 3;
  }
  auto body = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status != 200) {
    std::string msg =
        body.is_object() && body.contains("error") ? body["error"].dump() : r->body.substr(0, 200);
    if (body.is_object() && body["error"].is_string()) msg = body["error"];
    std::cerr << "error: " << msg << " (HTTP " << r->status << ")\n";
    return 1;
  }
  if (body.is_discarded()) {
    std::cerr << "error: the manager answered with something that is not JSON\n";
    return 1;
  }
  *out = std::move(body);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dpustorctl: look at and manage dpustor"};
  const char* env_server = std::getenv("DPUSTOR_SERVER");
  std::string server = env_server ? env_server : "http://127.0.0.1:7880";
  std::string output = "table";
  app.add_option("--server,-s", server, "manager URL (or DPUSTOR_SERVER)")->capture_default_str();
  app.add_option("--output,-o", output, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  app.require_subcommand(1);

  std::vector<std::string> names;
  for (const auto& [name, _] : Resources()) names.push_back(name);
  auto* get = app.add_subcommand("get", "list resources");
  std::string what, cluster, pool, subject;
  int limit = 0;
  get->add_option("resource", what, "what to list")->required()->check(CLI::IsMember(names));
  get->add_option("--cluster", cluster, "only this cluster (pools, images)");
  get->add_option("--pool", pool, "only this pool (images)");
  get->add_option("--subject", subject, "only events about this subject prefix (events)");
  get->add_option("--limit", limit, "at most this many (events)")->check(CLI::Range(1, 10000));

  auto* describe = app.add_subcommand("describe", "show one resource in full");
  std::string kind, name;
  describe->add_option("kind", kind, "dpu, cluster or agent")
      ->required()
      ->check(CLI::IsMember({"dpu", "cluster", "agent"}));
  describe->add_option("name", name, "its name")->required();
  CLI11_PARSE(app, argc, argv);

  nlohmann::json body;
  if (get->parsed()) {
    const Resource& r = Resources().at(what);
    std::string query;
    auto add = [&](const char* key, const std::string& value) {
      if (!value.empty())
        query += (query.empty() ? "?" : "&") + std::string(key) + "=" + Encode(value);
    };
    add("cluster", cluster);
    add("pool", pool);
    add("subject", subject);
    if (limit > 0) add("limit", std::to_string(limit));
    if (int rc = Fetch(server, r.path + query, &body); rc != 0) return rc;
    if (output == "json") {
      std::cout << body.dump(2) << "\n";
    } else {
      std::cout << RenderTable(body, r.columns, NowMs());
    }
    return 0;
  }

  std::string path = kind == "dpu"       ? "/api/v1/dpus/"
                     : kind == "cluster" ? "/api/v1/clusters/"
                                         : "/api/v1/agents/";
  if (int rc = Fetch(server, path + Encode(name), &body); rc != 0) return rc;
  if (output == "json") {
    std::cout << body.dump(2) << "\n";
  } else {
    std::cout << RenderDocument(body);
  }
  return 0;
}
