#include "cmp/server/scrape_body.hpp"

namespace cmp::server {

namespace {

// Compressed at level 1, on the I/O thread: at N=300 the self-metrics are
// ~600 KB, prepared again after every poll of a burst (level 6 took ~5 ms
// a time, level 1 a third); one organization's few KB differ by ~100 bytes.
std::shared_ptr<const prepared_tail> make_tail(std::string plain) {
  auto t = std::make_shared<prepared_tail>();
  t->gzip = snapshot::gzip_finish(plain, 1);
  t->plain = std::move(plain);
  return t;
}

// What follows a view served alone (/metrics?upstream=NAME).
const std::shared_ptr<const prepared_tail>& alone(exposition::format f) {
  static const std::array<std::shared_ptr<const prepared_tail>, 2> tails = {make_tail(""), make_tail("# EOF\n")};
  return tails[f == exposition::format::openmetrics ? 1 : 0];
}

}  // namespace

std::shared_ptr<const prepared_tail> self_metrics::get(exposition::format f, telemetry::wall_clock::time_point now) {
  auto& c = cache_[static_cast<std::size_t>(f)];
  if (!c.tail || c.generation != metrics_.stable_generation() || now - c.at >= max_age_ || now < c.at) {
    std::string plain;
    metrics_.render(plain, f, now);
    if (f == exposition::format::openmetrics) plain += "# EOF\n";
    c.tail = make_tail(std::move(plain));
    c.generation = metrics_.stable_generation();
    c.at = now;
  }
  return c.tail;
}

void scrape_body::assemble(std::shared_ptr<const snapshot::exposition_view> v, std::shared_ptr<const prepared_tail> t,
                           exposition::format f, bool gzip) {
  view = std::move(v);
  tail = t ? std::move(t) : alone(f);
  parts.clear();
  const auto& upstream = view->in(f);
  if (gzip) {
    const std::array<std::uint64_t, 4> of = {upstream.gzip.crc, upstream.gzip.size, tail->gzip.crc, tail->gzip.size};
    if (of != trailer_of) {
      trailer = snapshot::gzip_trailer(upstream.gzip, tail->gzip);
      trailer_of = of;
    }
    parts.push_back(upstream.gzip.bytes);
    parts.push_back(tail->gzip.bytes);
    parts.emplace_back(trailer.data(), trailer.size());
    size = upstream.gzip.bytes.size() + tail->gzip.bytes.size() + trailer.size();
  } else {
    const auto segments = upstream.plain.segments();
    parts.assign(segments.begin(), segments.end());
    parts.push_back(tail->plain);
    size = upstream.plain.size() + tail->plain.size();
  }
}

}  // namespace cmp::server
