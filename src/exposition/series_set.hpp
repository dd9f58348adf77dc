#pragma once
// Set of the series (sample name + label set, label order ignored) already in
// a family_list under construction; used to reject or drop duplicates.
// Internal to the exposition module. Not thread-safe.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <string_view>
#include <utility>
#include <vector>

#include "cmp/exposition/model.hpp"

namespace cmp::exposition::detail {

inline std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb33fe1a85ec9ULL;
  x ^= x >> 33;
  return x;
}

// Eight bytes per multiply, short tails without a byte loop; std::hash
// (murmur) was a tenth of parse time.
[[gnu::always_inline]] inline std::uint64_t hash_bytes(std::string_view s) {
  const char* p = s.data();
  std::size_t n = s.size();
  std::uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
  for (; n > 8; p += 8, n -= 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 29;
  }
  std::uint64_t w = 0;
  if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + n - 4, 4);
    w = (static_cast<std::uint64_t>(a) << 32) | b;
  } else if (n > 0) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    w = (static_cast<std::uint64_t>(u[0]) << 16) | (static_cast<std::uint64_t>(u[n >> 1]) << 8) |
        u[n - 1];
  }
  return mix64((h ^ w) * 0x94d049bb133111ebULL);
}

inline std::uint64_t label_hash(std::string_view name, std::string_view value) {
  return mix64(hash_bytes(name) * 0x9e3779b97f4a7c15ULL ^ hash_bytes(value));
}

// Label order must not matter (`{a="1",b="2"}` and `{b="2",a="1"}` are one
// series), so per-label hashes are combined with a commutative sum.
inline std::uint64_t series_hash(const sample& s) {
  std::uint64_t h = mix64(hash_bytes(s.name()));
  for (const label_ref l : s.labels())
    h += label_hash(l.name, l.value);
  return h;
}

inline bool same_series(const sample& a, const sample& b) {
  if (a.same_key(b)) return true;
  const label_list al = a.labels(), bl = b.labels();
  if (a.name() != b.name() || al.size() != bl.size()) return false;
  // Label names are unique within a sample, so "every label of a is in b"
  // is set equality.
  if (al.size() > 16) {
    // No default limit on labels: sorted copies keep it n log n.
    std::vector<label_ref> x(al.begin(), al.end()), y(bl.begin(), bl.end());
    const auto by_name = [](const label_ref& l, const label_ref& r) { return l.name < r.name; };
    std::sort(x.begin(), x.end(), by_name);
    std::sort(y.begin(), y.end(), by_name);
    return x == y;
  }
  for (const label_ref l : al) {
    const auto v = bl.find(l.name);
    if (!v || *v != l.value) return false;
  }
  return true;
}

// Several samples of one series, in body order: which of them to keep. The
// scrape appends them in order and stores one only if it is later than the
// ones before (explicit timestamps that increase; samples without one are
// at the scrape's time); but a sample dropped as out of bounds (older than
// the head, or over 10 minutes ahead of the scraper's clock) does not count.
// Which ones those are depends on the scraper's clock, so every sample with
// a time of its own is kept, in order, and Prometheus decides when it
// scrapes the daemon as it would have directly; only a true duplicate is
// dropped: the same timestamp again, or a second sample without one (the
// scrape stores the first, the later ones fail as duplicates). Made from
// the series' first sample. Not thread-safe.
class series_points {
 public:
  explicit series_points(std::optional<std::int64_t> first) : untimed_(!first) {
    if (first) seen_.insert(*first);
  }

  // Whether a further sample with this timestamp is kept (and then noted).
  bool keep(std::optional<std::int64_t> timestamp) {
    if (!timestamp) return !std::exchange(untimed_, true);
    return seen_.insert(*timestamp).second;
  }

 private:
  bool untimed_;                            // a sample without a timestamp kept
  std::unordered_set<std::int64_t> seen_;   // explicit timestamps kept
};

// `Resolve` maps (family, index) to the recorded sample; it is called only
// when hashes match, to rule out collisions.
template <class Resolve>
class series_set {
 public:
  explicit series_set(Resolve resolve) : resolve_(std::move(resolve)) {}

  // Room for `n` series without growing: growing rehashes every slot and
  // was a tenth of parsing a 1 MB body.
  void reserve(std::size_t n) {
    std::size_t want = 64;
    while (want < 2 * n) want *= 2;
    if (want > slots_.size()) grow_to(want);
  }

  // Records the series of sample (family, index), whose hash is `hash`
  // (series_hash() or any other function of the series used for every
  // sample of this set), unless an equal series is already recorded; returns
  // whether it was recorded.
  bool insert(std::uint64_t hash, std::uint32_t family, std::uint32_t index) {
    const auto [f, i] = insert_or_find(hash, family, index);
    return f == family && i == index;
  }

  // insert(), returning the (family, index) recorded for the series: the
  // given one if it was new, the earlier sample's otherwise.
  std::pair<std::uint32_t, std::uint32_t> insert_or_find(std::uint64_t hash, std::uint32_t family,
                                                          std::uint32_t index) {
    const sample& s = resolve_(family, index);
    hash |= 1;  // 0 marks an empty slot
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      slot& e = slots_[i];
      if (e.hash == 0) {
        e = slot{hash, family, index};
        ++size_;
        return {family, index};
      }
      if (e.hash == hash && same_series(resolve_(e.family, e.index), s)) return {e.family, e.index};
    }
  }

  // True if a series equal to `s`, whose hash is `hash`, is recorded.
  bool contains(const sample& s, std::uint64_t hash) const {
    if (slots_.empty()) return false;
    hash |= 1;
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
      const slot& e = slots_[i];
      if (e.hash == 0) return false;
      if (e.hash == hash && same_series(resolve_(e.family, e.index), s)) return true;
    }
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t family = 0;
    std::uint32_t index = 0;
  };

  void grow() { grow_to(slots_.empty() ? 64 : slots_.size() * 2); }

  void grow_to(std::size_t size) {
    std::vector<slot> old(size);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const slot& e : old) {
      if (e.hash == 0) continue;
      std::size_t i = e.hash & mask;
      while (slots_[i].hash != 0) i = (i + 1) & mask;
      slots_[i] = e;
    }
  }

  Resolve resolve_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace cmp::exposition::detail
