#include "cmp/upstream/poller.hpp"

#include <boost/asio/co_spawn.hpp>

#include <cmath>

#include <spdlog/spdlog.h>

#include "cmp/asio.hpp"
#include "cmp/exposition/parser.hpp"
#include "cmp/upstream/ingest.hpp"
#include "cmp/upstream/offload.hpp"
#include "cmp/upstream/outcome.hpp"

namespace cmp::upstream {

using wall_clock = std::chrono::system_clock;
using namespace std::chrono_literals;

poller::poller(poller_context ctx, config::upstream cfg, config::secret api_key,
               std::shared_ptr<asio::ssl::context> tls, std::shared_ptr<budget_ledger> ledger)
    : ctx_(std::move(ctx)),
      cfg_(std::move(cfg)),
      api_key_(std::move(api_key)),
      ledger_(std::move(ledger)),
      state_(ctx_.state_dir, cfg_.url),
      planner_(poll_planner::policy{cfg_.poll_interval, cfg_.poll_offset, cfg_.timeout,
                                    std::chrono::seconds(1),
                                    std::max<std::chrono::milliseconds>(1s, cfg_.poll_interval / 4),
                                    cfg_.replicas.count, cfg_.replicas.index}),
      metrics_(ctx_.metrics.upstream(cfg_.name)),
      timer_(ctx_.ioc) {
  if (!ctx_.files) ctx_.files = std::make_shared<state_writer>();  // inline
  request_ = make_fetch_request(cfg_, api_key_, std::move(tls));
  request_.on_socket = [this](asio::ip::tcp::socket* s) { active_socket_ = s; };
  metrics_.rate_limit_remaining = [l = ledger_](wall_clock::time_point now) { return l->remaining(now); };
  if (!cfg_.api_key_file.empty()) {
    key_file_ = config::api_key_file_path(cfg_, ctx_.config_source);
    // Stat'ed just after the caller read the key: a change in between is
    // caught by the first 401's re-read at worst.
    key_watch_.emplace(stat_key_file(key_file_));
  }
}

api_key_watch::event poller::refresh_key(api_key_watch::cause why) {
  if (!key_watch_) return api_key_watch::event::none;
  const auto st = stat_key_file(key_file_);
  if (!key_watch_->should_read(why, st)) return api_key_watch::event::none;
  std::string problem;
  const auto result = reread_key(cfg_, ctx_.config_source, api_key_, problem);
  if (result == api_key_watch::read_result::new_key) request_.api_key = api_key_;
  const auto ev = key_watch_->on_read(st, result);
  if (ev == api_key_watch::event::rotated) metrics_.count_api_key_reload();
  if (ev != api_key_watch::event::none) {
    const auto level = ev == api_key_watch::event::unreadable ? spdlog::level::warn : spdlog::level::info;
    ctx_.log->log(level, "upstream={} {}", cfg_.name, describe(ev, why, key_file_, problem));
  }
  return ev;
}

void poller::start(const std::shared_ptr<poller>& self) {
  self->restore(self->now());
  asio::co_spawn(self->ctx_.ioc, self->run(), [self](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      self->ctx_.log->critical("upstream={} poller stopped: {}", self->cfg_.name, ex.what());
    }
  });
}

void poller::stop() {
  stopping_ = true;
  timer_.cancel();
}

void poller::abort() {
  stop();
  if (active_socket_) {
    boost::system::error_code ec;
    active_socket_->close(ec);
  }
}

void poller::restore(wall_clock::time_point now) {
  std::optional<wall_clock::time_point> restored_window;
  if (state_.enabled()) {
    // After a reload, the retired poller of this organization may still be
    // writing its files: read what it wrote (blocks the loop only then).
    ctx_.files->wait_idle();
    try {
      if (auto sent = state_.load_ledger()) {
        // Merge with what this process already knows (a reload shares the ledger).
        auto all = *sent;
        all.insert(all.end(), ledger_->history().begin(), ledger_->history().end());
        ledger_->restore(std::move(all), now);
      }
    } catch (const std::exception& e) {
      ctx_.log->warn("upstream={} budget ledger unreadable, assuming the whole budget was just spent: {}",
                     cfg_.name, e.what());
      ledger_->assume_spent(now);
    }
    if (cfg_.derived_counters) {
      try {
        if (auto text = state_.load_counters()) {
          derived_ = derived_counters::parse(*text);
          if (!derived_)
            ctx_.log->warn("upstream={} derived counters file is corrupt; counters restart from 0",
                           cfg_.name);
        }
      } catch (const std::exception& e) {
        ctx_.log->warn("upstream={} derived counters unreadable, restarting from 0: {}", cfg_.name,
                       e.what());
      }
    }
    // After a reload the store already has this upstream's snapshot (its
    // window is taken below): the file is not even read, ~100 KB per
    // organization that a reload would read on the I/O thread for nothing.
    if (ctx_.store.latest(cfg_.name) == nullptr) {
      try {
        if (auto snap = state_.load_snapshot()) {
          // Inline, before the loop serves anything (at start the loop does
          // not run yet): the restored snapshot is published at once, as before.
          const poll_body in{snap->body, snap->content_type, snap->fetched_at, snap->window_end, true};
          if (publish(prepare_snapshot(in, cfg_, schema_, derived_), true)) {
            restored_window = snap->window_end;
            ctx_.log->info("upstream={} restored snapshot fetched {}s ago", cfg_.name,
                           std::chrono::duration_cast<std::chrono::seconds>(now - snap->fetched_at).count());
          }
        }
      } catch (const std::exception& e) {
        ctx_.log->warn("upstream={} stored snapshot ignored: {}", cfg_.name, e.what());
      }
    }
  }
  if (auto current = ctx_.store.latest(cfg_.name)) restored_window = current->window_end;
  planner_.start(now, restored_window);
  publish_status();
}

bool poller::publish(prepared_snapshot prepared, bool restored) {
  if (!prepared.snap) {
    if (!restored) {
      metrics_.count_parse_error();
      report_failure("parse", std::string("invalid exposition text from upstream: ").append(prepared.error));
    } else {
      ctx_.log->warn("upstream={} stored snapshot is not valid exposition text: {}", cfg_.name, prepared.error);
    }
    return false;
  }
  if (!restored) {
    for (const auto& n : prepared.normalizations) {
      if (metrics_.count_normalizations(n.kind, n.count)) {
        ctx_.log->warn("upstream={} body repaired ({}, first at line {}): Prometheus accepts this "
                       "shape; counted in cerebras_proxy_upstream_normalizations_total, logged once",
                       cfg_.name, n.kind, n.first_line);
      }
    }
  }
  if (prepared.schema_changed && !restored) {
    metrics_.count_schema_change();
    ctx_.log->info("upstream={} metric families or label names changed ({} -> {} names)", cfg_.name,
                   schema_ ? schema_->size() : 0, prepared.schema.size());
  }
  schema_ = std::move(prepared.schema);

  metrics_.snapshot_fetched_at = prepared.snap->fetched_at;
  ctx_.store.publish(std::move(prepared.snap), now());
  return true;
}

namespace {

spdlog::level::level_enum spdlog_level(outage_log::level l) {
  switch (l) {
    case outage_log::level::warn:
      return spdlog::level::warn;
    case outage_log::level::info:
      return spdlog::level::info;
    case outage_log::level::debug:
      break;
  }
  return spdlog::level::debug;
}

}  // namespace

void poller::report_failure(const std::string& kind, const std::string& message) {
  last_error_ = message;
  const auto line = outages_.on_failure(kind, message, now());
  ctx_.log->log(spdlog_level(line.at), "upstream={} {}", cfg_.name, line.text);
}

void poller::check_clock(const fetch_result& result, wall_clock::time_point before) {
  if (result.date.empty()) return;
  const auto skew = clock_skew(result.date, before + result.request_sent_after, before + result.head_received_after);
  if (!skew) {
    ctx_.log->debug("upstream={} Date header not understood: {}", cfg_.name, quote_api_message(result.date, ""));
    return;
  }
  const double seconds = std::chrono::duration<double>(*skew).count();
  metrics_.set_clock_skew(seconds);
  switch (skew_.observe(*skew)) {
    case skew_watch::event::began:
      ctx_.log->warn("upstream={} clock skew: the API's clock is {:.1f} s {} ours (its Date header); the "
                     "poll schedule and `timestamps: window` follow the local clock: check NTP "
                     "(timedatectl, chronyc tracking)",
                     cfg_.name, std::abs(seconds), seconds > 0 ? "ahead of" : "behind");
      break;
    case skew_watch::event::ended:
      ctx_.log->info("upstream={} clock skew back to {:.1f} s", cfg_.name, seconds);
      break;
    case skew_watch::event::none:
      break;
  }
}

asio::awaitable<void> poller::run() {
  while (!stopping_) {
    auto now = this->now();
    const auto d = planner_.decide(now, ledger_->next_allowed(now));
    if (!d.fetch_now) {
      timer_.expires_after(d.sleep_from(now));
      co_await timer_.async_wait(nothrow);
      continue;
    }
    if (!ledger_->try_acquire(now)) continue;  // cannot happen: decide() honoured the ledger
    if (state_.enabled()) {
      // The budget promise: the ledger is durable before the request leaves.
      // Written off the I/O thread (an fsync), awaited here without blocking
      // the loop. Without a durable ledger a crash loop could overspend: say
      // so loudly, but keep polling within the in-memory budget.
      // Named, not a temporary in the co_await expression: GCC 12 destroys
      // those twice.
      std::function<void()> save = [state = state_, sent = ledger_->history()] { state.save_ledger(sent); };
      co_await persist(std::move(save), "budget ledger", spdlog::level::err);
      if (stopping_) break;
    }
    const auto window_end = planner_.window_end_for(now);
    (void)refresh_key(api_key_watch::cause::before_poll);
    // Not `co_await (a ? f() : g())`: GCC 12 destroys the awaitable of such
    // a conditional twice.
    fetch_result result;
    const auto fetch_began = this->now();  // the fetch reports its steps relative to this
    if (ctx_.fetch) {
      result = co_await ctx_.fetch(request_);
    } else {
      result = co_await fetch(request_);
    }
    if (stopping_) break;
    now = this->now();
    check_clock(result, fetch_began);
    // Off the I/O thread, in one hop to the worker: the gzip decode of the
    // body (it decides the `code` counted below) and, when that leaves a
    // usable 200 (classify()'s only success), the poll's CPU work.
    // schema_ and derived_ are the worker's until this coroutine resumes.
    std::optional<prepared_snapshot> prepared;
    if (result.gzip_encoded || (!result.fault && result.status == 200)) {
      auto receive = [&]() -> std::optional<prepared_snapshot> {
        decode_body(result, request_.body_limit);
        if (result.fault || result.status != 200) return std::nullopt;
        const poll_body in{result.body, result.content_type, now, window_end, false};
        return prepare_snapshot(in, cfg_, schema_, derived_);
      };
      prepared = co_await offload(ctx_.work, std::move(receive));
      if (stopping_) break;
    }
    metrics_.count_request(request_code(result), std::chrono::duration<double>(result.elapsed).count());
    auto [outcome, report_kind, message] = classify(result, now, key_watch_.has_value());
    if (outcome.what != poll_outcome::kind::success) report_failure(report_kind, message);
    if (result.status == 401 && key_watch_) {
      // The file may have been replaced since the stat above. A new key
      // turns this 401 into one retry; planner and ledger still decide when.
      const auto ev = refresh_key(api_key_watch::cause::unauthorized);
      if (key_watch_->retry_after_unauthorized(ev, window_end) && outcome.retry_allowed) {
        outcome.what = poll_outcome::kind::retryable;
      }
    }
    if (outcome.what == poll_outcome::kind::success && prepared) {  // success implies prepared
      const bool counters_changed = prepared->counters_changed;
      auto counters_text = std::move(prepared->counters_text);
      const auto counts = prepared->counts;
      if (publish(std::move(*prepared), false)) {
        metrics_.set_up(true, now);
        last_error_.clear();
        const auto line = outages_.on_success(counts, now);
        ctx_.log->log(spdlog_level(line.at), "upstream={} {}", cfg_.name, line.text);
        // Awaited, so one poller's writes stay in order (and the strand
        // orders them after a retired poller's).
        if (counters_changed) {
          std::function<void()> save = [state = state_, text = std::move(counters_text)] { state.save_counters(text); };
          co_await persist(std::move(save), "derived counters", spdlog::level::warn);
        }
        std::function<void()> save = [state = state_, snap = stored_snapshot{now, window_end, std::move(result.body),
                                                                             std::move(result.content_type)}] {
          state.save_snapshot(snap);
        };
        co_await persist(std::move(save), "snapshot", spdlog::level::warn);
      } else {
        outcome.what = poll_outcome::kind::retryable;
        metrics_.set_up(false, now);
      }
    } else {
      metrics_.set_up(false, now);
    }
    planner_.on_result(now, outcome, ctx_.jitter());
    publish_status();
  }
}

asio::awaitable<void> poller::persist(std::function<void()> save, std::string_view what,
                                      spdlog::level::level_enum level) {
  if (auto error = co_await ctx_.files->write(std::move(save)); !error.empty())
    ctx_.log->log(level, "upstream={} cannot persist the {}: {}", cfg_.name, what, error);
}

void poller::publish_status() {
  snapshot::upstream_status s;
  s.name = cfg_.name;
  s.url = cfg_.url;
  s.up = metrics_.up();
  s.last_success = metrics_.last_success();
  s.budget_limit = ledger_->limit();
  s.budget_left_at = [l = ledger_](wall_clock::time_point now) { return l->remaining(now); };
  s.last_error = last_error_;
  ctx_.store.set_status(std::move(s));
}

}  // namespace cmp::upstream
