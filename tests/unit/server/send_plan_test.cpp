// send_plan: which bytes of a plain-TCP response go by sendfile and which
// by a gathered write, stepped through with chosen partial writes.

#include "cmp/server/send_plan.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace cmp::server {
namespace {

using snapshot::segment_file;

std::string joined(std::span<const boost::asio::const_buffer> iov) {
  std::string s;
  for (const auto& b : iov) s.append(static_cast<const char*>(b.data()), b.size());
  return s;
}

struct response {
  std::string head = "HTTP/1.1 200 OK\r\n\r\n";
  std::string big = std::string(100 * 1024, 'x');
  std::string small = std::string(1000, 'y');
  std::string tail = "cerebras_proxy_scrapes_total 1\n";
};

TEST(SendPlan, AHeadThenAFileRangeThenATail) {
  response r;
  const std::vector<std::string_view> parts{r.head, r.big, r.tail};
  const std::vector<segment_file> files{{}, {7, 4096}, {}};
  send_plan plan(parts, files);
  EXPECT_TRUE(plan.uses_sendfile());
  std::array<boost::asio::const_buffer, 64> iov;

  auto s = plan.next(iov);
  EXPECT_EQ(s.fd, -1);
  ASSERT_EQ(s.count, 1u);
  EXPECT_EQ(joined({iov.data(), s.count}), r.head);
  EXPECT_TRUE(s.more);  // MSG_MORE: the head does not leave alone
  plan.advance(s.size);

  s = plan.next(iov);
  EXPECT_EQ(s.fd, 7);
  EXPECT_EQ(s.offset, 4096u);
  EXPECT_EQ(s.size, r.big.size());
  EXPECT_TRUE(s.more);
  plan.advance(30000);  // the socket took part of it
  s = plan.next(iov);
  EXPECT_EQ(s.fd, 7);
  EXPECT_EQ(s.offset, 4096u + 30000u);
  EXPECT_EQ(s.size, r.big.size() - 30000);
  plan.advance(s.size);

  s = plan.next(iov);
  EXPECT_EQ(s.fd, -1);
  EXPECT_EQ(joined({iov.data(), s.count}), r.tail);
  EXPECT_FALSE(s.more);  // the last bytes: pushed
  plan.advance(s.size);
  EXPECT_TRUE(plan.done());
}

TEST(SendPlan, SmallFileRangesGoInTheGatheredWriteFromMemory) {
  response r;
  const std::vector<std::string_view> parts{r.head, r.small, r.tail, r.small};
  const std::vector<segment_file> files{{}, {7, 0}, {}, {7, 5000}};
  send_plan plan(parts, files);
  EXPECT_FALSE(plan.uses_sendfile());  // the server then keeps its scatter write
  std::array<boost::asio::const_buffer, 64> iov;
  const auto s = plan.next(iov);
  EXPECT_EQ(s.fd, -1);
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(joined({iov.data(), s.count}), r.head + r.small + r.tail + r.small);
  EXPECT_FALSE(s.more);
}

TEST(SendPlan, APartialGatheredWriteResumesMidPart) {
  response r;
  const std::vector<std::string_view> parts{r.head, r.small, r.big};
  const std::vector<segment_file> files{{}, {}, {3, 0}};
  send_plan plan(parts, files);
  std::array<boost::asio::const_buffer, 64> iov;
  auto s = plan.next(iov);
  EXPECT_EQ(joined({iov.data(), s.count}), r.head + r.small);
  plan.advance(r.head.size() + 10);
  s = plan.next(iov);
  EXPECT_EQ(joined({iov.data(), s.count}), r.small.substr(10));
  EXPECT_TRUE(s.more);
  plan.advance(s.size);
  s = plan.next(iov);
  EXPECT_EQ(s.fd, 3);
  EXPECT_FALSE(s.more);
  plan.advance(s.size);
  EXPECT_TRUE(plan.done());
}

TEST(SendPlan, NoStepIsLargerThanMaxStepOrMoreBuffersThanGiven) {
  const std::string huge(send_plan::max_step * 2 + 5, 'z');
  const std::string part(100, 'p');
  std::vector<std::string_view> parts{huge};
  std::vector<segment_file> files{{9, 0}};
  for (int i = 0; i < 10; ++i) {
    parts.push_back(part);
    files.emplace_back();
  }
  send_plan plan(parts, files);
  std::array<boost::asio::const_buffer, 4> iov;
  std::vector<send_plan::step> steps;
  std::size_t total = 0;
  while (!plan.done()) {
    const auto s = plan.next(iov);
    ASSERT_LE(s.size, send_plan::max_step);
    ASSERT_LE(s.count, iov.size());
    ASSERT_GT(s.size, 0u);
    steps.push_back(s);
    total += s.size;
    plan.advance(s.size);
  }
  EXPECT_EQ(total, huge.size() + 10 * part.size());
  ASSERT_EQ(steps.size(), 3u + 3u);  // sendfile x3, then 4 + 4 + 2 buffers
  EXPECT_EQ(steps[2].offset, 2 * send_plan::max_step);
  EXPECT_EQ(steps[2].size, 5u);
  for (std::size_t i = 0; i + 1 < steps.size(); ++i) EXPECT_TRUE(steps[i].more) << i;
  EXPECT_FALSE(steps.back().more);
}

TEST(SendPlan, EmptyPartsAreSkippedAndAnEmptyResponseIsDone) {
  send_plan none({}, {});
  EXPECT_TRUE(none.done());
  const std::string head = "h";
  const std::vector<std::string_view> parts{std::string_view{}, head, std::string_view{}};
  send_plan plan(parts, {});
  std::array<boost::asio::const_buffer, 8> iov;
  const auto s = plan.next(iov);
  EXPECT_EQ(s.count, 1u);
  EXPECT_FALSE(s.more);
  plan.advance(1);
  EXPECT_TRUE(plan.done());
}

}  // namespace
}  // namespace cmp::server
