#pragma once
// The backend hooks' options (--connect-hook, --subscribe-hook, --publish-hook and their
// limits), checked.
#include <string>

#include <boost/program_options/variables_map.hpp>

#include "transport/options.hpp"

namespace herald::config {

/// http://HOST[:PORT][/PATH] (an IPv6 host in brackets) split for the hook client; an
/// empty URL is no hook. Throws config_error naming `setting`.
transport::hook_endpoint parse_hook_url(const std::string& url, const std::string& setting);

/// Every hook option of `vm`. Throws config_error naming the bad one.
transport::hook_options hook_options_from(const boost::program_options::variables_map& vm);

}  // namespace herald::config
