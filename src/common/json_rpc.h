// JSON-RPC 2.0 message model shared by every dpustor protocol (agents <-> manager, SNAP,
// dpustor-fsd control): error codes, message classification and builders.
// Pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace dpustor::rpc {

using json = nlohmann::json;

// Standard codes (JSON-RPC 2.0 section 5.1).
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
// dpustor codes, in the range JSON-RPC reserves for implementations.
inline constexpr int kTimeout = -32000;
inline constexpr int kConnectionClosed = -32001;
inline constexpr int kUnauthorized = -32002;
inline constexpr int kUnsupportedVersion = -32003;
inline constexpr int kNotFound = -32004;
inline constexpr int kAlreadyExists = -32005;
inline constexpr int kBusy = -32006;
inline constexpr int kFailed = -32010;  // the operation ran and failed (see message)

inline Error InvalidParams(std::string what) {
  return Error{kInvalidParams, std::move(what)};
}

// A field of a peer's reply read leniently (replies differ between peer versions): the
// string at key, else empty.
inline std::string StringField(const json& obj, const char* key) {
  auto it = obj.find(key);  // end() when obj is not an object
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

struct Message {
  enum class Kind { kRequest, kNotification, kResponse };
  Kind kind = Kind::kRequest;
  json id;  // request and response only
  std::string method;
  json params;                 // object, array or null
  json result;                 // response on success
  std::optional<Error> error;  // response on failure
};

// Classifies one parsed JSON value, moving its params or result into the Message (reports
// can be large; they are not copied). Fails with kInvalidRequest (and the id, when one
// could be read, in `bad_id`) when the value is not a JSON-RPC 2.0 message.
Result<Message> Classify(json&& value, json* bad_id = nullptr);

json MakeRequest(const json& id, std::string_view method, const json& params);
json MakeNotification(std::string_view method, const json& params);
json MakeResult(const json& id, const json& result);
json MakeError(const json& id, const Error& error);

// Serialises one message for the wire: compact JSON and a trailing newline. Invalid UTF-8
// in strings is replaced rather than thrown on, so hostile input cannot abort a reply.
std::string Encode(const json& message);

}  // namespace dpustor::rpc
