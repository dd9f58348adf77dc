#include "cmp/snapshot/body.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <ostream>

namespace cmp::snapshot {

body::body(std::string bytes) {
  if (bytes.empty()) return;
  auto own = std::make_shared<const std::string>(std::move(bytes));
  segments_.emplace_back(*own);
  size_ = own->size();
  owners_.push_back(std::move(own));
}

std::string body::str() const {
  std::string out;
  out.reserve(size_);
  for (auto s : segments_) out.append(s);
  return out;
}

std::string_view body::slice(std::size_t offset, std::size_t size) const noexcept {
  std::size_t at = 0;
  for (auto s : segments_) {
    if (offset < at + s.size() || (size == 0 && offset == at + s.size())) {
      if (offset + size > at + s.size()) return {};
      return s.substr(offset - at, size);
    }
    at += s.size();
  }
  return {};
}

bool operator==(const body& a, std::string_view b) noexcept {
  if (a.size_ != b.size()) return false;
  std::size_t at = 0;
  for (auto s : a.segments_) {
    if (std::memcmp(s.data(), b.data() + at, s.size()) != 0) return false;
    at += s.size();
  }
  return true;
}

void PrintTo(const body& b, std::ostream* os) { *os << '"' << b.str() << '"'; }

body::builder::builder() : own_(std::make_shared<std::string>()) {}

void body::builder::reserve(std::size_t bytes) { own_->reserve(bytes); }

void body::builder::copy(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!ranges_.empty() && !ranges_.back().data && ranges_.back().offset + ranges_.back().size == own_->size()) {
    ranges_.back().size += bytes.size();
  } else {
    ranges_.push_back({nullptr, own_->size(), bytes.size()});
  }
  own_->append(bytes);
  size_ += bytes.size();
}

void body::builder::refer(std::string_view bytes) {
  if (bytes.empty()) return;
  auto& last = ranges_.empty() ? ranges_.emplace_back(range{bytes.data(), 0, 0}) : ranges_.back();
  if (last.data && last.data + last.size == bytes.data()) {
    last.size += bytes.size();
  } else {
    ranges_.push_back({bytes.data(), 0, bytes.size()});
  }
  size_ += bytes.size();
}

void body::builder::keep(std::shared_ptr<const void> owner) { owners_.push_back(std::move(owner)); }

void body::builder::keep(const body& other) {
  owners_.insert(owners_.end(), other.owners_.begin(), other.owners_.end());
  extents_.insert(extents_.end(), other.extents_.begin(), other.extents_.end());
}

void body::builder::mapped(const file_extent& e) {
  if (e.fd >= 0 && e.size > 0) extents_.push_back(e);
}

void body::builder::mapped(const body& other) {
  extents_.insert(extents_.end(), other.extents_.begin(), other.extents_.end());
}

body body::builder::finish() && {
  body b;
  if (!own_->empty()) own_->shrink_to_fit();  // before taking pointers: it may move the bytes
  std::sort(extents_.begin(), extents_.end(), [](const file_extent& x, const file_extent& y) {
    return std::less<>()(x.data, y.data);
  });
  extents_.erase(std::unique(extents_.begin(), extents_.end(),
                             [](const file_extent& x, const file_extent& y) { return x.data == y.data; }),
                 extents_.end());
  b.segments_.reserve(ranges_.size());
  bool any_file = false;
  auto push = [&](const char* data, std::size_t size, segment_file f) {
    b.segments_.emplace_back(data, size);
    b.files_.push_back(f);
    any_file = any_file || f.fd >= 0;
  };
  const auto before = [](const char* p, const file_extent& e) { return std::less<>()(p, e.data); };
  for (const auto& r : ranges_) {
    if (r.size == 0) continue;
    if (!r.data) {
      push(own_->data() + r.offset, r.size, {});
      continue;
    }
    // The builder merged ranges that touch in memory; two mappings (or a
    // mapping and heap memory) can touch too, so a range is cut where a
    // file begins or ends: each segment lies in one file or in none.
    const char* p = r.data;
    std::size_t left = r.size;
    while (left > 0) {
      const auto next = std::upper_bound(extents_.begin(), extents_.end(), p, before);
      std::size_t n = left;
      segment_file f;
      if (next != extents_.begin() && std::less<>()(p, std::prev(next)->data + std::prev(next)->size)) {
        const auto& e = *std::prev(next);
        n = std::min<std::size_t>(left, static_cast<std::size_t>(e.data + e.size - p));
        f = {e.fd, e.offset + static_cast<std::uint64_t>(p - e.data)};
      } else if (next != extents_.end() && std::less<>()(next->data, p + left)) {
        n = static_cast<std::size_t>(next->data - p);
      }
      push(p, n, f);
      p += n;
      left -= n;
    }
  }
  if (!any_file) b.files_.clear();
  b.files_.shrink_to_fit();
  b.extents_ = std::move(extents_);
  b.extents_.shrink_to_fit();
  b.size_ = size_;
  if (!own_->empty()) b.owners_.push_back(std::move(own_));
  for (auto& o : owners_) b.owners_.push_back(std::move(o));
  b.owners_.shrink_to_fit();
  return b;
}

}  // namespace cmp::snapshot
