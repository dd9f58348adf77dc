#include "cmp/exposition/transform.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

#include "lexical.hpp"
#include "series_set.hpp"

namespace cmp::exposition {

std::size_t add_labels(family_list& families, const std::map<std::string, std::string>& extra) {
  if (extra.empty()) return 0;
  std::size_t conflicts = 0;
  std::vector<const std::pair<const std::string, std::string>*> added;
  for (family& fam : families) {
    for (sample& s : fam.samples) {
      const label_list own = s.labels();
      added.clear();
      std::size_t room = 0;
      for (const label_ref l : own) room += l.name.size() + l.value.size();
      for (const auto& e : extra) {
        if (own.find(e.first)) {
          ++conflicts;
        } else {
          added.push_back(&e);
          room += e.first.size() + e.second.size();
        }
      }
      if (added.empty()) continue;
      sample::builder b(s.name(), own.size() + added.size(), room);
      for (const label_ref l : own) b.add(l.name, l.value);
      for (const auto* e : added) b.add(e->first, e->second);
      s = b.finish(s.value, s.timestamp_ms);
    }
  }
  return conflicts;
}

rename_stats rename_label(family_list& families, std::string_view from, std::string_view to) {
  rename_stats stats;
  if (from == to || !detail::valid_label_name(to)) return stats;
  for (family& fam : families) {
    for (sample& s : fam.samples) {
      const label_list labels = s.labels();
      if (!labels.find(from)) continue;
      if (labels.find(to)) {
        ++stats.conflicts;
        continue;
      }
      std::size_t room = 0;
      for (const label_ref l : labels) room += l.name.size() + l.value.size();
      sample::builder b(s.name(), labels.size(), room - from.size() + to.size());
      for (const label_ref l : labels) b.add(l.name == from ? to : l.name, l.value);
      s = b.finish(s.value, s.timestamp_ms);
      ++stats.renamed;
    }
  }
  return stats;
}

namespace {

// Whether point `a` of a series is later than point `b`: one without a
// timestamp is at the scrape, after any the upstream stamped.
bool later(const sample& a, const sample& b) {
  return b.timestamp_ms && (!a.timestamp_ms || *a.timestamp_ms > *b.timestamp_ms);
}

// Keeps one point per series, the latest (the first of equals), where it
// first appeared; returns how many were dropped.
std::size_t keep_latest_points(std::vector<sample>& samples) {
  std::vector<sample> kept;
  kept.reserve(samples.size());
  detail::series_set series(
      [&kept](std::uint32_t, std::uint32_t i) -> const sample& { return kept[i]; });
  series.reserve(samples.size());
  std::size_t dropped = 0;
  for (sample& s : samples) {
    kept.push_back(std::move(s));
    const auto pos = static_cast<std::uint32_t>(kept.size() - 1);
    const auto first = series.insert_or_find(detail::series_hash(kept.back()), 0, pos).second;
    if (first == pos) continue;
    if (later(kept.back(), kept[first])) kept[first] = std::move(kept.back());
    kept.pop_back();
    ++dropped;
  }
  samples = std::move(kept);
  return dropped;
}

}  // namespace

std::size_t set_timestamps(family_list& families, std::int64_t ms) {
  std::size_t dropped = 0;
  for (family& fam : families) {
    // Several points of one series exist only where the upstream stamped
    // some: a body without timestamps (the API's) costs no set.
    const bool stamped = std::any_of(fam.samples.begin(), fam.samples.end(),
                                     [](const sample& s) { return s.timestamp_ms.has_value(); });
    if (stamped) dropped += keep_latest_points(fam.samples);
    for (sample& s : fam.samples) s.timestamp_ms = ms;
  }
  return dropped;
}

void clear_timestamps(family_list& families) {
  for (family& fam : families)
    for (sample& s : fam.samples) s.timestamp_ms.reset();
}

std::uint64_t series_hash(const sample& s) noexcept { return detail::series_hash(s); }

family_list merge(std::span<const family_list* const> parts, merge_stats* stats) {
  merge_stats counts;
  family_list result;
  std::unordered_map<std::string_view, std::size_t> index;  // name -> position in result
  std::size_t total = 0;
  for (const family_list* part : parts)
    if (part) total += part->size();
  // Keys point into result's family names, which must not move.
  result.reserve(total);
  index.reserve(total);
  detail::series_set series([&result](std::uint32_t f, std::uint32_t i) -> const sample& {
    return result[f].samples[i];
  });

  // A series already taken from an earlier part is dropped; within a part,
  // its other points stay (detail::series_points), as the parser kept them.
  std::unordered_map<std::uint64_t, detail::series_points> points;  // by first (family, index)
  std::vector<std::uint32_t> part_start;  // per result family: where this part's samples begin
  for (const family_list* part : parts) {
    if (!part) continue;
    for (const family& fam : *part) {
      std::size_t at;
      if (const auto it = index.find(fam.name); it != index.end()) {
        at = it->second;
        family& existing = result[at];
        if (existing.type != fam.type) {
          ++counts.families_dropped;
          counts.samples_dropped += fam.samples.size();
          continue;
        }
        if (!existing.help && fam.help) existing.help = fam.help;
      } else {
        at = result.size();
        family& added = result.emplace_back();
        added.name = fam.name;
        added.type = fam.type;
        added.help = fam.help;
        index.emplace(added.name, at);
      }
      std::vector<sample>& samples = result[at].samples;
      samples.reserve(samples.size() + fam.samples.size());
      // A part has each family name once: this family's samples so far are
      // earlier parts'.
      part_start.resize(result.size());
      part_start[at] = static_cast<std::uint32_t>(samples.size());
      for (const sample& s : fam.samples) {
        samples.push_back(s);
        const auto pos = static_cast<std::uint32_t>(samples.size() - 1);
        const auto first = series.insert_or_find(detail::series_hash(s), static_cast<std::uint32_t>(at), pos);
        if (first.first == at && first.second == pos) continue;
        const bool same_part = first.first == at && first.second >= part_start[at];
        bool keep = false;
        if (same_part) {
          const std::uint64_t key = (std::uint64_t{first.first} << 32) | first.second;
          const sample& earlier = samples[first.second];
          keep = points.try_emplace(key, earlier.timestamp_ms).first->second.keep(s.timestamp_ms);
        }
        if (!keep) {
          samples.pop_back();
          ++counts.duplicate_series;
        }
      }
    }
  }
  if (stats) *stats = counts;
  return result;
}

namespace {

bool same_value(double a, double b) { return a == b || (std::isnan(a) && std::isnan(b)); }

bool equivalent(const sample& a, const sample& b) {
  return a.same_key(b) && same_value(a.value, b.value) &&
         a.timestamp_ms == b.timestamp_ms;
}

}  // namespace

bool equivalent(const family_list& a, const family_list& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const family& x = a[i];
    const family& y = b[i];
    if (x.name != y.name || x.type != y.type || x.help != y.help ||
        x.samples.size() != y.samples.size()) {
      return false;
    }
    for (std::size_t j = 0; j < x.samples.size(); ++j)
      if (!equivalent(x.samples[j], y.samples[j])) return false;
  }
  return true;
}

}  // namespace cmp::exposition
