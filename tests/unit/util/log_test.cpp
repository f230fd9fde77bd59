// The structured log: text and JSON lines, escaping, levels, rate limiting with the
// count of suppressed lines, and lines of several threads that never interleave.
#include "util/log.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace herald::test {
namespace {

namespace log = util::log;

struct captured {
  std::mutex m;
  std::vector<std::string> lines;
  log::options opts(log::format fmt, std::chrono::milliseconds interval = std::chrono::milliseconds(10000)) {
    log::options o;
    o.fmt = fmt;
    o.min_level = log::level::info;
    o.rate_interval = interval;
    o.sink = [this](std::string_view l) {
      std::lock_guard lock(m);
      lines.emplace_back(l);
    };
    return o;
  }
};

class Log : public ::testing::Test {
 protected:
  void TearDown() override { log::configure({}); }  // back to stderr, info, text
  captured cap;
};

TEST_F(Log, TextLineHasTimeLevelEventAndEscapedFields) {
  log::configure(cap.opts(log::format::text));
  log::warn("redis_down", {{"shard", 0}, {"addr", "127.0.0.1:6379"}, {"msg", "a \"quoted\"\nline"}, {"up", false}});
  ASSERT_EQ(cap.lines.size(), 1u);
  const auto& l = cap.lines[0];
  EXPECT_TRUE(l.ends_with("\n"));
  EXPECT_EQ(l.find('\n'), l.size() - 1) << "an embedded newline must be escaped";
  EXPECT_EQ(l.substr(0, 2), "20");
  EXPECT_EQ(l[23], 'Z') << l;
  EXPECT_NE(l.find(" level=warn event=redis_down shard=0 addr=127.0.0.1:6379 msg=\"a \\\"quoted\\\"\\nline\" up=false"),
            std::string::npos)
      << l;
}

TEST_F(Log, JsonLinesParse) {
  log::configure(cap.opts(log::format::json));
  log::error("internal_error", {{"where", "thread 1"}, {"what", std::string("bad\x01\"x")}, {"n", 42u}, {"ratio", 0.5}});
  ASSERT_EQ(cap.lines.size(), 1u);
  boost::system::error_code ec;
  auto v = boost::json::parse(cap.lines[0], ec);
  ASSERT_FALSE(ec) << cap.lines[0];
  auto& o = v.as_object();
  EXPECT_EQ(o.at("level").as_string(), "error");
  EXPECT_EQ(o.at("event").as_string(), "internal_error");
  EXPECT_EQ(o.at("what").as_string(), "bad\x01\"x");
  EXPECT_EQ(o.at("n").as_int64(), 42);
  EXPECT_EQ(o.at("ratio").as_double(), 0.5);
  EXPECT_TRUE(o.at("ts").as_string().ends_with("Z"));
}

TEST_F(Log, LevelFilters) {
  auto o = cap.opts(log::format::text);
  o.min_level = log::level::warn;
  log::configure(std::move(o));
  log::info("start");
  log::debug("noise");
  log::warn("kept");
  ASSERT_EQ(cap.lines.size(), 1u);
  EXPECT_NE(cap.lines[0].find("event=kept"), std::string::npos);
  EXPECT_FALSE(log::enabled(log::level::info));
  EXPECT_EQ(log::parse_level("warn"), log::level::warn);
  EXPECT_FALSE(log::parse_level("verbose"));
  EXPECT_EQ(log::parse_format("json"), log::format::json);
  EXPECT_FALSE(log::parse_format("xml"));
}

TEST_F(Log, RateLimitedPerKindWithSuppressedCount) {
  log::configure(cap.opts(log::format::text, std::chrono::milliseconds(200)));
  for (int i = 0; i < 1000; ++i) log::limit("polls_per_ip", {{"addr", "10.0.0.1"}});
  log::limit("connections_per_ip");  // another kind: its own line
  ASSERT_EQ(cap.lines.size(), 2u);
  EXPECT_NE(cap.lines[0].find("event=limit_refused limit=polls_per_ip addr=10.0.0.1"), std::string::npos);
  EXPECT_EQ(cap.lines[0].find("suppressed"), std::string::npos);
  EXPECT_NE(cap.lines[1].find("limit=connections_per_ip"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  log::limit("polls_per_ip");
  ASSERT_EQ(cap.lines.size(), 3u);
  EXPECT_NE(cap.lines[2].find("limit=polls_per_ip suppressed=999"), std::string::npos) << cap.lines[2];
  log::slow_reader("ws");
  log::slow_reader("ws");
  log::flush_suppressed();
  ASSERT_EQ(cap.lines.size(), 5u);
  EXPECT_NE(cap.lines[4].find("event=slow_reader_cut transport=ws suppressed=1"), std::string::npos) << cap.lines[4];
}

TEST_F(Log, ThreadsNeverInterleave) {
  log::configure(cap.opts(log::format::json));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([t] {
      for (int i = 0; i < 500; ++i) log::info("tick", {{"thread", t}, {"i", i}, {"pad", std::string(100, 'x')}});
    });
  for (auto& t : ts) t.join();
  ASSERT_EQ(cap.lines.size(), 2000u);
  for (const auto& l : cap.lines) {
    boost::system::error_code ec;
    boost::json::parse(l, ec);
    ASSERT_FALSE(ec) << l;
  }
}

}  // namespace
}  // namespace herald::test
