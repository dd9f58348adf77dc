#include "cmp/snapshot/snapshot.hpp"

#include <algorithm>

#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace cmp::snapshot {

std::string series_text(const exposition::family_list& families, std::size_t* series) {
  const exposition::family_list* part = &families;
  const auto merged = exposition::merge({&part, 1});
  if (series) {
    *series = 0;
    for (const auto& f : merged) *series += f.samples.size();
  }
  std::string text;
  exposition::write_text(merged, text);
  return text;
}

std::shared_ptr<const exposition_view> render_view(
    const std::vector<std::shared_ptr<const snapshot>>& snapshots) {
  auto v = std::make_shared<exposition_view>();
  std::vector<exposition::family_list> models;
  models.reserve(snapshots.size());
  std::size_t unreadable = 0;
  for (const auto& s : snapshots) {
    auto parsed = exposition::parse_text(s->text);
    // series_text() wrote it, so this cannot fail unless writer and parser
    // disagree (the round-trip tests and fuzzer guard that); if it does,
    // the other upstreams are still served and the loss is counted.
    if (!parsed) {
      unreadable += s->series;
      continue;
    }
    models.push_back(std::move(*parsed));
    v->served.push_back(s->upstream);
    if (!v->last_modified || s->fetched_at > *v->last_modified) v->last_modified = s->fetched_at;
  }
  std::vector<const exposition::family_list*> parts;
  for (const auto& m : models) parts.push_back(&m);
  // Two organizations export the same family names; Prometheus text allows
  // each family once, so they are merged into one family per name.
  exposition::merge_stats stats;
  const auto merged = exposition::merge(parts, &stats);
  v->dropped_series = stats.samples_dropped + stats.duplicate_series + unreadable;
  for (const auto& f : merged) v->series += f.samples.size();
  exposition::write_text(merged, v->text.plain);
  exposition::write_openmetrics(merged, v->openmetrics.plain);
  v->text.gzip = gzip_begin(v->text.plain);
  v->openmetrics.gzip = gzip_begin(v->openmetrics.plain);
  return v;
}

snapshot_store::snapshot_store() { view_.store(render_view({})); }

void snapshot_store::configure(
    const std::vector<std::pair<std::string, std::chrono::milliseconds>>& upstreams,
    wall_clock::time_point now) {
  std::vector<entry> next;
  for (const auto& [name, staleness] : upstreams) {
    entry e{name, staleness, nullptr};
    for (auto& old : entries_)
      if (old.name == name) e.current = old.current;
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
  rerender(now);
}

void snapshot_store::publish(std::shared_ptr<const snapshot> s, wall_clock::time_point now) {
  for (auto& e : entries_) {
    if (e.name == s->upstream) {
      e.current = std::move(s);  // s is null from here on: stop looking
      break;
    }
  }
  rerender(now);
}

std::optional<wall_clock::time_point> snapshot_store::refresh(wall_clock::time_point now) {
  std::vector<std::string> fresh;
  std::optional<wall_clock::time_point> next;
  for (const auto& e : entries_) {
    if (!e.current) continue;
    const auto expires = e.current->fetched_at + e.max_staleness;
    if (now < expires) {
      fresh.push_back(e.name);
      if (!next || expires < *next) next = expires;
    }
  }
  if (fresh != rendered_names_) rerender(now);
  return next;
}

void snapshot_store::rerender(wall_clock::time_point now) {
  std::vector<std::shared_ptr<const snapshot>> fresh;
  rendered_names_.clear();
  for (const auto& e : entries_) {
    if (e.current && now < e.current->fetched_at + e.max_staleness) {
      fresh.push_back(e.current);
      rendered_names_.push_back(e.name);
    }
  }
  view_.store(render_view(fresh), std::memory_order_release);
}

std::shared_ptr<const snapshot> snapshot_store::latest(const std::string& upstream) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.current;
  return nullptr;
}

bool snapshot_store::is_fresh(const std::string& upstream, wall_clock::time_point now) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.current && now < e.current->fetched_at + e.max_staleness;
  return false;
}

std::chrono::milliseconds snapshot_store::max_staleness(const std::string& upstream) const {
  for (const auto& e : entries_)
    if (e.name == upstream) return e.max_staleness;
  return {};
}

}  // namespace cmp::snapshot
