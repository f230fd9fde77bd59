#pragma once
// Options of the HTTP server API (documented in docs/config.md).
#include <cstddef>
#include <string>

namespace herald::api {

struct options {
  std::string api_key;                     // empty: /api/* is open
  std::size_t max_data_bytes = 64 * 1024;  // a message's data, compact JSON
  std::size_t max_broadcast_channels = 1000;
  std::size_t history_limit_max = 1000;
  std::size_t channels_list_max = 10000;
  std::string web_root;  // static files for GET (demo, browser client); empty: built-in demo page
};

}  // namespace herald::api
