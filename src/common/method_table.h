// MethodTable maps JSON-RPC method names to handlers, SPDK style: one registration line per
// method, each with a one-line summary (served by rpc_get_methods-like listings and kept in
// step with docs/protocol.md). `Context` is whatever the handler acts on (a session, a
// simulator state). Handlers decode params with rpc::Params and either return a result or
// throw CallError; asynchronous handlers complete through the Reply they are given.
// Registration is not thread-safe; Dispatch is const and may run concurrently.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/json_rpc.h"
#include "common/params.h"
#include "common/status.h"

namespace dpustor::rpc {

using Reply = std::function<void(Result<json>)>;

template <class Context>
class MethodTable {
 public:
  using SyncHandler = std::function<json(Context&, const json& params)>;
  using AsyncHandler = std::function<void(Context&, const json& params, Reply reply)>;

  MethodTable& Add(std::string name, std::string summary, SyncHandler handler) {
    methods_[std::move(name)] = Entry{std::move(summary), std::move(handler), nullptr};
    return *this;
  }
  MethodTable& AddAsync(std::string name, std::string summary, AsyncHandler handler) {
    methods_[std::move(name)] = Entry{std::move(summary), nullptr, std::move(handler)};
    return *this;
  }

  bool Contains(const std::string& name) const { return methods_.count(name) != 0; }

  std::vector<std::string> Names() const {
    std::vector<std::string> names;
    for (const auto& [name, _] : methods_) names.push_back(name);
    return names;
  }

  // Runs the handler for `method`; `reply` is called exactly once (possibly later, for
  // asynchronous handlers). Unknown methods get kMethodNotFound; a handler's CallError
  // becomes its error; any other exception becomes kInternalError, never a crash.
  void Dispatch(Context& ctx, const std::string& method, const json& params, Reply reply) const {
    auto it = methods_.find(method);
    if (it == methods_.end()) {
      reply(Error{kMethodNotFound, "method not found: " + method});
      return;
    }
    try {
      if (it->second.sync) {
        reply(it->second.sync(ctx, params));
      } else {
        it->second.async(ctx, params, reply);
      }
    } catch (const CallError& e) {
      reply(e.error());
    } catch (const nlohmann::json::exception& e) {
      reply(Error{kInvalidParams, std::string("invalid params: ") + e.what()});
    } catch (const std::exception& e) {
      reply(Error{kInternalError, std::string("internal error: ") + e.what()});
    }
  }

 private:
  struct Entry {
    std::string summary;
    SyncHandler sync;
    AsyncHandler async;
  };
  std::map<std::string, Entry> methods_;
};

}  // namespace dpustor::rpc
