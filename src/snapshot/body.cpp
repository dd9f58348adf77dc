#include "cmp/snapshot/body.hpp"

#include <cstring>
#include <ostream>

namespace cmp::snapshot {

std::string body::str() const {
  std::string out;
  out.reserve(size_);
  for (auto s : segments_) out.append(s);
  return out;
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

void body::builder::copy(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!ranges_.empty() && !ranges_.back().data && ranges_.back().offset + ranges_.back().size == own_.size()) {
    ranges_.back().size += bytes.size();
  } else {
    ranges_.push_back({nullptr, own_.size(), bytes.size()});
  }
  own_.append(bytes);
  size_ += bytes.size();
}

void body::builder::refer(std::string_view bytes) {
  if (bytes.empty()) return;
  if (!ranges_.empty() && ranges_.back().data && ranges_.back().data + ranges_.back().size == bytes.data()) {
    ranges_.back().size += bytes.size();
  } else {
    ranges_.push_back({bytes.data(), 0, bytes.size()});
  }
  size_ += bytes.size();
}

body body::builder::finish() && {
  body b;
  std::shared_ptr<const std::string> own;
  if (!own_.empty()) own = std::make_shared<const std::string>(std::move(own_));
  b.segments_.reserve(ranges_.size());
  for (const auto& r : ranges_) b.segments_.emplace_back(r.data ? r.data : own->data() + r.offset, r.size);
  b.size_ = size_;
  if (own) b.owners_.push_back(std::move(own));
  for (auto& o : owners_) b.owners_.push_back(std::move(o));
  return b;
}

}  // namespace cmp::snapshot
