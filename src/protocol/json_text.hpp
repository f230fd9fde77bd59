#pragma once
// JSON kept as the client wrote it (docs/protocol.md, "Data fidelity").
//
// A publication's `data` is delivered as published: validated, never rebuilt, so numbers
// keep their spelling (`1.5` stays `1.5`, a 30-digit integer keeps every digit) and
// strings their escapes. Only whitespace outside strings is dropped (SSE carries the
// message on one `data:` line).
//
// Validation is Boost.JSON's parser with a handler that builds nothing (no DOM, no
// allocation); the scanning below then walks text already known to be valid, which is
// why it can be this short. Boost.JSON offers no way to recover a value's source bytes,
// hence the scanner.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace herald::protocol {

/// True when `text` is exactly one JSON value (RFC 8259: no comments, no trailing
/// commas, valid UTF-8), nested at most `max_depth` deep.
bool valid_json(std::string_view text, std::size_t max_depth = 64) noexcept;

/// `valid` (valid JSON) without the whitespace outside its strings.
std::string compact_json(std::string_view valid);

/// JSON string literal for `s` (quotes included, escaped): the one quoting function.
std::string json_quote(std::string_view s);

/// A member of a JSON object: its key (unescaped) and its value's text as written.
struct json_member {
  std::string key;
  std::string_view value;
};

/// The members of `valid` (valid JSON) in order, or nullopt when it is not an object.
std::optional<std::vector<json_member>> json_members(std::string_view valid);

/// The elements of `valid` (valid JSON) as written, or nullopt when it is not an array.
std::optional<std::vector<std::string_view>> json_elements(std::string_view valid);

/// The unescaped content of `value` (the text of a valid JSON value) when it is a string.
std::optional<std::string> json_string(std::string_view value);

}  // namespace herald::protocol
