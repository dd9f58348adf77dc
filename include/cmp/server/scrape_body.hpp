#pragma once
// The body of a /metrics answer, without I/O, as byte ranges for one
// scatter write: the view's bytes (rendered and compressed before the
// scrape arrived, snapshot.hpp), then the daemon's own metrics (prepared
// at most once per second, `self_metrics`), or for one upstream's view
// only OpenMetrics' `# EOF`. A gzip body is one gzip member: the view's
// gzip head, the self-metrics' end piece, an 8-byte trailer (gzip.hpp).
// Runs on the io_context thread; not thread-safe.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/server/negotiation.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/telemetry/registry.hpp"

namespace cmp::server {

// The end of a /metrics body in one format: plain, and as the gzip end piece.
struct prepared_tail {
  std::string plain;
  snapshot::gzip_end gzip;
};

// The self-metrics, prepared for a scrape before it arrives: rendered
// again when a stable value changed (registry::stable_generation) or when
// they are `max_age` old, so that the live values (ages, scrape counts,
// process_*) are at most that old. A new object each time: writes in flight
// keep the old one.
class self_metrics {
 public:
  self_metrics(telemetry::registry& metrics, std::chrono::milliseconds max_age)
      : metrics_(metrics), max_age_(max_age) {}
  [[nodiscard]] std::shared_ptr<const prepared_tail> get(exposition::format f, telemetry::wall_clock::time_point now);

 private:
  struct cached {
    std::shared_ptr<const prepared_tail> tail;
    std::uint64_t generation = 0;
    telemetry::wall_clock::time_point at;
  };
  telemetry::registry& metrics_;
  std::chrono::milliseconds max_age_;
  std::array<cached, 2> cache_;  // by exposition::format
};

// One connection's scrape buffers, reused from scrape to scrape. `parts`
// stay valid until release(): it holds the view and the tail they point
// into, so a new poll or new self-metrics cannot free them mid-write.
struct scrape_body {
  std::shared_ptr<const snapshot::exposition_view> view;
  std::shared_ptr<const prepared_tail> tail;
  std::array<char, 8> trailer{};
  // What `trailer` was computed for (CRCs and sizes of head and end): a
  // CRC combine was 3 % of a gzip scrape's CPU, and the pair changes only
  // with a new view or new self-metrics.
  std::array<std::uint64_t, 4> trailer_of{};
  std::vector<std::string_view> parts;  // cleared, not shrunk: no allocation once grown
  std::size_t size = 0;

  // The view's bytes, then `tail` (null: the end of a view served alone).
  void assemble(std::shared_ptr<const snapshot::exposition_view> v, std::shared_ptr<const prepared_tail> t,
                exposition::format f, bool gzip);
  // Once written: an idle keep-alive connection must not keep an old view
  // (and the snapshots it refers to) alive until its next scrape.
  void release() noexcept {
    view.reset();
    tail.reset();
    parts.clear();
    size = 0;
  }
};

}  // namespace cmp::server
