#pragma once
#include <string_view>

namespace herald::api {
/// The demo page served at GET /: subscribes over SSE and publishes through the API.
std::string_view demo_page_html() noexcept;
}  // namespace herald::api
