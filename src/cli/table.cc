#include "cli/table.h"

#include <algorithm>
#include <cstdio>

namespace dpustor::cli {

namespace {
const json& At(const json& doc, const std::string& pointer) {
  static const json kNull = nullptr;
  const json* cur = &doc;
  std::size_t start = 0;
  while (start <= pointer.size()) {
    auto slash = pointer.find('/', start);
    std::string key =
        pointer.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!cur->is_object() || !cur->contains(key)) return kNull;
    cur = &(*cur)[key];
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return *cur;
}

std::string Scalar(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", v.get<double>());
    return buf;
  }
  return v.dump();
}
}  // namespace

std::string FormatBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  int u = 0;
  while (bytes >= 1024 && u < 5) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, bytes < 10 ? "%.1f %s" : "%.0f %s", bytes, units[u]);
  }
  return buf;
}

std::string FormatAge(std::int64_t then_ms, std::int64_t now_ms) {
  if (then_ms <= 0) return "never";
  std::int64_t s = std::max<std::int64_t>(0, (now_ms - then_ms) / 1000);
  if (s < 120) return std::to_string(s) + "s ago";
  if (s < 7200) return std::to_string(s / 60) + "m ago";
  if (s < 172800) return std::to_string(s / 3600) + "h ago";
  return std::to_string(s / 86400) + "d ago";
}

std::string FormatValue(const json& value, Format format, std::int64_t now_ms) {
  if (value.is_null()) return "-";
  switch (format) {
    case Format::kBytes:
      return value.is_number() ? FormatBytes(value.get<double>()) : Scalar(value);
    case Format::kAge:
      return value.is_number() ? FormatAge(value.get<std::int64_t>(), now_ms) : Scalar(value);
    case Format::kPercent:
      return value.is_number() ? Scalar(json(value.get<double>())) + "%" : Scalar(value);
    case Format::kText:
      break;
  }
  if (value.is_array()) {
    std::string s;
    for (const auto& v : value) s += (s.empty() ? "" : ",") + Scalar(v);
    return s.empty() ? "-" : s;
  }
  return Scalar(value);
}

std::string RenderTable(const json& rows, const std::vector<Column>& columns, std::int64_t now_ms) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> width;
  for (const auto& c : columns) width.push_back(c.header.size());
  if (rows.is_array()) {
    for (const auto& row : rows) {
      std::vector<std::string> line;
      for (std::size_t i = 0; i < columns.size(); ++i) {
        line.push_back(FormatValue(At(row, columns[i].pointer), columns[i].format, now_ms));
        width[i] = std::max(width[i], line.back().size());
      }
      cells.push_back(std::move(line));
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    std::string text;
    for (std::size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size()) text += std::string(width[i] - line[i].size() + 3, ' ');
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  };
  std::vector<std::string> headers;
  for (const auto& c : columns) headers.push_back(c.header);
  emit(headers);
  for (const auto& line : cells) emit(line);
  return out;
}

std::string RenderDocument(const json& doc, int indent) {
  std::string pad(indent, ' ');
  std::string out;
  if (doc.is_object()) {
    for (const auto& [k, v] : doc.items()) {
      if ((v.is_object() && !v.empty()) || (v.is_array() && !v.empty() && !v[0].is_primitive())) {
        out += pad + k + ":\n" + RenderDocument(v, indent + 2);
      } else {
        out += pad + k + ": " + FormatValue(v, Format::kText, 0) + "\n";
      }
    }
  } else if (doc.is_array()) {
    for (const auto& v : doc) {
      if (v.is_primitive()) {
        out += pad + "- " + Scalar(v) + "\n";
      } else {
        std::string inner = RenderDocument(v, indent + 2);
        if (inner.size() >= std::size_t(indent + 2)) inner.replace(indent, 2, "- ");
        out += inner;
      }
    }
  } else {
    out += pad + Scalar(doc) + "\n";
  }
  return out;
}

}  // namespace dpustor::cli
