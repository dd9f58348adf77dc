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
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cmp/exposition/model.hpp"
#include "cmp/snapshot/gzip.hpp"

namespace cmp::snapshot {

using wall_clock = std::chrono::system_clock;

// One upstream's last good poll, as served (extra labels and timestamps
// already applied). Never modified after publication.
struct snapshot {
  std::string upstream;
  // Its series as text 0.0.4 (series_text()), kept for the next merge. Not
  // the parsed model: that is about four times the size of the text, and a
  // merge (on a poll or when a snapshot goes stale) re-parses in ~2.5 ms per
  // MB. So the bodies are a snapshot's only large allocations.
  std::string text;
  wall_clock::time_point fetched_at;  // when the response arrived
  wall_clock::time_point window_end;  // end of the aggregation window it describes
  std::size_t series = 0;
};

// The text a snapshot keeps for `families`: merged on its own first (which
// drops duplicate series, e.g. made by a label rename), so that it always
// parses back. Sets *series to the number of samples written.
[[nodiscard]] std::string series_text(const exposition::family_list& families,
                                      std::size_t* series = nullptr);

struct rendered_body {
  std::string plain;
  gzip_head gzip;
};

struct exposition_view {
  rendered_body text;         // Prometheus text 0.0.4
  rendered_body openmetrics;  // OpenMetrics 1.0.0, without `# EOF`
  std::optional<wall_clock::time_point> last_modified;  // newest fetch among the served
  std::vector<std::string> served;  // upstream names whose series are in the bodies
  std::size_t series = 0;
  std::size_t dropped_series = 0;  // duplicates/conflicts across upstreams, left out
};

// Merges the snapshots (in the given order) and renders every body.
[[nodiscard]] std::shared_ptr<const exposition_view> render_view(
    const std::vector<std::shared_ptr<const snapshot>>& snapshots);

// The current snapshot of every upstream and the view built from the fresh
// ones. publish()/refresh() run on the poller thread; view() may be called
// from any thread (atomic shared_ptr), so scrapes never wait on a render.
class snapshot_store {
 public:
  snapshot_store();

  // Sets the upstreams (config order) and how long each one's snapshot may
  // be served. Keeps snapshots of names that remain.
  void configure(const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
                 wall_clock::time_point now);

  void publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now);
  // Re-renders if a snapshot went stale since the last render. Returns the
  // next time something will go stale (to arm a timer), if any.
  std::optional<wall_clock::time_point> refresh(wall_clock::time_point now);

  [[nodiscard]] std::shared_ptr<const exposition_view> view() const noexcept {
    return view_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::shared_ptr<const snapshot> latest(const std::string& upstream) const;
  [[nodiscard]] bool is_fresh(const std::string& upstream, wall_clock::time_point now) const;
  [[nodiscard]] std::chrono::milliseconds max_staleness(const std::string& upstream) const;

 private:
  struct entry {
    std::string name;
    std::chrono::milliseconds max_staleness;
    std::shared_ptr<const snapshot> current;
  };
  void rerender(wall_clock::time_point now);

  std::vector<entry> entries_;
  std::vector<std::string> rendered_names_;  // which upstreams the current view serves
  std::atomic<std::shared_ptr<const exposition_view>> view_;
};

}  // namespace cmp::snapshot
