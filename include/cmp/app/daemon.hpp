#pragma once
// Wires the daemon together: config -> pollers -> snapshot store -> HTTP
// server, plus signals (SIGTERM/SIGINT graceful stop, SIGHUP reload),
// staleness expiry and systemd notification. Everything runs on one
// io_context thread, except a poll's CPU work (on a poll thread), the
// merged views of a burst (on a rebuild thread) and state file writes.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include "cmp/config/config.hpp"

namespace cmp::app {

// Command-line settings that override the file's (and survive reloads).
struct overrides {
  std::filesystem::path config_file;
  std::optional<std::string> listen_address;
  std::optional<std::string> web_config_file;
  std::optional<config::log_level> log_level;
  std::optional<config::log_format> log_format;
  std::optional<std::uint32_t> replica_index;  // --replica.index: every upstream's replicas.index
  bool enable_lifecycle = false;
  std::size_t max_connections = 1024;
};

// Loads the config file and applies the overrides; throws config_error.
[[nodiscard]] config::config load_effective_config(const overrides& o);

// Exit codes of the contract.
inline constexpr int exit_ok = 0;
inline constexpr int exit_config = 1;
inline constexpr int exit_runtime = 2;

// Runs until SIGTERM/SIGINT; returns the process exit code.
[[nodiscard]] int run_daemon(const overrides& o, config::config initial);

}  // namespace cmp::app
