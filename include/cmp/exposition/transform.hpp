#pragma once
// Model transforms applied between parsing an upstream body and serving it:
// extra labels, a label rename, window timestamps, and merging the parts of
// one /metrics response. Pure functions over caller-owned values; not
// thread-safe on the same family_list, safe on distinct ones.

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "cmp/exposition/model.hpp"

namespace cmp::exposition {

// Appends every `extra` label (in map order, after the sample's own labels) to
// every sample. A label the sample already has wins: upstream data is not
// overwritten. Returns the number of (sample, label) pairs skipped for that
// reason. Label names in `extra` must be valid label names (the config
// validates them). Two samples that differed only in a skipped label can end
// up as one series; the caller's merge() drops such duplicates.
std::size_t add_labels(family_list& families, const std::map<std::string, std::string>& extra);

struct rename_stats {
  std::size_t renamed = 0;    // samples whose label `from` is now `to`
  std::size_t conflicts = 0;  // samples left unchanged: they already had `to`
};

// Renames label `from` to `to` on every sample, keeping its position. A
// sample that already has a label `to` is left unchanged and counted as a
// conflict. `to` must be a valid label name; if it is not (or equals `from`)
// nothing is changed and {0, 0} is returned.
rename_stats rename_label(family_list& families, std::string_view from, std::string_view to);

// Gives every sample the timestamp `ms` (milliseconds since the epoch).
// Several points of one series (timestamps the upstream sent) would become
// duplicates of one timestamp, which a scraper drops after the first with a
// warning on every scrape: the latest of them is kept, in the place of the
// first, and the others are dropped. Returns how many were dropped.
std::size_t set_timestamps(family_list& families, std::int64_t ms);

// Removes every sample timestamp.
void clear_timestamps(family_list& families);

struct merge_stats {
  std::size_t families_dropped = 0;  // later families whose type conflicted
  std::size_t samples_dropped = 0;   // samples of those families
  std::size_t duplicate_series = 0;  // samples whose series was already present
};

// Merges the parts in order into one list in which every family name appears
// once. Families keep first-seen order; a later family of the same name and
// type contributes its samples (and its HELP if the first had none); one of a
// different type is dropped whole. A sample whose series (name and label set,
// label order ignored) is already present is dropped, within a part too.
// Null pointers in `parts` are skipped. `stats`, if given, receives counts.
family_list merge(std::span<const family_list* const> parts, merge_stats* stats = nullptr);

// The hash merge() tells series apart by: of the sample name and the label
// set, label order ignored. For callers that merge rendered bytes instead of
// models (the snapshot views) and so must agree with merge() on what one
// series is.
[[nodiscard]] std::uint64_t series_hash(const sample& s) noexcept;

// Model equality in which NaN values equal each other (and only NaN); for
// tests and round-trip checks.
bool equivalent(const family_list& a, const family_list& b);

}  // namespace cmp::exposition
