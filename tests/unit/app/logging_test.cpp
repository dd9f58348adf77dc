#include "cmp/app/logging.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include <spdlog/details/log_msg.h>

namespace cmp::app {
namespace {

std::string format(config::log_format f, std::string_view payload,
                   spdlog::level::level_enum level = spdlog::level::warn) {
  spdlog::details::log_msg msg(spdlog::source_loc{}, "upstream", level, payload);
  msg.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(1764624000123));
  spdlog::memory_buf_t out;
  make_formatter(f)->format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(LogFormat, LogfmtLineHasTimestampLevelLoggerAndQuotedMessage) {
  EXPECT_EQ(format(config::log_format::logfmt, "poll failed"),
            "ts=2025-12-01T21:20:00.123Z level=warn logger=upstream msg=\"poll failed\"\n");
}

TEST(LogFormat, JsonLineIsOneObject) {
  EXPECT_EQ(format(config::log_format::json, "poll failed", spdlog::level::info),
            "{\"ts\":\"2025-12-01T21:20:00.123Z\",\"level\":\"info\",\"logger\":\"upstream\","
            "\"msg\":\"poll failed\"}\n");
}

// An upstream error text could carry a newline: it must not start a second,
// forged log line in either format.
TEST(LogFormat, ControlBytesQuotesAndBackslashesAreEscapedInBoth) {
  const std::string_view hostile = "a\"b\\c\nlevel=error msg=\"x\"\r\t\x01";
  for (auto f : {config::log_format::logfmt, config::log_format::json}) {
    const auto line = format(f, hostile);
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    EXPECT_NE(line.find(R"(a\"b\\c\nlevel=error msg=\"x\"\r\t\u0001")"), std::string::npos) << line;
  }
}

TEST(LogFormat, CloneKeepsTheFormat) {
  auto json = make_formatter(config::log_format::json)->clone();
  spdlog::details::log_msg msg(spdlog::source_loc{}, "x", spdlog::level::err, "m");
  spdlog::memory_buf_t out;
  json->format(msg, out);
  EXPECT_EQ(out.data()[0], '{');
}

}  // namespace
}  // namespace cmp::app
