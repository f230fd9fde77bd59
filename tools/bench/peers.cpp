#include "peers.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace herald::bench {

namespace {

using substitutions = std::vector<std::pair<std::string, std::string>>;

// Copies bench/peers/NAME to `to`, replacing each @KEY@.
void write_template(const std::string& name, const std::string& to, const substitutions& subs) {
  std::ifstream in("bench/peers/" + name);
  if (!in) throw std::runtime_error("cannot read bench/peers/" + name + " (run from the repository root)");
  std::stringstream conf;
  conf << in.rdbuf();
  std::string text = conf.str();
  for (const auto& [k, v] : subs)
    for (auto p = text.find(k); p != std::string::npos; p = text.find(k)) text.replace(p, k.size(), v);
  std::ofstream(to) << text;
}

}  // namespace

// Starts a peer from bench/peers: "nchan" (nginx + Nchan), "ws-node" (node ws server) or
// "pushpin" (Pushpin's services, with its GRIP origin started into `origin`).
void start_peer(server_process& s, server_process& origin, const std::string& peer, std::size_t wire_bytes) {
  s.port = free_port();
  const std::string port = std::to_string(s.port);
  if (peer == "baseline") {
    s.pid = spawn({"/proc/self/exe", "--baseline-server", port, "--baseline-bytes", std::to_string(wire_bytes)});
  } else if (peer == "nchan") {
    char tmpl[] = "/tmp/herald-bench-nchan-XXXXXX";
    const std::string prefix = mkdtemp(tmpl);
    s.tmpdir = prefix;
    write_template("nchan.conf", prefix + "/nginx.conf", {{"@PORT@", port}, {"@PREFIX@", prefix}});
    s.pid = spawn({"/usr/sbin/nginx", "-c", prefix + "/nginx.conf", "-p", prefix});
  } else if (peer == "ws-node") {
    s.pid = spawn({"/usr/bin/env", "node", "bench/peers/ws-server.mjs", port});
  } else if (peer == "pushpin") {
    char tmpl[] = "/tmp/herald-bench-pushpin-XXXXXX";
    const std::string prefix = mkdtemp(tmpl);
    s.tmpdir = prefix;
    std::filesystem::create_directories(prefix + "/run");
    std::filesystem::create_directories(prefix + "/log");
    origin.port = free_port();
    origin.pid = spawn({"/usr/bin/env", "node", "bench/peers/pushpin-origin.mjs", std::to_string(origin.port)},
                       prefix + "/log/origin.log");
    if (!wait_listening(origin.port)) throw std::runtime_error("the Pushpin origin did not start listening");
    s.publish_port = free_port();
    write_template("pushpin.routes", prefix + "/routes", {{"@ORIGIN_PORT@", std::to_string(origin.port)}});
    write_template("pushpin.conf", prefix + "/pushpin.conf",
                   {{"@PORT@", port}, {"@PREFIX@", prefix}, {"@PUBPORT@", std::to_string(s.publish_port)},
                    {"@ROUTES@", prefix + "/routes"}});
    s.pid = spawn({"/usr/bin/pushpin", "--config", prefix + "/pushpin.conf"}, prefix + "/log/runner.log");
    if (!wait_listening(s.publish_port)) throw std::runtime_error("pushpin did not open its publish port");
    // Its services connect to each other over ZeroMQ after they listen: a subscription
    // made in the first instants can be answered and yet not registered.
    std::this_thread::sleep_for(std::chrono::seconds(1));
  } else {
    throw std::invalid_argument("unknown peer " + peer + " (herald, nchan, ws-node, pushpin, baseline)");
  }
  if (!wait_listening(s.port)) throw std::runtime_error(peer + " did not start listening");
}

}  // namespace herald::bench
