#include "core/history_read.hpp"

#include <algorithm>

#include "protocol/cursor.hpp"
#include "protocol/replies.hpp"

namespace herald::core {

std::variant<position, util::api_error> cursor_position(std::string_view token, std::string_view channel) {
  auto entries = protocol::decode_cursor(token);
  if (!entries) return util::bad_request("bad_cursor", "since is not a valid cursor");
  const auto tag = protocol::channel_tag(channel);
  auto it = std::find_if(entries->begin(), entries->end(), [&](auto& e) { return e.tag == tag; });
  if (it == entries->end())
    return util::bad_request("bad_cursor", "the cursor does not cover channel " + std::string(channel));
  return position{it->epoch, it->offset};
}

std::string history_json(std::string_view channel, const history_reply& reply, const std::optional<position>& since) {
  protocol::cursor_entry pos{protocol::channel_tag(channel), reply.epoch, reply.top};
  if (!reply.messages.empty())
    pos.offset = reply.messages.back()->offset();
  else if (since && reply.recovered)
    pos.offset = since->offset;
  return protocol::history_reply(reply.messages, protocol::encode_cursor({&pos, 1}), reply.recovered);
}

}  // namespace herald::core
