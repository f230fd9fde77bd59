#pragma once
// The peers herald-bench compares herald with (--peer): configurations in bench/peers/.
#include <cstddef>
#include <string>

#include "driver.hpp"

namespace herald::bench {

/// Starts a peer from bench/peers: "nchan" (nginx + Nchan), "ws-node" (node ws server),
/// "pushpin" (Pushpin's services, with its GRIP origin started into `origin`) or
/// "baseline" (this tool as the physical baseline, `wire_bytes` per message).
void start_peer(server_process& s, server_process& origin, const std::string& peer, std::size_t wire_bytes);

}  // namespace herald::bench
