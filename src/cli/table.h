// Renders JSON rows as an aligned text table (kubectl style) and values for humans:
// sizes in binary units, times as ages, missing values as "-".
// Pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace dpustor::cli {

using json = nlohmann::json;

enum class Format { kText, kBytes, kAge, kPercent };

struct Column {
  std::string header;
  std::string pointer;  // "/"-separated path into the row
  Format format = Format::kText;
};

std::string FormatBytes(double bytes);
std::string FormatAge(std::int64_t then_ms, std::int64_t now_ms);
std::string FormatValue(const json& value, Format format, std::int64_t now_ms);

std::string RenderTable(const json& rows, const std::vector<Column>& columns, std::int64_t now_ms);

// Indented "key: value" rendering of a document, for `describe`.
std::string RenderDocument(const json& doc, int indent = 0);

}  // namespace dpustor::cli
