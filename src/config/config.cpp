#include "config/config.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <boost/program_options.hpp>

#include "config/option_table.hpp"
#include "protocol/channel_name.hpp"

namespace herald::config {

namespace po = boost::program_options;

namespace {

constexpr const char* version_text = "herald 0.1.0\n";

po::options_description describe() {
  po::options_description d("Options (flag, HERALD_<NAME> environment variable, or config file key)");
  auto add = d.add_options();
  for (const auto& row : option_rows()) {
    if (row.value)
      add(row.name, row.value(), row.help);
    else
      add(row.name, row.help);
  }
  return d;
}

template <class T>
T get(const po::variables_map& vm, const char* name) {
  return vm[name].as<T>();
}

// The Redis options, read and checked only with a Redis broker (--broker).
void apply_redis(const po::variables_map& vm, const std::string& urls, broker::redis_broker_options& r) {
  try {
    r.shards = broker::parse_redis_urls(urls);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("invalid broker: ") + e.what() +
                       " (memory | redis://HOST:PORT[,redis://...] | sentinel://MASTER[,...])");
  }
  try {
    r.sentinels = broker::parse_host_ports(get<std::string>(vm, "sentinels"), 26379);
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("invalid sentinels: ") + e.what() + " (HOST:PORT[,HOST:PORT...])");
  }
  const bool any_sentinel =
      std::any_of(r.shards.begin(), r.shards.end(), [](const broker::redis_endpoint& e) { return !e.master.empty(); });
  require(!any_sentinel || !r.sentinels.empty(), "sentinels",
          "a sentinel:// shard needs at least one sentinel (--sentinels HOST:PORT)");
  r.sentinel_poll = std::chrono::milliseconds(get<unsigned>(vm, "sentinel-poll"));
  require(r.sentinel_poll.count() >= 50, "sentinel-poll", "at least 50 ms");
  r.meta_ttl = std::chrono::seconds(get<unsigned>(vm, "redis-meta-ttl"));
  r.command_timeout = std::chrono::milliseconds(get<unsigned>(vm, "redis-timeout"));
  require(r.command_timeout.count() >= 100, "redis-timeout", "at least 100 ms");
}

}  // namespace

std::pair<std::string, core::namespace_options> parse_namespace(std::string_view spec, core::namespace_options o) {
  const std::string setting = "namespace \"" + std::string(spec) + "\"";
  auto colon = spec.find(':');
  std::string name(spec.substr(0, colon));
  require(!name.empty() && protocol::valid_channel_name(name) && name.find(':') == std::string::npos, setting,
          "expected NAME:key=value,... with a valid namespace name");
  if (colon == std::string_view::npos) return {name, o};
  std::string_view rest = spec.substr(colon + 1);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view kv = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    auto eq = kv.find('=');
    require(eq != std::string_view::npos, setting, "expected key=value, got \"" + std::string(kv) + "\"");
    auto key = kv.substr(0, eq), value = kv.substr(eq + 1);
    const auto& keys = namespace_keys();
    auto k = std::find_if(keys.begin(), keys.end(), [&](const namespace_key& nk) { return key == nk.name; });
    if (k == keys.end()) {
      std::string known;
      for (const auto& nk : keys) known += (known.empty() ? "" : ", ") + std::string(nk.name);
      throw config_error("invalid " + setting + ": unknown key \"" + std::string(key) + "\" (" + known + ")");
    }
    k->apply(value, setting, o);
  }
  return {name, o};
}

namespace {

// Stores the flags, then the environment, then the file into `vm` (first stored wins).
// `file`: the config file's contents, or null to read the file named by --config.
void read_sources(const po::options_description& desc, int argc, const char* const* argv,
                  const std::vector<std::string>& env, std::istream* file, po::variables_map& vm) {
  try {
    // First stored wins: flags, then environment, then the file.
    po::store(po::parse_command_line(argc, argv, desc), vm);
    std::vector<std::string> names;
    for (auto& opt : desc.options()) names.push_back(opt->long_name());
    auto mapper = [&](const std::string& var) -> std::string {
      if (!var.starts_with("HERALD_")) return "";
      std::string name = var.substr(7);
      for (auto& c : name) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        std::fprintf(stderr, "herald: ignoring unknown environment variable %s\n", var.c_str());
        return "";
      }
      return name;
    };
    {
      // parse_environment reads the process environment; we take the given list instead.
      po::parsed_options parsed(&desc);
      for (auto& kv : env) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string name = mapper(kv.substr(0, eq));
        if (name.empty()) continue;
        po::option opt;
        opt.string_key = name;
        opt.value.push_back(kv.substr(eq + 1));
        opt.original_tokens = {kv};
        parsed.options.push_back(opt);
      }
      po::store(parsed, vm);
    }
    if (file) {
      po::store(po::parse_config_file(*file, desc), vm);
    } else if (vm.count("config")) {
      const auto path = vm["config"].as<std::string>();
      std::ifstream named(path);
      if (!named) throw config_error("invalid config: cannot read file \"" + path + "\"");
      po::store(po::parse_config_file(named, desc), vm);
    }
    po::notify(vm);
  } catch (const po::error_with_option_name& e) {
    // Not e.what(): Boost builds that message by substituting %value% (and the like) in
    // a loop that never ends when a value itself holds such a placeholder (fuzzing
    // finding F2, docs/fuzzing.md). The option's name and the kind of error are enough.
    const char* kind = dynamic_cast<const po::unknown_option*>(&e)         ? "unknown option"
                       : dynamic_cast<const po::multiple_occurrences*>(&e) ? "given more than once"
                       : dynamic_cast<const po::validation_error*>(&e)     ? "invalid value"
                                                                           : "invalid use";
    throw config_error(std::string(kind) + ": " + e.get_option_name());
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
}

// `file`: the config file's contents, or null to read the file named by --config.
parse_result parse_from(int argc, const char* const* argv, const std::vector<std::string>& env, std::istream* file) {
  const auto desc = describe();
  po::variables_map vm;
  read_sources(desc, argc, argv, env, file, vm);

  parse_result out;
  if (vm.count("help")) {
    std::ostringstream s;
    s << "herald: a real-time push server (WebSocket, Server-Sent Events, long polling)\n\n"
      << "usage: herald [options]\n\n"
      << desc << "\nEvery option can also be set as HERALD_<NAME> (e.g. HERALD_LISTEN, HERALD_API_KEY)\n"
      << "or as `name = value` in the --config file; flags win over the environment, which wins over the file.\n";
    out.output = s.str();
    return out;
  }
  if (vm.count("version")) {
    out.output = version_text;
    return out;
  }

  // Each option alone, in table order; then the checks across options.
  settings st;
  for (const auto& row : option_rows())
    if (row.apply) row.apply(vm, st);
  config& c = st.c;
  if (c.broker != "memory") apply_redis(vm, c.broker, c.redis);

  c.namespaces = core::namespace_table(st.ns);
  if (vm.count("namespace"))
    for (const auto& spec : vm["namespace"].as<std::vector<std::string>>()) {
      auto [name, o] = parse_namespace(spec, st.ns);
      require(o.history_size <= 1'000'000, "namespace " + name + " history_size", "at most 1000000");
      c.namespaces.set(name, o);
    }

  auto& t = c.transport;
  require(t.poll_limit > 0 && t.poll_limit <= t.poll_limit_max, "poll-limit", "must be 1..poll-limit-max");
  require(t.poll_timeout <= t.poll_timeout_max, "poll-timeout", "must not exceed poll-timeout-max");
  require(t.tls_cert.empty() == t.tls_key.empty(), t.tls_cert.empty() ? "tls-cert" : "tls-key",
          "--tls-cert and --tls-key go together");
  if (!t.tls_cert.empty()) t.scheme = "https";
  c.api.history_limit_max = t.poll_limit_max;  // one cap for /api/history, WebSocket history and polls
  require(c.api.max_data_bytes + 4096 <= t.max_body_bytes, "max-message-size",
          "must leave 4096 bytes of room under max-body-size");
  out.cfg = std::move(c);
  return out;
}

}  // namespace

parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env) {
  return parse_from(argc, argv, env, nullptr);
}

parse_result parse(int argc, const char* const* argv, const std::vector<std::string>& env, std::istream& file) {
  return parse_from(argc, argv, env, &file);
}

}  // namespace herald::config
