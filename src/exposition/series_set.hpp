#pragma once
// Set of the series (sample name + label set, label order ignored) already in
// a family_list under construction; used to reject or drop duplicates.
// Internal to the exposition module. Not thread-safe.

#include <cstdint>
#include <functional>
#include <string_view>
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

inline std::uint64_t hash_bytes(std::string_view s) { return std::hash<std::string_view>{}(s); }

// Label order must not matter (`{a="1",b="2"}` and `{b="2",a="1"}` are one
// series), so per-label hashes are combined with a commutative sum.
inline std::uint64_t series_hash(const sample& s) {
  std::uint64_t h = mix64(hash_bytes(s.name));
  for (const label& l : s.labels)
    h += mix64(hash_bytes(l.name) * 0x9e3779b97f4a7c15ULL ^ hash_bytes(l.value));
  return h | 1;  // 0 marks an empty slot
}

inline bool same_series(const sample& a, const sample& b) {
  if (a.name != b.name || a.labels.size() != b.labels.size()) return false;
  // Label names are unique within a sample, so "every label of a is in b"
  // is set equality.
  for (const label& l : a.labels) {
    bool found = false;
    for (const label& m : b.labels) {
      if (l.name == m.name) {
        found = l.value == m.value;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

class series_set {
 public:
  explicit series_set(const family_list& list) : list_(list) {}

  // Records the series of list[family].samples[index] unless an equal series
  // is already recorded; returns whether it was recorded.
  bool insert(std::uint32_t family, std::uint32_t index) {
    const sample& s = list_[family].samples[index];
    return insert(s, series_hash(s), family, index);
  }

  // True if an equal series is recorded (the sample need not be in the list).
  bool contains(const sample& s) const {
    if (slots_.empty()) return false;
    const std::uint64_t h = series_hash(s);
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      const slot& e = slots_[i];
      if (e.hash == 0) return false;
      if (e.hash == h && same_series(list_[e.family].samples[e.index], s)) return true;
    }
  }

 private:
  struct slot {
    std::uint64_t hash = 0;
    std::uint32_t family = 0;
    std::uint32_t index = 0;
  };

  bool insert(const sample& s, std::uint64_t h, std::uint32_t family, std::uint32_t index) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = h & mask;; i = (i + 1) & mask) {
      slot& e = slots_[i];
      if (e.hash == 0) {
        e = slot{h, family, index};
        ++size_;
        return true;
      }
      if (e.hash == h && same_series(list_[e.family].samples[e.index], s)) return false;
    }
  }

  void grow() {
    std::vector<slot> old(slots_.empty() ? 64 : slots_.size() * 2);
    old.swap(slots_);
    const std::size_t mask = slots_.size() - 1;
    for (const slot& e : old) {
      if (e.hash == 0) continue;
      std::size_t i = e.hash & mask;
      while (slots_[i].hash != 0) i = (i + 1) & mask;
      slots_[i] = e;
    }
  }

  const family_list& list_;
  std::vector<slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace cmp::exposition::detail
