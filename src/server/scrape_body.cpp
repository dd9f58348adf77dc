#include "cmp/server/scrape_body.hpp"

namespace cmp::server {

void scrape_body::set_parts(const snapshot::body& first, std::string_view second, std::string_view third) {
  parts.clear();
  files.clear();
  const auto segments = first.segments();
  for (std::size_t i = 0; i < segments.size(); ++i) {
    parts.push_back(segments[i]);
    files.push_back(first.file(i));
  }
  if (!second.empty()) {
    parts.push_back(second);
    files.emplace_back();
  }
  if (!third.empty()) {
    parts.push_back(third);
    files.emplace_back();
  }
  bytes = first.size() + second.size() + third.size();
}

scrape_assembler::cached& scrape_assembler::stable(exposition::format f) {
  auto& c = stable_[static_cast<std::size_t>(f)];
  if (!c.part || c.generation != metrics_.stable_generation()) {
    // A new object, not an update in place: writes in flight still point
    // into the old one (scrape_body::stable keeps it alive).
    auto part = std::make_shared<stable_self_metrics>();
    metrics_.render_stable(part->plain, f);
    part->gzip = snapshot::gzip_piece(part->plain);
    c.part = std::move(part);
    c.generation = metrics_.stable_generation();
    c.sum_of.reset();
  }
  return c;
}

void scrape_assembler::assemble(std::shared_ptr<const snapshot::exposition_view> view,
                                exposition::format format, bool gzip,
                                telemetry::wall_clock::time_point now, scrape_body& out,
                                bool self_metrics) {
  const bool om = format == exposition::format::openmetrics;
  if (!self_metrics) {
    out.view = std::move(view);
    out.stable.reset();
    out.live.clear();
    if (om) out.live += "# EOF\n";
    const auto& upstream = out.view->in(format);
    if (gzip) {
      snapshot::gzip_finish(upstream.gzip, out.live, out.gzip_tail);
      out.set_parts(upstream.gzip.bytes, std::string_view{}, out.gzip_tail);
    } else {
      out.set_parts(upstream.plain, std::string_view{}, out.live);
    }
    return;
  }
  auto& cache = stable(format);
  out.view = std::move(view);
  out.stable = cache.part;
  out.live.clear();
  metrics_.render_live(out.live, format, now);
  if (om) out.live += "# EOF\n";
  const auto& upstream = out.view->in(format);
  if (gzip) {
    const bool same_view = !cache.sum_of.owner_before(out.view) &&
                           !out.view.owner_before(cache.sum_of) && !cache.sum_of.expired();
    if (!same_view) {
      cache.sum = snapshot::gzip_sum_of(upstream.gzip, out.stable->gzip);
      cache.sum_of = out.view;
    }
    snapshot::gzip_finish(cache.sum, out.live, out.gzip_tail);
    out.set_parts(upstream.gzip.bytes, out.stable->gzip.bytes, out.gzip_tail);
  } else {
    out.set_parts(upstream.plain, out.stable->plain, out.live);
  }
}

}  // namespace cmp::server
