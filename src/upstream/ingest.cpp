#include "cmp/upstream/ingest.hpp"

#include "cmp/exposition/transform.hpp"

namespace cmp::upstream {

ingest_result ingest(std::string_view body, std::string_view content_type,
                     const config::upstream& cfg, std::int64_t scrape_time_ms) {
  exposition::parse_limits limits;
  limits.label_limit = cfg.label_limit;
  limits.label_name_length_limit = cfg.label_name_length_limit;
  limits.label_value_length_limit = cfg.label_value_length_limit;
  limits.sample_limit = cfg.sample_limit;
  limits.scrape_time_ms = scrape_time_ms;
  auto parsed = exposition::parse_body(body, exposition::format_for_content_type(content_type), limits);
  if (!parsed) return parsed.error();
  ingested out{std::move(parsed->families), std::move(parsed->normalizations)};
  for (const auto& [from, to] : cfg.rename_labels) exposition::rename_label(out.families, from, to);
  if (!cfg.extra_labels.empty()) exposition::add_labels(out.families, cfg.extra_labels);
  return out;
}

void apply_timestamps(exposition::family_list& families, config::timestamp_mode mode,
                      std::int64_t window_end_ms) {
  if (mode == config::timestamp_mode::window) exposition::set_timestamps(families, window_end_ms);
}

std::set<std::string> schema_of(const exposition::family_list& families) {
  std::set<std::string> names;
  for (const auto& f : families) {
    names.insert(f.name);
    for (const auto& s : f.samples)
      for (const auto l : s.labels()) names.insert(f.name + "{" + std::string(l.name) + "}");
  }
  return names;
}

}  // namespace cmp::upstream
