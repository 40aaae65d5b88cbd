#include "manager/rest_api.h"

#include <charconv>

#include "common/agent_protocol.h"
#include "common/json_rpc.h"
#include "manager/views.h"

namespace dpustor::manager {

namespace {

HttpResponse Json(const json& body) {
  return HttpResponse{200, "application/json", body.dump()};
}

std::string QueryOr(const HttpRequest& r, const std::string& key, const std::string& fallback) {
  auto it = r.query.find(key);
  return it == r.query.end() ? fallback : it->second;
}

// A bounded positive integer query parameter; bad values are a 400, not a silent default.
std::optional<std::size_t> Limit(const HttpRequest& r, std::size_t fallback, std::size_t max,
                                 HttpResponse* error) {
  auto text = QueryOr(r, "limit", "");
  if (text.empty()) return fallback;
  std::size_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0 || v > max) {
    *error = JsonError(400, "limit must be an integer from 1 to " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

json EventJson(const StoredEvent& e) {
  return {{"id", e.id},     {"ts_ms", e.ts_ms},     {"subject", e.subject},
          {"type", e.type}, {"message", e.message}, {"detail", e.detail}};
}

// Maps a service error to its HTTP status.
HttpResponse FromResult(const Result<json>& r, int ok_status = 200) {
  if (r.ok()) return HttpResponse{ok_status, "application/json", r->dump()};
  switch (r.error().code) {
    case rpc::kInvalidParams:
      return JsonError(400, r.error().message);
    case rpc::kNotFound:
      return JsonError(404, r.error().message);
    case rpc::kAlreadyExists:
    case rpc::kBusy:
      return JsonError(409, r.error().message);
    default:
      return JsonError(500, r.error().message);
  }
}

// The request body as JSON; an empty body is an empty object.
std::optional<json> Body(const HttpRequest& r, HttpResponse* error) {
  if (r.body.empty()) return json::object();
  json body = json::parse(r.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    *error = JsonError(400, "the request body must be a JSON object");
    return std::nullopt;
  }
  return body;
}

}  // namespace

void RegisterRestApi(Router& router, RestContext ctx) {
  using Captures = std::vector<std::string>;
  auto list = [ctx](const std::string& kind, json (*view)(const AgentRecord&)) {
    return [ctx, kind, view](const HttpRequest&, const Captures&) {
      json out = json::array();
      for (const auto& r : ctx.inventory.List(kind)) out.push_back(view(r));
      return Json(out);
    };
  };
  auto one = [ctx](const std::string& kind, json (*view)(const AgentRecord&)) {
    return [ctx, kind, view](const HttpRequest&, const Captures& c) {
      auto r = ctx.inventory.Get(c[0]);
      if (!r || (!kind.empty() && r->kind != kind))
        return JsonError(
            404, "no " + (kind.empty() ? std::string("agent") : kind) + " named '" + c[0] + "'");
      return Json(view(*r));
    };
  };

  router.Add("GET", "/healthz", [ctx](const HttpRequest&, const Captures&) {
    return Json({{"ok", true}, {"started_ms", ctx.started_ms}});
  });
  router.Add("GET", "/api/v1/agents", list("", AgentView));
  router.Add("GET", "/api/v1/agents/{name}", one("", AgentView));
  router.Add("GET", "/api/v1/dpus", list(protocol::kKindDpu, DpuSummary));
  router.Add("GET", "/api/v1/dpus/{name}", one(protocol::kKindDpu, DpuDetail));
  router.Add("GET", "/api/v1/dpus/{name}/history", [ctx](const HttpRequest& r, const Captures& c) {
    HttpResponse error;
    auto limit = Limit(r, 60, 10000, &error);
    if (!limit) return error;
    auto rec = ctx.inventory.Get(c[0]);
    if (!rec || rec->kind != protocol::kKindDpu)
      return JsonError(404, "no dpu named '" + c[0] + "'");
    json out = json::array();
    for (auto& [ts, status] : ctx.store.History(c[0], *limit))
      out.push_back({{"ts_ms", ts}, {"status", std::move(status)}});
    return Json(out);
  });
  router.Add("GET", "/api/v1/hosts", [ctx](const HttpRequest&, const Captures&) {
    return Json(HostsView(ctx.inventory.List(protocol::kKindDpu)));
  });
  router.Add("GET", "/api/v1/clusters", list(protocol::kKindCeph, ClusterSummary));
  router.Add("GET", "/api/v1/clusters/{name}", one(protocol::kKindCeph, ClusterDetail));
  router.Add("GET", "/api/v1/pools", [ctx](const HttpRequest& r, const Captures&) {
    return Json(PoolsView(ctx.inventory.List(protocol::kKindCeph), QueryOr(r, "cluster", "")));
  });
  router.Add("GET", "/api/v1/images", [ctx](const HttpRequest& r, const Captures&) {
    return Json(ImagesView(ctx.inventory.List(protocol::kKindCeph), QueryOr(r, "cluster", ""),
                           QueryOr(r, "pool", "")));
  });
  router.Add("GET", "/api/v1/events", [ctx](const HttpRequest& r, const Captures&) {
    HttpResponse error;
    auto limit = Limit(r, 100, 10000, &error);
    if (!limit) return error;
    json out = json::array();
    for (const auto& e : ctx.events.Recent(*limit, QueryOr(r, "subject", "")))
      out.push_back(EventJson(e));
    return Json(out);
  });
  VolumeService& vs = ctx.volumes;
  auto with_body = [](std::function<Result<json>(const json&, const Captures&)> f, int ok = 200) {
    return [f, ok](const HttpRequest& r, const Captures& c) {
      HttpResponse error;
      auto body = Body(r, &error);
      if (!body) return error;
      return FromResult(f(*body, c), ok);
    };
  };
  router.Add("GET", "/api/v1/volumes",
             [&vs](const HttpRequest&, const Captures&) { return Json(vs.List()); });
  router.Add("GET", "/api/v1/volumes/{name}",
             [&vs](const HttpRequest&, const Captures& c) { return FromResult(vs.Get(c[0])); });
  router.Add("POST", "/api/v1/volumes",
             with_body([&vs](const json& b, const Captures&) { return vs.Create(b); }, 201));
  router.Add("POST", "/api/v1/volumes/{name}/attach",
             with_body([&vs](const json& b, const Captures& c) { return vs.Attach(c[0], b); }));
  router.Add("POST", "/api/v1/volumes/{name}/detach",
             with_body([&vs](const json&, const Captures& c) { return vs.Detach(c[0]); }));
  router.Add("POST", "/api/v1/volumes/{name}/resize",
             with_body([&vs](const json& b, const Captures& c) { return vs.Resize(c[0], b); }));
  router.Add("POST", "/api/v1/volumes/{name}/snapshots",
             with_body([&vs](const json& b, const Captures& c) { return vs.Snapshot(c[0], b); }));
  router.Add("DELETE", "/api/v1/volumes/{name}", [&vs](const HttpRequest& r, const Captures& c) {
    std::string force = QueryOr(r, "force", "false");
    if (force != "true" && force != "false") return JsonError(400, "force must be true or false");
    return FromResult(vs.Delete(c[0], force == "true"));
  });
  ShareService& ss = ctx.shares;
  router.Add("GET", "/api/v1/shares",
             [&ss](const HttpRequest&, const Captures&) { return Json(ss.List()); });
  router.Add("GET", "/api/v1/shares/{name}",
             [&ss](const HttpRequest&, const Captures& c) { return FromResult(ss.Get(c[0])); });
  router.Add("POST", "/api/v1/shares",
             with_body([&ss](const json& b, const Captures&) { return ss.Create(b); }, 201));
  router.Add("DELETE", "/api/v1/shares/{name}",
             [&ss](const HttpRequest&, const Captures& c) { return FromResult(ss.Delete(c[0])); });
  DeploymentService& ds = ctx.deployments;
  auto upsert = [](std::function<Result<json>(const json&, bool*)> f) {
    return [f](const HttpRequest& r, const Captures&) {
      HttpResponse error;
      auto body = Body(r, &error);
      if (!body) return error;
      bool created = false;
      auto result = f(*body, &created);
      return FromResult(result, created ? 201 : 200);
    };
  };
  router.Add("GET", "/api/v1/deployments",
             [&ds](const HttpRequest&, const Captures&) { return Json(ds.List()); });
  router.Add("GET", "/api/v1/deployments/{name}",
             [&ds](const HttpRequest&, const Captures& c) { return FromResult(ds.Get(c[0])); });
  router.Add("POST", "/api/v1/deployments",
             upsert([&ds](const json& b, bool* created) { return ds.Apply(b, created); }));
  router.Add("DELETE", "/api/v1/deployments/{name}",
             [&ds](const HttpRequest& r, const Captures& c) {
               std::string force = QueryOr(r, "force", "false");
               if (force != "true" && force != "false")
                 return JsonError(400, "force must be true or false");
               return FromResult(ds.Delete(c[0], force == "true"));
             });
  router.Add("GET", "/api/v1/groups",
             [&ds](const HttpRequest&, const Captures&) { return Json(ds.Groups()); });
  router.Add("GET", "/api/v1/groups/{name}",
             [&ds](const HttpRequest&, const Captures& c) { return FromResult(ds.Group(c[0])); });
  router.Add("POST", "/api/v1/groups",
             upsert([&ds](const json& b, bool* created) { return ds.PutGroup(b, created); }));
  router.Add("DELETE", "/api/v1/groups/{name}", [&ds](const HttpRequest&, const Captures& c) {
    return FromResult(ds.DeleteGroup(c[0]));
  });
  router.Add("GET", "/metrics", [ctx](const HttpRequest&, const Captures&) {
    return HttpResponse{200, "text/plain; version=0.0.4", RenderMetrics(ctx)};
  });
}

}  // namespace dpustor::manager
