#include "status_doc.h"

#include <cstdio>

namespace dpustor::bench {

namespace {

constexpr int kCores = 16;

// A number in [0, 1) from `x` (splitmix64 finaliser).
double Unit(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) / static_cast<double>(std::uint64_t{1} << 53);
}

double Round2(double v) {
  return static_cast<double>(static_cast<std::int64_t>(v * 100.0)) / 100.0;
}

std::string Hex(std::uint64_t v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llx", digits, static_cast<unsigned long long>(v));
  return buf;
}

std::string Uuid(std::uint64_t seed) {
  return Hex(seed & 0xffffffff, 8) + "-" + Hex((seed >> 8) & 0xffff, 4) + "-4" +
         Hex((seed >> 4) & 0xfff, 3) + "-a" + Hex((seed >> 12) & 0xfff, 3) + "-" +
         Hex(seed * 0x9e3779b97f4a7c15ULL & 0xffffffffffffULL, 12);
}

json Link(const std::string& name, int index) {
  auto base = static_cast<std::uint64_t>(index + 1) * 1000003;
  return {{"name", name},
          {"state", "UP"},
          {"mac", "b8:3f:d2:" + Hex(index & 0xff, 2) + ":4c:" + Hex((index * 7) & 0xff, 2)},
          {"link_type", "ether"},
          {"mtu", index < 2 ? 9216 : 1500},
          {"flags", {"BROADCAST", "MULTICAST", "UP", "LOWER_UP"}},
          {"rx_bytes", base * 4096},
          {"rx_packets", base * 3},
          {"rx_errors", 0},
          {"rx_dropped", 12},
          {"tx_bytes", base * 2048},
          {"tx_packets", base * 2},
          {"tx_errors", 0},
          {"tx_dropped", 0},
          {"rx_bytes_per_s", 1.25e9},
          {"tx_bytes_per_s", 8.5e8}};
}

json System(const std::string& name) {
  json per_cpu = json::array();
  for (int i = 0; i < kCores; ++i) per_cpu.push_back({{"cpu", i}, {"usage_percent", 10.0}});
  json cpu = {{"cores", kCores},
              {"usage_percent", 12.5},
              {"breakdown",
               {{"user", 8.1},
                {"nice", 0.0},
                {"system", 3.2},
                {"idle", 87.5},
                {"iowait", 0.4},
                {"irq", 0.3},
                {"softirq", 0.5},
                {"steal", 0.0}}},
              {"per_cpu", std::move(per_cpu)}};
  json memory = {{"total_bytes", 16ULL << 30},
                 {"free_bytes", 9ULL << 30},
                 {"available_bytes", 11ULL << 30},
                 {"buffers_bytes", 210ULL << 20},
                 {"cached_bytes", 1800ULL << 20},
                 {"swap_total_bytes", 0},
                 {"swap_free_bytes", 0},
                 {"hugepages",
                  {{"size_bytes", 2ULL << 20},
                   {"total", 2048},
                   {"free", 512},
                   {"reserved", 0},
                   {"surplus", 0}}}};
  json temps = json::array();
  const char* labels[] = {"cpu", "ddr", "nic"};
  for (int i = 0; i < 3; ++i) {
    temps.push_back({{"chip", i == 2 ? "mlx5" : "mlxbf_ptm"},
                     {"hwmon", "hwmon" + std::to_string(i)},
                     {"sensor", "temp1"},
                     {"label", labels[i]},
                     {"celsius", 55.0 + i},
                     {"crit_celsius", 105.0}});
  }
  json links = json::array();
  const char* names[] = {"p0", "p1", "pf0hpf", "pf1hpf"};
  for (int i = 0; i < 4; ++i) links.push_back(Link(names[i], i));
  return {{"cpu", std::move(cpu)},
          {"memory", std::move(memory)},
          {"load",
           {{"load1", 1.2},
            {"load5", 1.1},
            {"load15", 0.9},
            {"running_tasks", 3},
            {"total_tasks", 412}}},
          {"uptime_s", 864000.5},
          {"hostname", name},
          {"kernel", "5.15.0-1035-bluefield"},
          {"temperatures", std::move(temps)},
          {"links", std::move(links)},
          {"errors", json::array()}};
}

json Snap(const std::string& name) {
  json functions = json::array();
  for (int i = 0; i < 4; ++i) {
    functions.push_back(
        {{"hotplugged", i >= 2},
         {"emulation_type", i % 2 == 0 ? "nvme" : "virtio_blk"},
         {"pf_index", i},
         {"pci_bdf", "0000:25:00." + std::to_string(i + 2)},
         {"vhca_id", i + 2},
         {"vuid", "MT2334XZ0" + std::to_string(100 + i) + "VNVMES0D0F" + std::to_string(i + 2)}});
  }
  json bdevs = json::array();
  json io_bdevs = json::array();
  for (int i = 0; i < 3; ++i) {
    std::string b = "rbd" + std::to_string(i);
    bdevs.push_back({{"name", b},
                     {"product_name", "Ceph Rbd Disk"},
                     {"driver", "rbd"},
                     {"block_size", 4096},
                     {"num_blocks", 26214400},
                     {"uuid", Uuid(0x1234567 + i)},
                     {"claimed", i < 3},
                     {"pool", "dpustor"},
                     {"image", name + "-vol" + std::to_string(i)}});
    io_bdevs.push_back({{"name", b},
                        {"bytes_read", 0},
                        {"num_read_ops", 0},
                        {"bytes_written", 0},
                        {"num_write_ops", 0},
                        {"bytes_unmapped", 0},
                        {"num_unmap_ops", 0},
                        {"read_latency_ticks", 0},
                        {"write_latency_ticks", 0},
                        {"queue_depth", 0}});
  }
  std::string nqn = "nqn.2024-01.io.dpustor:" + name;
  json subsystem = {{"nqn", nqn},
                    {"serial_number", "DPUSTOR0000001"},
                    {"model_number", "dpustor NVMe"},
                    {"max_namespaces", 32},
                    {"namespaces",
                     {{{"nsid", 1}, {"bdev", "rbd0"}, {"uuid", Uuid(0xabc1)}},
                      {{"nsid", 2}, {"bdev", "rbd1"}, {"uuid", Uuid(0xabc2)}}}}};
  json nvme_ctrls = json::array();
  for (int i = 0; i < 2; ++i) {
    nvme_ctrls.push_back({{"name", "NvmeEmu0pf" + std::to_string(i)},
                          {"subnqn", nqn},
                          {"pf_index", i * 2},
                          {"pci_bdf", "0000:25:00." + std::to_string(i * 2 + 2)},
                          {"ctrl_id", i + 1},
                          {"num_queues", 16},
                          {"state", "started"}});
  }
  json virtio = json::array();
  virtio.push_back({{"name", "VblkEmu0pf1"},
                    {"pf_index", 1},
                    {"pci_bdf", "0000:25:00.3"},
                    {"bdev", "rbd2"},
                    {"num_queues", 8},
                    {"queue_size", 256},
                    {"state", "started"}});
  return {{"reachable", true},
          {"dialect", "snap4"},
          {"version", "4.4.0-sim"},
          {"simulator", true},
          {"emulation_functions", std::move(functions)},
          {"nvme_subsystems", json::array({std::move(subsystem)})},
          {"nvme_controllers", std::move(nvme_ctrls)},
          {"virtio_blk_controllers", std::move(virtio)},
          {"bdevs", std::move(bdevs)},
          {"iostat", {{"tick_rate", 2000000000}, {"ticks", 0}, {"bdevs", std::move(io_bdevs)}}},
          {"errors", json::array()}};
}

void SetIfPresent(json& obj, const char* key, json value) {
  auto it = obj.find(key);
  if (it != obj.end()) *it = std::move(value);
}

}  // namespace

json MakeDpuStatus(const std::string& name, std::size_t target_bytes) {
  json doc = {{"name", name},
              {"host", "host-" + name},
              {"system", System(name)},
              {"snap", Snap(name)},
              {"collect_ms", 14}};
  if (target_bytes == 0) return doc;
  if (doc.dump().size() > target_bytes) {
    doc = {{"name", name},
           {"host", "host-" + name},
           {"system",
            {{"cpu", {{"cores", kCores}, {"usage_percent", 12.5}}}, {"links", json::array()}}}};
  }
  auto& links = doc["system"]["links"];
  for (int i = static_cast<int>(links.size()); doc.dump().size() < target_bytes; ++i) {
    links.push_back(Link("pf0vf" + std::to_string(i), i));
  }
  return doc;
}

void SetIdentity(json& doc, const std::string& name) {
  doc["name"] = name;
  doc["host"] = "host-" + name;
  auto sys = doc.find("system");
  if (sys != doc.end()) SetIfPresent(*sys, "hostname", name);
}

void VaryDpuStatus(json& doc, std::uint64_t seq, std::uint64_t noise) {
  auto r = [&](int salt) { return Unit(noise * 31 + static_cast<std::uint64_t>(salt)); };
  auto sys = doc.find("system");
  if (sys != doc.end()) {
    auto cpu = sys->find("cpu");
    if (cpu != sys->end()) {
      double busy = Round2(5.0 + 40.0 * r(1));
      (*cpu)["usage_percent"] = busy;
      auto breakdown = cpu->find("breakdown");
      if (breakdown != cpu->end()) {
        (*breakdown)["user"] = Round2(busy * 0.7);
        (*breakdown)["system"] = Round2(busy * 0.25);
        (*breakdown)["idle"] = Round2(100.0 - busy);
      }
      auto per_cpu = cpu->find("per_cpu");
      if (per_cpu != cpu->end()) {
        int i = 0;
        for (auto& c : *per_cpu) c["usage_percent"] = Round2(100.0 * r(10 + i++));
      }
    }
    auto mem = sys->find("memory");
    if (mem != sys->end()) {
      auto free_bytes = (8ULL << 30) + static_cast<std::uint64_t>(r(2) * (1ULL << 30));
      (*mem)["free_bytes"] = free_bytes;
      (*mem)["available_bytes"] = free_bytes + (2ULL << 30);
    }
    auto load = sys->find("load");
    if (load != sys->end()) (*load)["load1"] = Round2(0.5 + 3.0 * r(3));
    SetIfPresent(*sys, "uptime_s", 864000.5 + static_cast<double>(seq));
    auto temps = sys->find("temperatures");
    if (temps != sys->end()) {
      int i = 0;
      for (auto& t : *temps) t["celsius"] = Round2(50.0 + 10.0 * r(40 + i++));
    }
    auto links = sys->find("links");
    if (links != sys->end()) {
      std::uint64_t i = 0;
      for (auto& l : *links) {
        ++i;
        l["rx_bytes"] = (seq + 1) * 1250000000ULL * i;
        l["rx_packets"] = (seq + 1) * 900000ULL * i;
        l["tx_bytes"] = (seq + 1) * 850000000ULL * i;
        l["tx_packets"] = (seq + 1) * 700000ULL * i;
        l["rx_bytes_per_s"] = Round2(1.25e9 * r(60 + static_cast<int>(i)));
        l["tx_bytes_per_s"] = Round2(8.5e8 * r(80 + static_cast<int>(i)));
      }
    }
  }
  auto snap = doc.find("snap");
  if (snap != doc.end()) {
    auto iostat = snap->find("iostat");
    if (iostat != snap->end()) {
      (*iostat)["ticks"] = (seq + 1) * 2000000000ULL;
      auto bdevs = iostat->find("bdevs");
      if (bdevs != iostat->end()) {
        std::uint64_t i = 0;
        for (auto& b : *bdevs) {
          ++i;
          b["bytes_read"] = (seq + 1) * 52428800ULL * i;
          b["num_read_ops"] = (seq + 1) * 12800ULL * i;
          b["bytes_written"] = (seq + 1) * 20971520ULL * i;
          b["num_write_ops"] = (seq + 1) * 5120ULL * i;
          b["read_latency_ticks"] = (seq + 1) * 180000000ULL * i;
          b["write_latency_ticks"] = (seq + 1) * 260000000ULL * i;
          b["queue_depth"] = static_cast<int>(r(100 + static_cast<int>(i)) * 32);
        }
      }
    }
  }
  SetIfPresent(doc, "collect_ms", static_cast<int>(5 + 20 * r(4)));
}

}  // namespace dpustor::bench
