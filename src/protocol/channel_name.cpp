#include "protocol/channel_name.hpp"

#include <array>

namespace herald::protocol {
namespace {

constexpr std::array<bool, 256> make_allowed() {
  std::array<bool, 256> t{};
  for (char c = 'a'; c <= 'z'; ++c) t[static_cast<unsigned char>(c)] = true;
  for (char c = 'A'; c <= 'Z'; ++c) t[static_cast<unsigned char>(c)] = true;
  for (char c = '0'; c <= '9'; ++c) t[static_cast<unsigned char>(c)] = true;
  for (char c : std::string_view("_.:@/-")) t[static_cast<unsigned char>(c)] = true;
  return t;
}
constexpr auto allowed = make_allowed();

}  // namespace

bool valid_channel_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_channel_name) return false;
  for (unsigned char c : name)
    if (!allowed[c]) return false;
  return true;
}

std::string_view namespace_of(std::string_view channel) noexcept {
  auto colon = channel.find(':');
  return colon == std::string_view::npos ? std::string_view{} : channel.substr(0, colon);
}

}  // namespace herald::protocol
