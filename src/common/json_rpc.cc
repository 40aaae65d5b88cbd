#include "common/json_rpc.h"

namespace dpustor::rpc {

namespace {
Error Invalid(std::string what) {
  return Error{kInvalidRequest, "invalid request: " + what};
}

bool IsValidId(const json& id) {
  return id.is_string() || id.is_number() || id.is_null();
}
}  // namespace

Result<Message> Classify(json&& v, json* bad_id) {
  if (!v.is_object()) return Invalid("message is not an object");
  if (bad_id != nullptr && v.contains("id") && IsValidId(v["id"])) *bad_id = v["id"];
  auto version = v.find("jsonrpc");
  if (version == v.end() || *version != "2.0") return Invalid("\"jsonrpc\" must be \"2.0\"");

  Message m;
  auto method = v.find("method");
  if (method != v.end()) {
    if (!method->is_string()) return Invalid("\"method\" must be a string");
    m.method = method->get<std::string>();
    auto params = v.find("params");
    if (params != v.end()) {
      if (!params->is_object() && !params->is_array() && !params->is_null())
        return Invalid("\"params\" must be an object or array");
      m.params = std::move(*params);
    }
    auto id = v.find("id");
    if (id == v.end()) {
      m.kind = Message::Kind::kNotification;
    } else {
      if (!IsValidId(*id)) return Invalid("\"id\" must be a string, number or null");
      m.kind = Message::Kind::kRequest;
      m.id = *id;
    }
    return m;
  }

  auto id = v.find("id");
  if (id == v.end() || !IsValidId(*id)) return Invalid("no \"method\" and no valid \"id\"");
  m.kind = Message::Kind::kResponse;
  m.id = *id;
  auto result = v.find("result");
  auto error = v.find("error");
  if ((result == v.end()) == (error == v.end()))
    return Invalid("a response has exactly one of \"result\" and \"error\"");
  if (result != v.end()) {
    m.result = std::move(*result);
  } else {
    if (!error->is_object()) return Invalid("\"error\" must be an object");
    Error e;
    auto code = error->find("code");
    e.code =
        (code != error->end() && code->is_number_integer()) ? code->get<int>() : kInternalError;
    auto msg = error->find("message");
    e.message = (msg != error->end() && msg->is_string()) ? msg->get<std::string>() : "";
    m.error = std::move(e);
  }
  return m;
}

json MakeRequest(const json& id, std::string_view method, const json& params) {
  json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return m;
}

json MakeNotification(std::string_view method, const json& params) {
  json m = {{"jsonrpc", "2.0"}, {"method", method}};
  if (!params.is_null()) m["params"] = params;
  return m;
}

json MakeResult(const json& id, const json& result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", result}};
}

json MakeError(const json& id, const Error& error) {
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"error", {{"code", error.code}, {"message", error.message}}}};
}

std::string Encode(const json& message) {
  std::string s = message.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\n');
  return s;
}

}  // namespace dpustor::rpc
