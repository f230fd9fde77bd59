#pragma once
// A backend hook's URL (--connect-hook, --subscribe-hook, --publish-hook), checked.
#include <string>

#include "transport/options.hpp"

namespace herald::config {

/// http://HOST[:PORT][/PATH] (an IPv6 host in brackets) split for the hook client; an
/// empty URL is no hook. Throws config_error naming `setting`.
transport::hook_endpoint parse_hook_url(const std::string& url, const std::string& setting);

}  // namespace herald::config
