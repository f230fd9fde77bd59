// The broker contract against the Redis broker and a real redis-server (started per
// test on a free loopback port). Skipped, saying so, when redis-server is not installed.
#include "broker/redis/redis_broker.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "broker/broker_contract.hpp"

extern char** environ;

namespace herald::test {
namespace {

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A redis-server child process on a free port, without persistence.
struct redis_process {
  pid_t pid = -1;
  int port = 0;
  bool start() {
    port = free_port();
    std::string p = std::to_string(port);
    const char* argv[] = {"redis-server", "--port", p.c_str(), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--loglevel", "warning", nullptr};
    if (posix_spawnp(&pid, "redis-server", nullptr, nullptr, const_cast<char**>(argv), environ) != 0) return false;
    for (int i = 0; i < 200; ++i) {
      if (can_connect(port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  ~redis_process() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

bool redis_available() { return ::system("command -v redis-server >/dev/null 2>&1") == 0; }

broker_fixture make_redis_broker(const core::namespace_table& ns) {
  if (!redis_available()) return {};
  auto redis = std::make_shared<redis_process>();
  if (!redis->start()) return {};
  broker::redis_broker_options opts;
  opts.shards = {{"127.0.0.1", redis->port}};
  auto b = std::make_unique<broker::redis_broker>(ns, opts);
  b->start();
  for (int i = 0; i < 300 && !b->ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto* raw = b.get();
  return {std::move(b), [raw, redis] { raw->stop(); }};
}

}  // namespace

INSTANTIATE_TEST_SUITE_P(Redis, BrokerContract, ::testing::Values(broker_factory{"redis", make_redis_broker}),
                         [](const auto& info) { return info.param.name; });

}  // namespace herald::test
