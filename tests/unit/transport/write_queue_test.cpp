#include "transport/write_queue.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>

using herald::protocol::message;
using herald::transport::write_queue;

namespace {
std::string joined(const std::vector<boost::asio::const_buffer>& bufs) {
  std::string out;
  for (auto& b : bufs) out.append(static_cast<const char*>(b.data()), b.size());
  return out;
}
}  // namespace

TEST(WriteQueue, GathersSharedAndCopiedBytesInOrderAndMergesAdjacentCopies) {
  auto m = std::make_shared<message>("c", 1, 1, 0, "", "1");
  write_queue q;
  q.push_copy("head ");
  q.push_copy("more ");
  q.push_shared(m->json(), m);
  q.push_copy(" tail");
  EXPECT_EQ(q.pending_bytes(), 10 + m->json().size() + 5);
  const auto& bufs = q.start();
  EXPECT_EQ(bufs.size(), 3u);  // the two adjacent copies are one piece
  EXPECT_EQ(joined(bufs), "head more " + m->json() + " tail");
  EXPECT_TRUE(q.writing());
  EXPECT_EQ(q.pending_bytes(), 0u);
}

TEST(WriteQueue, WhatQueuesDuringAWriteLeavesInTheNextOne) {
  write_queue q;
  q.push_copy("a");
  q.start();
  q.push_copy("b");
  q.push_copy("c");
  EXPECT_EQ(q.queued_bytes(), 3u);
  EXPECT_EQ(q.pending_bytes(), 2u);
  q.done();
  EXPECT_FALSE(q.empty());
  EXPECT_EQ(joined(q.start()), "bc");
  q.done();
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.queued_bytes(), 0u);
}

TEST(WriteQueue, ClearDuringAWriteKeepsTheBytesInFlight) {
  write_queue q;
  q.push_copy("in flight");
  const auto& bufs = q.start();
  q.push_copy("dropped");
  q.clear();
  EXPECT_EQ(joined(bufs), "in flight");  // still valid for the write under way
  q.done();
  EXPECT_TRUE(q.empty());
}
