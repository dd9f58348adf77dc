#include "cmp/upstream/prepare.hpp"

#include "cmp/upstream/ingest.hpp"

namespace cmp::upstream {

namespace {

// `endpoint` is the upstream's label (or what rename_labels made of it).
snapshot_counts count(const exposition::family_list& families, const config::upstream& cfg) {
  const auto renamed = cfg.rename_labels.find("endpoint");
  const std::string_view endpoint =
      renamed == cfg.rename_labels.end() ? std::string_view("endpoint") : std::string_view(renamed->second);
  snapshot_counts c;
  std::set<std::string_view> endpoints;  // views into `families`, alive for this call
  c.families = families.size();
  for (const auto& f : families) {
    c.series += f.samples.size();
    for (const auto& s : f.samples)
      if (const auto e = s.labels().find(endpoint)) endpoints.insert(*e);
  }
  c.endpoints = endpoints.size();
  return c;
}

}  // namespace

prepared_snapshot prepare_snapshot(const poll_body& in, const config::upstream& cfg,
                                   const std::optional<std::set<std::string>>& previous_schema,
                                   std::optional<derived_counters>& derived) {
  prepared_snapshot out;
  const auto fetched_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(in.fetched_at.time_since_epoch()).count();
  auto parsed = ingest(in.body, in.content_type, cfg, fetched_ms);
  if (!parsed && in.restored && in.content_type.empty()) {
    // A state file from before the Content-Type was kept: an OpenMetrics
    // body does not parse as text.
    if (auto om = ingest(in.body, "application/openmetrics-text", cfg, fetched_ms)) parsed = std::move(om);
  }
  if (!parsed) {
    out.error = parsed.error().message();
    return out;
  }
  out.normalizations = std::move(parsed->normalizations);
  auto families = std::move(parsed->families);
  out.counts = count(families, cfg);
  out.schema = schema_of(families);
  out.schema_changed = previous_schema && *previous_schema != out.schema;

  const auto window_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(in.window_end.time_since_epoch()).count();
  if (cfg.derived_counters) {
    if (!derived) derived.emplace();
    if (!in.restored && derived->add_window(families, window_ms)) {
      out.counters_changed = true;
      out.counters_text = derived->serialize();
    }
    auto counters = derived->families();
    families.insert(families.end(), std::make_move_iterator(counters.begin()),
                    std::make_move_iterator(counters.end()));
  }
  apply_timestamps(families, cfg.timestamps, window_ms);
  // Rendered here, once: its text, OpenMetrics and gzip bytes are what
  // scrapes serve (snapshot.hpp).
  auto snap = snapshot::render_snapshot(cfg.name, families, in.fetched_at, in.window_end);
  out.snap = std::move(snap);
  return out;
}

}  // namespace cmp::upstream
