#include "protocol/json_text.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace herald::protocol {
namespace json = boost::json;

namespace {

// Accepts every event and keeps nothing: the parser alone checks the grammar.
struct null_handler {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  using ec_t = json::error_code;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return true; }
  bool on_object_end(std::size_t, ec_t&) { return true; }
  bool on_string_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_string(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_number_part(json::string_view, ec_t&) { return true; }
  bool on_int64(std::int64_t, json::string_view, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, ec_t&) { return true; }
  bool on_double(double, json::string_view, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(json::string_view, ec_t&) { return true; }
  bool on_comment(json::string_view, ec_t&) { return true; }
};

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_space(std::string_view t, std::size_t i) noexcept {
  while (i < t.size() && is_space(t[i])) ++i;
  return i;
}

// Just past the string that opens at t[i] (valid JSON).
std::size_t skip_string(std::string_view t, std::size_t i) noexcept {
  for (++i; i < t.size() && t[i] != '"'; ++i)
    if (t[i] == '\\') ++i;
  return i + 1;
}

// Just past the value that starts at t[i] (valid JSON).
std::size_t skip_value(std::string_view t, std::size_t i) noexcept {
  if (t[i] == '"') return skip_string(t, i);
  if (t[i] == '{' || t[i] == '[') {
    std::size_t depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        i = skip_string(t, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if ((c == '}' || c == ']') && --depth == 0) return i + 1;
      ++i;
    }
    return i;
  }
  while (i < t.size() && !is_space(t[i]) && t[i] != ',' && t[i] != '}' && t[i] != ']') ++i;
  return i;
}

}  // namespace

std::string json_quote(std::string_view s) { return json::serialize(json::string_view(s.data(), s.size())); }

bool valid_json(std::string_view text, std::size_t max_depth) noexcept {
  json::parse_options opts;
  opts.max_depth = max_depth;
  json::basic_parser<null_handler> p(opts);
  json::error_code ec;
  const std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  return !ec && p.done() && n == text.size();
}

std::string compact_json(std::string_view valid) {
  std::string out;
  out.reserve(valid.size());
  for (std::size_t i = 0; i < valid.size();) {
    if (valid[i] == '"') {
      const std::size_t end = skip_string(valid, i);
      out.append(valid.substr(i, end - i));
      i = end;
    } else {
      if (!is_space(valid[i])) out += valid[i];
      ++i;
    }
  }
  return out;
}

std::optional<std::string> json_string(std::string_view value) {
  if (value.size() < 2 || value.front() != '"') return std::nullopt;
  const std::string_view inner = value.substr(1, value.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return std::string(inner);
  std::error_code ec;
  auto v = json::parse(json::string_view(value.data(), value.size()), ec);
  if (ec || !v.is_string()) return std::nullopt;
  return std::string(v.get_string());
}

std::optional<std::vector<json_member>> json_members(std::string_view valid) {
  std::size_t i = skip_space(valid, 0);
  if (i >= valid.size() || valid[i] != '{') return std::nullopt;
  std::vector<json_member> out;
  i = skip_space(valid, i + 1);
  while (i < valid.size() && valid[i] == '"') {
    const std::size_t key_end = skip_string(valid, i);
    auto key = json_string(valid.substr(i, key_end - i));
    i = skip_space(valid, skip_space(valid, key_end) + 1);  // past the ':'
    const std::size_t value_end = skip_value(valid, i);
    out.push_back({key ? std::move(*key) : std::string(), valid.substr(i, value_end - i)});
    i = skip_space(valid, value_end);
    if (i < valid.size() && valid[i] == ',') i = skip_space(valid, i + 1);
  }
  return out;
}

std::optional<std::vector<std::string_view>> json_elements(std::string_view valid) {
  std::size_t i = skip_space(valid, 0);
  if (i >= valid.size() || valid[i] != '[') return std::nullopt;
  std::vector<std::string_view> out;
  i = skip_space(valid, i + 1);
  while (i < valid.size() && valid[i] != ']') {
    const std::size_t end = skip_value(valid, i);
    out.push_back(valid.substr(i, end - i));
    i = skip_space(valid, end);
    if (i < valid.size() && valid[i] == ',') i = skip_space(valid, i + 1);
  }
  return out;
}

}  // namespace herald::protocol
