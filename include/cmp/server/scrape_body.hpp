#pragma once
// The body of a /metrics answer, without I/O, as byte ranges for one scatter
// write:
//   1. the upstream series of the current view (rendered and compressed once
//      per poll; one range per upstream and family when several upstreams
//      are merged: the view refers to their bodies, snapshot/body.hpp),
//   2. the daemon's stable self-metrics (rendered and compressed once per
//      change: telemetry::registry::render_stable),
//   3. its live self-metrics, rendered for this scrape (with the gzip
//      trailer when compressed).
// A gzip body is one gzip member: 1 and 2 end on sync flushes and 3 is
// stored blocks (snapshot::gzip_finish). Runs on the io_context thread; not
// thread-safe.

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cmp/server/negotiation.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/telemetry/registry.hpp"

namespace cmp::server {

// The stable self-metrics in one format, plain and compressed.
struct stable_self_metrics {
  std::string plain;
  snapshot::gzip_head gzip;
};

// One connection's scrape buffers, reused from scrape to scrape (no
// allocation once grown). `parts` stay valid until the next assemble() into
// the same object: it holds the view and the stable part they point into,
// so a new poll or a changed stable part cannot free them mid-write.
struct scrape_body {
  std::shared_ptr<const snapshot::exposition_view> view;
  std::shared_ptr<const stable_self_metrics> stable;
  std::string live;
  std::string gzip_tail;
  std::vector<std::string_view> parts;  // cleared, not shrunk: no allocation once grown
  // Where each part lies in a file (a snapshot's memfd), fd -1 if it does
  // not: a plain-TCP write sends those with sendfile. Valid while `view`.
  std::vector<snapshot::segment_file> files;
  std::size_t bytes = 0;                 // their total size

  [[nodiscard]] std::size_t size() const noexcept { return bytes; }
  // Once written: an idle keep-alive connection must not keep an old view
  // (and the upstream renders it refers to) alive until its next scrape.
  void release() noexcept {
    view.reset();
    stable.reset();
    parts.clear();
    files.clear();
    bytes = 0;
  }
  // Sets parts to `first`'s segments, then `second` and `third`.
  void set_parts(const snapshot::body& first, std::string_view second, std::string_view third);
};

class scrape_assembler {
 public:
  explicit scrape_assembler(telemetry::registry& metrics) : metrics_(metrics) {}

  // `self_metrics` false: the view's series alone (a per-upstream scrape),
  // parts 2 and 3 then hold only OpenMetrics' `# EOF` / the gzip trailer.
  void assemble(std::shared_ptr<const snapshot::exposition_view> view, exposition::format format,
                bool gzip, telemetry::wall_clock::time_point now, scrape_body& out,
                bool self_metrics = true);

 private:
  struct cached {
    std::shared_ptr<const stable_self_metrics> part;
    std::uint64_t generation = 0;
    // CRC and length of the view's gzip head + part's gzip, for the view
    // that `sum_of` points to. A weak_ptr, not an address: a new view may
    // be allocated where a freed one was.
    std::weak_ptr<const snapshot::exposition_view> sum_of;
    snapshot::gzip_sum sum;
  };
  cached& stable(exposition::format f);

  telemetry::registry& metrics_;
  std::array<cached, 2> stable_;  // by exposition::format
};

}  // namespace cmp::server
