#include "cmp/app/daemon.hpp"

#include <malloc.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "cmp/app/logging.hpp"
#include "cmp/config/web_config.hpp"
#include "cmp/server/http_server.hpp"
#include "cmp/server/web_security.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/telemetry/build_info.hpp"
#include "cmp/telemetry/registry.hpp"
#include "cmp/upstream/http_fetch.hpp"
#include "cmp/upstream/poller.hpp"

namespace cmp::app {

namespace asio = boost::asio;
using wall_clock = std::chrono::system_clock;
using namespace std::chrono_literals;

config::config load_effective_config(const overrides& o) {
  auto c = config::load_config(o.config_file);
  if (o.listen_address) c.listen = *o.listen_address;
  if (o.web_config_file) c.web_config_file = *o.web_config_file;
  if (o.log_level) c.log.level = *o.log_level;
  if (o.log_format) c.log.format = *o.log_format;
  if (o.replica_index) config::set_replica_index(c, *o.replica_index);
  return c;
}

namespace {

// The threads that keep CPU work and disk waits off the I/O thread:
// - poll: each poll's CPU work (gzip decode, parse, transforms, the
//   snapshot's render and gzip). Its own thread rather than the rebuild's:
//   at N=300 a rebuild takes hundreds of ms and would hold every poll of
//   the burst behind it, and with both threads both cores of a small
//   machine are used.
// - rebuild: the merged views of a burst (snapshot_store::rebuild), and
//   malloc_trim.
// - files: the state files' writes (an fsync waits on the disk, not the
//   CPU: two threads; each organization's writes are ordered by its
//   writer's strand).
// The daemon joins them before anything they use dies.
struct workers {
  asio::thread_pool poll{1};
  asio::thread_pool rebuild{1};
  asio::thread_pool files{2};
  void join() {
    poll.join();
    files.join();
    rebuild.join();
  }
};

// Raises the soft fd limit to the hard one: every scraper connection is an fd.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

class daemon {
 public:
  daemon(const overrides& o, config::config c)
      : overrides_(o),
        config_(std::move(c)),
        sink_(std::make_shared<spdlog::sinks::stderr_sink_mt>()),
        log_(make_logger("main", sink_)),
        poll_log_(make_logger("upstream", sink_)),
        http_log_(make_logger("http", sink_)),
        signals_(ioc_, SIGTERM, SIGINT, SIGHUP),
        tick_(ioc_),
        rng_(std::random_device{}()),
        rebuild_timer_(ioc_),
        lag_timer_(ioc_) {
    sink_->set_formatter(make_formatter(config_.log.format));
    apply_log_level();
  }
  daemon(const daemon&) = delete;
  daemon& operator=(const daemon&) = delete;
  ~daemon() {
    // Normally done by run() already; here for an early return or an
    // exception: no write may be cut short, and no worker may outlive what
    // it uses.
    workers_.join();
  }

  int run() {
    raise_fd_limit();
    for (const auto& w : config_.warnings) log_->warn("{}", w);
    auto pollers = make_pollers(config_);
    if (!pollers) return exit_config;
    auto security = load_web_security(config_);
    if (!security) return exit_config;

    server::server_options so;
    so.max_connections = overrides_.max_connections;
    server_ = std::make_unique<server::http_server>(ioc_, handler_context(), metrics_, so, http_log_);
    apply_web_security(*security);
    try {
      server_->listen(config_.listen);
    } catch (const std::exception& e) {
      log_->error("cannot listen on {}: {}", config_.listen, e.what());
      return exit_runtime;
    }
    const auto ep = server_->local_endpoint();
    log_->info("cerebras-metrics-proxy {} ({}) listening on {}:{} ({})", CMP_VERSION, telemetry::build_revision(),
               ep.address().to_string(), ep.port(), security->tls ? "https" : "http");

    // The first views (every upstream known, none served yet) are built
    // here, so that /metrics?upstream=NAME knows the names from the first
    // scrape on; from now on rebuilds run on the rebuild thread.
    configure_store();
    store_.set_scheduler([this] { schedule_rebuild(); });
    pollers_ = std::move(*pollers);
    for (auto& p : pollers_) upstream::poller::start(p);
    server_->start();
    wait_signals();
    schedule_tick();
    schedule_lag_probe();
    sd_notify(0, "READY=1");
    metrics_.set_reload_result(true, wall_clock::now());

    ioc_.run();
    // The io_context's destructor would destroy suspended coroutines after
    // the objects they use: close what is left and let them all finish.
    server_->abort();
    for (auto& p : pollers_) p->abort();
    for (auto& p : retired_) p->abort();
    tick_.cancel();
    rebuild_timer_.cancel();
    lag_timer_.cancel();
    signals_.cancel();
    view_installed_.cancel();
    ioc_.restart();
    ioc_.run_for(300ms);  // normally returns at once; bounded for the 5 s promise
    // A poll's preparation in flight uses its suspended coroutine's frame,
    // and the state writes must reach the disk (a ledger entry, a snapshot
    // the next start restores): wait for both, then let the coroutines that
    // awaited them see `stopping` and end, while everything they use lives.
    workers_.poll.join();
    workers_.files.join();
    ioc_.restart();
    ioc_.poll();
    // A rebuild in flight only reads its job's immutable snapshots; its
    // result, posted to ioc_, is dropped unrun.
    workers_.rebuild.join();
    log_->info("stopped");
    return exit_ok;
  }

 private:
  using poller_list = std::vector<std::shared_ptr<upstream::poller>>;

  void apply_log_level() {
    for (auto* l : {&log_, &poll_log_, &http_log_}) (*l)->set_level(to_spdlog(config_.log.level));
  }

  server::handler_context handler_context() {
    server::handler_context ctx;
    ctx.views = [this] { return store_.views(); };
    ctx.view_catching_up = [this] { return store_.catching_up(); };
    ctx.view_installed = &view_installed_;
    ctx.upstreams = [this](wall_clock::time_point now) { return store_.statuses(now); };
    ctx.reload = [this] { return reload(); };
    ctx.lifecycle_enabled = overrides_.enable_lifecycle;
    ctx.response_headers = response_headers_;
    if (auth_) ctx.authorize = [a = auth_](std::string_view h) { return a->check(h); };
    return ctx;
  }

  std::optional<config::web_config> load_web_security(const config::config& c) {
    if (c.web_config_file.empty()) return config::web_config{};
    try {
      auto w = config::load_web_config(c.web_config_file);
      for (const auto& warning : w.warnings) log_->warn("{}", warning);
      return w;
    } catch (const config::config_error& e) {
      for (const auto& p : e.problems()) log_->error("{}", p);
      return std::nullopt;
    }
  }

  // Throws std::runtime_error when TLS material cannot be loaded.
  void apply_web_security(const config::web_config& w) {
    server_->set_tls(w.tls ? server::make_server_tls(*w.tls) : nullptr,
                     w.tls ? w.tls->client_allowed_sans : std::vector<std::string>{});
    auth_ = w.basic_auth_users.empty() ? nullptr
                                       : std::make_shared<server::basic_auth>(w.basic_auth_users);
    response_headers_.assign(w.http.headers.begin(), w.http.headers.end());
    server_->set_handler_context(handler_context());
  }

  // Builds pollers for `c`, reusing the budget ledgers of organizations
  // already polled. nullopt (errors logged) when a key or trust store cannot be loaded.
  std::optional<poller_list> make_pollers(const config::config& c) {
    poller_list out;
    std::vector<std::string> problems;
    // One client TLS context per distinct ca_file, shared by the pollers
    // (they all run on the I/O thread; host name checks and SNI are set per
    // stream). Each context parses the distribution's CA bundle: ~0.4 MiB
    // of heap, per organization when each had its own (heaptrack, 30
    // organizations: the largest allocator after the snapshots' text).
    std::map<std::string, std::shared_ptr<asio::ssl::context>> tls_by_ca_file;
    for (const auto& u : c.upstreams) {
      try {
        std::vector<std::string> warnings;
        auto key = config::load_api_key(u, c.source, &warnings);
        for (const auto& w : warnings) log_->warn("{}", w);
        auto& tls = tls_by_ca_file[u.ca_file];
        if (!tls) tls = upstream::make_client_tls(u.ca_file);
        auto& ledger = ledgers_[u.url];
        if (!ledger || ledger->limit() != u.limit.requests ||
            ledger->effective_window() !=
                u.limit.window + upstream::budget_ledger::safety_margin(u.limit.window)) {
          auto fresh = std::make_shared<upstream::budget_ledger>(u.limit.requests, u.limit.window);
          if (ledger) fresh->restore(ledger->history(), wall_clock::now());
          ledger = fresh;
        }
        auto& files = state_writers_[u.url];
        if (!files) files = std::make_shared<upstream::state_writer>(workers_.files.get_executor());
        upstream::poller_context pc{ioc_, store_, metrics_, poll_log_, [this] { return jitter_(rng_); },
                                    c.state_dir, c.source, workers_.poll.get_executor(), files};
        out.push_back(std::make_shared<upstream::poller>(pc, u, std::move(key), tls, ledger));
      } catch (const config::config_error& e) {
        for (const auto& p : e.problems()) problems.push_back(p);
      } catch (const std::exception& e) {
        problems.push_back(c.source + ": upstreams." + u.name + ": " + e.what());
      }
    }
    for (const auto& p : problems) log_->error("{}", p);
    if (!problems.empty()) return std::nullopt;
    std::error_code ec;
    std::filesystem::create_directories(c.state_dir, ec);
    if (ec)
      log_->warn("state_dir {} cannot be created ({}): the budget ledger will not survive restarts",
                 c.state_dir, ec.message());
    return out;
  }

  void configure_store() {
    std::vector<std::pair<std::string, std::chrono::milliseconds>> names;
    std::vector<std::string> plain;
    for (const auto& u : config_.upstreams) {
      names.emplace_back(u.name, u.max_staleness);
      plain.push_back(u.name);
    }
    store_.configure(names, wall_clock::now());
    metrics_.retain_upstreams(plain);
  }

  // SIGHUP and POST /-/reload. Atomic: either everything is replaced or
  // nothing is. Returns the reason on failure.
  std::string reload() {
    log_->info("reloading configuration from {}", overrides_.config_file.string());
    std::string failure;
    try {
      auto next = load_effective_config(overrides_);
      auto pollers = make_pollers(next);
      if (!pollers) throw std::runtime_error("an upstream's key or CA file could not be loaded (see log)");
      auto security = load_web_security(next);
      if (!security) throw std::runtime_error("invalid web config (see log)");
      if (next.listen != config_.listen) {
        log_->warn("listen changed from {} to {}: takes effect after a restart", config_.listen, next.listen);
        next.listen = config_.listen;
      }
      apply_web_security(*security);
      for (auto& p : pollers_) p->stop();
      // Kept until exit so shutdown can abort a request they still have in flight.
      std::erase_if(retired_, [](const auto& p) { return p.use_count() == 1; });
      retired_.insert(retired_.end(), pollers_.begin(), pollers_.end());
      config_ = std::move(next);
      sink_->set_formatter(make_formatter(config_.log.format));
      apply_log_level();
      configure_store();
      pollers_ = std::move(*pollers);
      for (auto& p : pollers_) upstream::poller::start(p);
      // Forget ledgers of organizations no longer configured... but only in
      // memory: their files stay, so re-adding one keeps its budget.
      std::erase_if(ledgers_, [&](const auto& kv) {
        return std::none_of(config_.upstreams.begin(), config_.upstreams.end(),
                            [&](const auto& u) { return u.url == kv.first; });
      });
      // A retired poller still writing holds its writer; re-adding the
      // organization later cannot overtake a write that has already finished.
      std::erase_if(state_writers_, [&](const auto& kv) {
        return kv.second->pending() == 0 &&
               std::none_of(config_.upstreams.begin(), config_.upstreams.end(),
                            [&](const auto& u) { return u.url == kv.first; });
      });
      metrics_.set_reload_result(true, wall_clock::now());
      log_->info("configuration reloaded: {} upstream(s)", pollers_.size());
      return {};
    } catch (const config::config_error& e) {
      for (const auto& p : e.problems()) log_->error("{}", p);
      failure = e.what();
    } catch (const std::exception& e) {
      failure = e.what();
      log_->error("reload failed: {}", failure);
    }
    metrics_.set_reload_result(false, wall_clock::now());
    log_->error("reload failed; the running configuration stays");
    return failure;
  }

  void wait_signals() {
    signals_.async_wait([this](boost::system::error_code ec, int sig) {
      if (ec) return;
      if (sig == SIGHUP) {
        sd_notify(0, "RELOADING=1");
        (void)reload();
        sd_notify(0, "READY=1");
        wait_signals();
        return;
      }
      shutdown();
    });
  }

  // glibc keeps freed memory in its heap. Give it back after the two things
  // that free a lot: a burst of connections ending (their buffers: 26 MiB
  // after 1000 wrk connections closed), i.e. open connections fell below
  // half the peak seen since, and new views replacing the old ones (the old
  // snapshots and bodies). On the rebuild thread: a malloc_trim walks every
  // arena and took 2-15 ms at N=300, a loop stall each time.
  void release_memory() {
    bool trim = false;
    const auto open = server_->open_connections();
    if (connection_peak_ >= 16 && open * 2 < connection_peak_) {
      trim = true;
      connection_peak_ = open;
    }
    connection_peak_ = std::max(connection_peak_, open);
    auto views = store_.views();
    if (trimmed_views_.lock() != views) {
      trim = true;
      trimmed_views_ = views;
    }
    if (trim) asio::post(workers_.rebuild, [] { malloc_trim(0); });
  }

  void shutdown() {
    if (stopping_) return;
    stopping_ = true;
    log_->info("shutting down");
    sd_notify(0, "STOPPING=1");
    server_->stop();
    view_installed_.cancel();  // scrapes waiting for a rebuild see `stopping` now
    for (auto& p : pollers_) p->stop();
    signals_.cancel();
    shutdown_started_ = std::chrono::steady_clock::now();
    schedule_tick();
  }

  // Once a second: expire stale snapshots, feed the watchdog; while
  // stopping, every 20 ms: finish when the last response is out (or after
  // 4.5 s, inside systemd's and the contract's 5 s).
  void schedule_tick() {
    tick_.expires_after(stopping_ ? 20ms : 1s);
    tick_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      if (stopping_) {
        if (server_->open_connections() == 0 ||
            std::chrono::steady_clock::now() - shutdown_started_ > 4500ms) {
          ioc_.stop();
          return;
        }
      } else {
        const auto now = wall_clock::now();
        store_.refresh(now);  // a snapshot gone stale: rebuild, and note_served() follows
        if (watchdog_enabled()) sd_notify(0, "WATCHDOG=1");
        release_memory();
      }
      schedule_tick();
    });
  }

  // The polls of a burst land together (every upstream at boundary +
  // poll_offset) and publish over a second or more (each poll's render takes
  // a few ms on the poll thread). A rebuild at N=300 merges and gzips ~74 MB,
  // so one every 100 ms of a burst was most of the daemon's CPU: now the
  // views are rebuilt once the publishes pause for `rebuild_quiet`, or
  // `rebuild_cap` after the first of them. Publishes during a rebuild make
  // exactly one more. (A scrape that waits for a first snapshot's merge
  // waits at most 1 s: http_server's resolve_view.)
  static constexpr auto rebuild_quiet = 250ms;
  static constexpr auto rebuild_cap = 1s;

  void schedule_rebuild() {
    if (stopping_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!rebuild_timer_armed_) rebuild_first_ = now;
    rebuild_due_ = std::min(now + rebuild_quiet, rebuild_first_ + rebuild_cap);
    if (!rebuild_timer_armed_) {
      rebuild_timer_armed_ = true;
      wait_for_rebuild();
    }
  }

  void wait_for_rebuild() {
    rebuild_timer_.expires_at(rebuild_due_);
    rebuild_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec && std::chrono::steady_clock::now() < rebuild_due_) return wait_for_rebuild();  // moved on meanwhile
      rebuild_timer_armed_ = false;
      if (!ec) start_rebuild();
    });
  }

  void start_rebuild() {
    auto job = store_.begin_rebuild(wall_clock::now());
    if (!job) return;
    asio::post(workers_.rebuild, [this, job = std::move(*job)] {
      auto views = snapshot::snapshot_store::rebuild(job);
      asio::post(ioc_, [this, views = std::move(views)]() mutable {
        // The views replaced (and the snapshots only they kept: at N=300
        // hundreds of buffers made on the worker threads) are freed on the
        // rebuild thread, not between two scrapes on this one.
        auto old = store_.views();
        const bool again = store_.finish_rebuild(std::move(views));
        asio::post(workers_.rebuild, [old = std::move(old)] {});
        if (again) schedule_rebuild();
        note_served();
        view_installed_.cancel();  // wakes the scrapes waiting while catching up
      });
    });
  }

  // The one writer of cerebras_proxy_snapshot_served: whether the installed
  // view has the upstream's series, so that the metric and the body of the
  // same scrape agree (a fresh snapshot waits for its rebuild, ~100 ms).
  void note_served() {
    const auto view = store_.views()->all;
    for (const auto& u : config_.upstreams) {
      const bool served = std::find(view->served.begin(), view->served.end(), u.name) != view->served.end();
      metrics_.upstream(u.name).set_snapshot_served(served);
    }
  }

  // How late the I/O thread runs a timer due every 100 ms: the time any
  // scrape, fetch or timer may have waited for the event loop.
  static constexpr auto lag_probe_interval = 100ms;

  void schedule_lag_probe() {
    lag_due_ = std::chrono::steady_clock::now() + lag_probe_interval;
    lag_timer_.expires_at(lag_due_);
    lag_timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      const auto now = std::chrono::steady_clock::now();
      metrics_.observe_event_loop_lag(std::chrono::duration<double>(now - lag_due_).count(), now);
      if (!stopping_) schedule_lag_probe();
    });
  }

  static bool watchdog_enabled() {
    static const bool enabled = [] {
      std::uint64_t usec = 0;
      return sd_watchdog_enabled(0, &usec) > 0;
    }();
    return enabled;
  }

  // Declared first: joined by ~daemon() before any other member dies, they
  // outlive the strands and executors of theirs that pollers and writers hold.
  workers workers_;
  overrides overrides_;
  config::config config_;
  spdlog::sink_ptr sink_;
  std::shared_ptr<spdlog::logger> log_, poll_log_, http_log_;
  asio::io_context ioc_{1};
  asio::signal_set signals_;
  asio::steady_timer tick_;
  telemetry::registry metrics_;
  snapshot::snapshot_store store_;
  std::unique_ptr<server::http_server> server_;
  std::shared_ptr<server::basic_auth> auth_;
  std::vector<std::pair<std::string, std::string>> response_headers_;
  poller_list pollers_;
  poller_list retired_;  // stopped by a reload; their loop may still be finishing
  std::map<std::string, std::shared_ptr<upstream::budget_ledger>> ledgers_;  // by URL
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> jitter_{0.0, 1.0};
  bool stopping_ = false;
  std::chrono::steady_clock::time_point shutdown_started_{};
  std::size_t connection_peak_ = 0;  // since the last malloc_trim
  std::weak_ptr<const snapshot::served_views> trimmed_views_;  // the views at the last check
  asio::steady_timer rebuild_timer_;
  bool rebuild_timer_armed_ = false;
  std::chrono::steady_clock::time_point rebuild_first_{}, rebuild_due_{};
  asio::steady_timer lag_timer_;
  std::chrono::steady_clock::time_point lag_due_{};
  // Never expires: cancelled whenever views are installed (and at
  // shutdown), which wakes every scrape waiting on it (handler_context).
  asio::steady_timer view_installed_{ioc_, std::chrono::steady_clock::time_point::max()};
  std::map<std::string, std::shared_ptr<upstream::state_writer>> state_writers_;  // by URL
};

}  // namespace

int run_daemon(const overrides& o, config::config initial) {
  try {
    daemon d(o, std::move(initial));
    return d.run();
  } catch (const std::exception& e) {
    spdlog::critical("fatal: {}", e.what());
    return exit_runtime;
  }
}

}  // namespace cmp::app
