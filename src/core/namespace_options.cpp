#include "core/namespace_options.hpp"

#include "protocol/channel_name.hpp"

namespace herald::core {

const namespace_options& namespace_table::for_channel(std::string_view channel) const {
  if (by_name_.empty()) return defaults_;
  auto ns = protocol::namespace_of(channel);
  if (ns.empty()) return defaults_;
  auto it = by_name_.find(std::string(ns));
  return it == by_name_.end() ? defaults_ : it->second;
}

}  // namespace herald::core
