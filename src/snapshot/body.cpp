#include "cmp/snapshot/body.hpp"

#include <cstring>
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
}

body body::builder::finish() && {
  body b;
  b.segments_.reserve(ranges_.size());
  for (const auto& r : ranges_) {
    if (r.size == 0) continue;
    b.segments_.emplace_back(r.data ? r.data : own_->data() + r.offset, r.size);
  }
  b.size_ = size_;
  if (!own_->empty()) {
    own_->shrink_to_fit();
    // shrink_to_fit may move the bytes: resolve again.
    std::size_t i = 0;
    for (const auto& r : ranges_) {
      if (r.size == 0) continue;
      if (!r.data) b.segments_[i] = std::string_view(own_->data() + r.offset, r.size);
      ++i;
    }
    b.owners_.push_back(std::move(own_));
  }
  for (auto& o : owners_) b.owners_.push_back(std::move(o));
  b.owners_.shrink_to_fit();
  return b;
}

}  // namespace cmp::snapshot
