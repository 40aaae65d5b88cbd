// Params decodes the "params" object of a JSON-RPC request into typed values, SPDK style:
// every failure names the field and what was expected, and becomes a kInvalidParams error at
// the dispatcher. Handlers decode first and act after, so a bad request changes nothing.
// A Params borrows the JSON it reads; use it within the handler call. A Params for an object
// nested in the request names its fields under a prefix ("shares[2].tag").
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/json_rpc.h"

namespace dpustor::rpc {

// Thrown by handlers to fail a call with a specific code; caught by the dispatcher.
class CallError : public std::runtime_error {
 public:
  CallError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }
  Error error() const { return Error{code_, what()}; }

 private:
  int code_;
};

inline CallError ParamError(std::string_view field, std::string_view problem) {
  return CallError(kInvalidParams,
                   "invalid params: '" + std::string(field) + "': " + std::string(problem));
}

class Params {
 public:
  // Accepts an object or null (no params); anything else is an error.
  explicit Params(const json& params, std::string prefix = "")
      : p_(params), prefix_(std::move(prefix)) {
    if (!p_.is_object() && !p_.is_null())
      throw CallError(kInvalidParams, "invalid params: expected an object");
  }

  bool Has(std::string_view name) const { return p_.is_object() && p_.contains(name); }

  template <class T>
  T Required(std::string_view name) const {
    if (!Has(name)) throw ParamError(Field(name), "required");
    return Convert<T>(Field(name), p_.at(std::string(name)));
  }

  template <class T>
  std::optional<T> Optional(std::string_view name) const {
    if (!Has(name) || p_.at(std::string(name)).is_null()) return std::nullopt;
    return Convert<T>(Field(name), p_.at(std::string(name)));
  }

  template <class T>
  T Get(std::string_view name, T fallback) const {
    auto v = Optional<T>(name);
    return v ? *v : fallback;
  }

  // Fails on any key not in `known` (or `also`), so a misspelt option is not silently ignored.
  void RejectUnknown(std::initializer_list<std::string_view> known,
                     std::initializer_list<std::string_view> also = {}) const {
    if (!p_.is_object()) return;
    for (const auto& [key, _] : p_.items()) {
      bool found = false;
      for (auto k : known) found = found || k == key;
      for (auto k : also) found = found || k == key;
      if (!found) throw ParamError(Field(key), "unknown parameter");
    }
  }

 private:
  template <class T>
  static T Convert(const std::string& name, const json& v) {
    if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) throw ParamError(name, "expected a string");
      return v.get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) throw ParamError(name, "expected a boolean");
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer()) throw ParamError(name, "expected an integer");
      if constexpr (std::is_unsigned_v<T>) {
        if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)
          throw ParamError(name, "expected a non-negative integer");
        auto u = v.get<std::uint64_t>();
        if (u > std::numeric_limits<T>::max()) throw ParamError(name, "out of range");
        return static_cast<T>(u);
      } else {
        if (v.is_number_unsigned() &&
            v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
          throw ParamError(name, "out of range");
        auto i = v.get<std::int64_t>();
        if (i < std::numeric_limits<T>::min() || i > std::numeric_limits<T>::max())
          throw ParamError(name, "out of range");
        return static_cast<T>(i);
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) throw ParamError(name, "expected a number");
      return v.get<T>();
    } else if constexpr (std::is_same_v<T, json>) {
      return v;
    } else {
      static_assert(sizeof(T) == 0, "unsupported parameter type");
    }
  }

  std::string Field(std::string_view name) const {
    return prefix_.empty() ? std::string(name) : prefix_ + "." + std::string(name);
  }

  const json& p_;
  const std::string prefix_;
};

}  // namespace dpustor::rpc
