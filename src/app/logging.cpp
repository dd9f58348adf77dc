#include "cmp/app/logging.hpp"

#include <ctime>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace cmp::app {

namespace {

void append_timestamp(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) {
  const auto t = std::chrono::system_clock::to_time_t(msg.time);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const auto n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  out.append(buf, buf + n);
}

std::string_view level_name(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    default: return "error";
  }
}

void append(spdlog::memory_buf_t& out, std::string_view s) { out.append(s.data(), s.data() + s.size()); }

// The message is quoted by JSON string rules in both formats (logfmt
// readers accept them), so a newline or control byte in an upstream error
// never splits or forges a log line.
void append_quoted(spdlog::memory_buf_t& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': append(out, "\\\""); break;
      case '\\': append(out, "\\\\"); break;
      case '\n': append(out, "\\n"); break;
      case '\r': append(out, "\\r"); break;
      case '\t': append(out, "\\t"); break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          append(out, buf);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// logfmt (ts=… level=… logger=… msg="…") or one JSON object a line.
class line_formatter final : public spdlog::formatter {
 public:
  explicit line_formatter(bool json) : json_(json) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& out) override {
    append(out, json_ ? "{\"ts\":\"" : "ts=");
    append_timestamp(msg, out);
    append(out, json_ ? "\",\"level\":\"" : " level=");
    append(out, level_name(msg.level));
    append(out, json_ ? "\",\"logger\":\"" : " logger=");
    append(out, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    append(out, json_ ? "\",\"msg\":" : " msg=");
    append_quoted(out, std::string_view(msg.payload.data(), msg.payload.size()));
    append(out, json_ ? "}\n" : "\n");
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<line_formatter>(json_); }

 private:
  bool json_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_formatter(config::log_format format) {
  return std::make_unique<line_formatter>(format == config::log_format::json);
}

spdlog::level::level_enum to_spdlog(config::log_level level) {
  switch (level) {
    case config::log_level::debug: return spdlog::level::debug;
    case config::log_level::info: return spdlog::level::info;
    case config::log_level::warn: return spdlog::level::warn;
    case config::log_level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::shared_ptr<spdlog::logger> make_logger(const std::string& name, spdlog::sink_ptr sink) {
  if (!sink) sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return std::make_shared<spdlog::logger>(name, std::move(sink));
}

}  // namespace cmp::app
