// dpustorctl: the operator's command line for dpustor, a client of the manager's REST API.
// Exit status: 0 success, 1 the manager answered with an error, 2 usage, 3 manager unreachable.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <thread>

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
      {"volumes",
       {"/api/v1/volumes",
        {{"NAME", "name"},
         {"STATE", "state"},
         {"CLUSTER", "cluster"},
         {"POOL", "pool"},
         {"SIZE", "size_bytes", Format::kBytes},
         {"DPU", "attach/dpu"},
         {"PROTOCOL", "attach/protocol"},
         {"PF", "attach/pf_index"},
         {"VF", "attach/vf_index"},
         {"ERROR", "error"},
         {"ATTACH-ERROR", "attach_error"}}}},
      {"shares",
       {"/api/v1/shares",
        {{"NAME", "name"},
         {"DPU", "dpu"},
         {"TAG", "tag"},
         {"BACKEND", "backend"},
         {"DATA-PLANE", "observed_plane"},
         {"STATE", "state"},
         {"REQUESTS", "counters/requests"},
         {"ERRORS", "counters/errors"},
         {"ERROR", "error"}}}},
      {"deployments",
       {"/api/v1/deployments",
        {{"NAME", "name"},
         {"TARGET", "target"},
         {"FLAVOUR", "flavour"},
         {"VERSION", "version"},
         {"STATE", "state"},
         {"DPUS", "summary"}}}},
      {"groups",
       {"/api/v1/groups", {{"NAME", "name"}, {"DPUS", "dpus"}, {"DEPLOYMENT", "deployment"}}}},
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

// "10G", "512M", "1T", "4096" (bytes); binary units.
std::optional<std::uint64_t> ParseSize(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0) return std::nullopt;
  std::uint64_t value = std::stoull(text.substr(0, digits));
  std::string unit = text.substr(digits);
  int shift = 0;
  if (unit == "" || unit == "B")
    shift = 0;
  else if (unit == "K" || unit == "KiB")
    shift = 10;
  else if (unit == "M" || unit == "MiB")
    shift = 20;
  else if (unit == "G" || unit == "GiB")
    shift = 30;
  else if (unit == "T" || unit == "TiB")
    shift = 40;
  else
    return std::nullopt;
  if (shift > 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift))
    return std::nullopt;
  return value << shift;
}

// Sends a change; prints the resulting volume. Exit status as for Fetch.
int Send(const std::string& server, const std::string& method, const std::string& target,
         const nlohmann::json& body, const std::string& output, nlohmann::json* out) {
  auto r = HttpRequest(method, server, target, body.dump(), std::chrono::seconds(30));
  if (!r.ok()) {
    std::cerr << "error: " << r.error().message << "\n";
    return 3;
  }
  auto parsed = nlohmann::json::parse(r->body, nullptr, false);
  if (r->status >= 300) {
    std::string msg = parsed.is_object() && parsed["error"].is_string()
                          ? parsed["error"].get<std::string>()
                          : r->body.substr(0, 200);
    std::cerr << "error: " << msg << " (HTTP " << r->status << ")\n";
    return 1;
  }
  if (out) *out = parsed;
  if (output == "json") std::cout << parsed.dump(2) << "\n";
  return 0;
}

// Polls a share until it is ready (or gone, for `gone_is_done`) or `seconds` pass.
int WaitShare(const std::string& server, const std::string& name, int seconds, bool gone_is_done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string last = "?", error;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = HttpGet(server, "/api/v1/shares/" + Encode(name), std::chrono::seconds(10));
    if (r.ok() && r->status == 404 && gone_is_done) return 0;
    if (r.ok() && r->status == 200) {
      auto v = nlohmann::json::parse(r->body, nullptr, false);
      if (v.is_object()) {
        last = v.value("state", "?");
        error = v.value("error", "");
        if (!gone_is_done && last == "ready") return 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "error: share " << name << " still " << last << " after " << seconds << " s"
            << (error.empty() ? "" : ": " + error) << "\n";
  return 1;
}

// Polls the volume until `done` says so, it fails, or `seconds` pass. 0 = success.
int WaitVolume(const std::string& server, const std::string& name, int seconds,
               const std::function<bool(const nlohmann::json&)>& done, bool gone_is_done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = HttpGet(server, "/api/v1/volumes/" + Encode(name), std::chrono::seconds(10));
    if (r.ok() && r->status == 404 && gone_is_done) return 0;
    if (r.ok() && r->status == 200) {
      auto v = nlohmann::json::parse(r->body, nullptr, false);
      if (v.is_object()) {
        if (done(v)) return 0;
        last = v.value("state", "?");
        if (last == "error" || last == "attach-failed") {
          std::cerr << "error: volume " << name << " is " << last << ": " << v.value("error", "")
                    << v.value("attach_error", "") << "\n";
          return 1;
        }
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::cerr << "error: volume " << name << " still " << last << " after " << seconds << " s\n";
  return 1;
}

// Polls a deployment until every DPU it targets is ready (or it is gone, for
// `gone_is_done`), a DPU stops in a state that is not ready, or `seconds` pass. 0 = success;
// the last view goes to *last.
int WaitDeployment(const std::string& server, const std::string& name, int seconds,
                   bool gone_is_done, nlohmann::json* last) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  std::string state = "?", detail;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = HttpGet(server, "/api/v1/deployments/" + Encode(name), std::chrono::seconds(10));
    if (r.ok() && r->status == 404 && gone_is_done) return 0;
    if (r.ok() && r->status == 200) {
      auto v = nlohmann::json::parse(r->body, nullptr, false);
      if (v.is_object()) {
        *last = v;
        state = v.value("state", "?");
        detail.clear();
        for (const auto& d : v.value("dpus", nlohmann::json::array())) {
          std::string s = d.value("state", "?");
          detail += "\n  " + d.value("dpu", "?") + ": " + s +
                    (d.value("phase", "").empty() ? "" : " (phase " + d.value("phase", "") + ")") +
                    (d.value("message", "").empty() ? "" : ": " + d.value("message", ""));
          if (!gone_is_done && (s == "failed" || s == "refused" || s == "rolled-back" ||
                                s == "power-cycle-required")) {
            std::cerr << "error: deployment " << name << " on " << d.value("dpu", "?") << " is "
                      << s << ": " << d.value("message", "") << "\n";
            return 1;
          }
        }
        if (!gone_is_done && state == "ready") return 0;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::cerr << "error: deployment " << name << " still " << state << " after " << seconds << " s"
            << detail << "\n";
  return 1;
}

// KEY=VALUE pairs of a repeated option into an object; false (and a message) on a bad one.
bool Pairs(const std::vector<std::string>& items, const char* flag, nlohmann::json* out) {
  *out = nlohmann::json::object();
  for (const auto& item : items) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "error: " << flag << " '" << item << "' is not KEY=VALUE\n";
      return false;
    }
    (*out)[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return true;
}

// SNAP RPC init lines from a file: one RPC per line; blank lines and # comments are skipped.
bool ReadInitLines(const std::string& path, nlohmann::json* out) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "error: --rpc-init-file: cannot read '" << path << "'\n";
    return false;
  }
  *out = nlohmann::json::array();
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    out->push_back(line.substr(first));
  }
  return true;
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
  describe->add_option("kind", kind, "dpu, cluster, agent, volume, share, deployment or group")
      ->required()
      ->check(CLI::IsMember({"dpu", "cluster", "agent", "volume", "share", "deployment", "group"}));
  describe->add_option("name", name, "its name")->required();
  int wait_s = 0;
  auto* create = app.add_subcommand("create", "create a resource");
  std::string create_kind, vol_name, vol_cluster, vol_pool, vol_size;
  create->add_option("kind", create_kind, "volume, share or group")
      ->required()
      ->check(CLI::IsMember({"volume", "share", "group"}));
  create->add_option("name", vol_name, "its name")->required();
  create->add_option("--cluster", vol_cluster, "volume: Ceph cluster (its agent's name)");
  create->add_option("--pool", vol_pool, "volume: RBD pool");
  create->add_option("--size", vol_size, "volume: size, e.g. 10G, 512M");
  create->add_option("--wait", wait_s,
                     "wait up to this many seconds until it is available (share: ready)");
  std::string sh_dpu, sh_backend, sh_tag, sh_squash = "none", sh_plane = "auto";
  int sh_function = 0, sh_queues = 1;
  std::optional<std::uint32_t> sh_uid, sh_gid;
  bool sh_read_only = false;
  create->add_option("--dpu", sh_dpu, "share: the DPU that exposes it");
  create->add_option("--backend", sh_backend,
                     "share: local:/DIR, memory: or nfs://HOST/EXPORT[?version=3]");
  create->add_option("--tag", sh_tag, "share: the virtio-fs tag the guest mounts");
  create->add_option("--function", sh_function, "share: host PF index")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  create->add_flag("--read-only", sh_read_only, "share: refuse every change");
  create->add_option("--squash", sh_squash, "share: none, root or all")
      ->check(CLI::IsMember({"none", "root", "all"}))
      ->capture_default_str();
  create->add_option("--anon-uid", sh_uid, "share: uid squashed callers become");
  create->add_option("--anon-gid", sh_gid, "share: gid squashed callers become");
  create->add_option("--request-queues", sh_queues, "share: virtio-fs request queues")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  create->add_option("--data-plane", sh_plane, "share: auto, snap or fsd")
      ->check(CLI::IsMember({"auto", "snap", "fsd"}))
      ->capture_default_str();
  std::vector<std::string> group_dpus;
  create->add_option("--dpus", group_dpus, "group: its DPUs, comma-separated")->delimiter(',');

  auto* deploy = app.add_subcommand("deploy", "deploy, upgrade or reconfigure SNAP on DPUs");
  std::string dep_what, dep_name, dep_dpu, dep_group, dep_version, dep_image, dep_flavour, dep_mask,
      dep_memory, dep_mem_request, dep_mem_limit, dep_init_file;
  std::optional<std::int64_t> dep_hugepages;
  std::optional<int> dep_cpu_request, dep_cpu_limit, dep_ready_timeout;
  std::vector<std::string> dep_firmware, dep_env;
  deploy->add_option("what", dep_what, "what to deploy: snap")
      ->required()
      ->check(CLI::IsMember({"snap"}));
  deploy->add_option("name", dep_name, "the deployment's name")->required();
  deploy->add_option("--dpu", dep_dpu, "the DPU to deploy on");
  deploy->add_option("--group", dep_group, "the DPU group to deploy on");
  deploy->add_option("--version", dep_version, "SNAP version (as spdk_get_version says)");
  deploy->add_option("--image", dep_image, "container image (snap4)");
  deploy->add_option("--flavour", dep_flavour, "snap4 (DOCA SNAP container) or snap3 (mlnx_snap)")
      ->check(CLI::IsMember({"snap4", "snap3"}));
  deploy->add_option("--cpu-mask", dep_mask, "SNAP's core mask, e.g. 0xff");
  deploy->add_option("--hugepages", dep_hugepages, "2 MiB hugepages to reserve");
  deploy->add_option("--memory", dep_memory, "container memory REQUEST/LIMIT, e.g. 2Gi/4Gi");
  deploy->add_option("--memory-request", dep_mem_request, "container memory request, e.g. 2Gi");
  deploy->add_option("--memory-limit", dep_mem_limit, "container memory limit, e.g. 4Gi");
  deploy->add_option("--cpu-request", dep_cpu_request, "container CPU request (cores)");
  deploy->add_option("--cpu-limit", dep_cpu_limit, "container CPU limit (cores)");
  deploy->add_option("--rpc-init-file,--rpc-init", dep_init_file,
                     "file of SNAP RPC lines replayed at start (one per line, # comments)");
  deploy->add_option("--firmware", dep_firmware, "mlxconfig setting wanted, KEY=VALUE (repeat)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  deploy->add_option("--env", dep_env, "extra container environment, K=V (repeat)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  deploy->add_option("--ready-timeout", dep_ready_timeout,
                     "seconds SNAP has to become ready (an upgrade rolls back after that)");
  deploy->add_option("--wait", wait_s,
                     "wait up to this many seconds until every DPU is ready; fails at once on "
                     "refused, failed, power-cycle-required or rolled-back");

  auto* attach = app.add_subcommand("attach", "attach a volume to a DPU function");
  std::string att_dpu, att_protocol = "nvme";
  int att_pf = 0, att_nsid = 1;
  std::optional<int> att_vf;
  attach->add_option("volume", vol_name, "the volume")->required();
  attach->add_option("--dpu", att_dpu, "the DPU")->required();
  attach->add_option("--protocol", att_protocol, "nvme or virtio-blk")
      ->check(CLI::IsMember({"nvme", "virtio-blk"}))
      ->capture_default_str();
  attach->add_option("--pf", att_pf, "physical function index")->capture_default_str();
  attach->add_option("--vf", att_vf, "virtual function index");
  attach->add_option("--nsid", att_nsid, "NVMe namespace id")->capture_default_str();
  attach->add_option("--wait", wait_s, "wait up to this many seconds until it is attached");

  auto* detach = app.add_subcommand("detach", "detach a volume from its DPU");
  detach->add_option("volume", vol_name, "the volume")->required();
  detach->add_option("--wait", wait_s, "wait up to this many seconds until it is detached");

  auto* resize = app.add_subcommand("resize", "grow a volume");
  resize->add_option("volume", vol_name, "the volume")->required();
  resize->add_option("--size", vol_size, "new size, e.g. 20G")->required();

  auto* snapshot = app.add_subcommand("snapshot", "snapshot a volume");
  std::string snap_name;
  snapshot->add_option("volume", vol_name, "the volume")->required();
  snapshot->add_option("snapshot", snap_name, "snapshot name")->required();

  auto* del = app.add_subcommand("delete", "delete a resource");
  std::string del_kind;
  bool force = false;
  del->add_option("kind", del_kind, "volume, share, deployment or group")
      ->required()
      ->check(CLI::IsMember({"volume", "share", "deployment", "group"}));
  del->add_option("name", vol_name, "its name")->required();
  del->add_flag("--force", force,
                "volume: detach first if attached; deployment: forget it without waiting for "
                "its DPUs");
  del->add_option("--wait", wait_s, "wait up to this many seconds until it is gone");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is not an error; anything else is usage
  }

  auto size_of = [&](std::uint64_t* out) {
    auto s = ParseSize(vol_size);
    if (!s) std::cerr << "error: --size '" << vol_size << "' is not a size like 10G\n";
    if (s) *out = *s;
    return s.has_value();
  };
  const std::string vpath = "/api/v1/volumes/" + Encode(vol_name);
  if (deploy->parsed()) {
    if (dep_dpu.empty() == dep_group.empty()) {
      std::cerr << "error: deploy snap needs exactly one of --dpu or --group\n";
      return 2;
    }
    if (dep_version.empty()) {
      std::cerr << "error: deploy snap needs --version\n";
      return 2;
    }
    nlohmann::json b = {{"name", dep_name}, {"version", dep_version}};
    if (!dep_dpu.empty()) b["dpu"] = dep_dpu;
    if (!dep_group.empty()) b["group"] = dep_group;
    if (!dep_image.empty()) b["image"] = dep_image;
    if (!dep_flavour.empty()) b["flavour"] = dep_flavour;
    if (!dep_mask.empty()) b["cpu_mask"] = dep_mask;
    if (dep_hugepages) b["hugepages_2m"] = *dep_hugepages;
    if (!dep_memory.empty()) {
      auto slash = dep_memory.find('/');
      if (slash == std::string::npos) {
        std::cerr << "error: --memory '" << dep_memory << "' is not REQUEST/LIMIT like 2Gi/4Gi\n";
        return 2;
      }
      b["memory_request"] = dep_memory.substr(0, slash);
      b["memory_limit"] = dep_memory.substr(slash + 1);
    }
    if (!dep_mem_request.empty()) b["memory_request"] = dep_mem_request;
    if (!dep_mem_limit.empty()) b["memory_limit"] = dep_mem_limit;
    if (dep_cpu_request) b["cpu_request"] = *dep_cpu_request;
    if (dep_cpu_limit) b["cpu_limit"] = *dep_cpu_limit;
    if (dep_ready_timeout) b["ready_timeout_s"] = *dep_ready_timeout;
    if (!dep_init_file.empty() && !ReadInitLines(dep_init_file, &b["rpc_init"])) return 2;
    if (!dep_firmware.empty() && !Pairs(dep_firmware, "--firmware", &b["firmware"])) return 2;
    if (!dep_env.empty() && !Pairs(dep_env, "--env", &b["env"])) return 2;
    nlohmann::json result;
    int rc = Send(server, "POST", "/api/v1/deployments", b, "", &result);
    if (rc == 0 && wait_s > 0) rc = WaitDeployment(server, dep_name, wait_s, false, &result);
    if (output == "json") {
      if (rc == 0) std::cout << result.dump(2) << "\n";
    } else if (result.is_object()) {
      std::cout << "deployment " << dep_name << ": " << result.value("state", "?") << " ("
                << result.value("summary", "-") << ")\n";
    }
    return rc;
  }
  if (create->parsed() && create_kind == "group") {
    if (group_dpus.empty()) {
      std::cerr << "error: create group needs --dpus a,b,...\n";
      return 2;
    }
    return Send(server, "POST", "/api/v1/groups", {{"name", vol_name}, {"dpus", group_dpus}},
                output, nullptr);
  }
  if (del->parsed() && del_kind == "group")
    return Send(server, "DELETE", "/api/v1/groups/" + Encode(vol_name), nlohmann::json::object(),
                output, nullptr);
  if (del->parsed() && del_kind == "deployment") {
    int rc = Send(server, "DELETE",
                  "/api/v1/deployments/" + Encode(vol_name) + (force ? "?force=true" : ""),
                  nlohmann::json::object(), output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    nlohmann::json last;
    return WaitDeployment(server, vol_name, wait_s, true, &last);
  }
  if (create->parsed() && create_kind == "share") {
    for (auto [flag, value] : {std::pair<const char*, std::string*>{"--dpu", &sh_dpu},
                               {"--backend", &sh_backend},
                               {"--tag", &sh_tag}}) {
      if (value->empty()) {
        std::cerr << "error: create share needs " << flag << "\n";
        return 2;
      }
    }
    nlohmann::json b = {{"name", vol_name},        {"dpu", sh_dpu},
                        {"backend", sh_backend},   {"tag", sh_tag},
                        {"pf_index", sh_function}, {"read_only", sh_read_only},
                        {"squash", sh_squash},     {"request_queues", sh_queues},
                        {"data_plane", sh_plane}};
    if (sh_uid) b["anon_uid"] = *sh_uid;
    if (sh_gid) b["anon_gid"] = *sh_gid;
    int rc = Send(server, "POST", "/api/v1/shares", b, output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitShare(server, vol_name, wait_s, false);
  }
  if (del->parsed() && del_kind == "share") {
    int rc = Send(server, "DELETE", "/api/v1/shares/" + Encode(vol_name), nlohmann::json::object(),
                  output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitShare(server, vol_name, wait_s, true);
  }
  if (create->parsed()) {
    for (auto [flag, value] : {std::pair<const char*, std::string*>{"--cluster", &vol_cluster},
                               {"--pool", &vol_pool},
                               {"--size", &vol_size}}) {
      if (value->empty()) {
        std::cerr << "error: create volume needs " << flag << "\n";
        return 2;
      }
    }
    std::uint64_t size = 0;
    if (!size_of(&size)) return 2;
    int rc = Send(
        server, "POST", "/api/v1/volumes",
        {{"name", vol_name}, {"cluster", vol_cluster}, {"pool", vol_pool}, {"size_bytes", size}},
        output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitVolume(
        server, vol_name, wait_s,
        [](const nlohmann::json& v) {
          return v["state"] == "available" || v["state"] == "attached";
        },
        false);
  }
  if (attach->parsed()) {
    nlohmann::json b = {
        {"dpu", att_dpu}, {"protocol", att_protocol}, {"pf_index", att_pf}, {"nsid", att_nsid}};
    if (att_vf) b["vf_index"] = *att_vf;
    int rc = Send(server, "POST", vpath + "/attach", b, output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitVolume(
        server, vol_name, wait_s, [](const nlohmann::json& v) { return v["state"] == "attached"; },
        false);
  }
  if (detach->parsed()) {
    int rc = Send(server, "POST", vpath + "/detach", nlohmann::json::object(), output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitVolume(
        server, vol_name, wait_s, [](const nlohmann::json& v) { return v["state"] == "available"; },
        false);
  }
  if (resize->parsed()) {
    std::uint64_t size = 0;
    if (!size_of(&size)) return 2;
    return Send(server, "POST", vpath + "/resize", {{"size_bytes", size}}, output, nullptr);
  }
  if (snapshot->parsed())
    return Send(server, "POST", vpath + "/snapshots", {{"name", snap_name}}, output, nullptr);
  if (del->parsed()) {
    int rc = Send(server, "DELETE", vpath + (force ? "?force=true" : ""), nlohmann::json::object(),
                  output, nullptr);
    if (rc != 0 || wait_s <= 0) return rc;
    return WaitVolume(
        server, vol_name, wait_s, [](const nlohmann::json&) { return false; }, true);
  }

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

  std::string path = kind == "dpu"          ? "/api/v1/dpus/"
                     : kind == "cluster"    ? "/api/v1/clusters/"
                     : kind == "volume"     ? "/api/v1/volumes/"
                     : kind == "share"      ? "/api/v1/shares/"
                     : kind == "deployment" ? "/api/v1/deployments/"
                     : kind == "group"      ? "/api/v1/groups/"
                                            : "/api/v1/agents/";
  if (int rc = Fetch(server, path + Encode(name), &body); rc != 0) return rc;
  if (output == "json") {
    std::cout << body.dump(2) << "\n";
  } else {
    std::cout << RenderDocument(body);
  }
  return 0;
}
