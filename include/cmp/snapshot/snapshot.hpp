#pragma once
// Immutable snapshots and the views that scrapes serve.
//
// Data moves one way: a poll renders its families ONCE into a `snapshot`
// (render_snapshot(), on the poll's worker thread): the text and
// OpenMetrics bytes, where each family lies in them, and the snapshot's own
// view, plain and gzipped. The store then makes, once per burst of polls
// and off the I/O thread, the merged view of the fresh snapshots by
// concatenating their families (merge_views()), and gzips it whole. A
// scrape only picks prepared bytes; it never parses, renders or
// compresses the upstream series.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cmp/exposition/model.hpp"
#include "cmp/exposition/writer.hpp"
#include "cmp/snapshot/body.hpp"
#include "cmp/snapshot/gzip.hpp"
#include "cmp/snapshot/upstream_status.hpp"

namespace cmp::snapshot {

using wall_clock = std::chrono::system_clock;

// A body as served, plain and gzipped whole (a head that the daemon's own
// metrics or `# EOF` completes, gzip.hpp).
struct prepared_body {
  body plain;
  gzip_head gzip;
};

// What one scrape of /metrics (or /metrics?upstream=NAME) serves from the
// upstreams. Immutable; safe to read from any number of threads.
struct exposition_view {
  prepared_body text;         // Prometheus text 0.0.4
  prepared_body openmetrics;  // OpenMetrics 1.0.0, without `# EOF`
  [[nodiscard]] const prepared_body& in(exposition::format f) const noexcept {
    return f == exposition::format::openmetrics ? openmetrics : text;
  }
  std::optional<wall_clock::time_point> last_modified;  // newest fetch among the served
  std::vector<std::string> served;  // upstream names whose series are in the bodies
  std::size_t series = 0;
  std::size_t dropped_series = 0;  // duplicates and conflicts, left out
};

// The view with no upstream in it: empty bodies, no Last-Modified.
[[nodiscard]] const std::shared_ptr<const exposition_view>& empty_view();

// One upstream's last good poll, as served (extra labels and timestamps
// already applied), rendered once. Never modified after publication.
struct snapshot {
  // Where one family lies in `text` and `openmetrics`. Its OpenMetrics
  // sample lines are the text's whenever they are the same bytes (no
  // timestamps, whose unit differs), so the series are kept once.
  struct family {
    std::string_view name;
    exposition::metric_type type = exposition::metric_type::untyped;
    bool has_help = false;
    // The header lines (HELP, TYPE) as this snapshot alone announces the
    // family, and its escaped HELP text in each format.
    std::string_view text_head, text_help, om_head, om_help;
    std::string_view text_samples, om_samples;
    // series_hashes[first_series, first_series + samples): one per sample line.
    std::size_t first_series = 0, samples = 0;
    // Every sample is named like the family, which ends in `_total`, with a
    // value >= 0: the family can be an OpenMetrics counter (writer.hpp).
    bool om_counter_ok = false;
  };

  std::string upstream;
  wall_clock::time_point fetched_at;  // when the response arrived
  wall_clock::time_point window_end;  // end of the aggregation window it describes
  std::size_t series = 0;
  std::size_t dropped_series = 0;  // duplicates within the body, left out
  // The bytes the families' views point into, shared with the views that
  // serve them: `text` has every family (header, then samples),
  // `openmetrics` each family's OpenMetrics header and the samples that
  // differ, `names` the family names.
  struct bytes {
    std::string text, openmetrics, names;
  };
  std::shared_ptr<const bytes> rendered;
  std::vector<family> families;  // as merged, empty families included (they name OpenMetrics counters)
  // exposition::series_hash of every sample, in order: what a merge with
  // other snapshots finds duplicates by without a parse.
  std::vector<std::uint64_t> series_hashes;
  // Its own view (for /metrics?upstream=NAME, and /metrics when it is the
  // only upstream served), made with it on the poll's thread.
  std::shared_ptr<const exposition_view> own;
};

// Renders `families` (merged on their own first, which drops duplicate
// series) into a snapshot with its own view. Pure; any thread.
[[nodiscard]] std::shared_ptr<const snapshot> render_snapshot(std::string upstream,
                                                              const exposition::family_list& families,
                                                              wall_clock::time_point fetched_at,
                                                              wall_clock::time_point window_end);

// The merged view of `parts` (in order), as exposition::merge() and the
// writers would make it: one family per name (first-seen order, the first
// HELP; a family of another type is left out whole), a series already
// served from an earlier part left out. Its plain bodies refer to the
// parts' bytes, which it keeps alive; its gzip bodies are compressed whole.
// One part's merged view is that part's own. Pure; any thread.
[[nodiscard]] std::shared_ptr<const exposition_view> merge_views(
    const std::vector<std::shared_ptr<const snapshot>>& parts);

// What the server reads: the merged view, and each configured upstream's
// own view (config order; an upstream without a fresh snapshot has the
// empty view) for /metrics?upstream=NAME.
struct served_views {
  std::shared_ptr<const exposition_view> all = empty_view();
  std::vector<std::pair<std::string, std::shared_ptr<const exposition_view>>> upstreams;
  // The view of the configured upstream `name`; null if there is no such upstream.
  [[nodiscard]] std::shared_ptr<const exposition_view> upstream(std::string_view name) const;
};

// The current snapshot of every upstream and the views built from the
// fresh ones. Everything but views() runs on one thread (the io_context's);
// views() may be called from any thread (atomic shared_ptr), so a scrape
// always gets the last complete views.
//
// A rebuild is a job in three steps so that its CPU work runs elsewhere:
// begin_rebuild() (owner thread) takes the inputs, rebuild() (any thread,
// pure) merges, finish_rebuild() (owner thread) installs. A change only
// marks the views dirty and tells the scheduler, which decides when the
// burst of polls is over (the daemon: when publishes pause), so that a
// burst is one rebuild. Without a scheduler (tests, tools) every change
// rebuilds at once on the calling thread.
class snapshot_store {
 public:
  struct rebuild_job {
    std::vector<std::pair<std::string, std::shared_ptr<const snapshot>>> fresh;  // config order; null: none
  };

  snapshot_store();

  // Sets the upstreams (config order) and how long each one's snapshot may
  // be served. Keeps snapshots of names that remain.
  void configure(const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
                 wall_clock::time_point now);

  void publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now);
  // Rebuilds if a snapshot went stale since the last rebuild. Returns the
  // next time something will go stale (to arm a timer), if any.
  std::optional<wall_clock::time_point> refresh(wall_clock::time_point now);

  // Called (on the owner thread) at every change while no rebuild is in
  // flight; it should arrange for begin_rebuild() once the changes pause.
  void set_scheduler(std::function<void()> schedule) { schedule_ = std::move(schedule); }
  // nullopt when nothing changed or a rebuild is in flight (finish_rebuild
  // then reports that another is due).
  [[nodiscard]] std::optional<rebuild_job> begin_rebuild(wall_clock::time_point now);
  [[nodiscard]] static std::shared_ptr<const served_views> rebuild(const rebuild_job& job);
  // Installs the result; true if the views became dirty again meanwhile.
  bool finish_rebuild(std::shared_ptr<const served_views> views);

  [[nodiscard]] std::shared_ptr<const served_views> views() const noexcept {
    return views_.load(std::memory_order_acquire);
  }
  // True while a snapshot of an upstream that the current views do not
  // serve (its first poll, or the first after it went stale) waits for its
  // rebuild, or after configure() until its rebuild. The self-metrics
  // already say it is up (or gone); a scrape may wait for the rebuild
  // rather than show an up upstream without its series. Never true in
  // steady state, where every publish replaces a served snapshot.
  [[nodiscard]] bool catching_up() const noexcept { return behind_seq_ > installed_seq_; }
  [[nodiscard]] std::shared_ptr<const snapshot> latest(const std::string& upstream) const;
  [[nodiscard]] bool is_fresh(const std::string& upstream, wall_clock::time_point now) const;
  [[nodiscard]] std::chrono::milliseconds max_staleness(const std::string& upstream) const;

  // The status of a configured upstream, written by its poller after every
  // attempt; ignored for a name not configured. statuses() lists every
  // configured upstream in config order (a name without a status yet shows
  // just its name), with the budget left at `now` and the fetch time of the
  // snapshot kept.
  void set_status(upstream_status status);
  [[nodiscard]] std::vector<upstream_status> statuses(wall_clock::time_point now) const;

 private:
  struct entry {
    std::string name;
    std::chrono::milliseconds max_staleness;
    std::shared_ptr<const snapshot> current;
    upstream_status status;
  };
  void mark_dirty(wall_clock::time_point now);

  std::vector<entry> entries_;
  std::vector<std::string> rebuilt_names_;  // which upstreams the last job serves
  bool dirty_ = false;
  bool in_flight_ = false;
  // Publishes counted; the last one of an upstream the views did not serve;
  // the count the job in flight and the installed views include.
  std::uint64_t publish_seq_ = 0, behind_seq_ = 0, job_seq_ = 0, installed_seq_ = 0;
  std::function<void()> schedule_;
  std::atomic<std::shared_ptr<const served_views>> views_;
};

}  // namespace cmp::snapshot
