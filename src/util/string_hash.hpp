#pragma once
// A transparent hash for maps keyed by std::string: look-ups by std::string_view (a
// channel name read off the wire) do not build a string.
#include <cstddef>
#include <functional>
#include <string_view>

namespace herald::util {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

}  // namespace herald::util
