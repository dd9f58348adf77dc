#pragma once
// Immutable snapshots and the rendered view that scrapes serve.
//
// Data moves one way: a poller publishes a `snapshot` per upstream; the
// store merges the fresh ones and renders them ONCE into an `exposition_view`
// (text and OpenMetrics, each plain and as a gzip head); a scrape only picks
// bytes from the current view. It never parses, renders or compresses the
// upstream series.

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
#include "cmp/snapshot/gzip.hpp"
#include "cmp/snapshot/shared_text.hpp"
#include "cmp/snapshot/upstream_status.hpp"

namespace cmp::snapshot {

using wall_clock = std::chrono::system_clock;

// One upstream's last good poll, as served (extra labels and timestamps
// already applied). Never modified after publication.
struct snapshot {
  std::string upstream;
  // Its series as text 0.0.4 (series_text()), kept for the next merge. Not
  // the parsed model: that is about four times the size of the text, and a
  // merge (on a poll or when a snapshot goes stale) re-parses in ~2.5 ms per
  // MB. So the bodies are a snapshot's only large allocations. A large
  // text lives in a sealed memfd (shared_text.hpp): the views refer to it,
  // and plain-HTTP scrapes `sendfile` it.
  shared_text text;
  wall_clock::time_point fetched_at;  // when the response arrived
  wall_clock::time_point window_end;  // end of the aggregation window it describes
  std::size_t series = 0;
};

// The text a snapshot keeps for `families`: merged on its own first (which
// drops duplicate series, e.g. made by a label rename), so that it always
// parses back. Sets *series to the number of samples written.
[[nodiscard]] std::string series_text(const exposition::family_list& families,
                                      std::size_t* series = nullptr);

// A body as served, plain and as a gzip head; both may be scatter lists
// that share bytes with other views (body.hpp).
struct rendered_body {
  body plain;
  gzip_body gzip;
};

struct exposition_view {
  rendered_body text;         // Prometheus text 0.0.4
  rendered_body openmetrics;  // OpenMetrics 1.0.0, without `# EOF`
  [[nodiscard]] const rendered_body& in(exposition::format f) const noexcept {
    return f == exposition::format::openmetrics ? openmetrics : text;
  }
  std::optional<wall_clock::time_point> last_modified;  // newest fetch among the served
  std::vector<std::string> served;  // upstream names whose series are in the bodies
  std::size_t series = 0;
  std::size_t dropped_series = 0;  // duplicates/conflicts across upstreams, left out
  // Each configured upstream's own view, in config order, for
  // /metrics?upstream=NAME: rendered with the merged view, so that a
  // per-organization scrape renders nothing either. An upstream without a
  // fresh snapshot has an empty view. Empty in the per-upstream views.
  std::vector<std::pair<std::string, std::shared_ptr<const exposition_view>>> upstreams;

  // The view of the configured upstream `name`; null if there is no such upstream.
  [[nodiscard]] std::shared_ptr<const exposition_view> upstream(std::string_view name) const;
};

// Merges the snapshots (in the given order) and renders every body, from
// scratch. The reference that the incremental path (render_upstream +
// merge_renders) must match byte for byte; the store no longer calls it on
// the fast path.
[[nodiscard]] std::shared_ptr<const exposition_view> render_view(
    const std::vector<std::shared_ptr<const snapshot>>& snapshots);

// What was rendered for one snapshot: its own view (render_view({source})),
// and per family where its header text and sample lines lie in that view's
// bodies, so that a merged view is a concatenation of these pieces family by
// family instead of a re-parse and re-render of every upstream. Immutable
// once built; safe to read from any number of threads.
struct upstream_render {
  struct family_piece {
    std::string name;
    exposition::metric_type type = exposition::metric_type::untyped;
    bool has_help = false;
    // Ranges of the bytes that `view` keeps alive (its bodies, or the
    // snapshot's text they share): the family's header lines (HELP and
    // TYPE), the escaped HELP text alone, and its sample lines.
    std::string_view text_head, text_help, text_samples;
    std::string_view om_head, om_help, om_samples;
    // In view's gzip bodies: the header lines as a stored block, and the
    // sample lines compressed on their own (gzip_piece) with their CRC, so
    // that a merged view's gzip bodies refer to them without compressing
    // or copying again.
    std::string_view text_gz_head, text_gz_samples, om_gz_head, om_gz_samples;
    std::uint32_t text_crc = 0, om_crc = 0;
    std::size_t samples = 0;
    // Every sample is named like the family, which ends in `_total`, with a
    // value >= 0: the family can be an OpenMetrics counter (writer.hpp).
    bool om_counter_ok = false;
  };
  std::shared_ptr<const snapshot> source;
  std::shared_ptr<const exposition_view> view;
  std::vector<family_piece> families;  // as rendered, empty families included
  // Labels that every sample carries with the same value (sorted by name).
  // Two upstreams with one such label name at different values cannot share
  // a series, so their families concatenate without a duplicate check.
  std::vector<exposition::label> constant_labels;
  bool readable = false;  // the snapshot's text parsed
  std::size_t dropped_series = 0;  // within this snapshot (and all of it when unreadable)
};

// Parses and renders one snapshot. Pure; any thread.
[[nodiscard]] std::shared_ptr<const upstream_render> render_upstream(
    std::shared_ptr<const snapshot> s);

// The merged view of `parts` (in order): the same bytes as render_view() of
// their sources (the gzip bodies decode to them, but are built from the
// parts' compressed pieces). Its bodies are scatter lists: family headers
// of its own, and ranges of the parts' bodies, which it keeps alive. No
// copy of the series, and one part's merged view is that part's bytes.
// Unless two upstreams may share a series (no constant label tells them
// apart): then it falls back to render_view(). Leaves `upstreams` empty.
// Pure; any thread.
[[nodiscard]] std::shared_ptr<exposition_view> merge_renders(
    const std::vector<std::shared_ptr<const upstream_render>>& parts);

// The current snapshot of every upstream and the view built from the fresh
// ones. Everything but view() runs on one thread (the io_context's); view()
// may be called from any thread (atomic shared_ptr), so scrapes never wait
// on a render and always get the last complete view.
//
// Rendering is a job in three steps so that its CPU work runs elsewhere:
// begin_render() (owner thread) takes the inputs, render() (any thread,
// pure) builds the view, finish_render() (owner thread) swaps it in. A
// change only marks the view dirty and calls the scheduler once, so the
// polls of a burst coalesce into one render. Without a scheduler (tests,
// tools) every change renders at once on the calling thread.
class snapshot_store {
 public:
  struct render_job {
    struct input {
      std::string name;
      std::shared_ptr<const snapshot> fresh;            // null: nothing to serve
      std::shared_ptr<const upstream_render> rendered;  // reusable render of `fresh`, if any
    };
    std::vector<input> inputs;  // config order
  };
  struct render_result {
    std::vector<std::pair<std::string, std::shared_ptr<const upstream_render>>> renders;
    std::shared_ptr<const exposition_view> view;
    std::vector<std::string> rendered;  // upstreams whose snapshot was rendered anew
  };

  snapshot_store();

  // Sets the upstreams (config order) and how long each one's snapshot may
  // be served. Keeps snapshots of names that remain.
  void configure(const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
                 wall_clock::time_point now);

  void publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now);
  // Re-renders if a snapshot went stale since the last render. Returns the
  // next time something will go stale (to arm a timer), if any.
  std::optional<wall_clock::time_point> refresh(wall_clock::time_point now);

  // Called (on the owner thread) when the view became dirty and no render
  // is in flight; it should arrange for begin_render() soon.
  void set_scheduler(std::function<void()> schedule) { schedule_ = std::move(schedule); }
  // nullopt when nothing changed or a render is in flight (finish_render
  // then reports that another is due).
  [[nodiscard]] std::optional<render_job> begin_render(wall_clock::time_point now);
  [[nodiscard]] static render_result render(const render_job& job);
  // Installs the result; true if the view became dirty again meanwhile.
  bool finish_render(render_result result);

  [[nodiscard]] std::shared_ptr<const exposition_view> view() const noexcept {
    return view_.load(std::memory_order_acquire);
  }
  // True while a snapshot of an upstream that the current view does not
  // serve (its first poll, or the first after it went stale) waits for its
  // render, or after configure() until its render. The self-metrics already
  // say it is up (or gone); a scrape may wait for the render rather than
  // show an up upstream without its series. Never true in steady state,
  // where every publish replaces a served snapshot.
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
    std::shared_ptr<const upstream_render> rendered;  // of `current`, once rendered
    upstream_status status;
  };
  void mark_dirty(wall_clock::time_point now);

  std::vector<entry> entries_;
  std::vector<std::string> rendered_names_;  // which upstreams the last job serves
  bool dirty_ = false;
  bool in_flight_ = false;
  // Publishes counted; the last one of an upstream the view did not serve;
  // the count the job in flight and the installed view include.
  std::uint64_t publish_seq_ = 0, behind_seq_ = 0, job_seq_ = 0, installed_seq_ = 0;
  std::function<void()> schedule_;
  std::atomic<std::shared_ptr<const exposition_view>> view_;
};

}  // namespace cmp::snapshot
