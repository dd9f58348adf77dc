#pragma once
// Polls one upstream forever: asks the poll_planner when, takes budget from
// the ledger (persisted before the request leaves), fetches, validates the
// body as Prometheus would (upstream/ingest) and publishes a snapshot. Scrapes never reach
// this code.
//
// Runs as one coroutine on the io_context thread; not thread-safe. The CPU
// work of a poll (prepare_snapshot) runs on `poller_context::work` and the
// state file writes on `poller_context::files`, while the coroutine is
// suspended: the poller's own state (schema_, derived_) is handed to the
// worker and touched by nothing else until the coroutine resumes, so it is
// only ever used by one thread at a time. Logging, self-metrics and the
// store are touched on the io_context thread only. stop() ends the loop at
// its next wait; a request (or its preparation) in flight finishes, bounded
// by `timeout`, but its result is no longer published. The budget_ledger is
// shared so that a reloaded poller for the same organization inherits it.
//
// With `api_key_file`, the file is stat'ed before every poll and re-read
// when it changed, and re-read after a 401 (see api_key_watch): a rotated
// key is used from the next request on, without a reload.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <spdlog/logger.h>

#include "cmp/config/config.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/telemetry/registry.hpp"
#include "cmp/upstream/api_key_watch.hpp"
#include "cmp/upstream/budget_ledger.hpp"
#include "cmp/upstream/clock_skew.hpp"
#include "cmp/upstream/derived_counters.hpp"
#include "cmp/upstream/http_fetch.hpp"
#include "cmp/upstream/outage_log.hpp"
#include "cmp/upstream/poll_planner.hpp"
#include "cmp/upstream/prepare.hpp"
#include "cmp/upstream/state_store.hpp"
#include "cmp/upstream/state_writer.hpp"

namespace cmp::upstream {

struct poller_context {
  boost::asio::io_context& ioc;
  snapshot::snapshot_store& store;
  telemetry::registry& metrics;
  std::shared_ptr<spdlog::logger> log;
  std::function<double()> jitter;  // uniform in [0, 1]
  std::filesystem::path state_dir;  // empty: nothing persisted
  std::string config_source;        // the configuration file: a relative api_key_file is next to it
  // Where a poll's CPU work (prepare_snapshot) runs, off the I/O thread.
  // Empty: inline (tests, tools).
  boost::asio::any_io_executor work = {};
  // Runs this organization's state file writes in order, off the I/O
  // thread; shared by every poller of the URL. Null: written inline.
  std::shared_ptr<state_writer> files = nullptr;
  // Replaces http_fetch's fetch() (tests). Empty: the real one.
  std::function<boost::asio::awaitable<fetch_result>(const fetch_request&)> fetch = {};
  // The wall clock the poller decides by (tests pin it: whether the first
  // poll goes at once depends on the second of the minute). Empty: system_clock.
  std::function<std::chrono::system_clock::time_point()> clock = {};
};

class poller {
 public:
  poller(poller_context ctx, config::upstream cfg, config::secret api_key,
         std::shared_ptr<boost::asio::ssl::context> tls, std::shared_ptr<budget_ledger> ledger);

  // Restores ledger and snapshot from state_dir (publishing a restored
  // snapshot at once), then spawns the loop. `self` keeps the poller alive
  // until its loop has ended.
  static void start(const std::shared_ptr<poller>& self);
  void stop();
  // After stop(): also closes the connection of a request in flight, so the
  // loop ends now instead of at the request's deadline (process exit).
  void abort();

  [[nodiscard]] const config::upstream& settings() const noexcept { return cfg_; }
  [[nodiscard]] const std::shared_ptr<budget_ledger>& ledger() const noexcept { return ledger_; }

 private:
  boost::asio::awaitable<void> run();
  void restore(std::chrono::system_clock::time_point now);
  // Publishes what prepare_snapshot() made of a body, with its log lines
  // and self-metrics; false (and a counted parse error) when Prometheus
  // would refuse the body too. On the io_context thread.
  bool publish(prepared_snapshot prepared, bool restored);
  // A poll that gave no snapshot: logged as outage_log decides, shown on the status page.
  void report_failure(const std::string& kind, const std::string& message);
  // The API's clock against ours from an answer's Date header: the gauge,
  // and a warning once per episode of skew.
  void check_clock(const fetch_result& result, std::chrono::system_clock::time_point before);
  // What the status page shows of this upstream, into the store (the server reads it there).
  void publish_status();
  [[nodiscard]] std::chrono::system_clock::time_point now() const {
    return ctx_.clock ? ctx_.clock() : std::chrono::system_clock::now();
  }
  // One state-file write, off the I/O thread through ctx_.files; awaited, so
  // that this poller's files are written in order. A failure is logged.
  boost::asio::awaitable<void> persist(std::function<void()> save, std::string_view what,
                                       spdlog::level::level_enum level);
  // Re-reads a changed (or, after a 401, any) api_key_file and puts a new
  // key to use; logs and counts what happened, never the key.
  api_key_watch::event refresh_key(api_key_watch::cause why);

  poller_context ctx_;
  config::upstream cfg_;
  config::secret api_key_;
  std::filesystem::path key_file_;          // empty: the key came from the environment
  std::optional<api_key_watch> key_watch_;  // when key_file_ is set
  fetch_request request_;
  std::shared_ptr<budget_ledger> ledger_;
  state_store state_;
  poll_planner planner_;
  telemetry::upstream_metrics& metrics_;
  boost::asio::steady_timer timer_;
  bool stopping_ = false;
  boost::asio::ip::tcp::socket* active_socket_ = nullptr;
  std::string last_error_;
  outage_log outages_;   // what the log tells: once per change of state
  skew_watch skew_;
  std::optional<std::set<std::string>> schema_;  // family and label names of the last snapshot
  std::optional<derived_counters> derived_;      // when cfg_.derived_counters
};

}  // namespace cmp::upstream
