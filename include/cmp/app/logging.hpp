#pragma once
// Loggers for the daemon: logfmt (the Prometheus ecosystem's default) or
// JSON lines on stderr. app/ creates named loggers and passes them into
// constructors; nothing logs through spdlog's default logger.

#include <memory>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/sinks/sink.h>

#include "cmp/config/config.hpp"

namespace cmp::app {

// The formatter for `format`, for any sink.
[[nodiscard]] std::unique_ptr<spdlog::formatter> make_formatter(config::log_format format);
[[nodiscard]] spdlog::level::level_enum to_spdlog(config::log_level level);

// A logger named `name` writing to `sink` (stderr when null).
[[nodiscard]] std::shared_ptr<spdlog::logger> make_logger(const std::string& name,
                                                          spdlog::sink_ptr sink);

}  // namespace cmp::app
