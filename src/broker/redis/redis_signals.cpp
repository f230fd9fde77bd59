#include "broker/redis/redis_signals.hpp"

#include <limits>

#include "util/parse_decimal.hpp"

namespace herald::broker {

namespace {
char kind_letter(protocol::message_kind k) {
  switch (k) {
    case protocol::message_kind::join:
      return 'j';
    case protocol::message_kind::leave:
      return 'l';
    default:
      return 'e';
  }
}
}  // namespace

std::string signal_payload(const protocol::message& m) {
  std::string p = "s ";
  p += kind_letter(m.kind());
  p += ' ';
  p += std::to_string(m.time_ms());
  p += ' ';
  // join and leave carry their body (who) as the data; their event name is implied.
  const bool ephemeral = m.kind() == protocol::message_kind::ephemeral;
  p += ephemeral && !m.event().empty() ? std::string_view(m.event()) : std::string_view(".");
  p += ' ';
  if (ephemeral) {
    p += m.data_json();
  } else {
    // The inner object without its "channel" member: {"channel":"C",<rest>} → {<rest>}.
    auto inner = m.data_json();
    const std::size_t skip = std::string_view("{\"channel\":\"\"").size() + m.channel().size();
    p += '{';
    if (inner.size() > skip + 1)
      p += inner.substr(skip + 1);  // after the comma
    else
      p += '}';
  }
  return p;
}

protocol::message_ptr parse_signal_payload(const std::string& channel, std::string_view payload) {
  // "s <kind> <time> <event|.> <body>"
  std::string_view f[5];
  for (std::size_t i = 0; i < 4; ++i) {
    auto sp = payload.find(' ');
    if (sp == std::string_view::npos) return nullptr;
    f[i] = payload.substr(0, sp);
    payload.remove_prefix(sp + 1);
  }
  f[4] = payload;
  if (f[0] != "s" || f[1].size() != 1 || f[4].empty()) return nullptr;
  auto time = util::parse_decimal(f[2], static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
  if (!time) return nullptr;
  protocol::message_kind kind;
  switch (f[1][0]) {
    case 'e':
      kind = protocol::message_kind::ephemeral;
      break;
    case 'j':
      kind = protocol::message_kind::join;
      break;
    case 'l':
      kind = protocol::message_kind::leave;
      break;
    default:
      return nullptr;
  }
  if (kind != protocol::message_kind::ephemeral && f[4].front() != '{') return nullptr;
  return std::make_shared<protocol::message>(kind, channel, static_cast<std::int64_t>(*time),
                                             f[3] == "." ? std::string() : std::string(f[3]), f[4]);
}

}  // namespace herald::broker
