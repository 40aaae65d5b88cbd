#include "manager/volume.h"

namespace dpustor::manager {

std::string Volume::State() const {
  if (deleting) return "deleting";
  if (!created) return error.empty() ? "creating" : "error";
  if (attach) {
    if (observed_dpu == attach->dpu && attach_state == "attached") return "attached";
    if (attach_state == "failed") return "attach-failed";
    return "attaching";
  }
  if (!observed_dpu.empty()) return "detaching";
  return "available";
}

json ToJson(const Volume& v) {
  json j = {{"name", v.name},
            {"cluster", v.cluster},
            {"pool", v.pool},
            {"image", v.image},
            {"size_bytes", v.size_bytes},
            {"snapshots", v.snapshots},
            {"snapshots_created", v.snapshots_created},
            {"deleting", v.deleting},
            {"created", v.created},
            {"observed_size", v.observed_size},
            {"observed_dpu", v.observed_dpu},
            {"attach_state", v.attach_state},
            {"attach_error", v.attach_error},
            {"error", v.error},
            {"created_ms", v.created_ms},
            {"updated_ms", v.updated_ms},
            {"ceph_ms", v.ceph_ms},
            {"apply_ms", v.apply_ms},
            {"attached_ms", v.attached_ms},
            {"attach", nullptr}};
  if (v.attach) {
    j["attach"] = {{"dpu", v.attach->dpu},
                   {"protocol", v.attach->protocol},
                   {"pf_index", v.attach->pf_index},
                   {"vf_index", v.attach->vf_index ? json(*v.attach->vf_index) : json(nullptr)},
                   {"nsid", v.attach->nsid}};
  }
  return j;
}

Volume VolumeFromJson(const json& j) {
  Volume v;
  v.name = j.value("name", "");
  v.cluster = j.value("cluster", "");
  v.pool = j.value("pool", "");
  v.image = j.value("image", v.name);
  v.size_bytes = j.value("size_bytes", std::uint64_t{0});
  v.snapshots = j.value("snapshots", std::vector<std::string>{});
  v.snapshots_created = j.value("snapshots_created", std::vector<std::string>{});
  v.deleting = j.value("deleting", false);
  v.created = j.value("created", false);
  v.observed_size = j.value("observed_size", std::uint64_t{0});
  v.observed_dpu = j.value("observed_dpu", "");
  v.attach_state = j.value("attach_state", "");
  v.attach_error = j.value("attach_error", "");
  v.error = j.value("error", "");
  v.created_ms = j.value("created_ms", std::int64_t{0});
  v.updated_ms = j.value("updated_ms", std::int64_t{0});
  v.ceph_ms = j.value("ceph_ms", std::int64_t{0});
  v.apply_ms = j.value("apply_ms", std::int64_t{0});
  v.attached_ms = j.value("attached_ms", std::int64_t{0});
  if (j.contains("attach") && j["attach"].is_object()) {
    const json& a = j["attach"];
    VolumeAttachment att;
    att.dpu = a.value("dpu", "");
    att.protocol = a.value("protocol", "nvme");
    att.pf_index = a.value("pf_index", 0);
    if (a.contains("vf_index") && a["vf_index"].is_number_integer()) att.vf_index = a["vf_index"];
    att.nsid = a.value("nsid", 1);
    v.attach = att;
  }
  return v;
}

json VolumeView(const Volume& v) {
  json j = ToJson(v);
  j["state"] = v.State();
  return j;
}

}  // namespace dpustor::manager
