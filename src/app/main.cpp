// herald: entry point. Parses the configuration, starts the server, reports where it
// listens, and exits with 2 on a configuration or start-up error.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "config/config.hpp"
#include "server/server.hpp"
#include "util/log.hpp"

extern char** environ;

int main(int argc, char** argv) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  try {
    auto parsed = herald::config::parse(argc, argv, env);
    if (!parsed.cfg) {
      std::cout << parsed.output;
      return 0;
    }
    herald::util::log::options log_opts;
    log_opts.min_level = parsed.cfg->log_level;
    log_opts.fmt = parsed.cfg->log_format;
    herald::util::log::configure(std::move(log_opts));
    const std::string broker = parsed.cfg->broker;
    const char* scheme = parsed.cfg->transport.tls_cert.empty() ? "http" : "https";
    herald::server::server srv(std::move(*parsed.cfg));
    srv.start();
    auto ep = srv.endpoint();
    const auto host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    std::printf("herald listening on %s://%s:%u (broker: %s)\n", scheme, host.c_str(),
                static_cast<unsigned>(ep.port()), broker.c_str());
    std::fflush(stdout);
    srv.run();
    return 0;
  } catch (const herald::config::config_error& e) {
    std::cerr << "herald: " << e.what() << " (see herald --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "herald: " << e.what() << "\n";
    return 2;
  }
}
