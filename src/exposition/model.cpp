#include "cmp/exposition/model.hpp"

#include <ostream>
#include <stdexcept>

namespace cmp::exposition {

namespace {

std::size_t header_bytes(std::size_t label_count) { return 4 * (2 + 2 * label_count); }

void put_u32(char* at, std::size_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  std::memcpy(at, &u, 4);
}

// memcpy from a null pointer is undefined even for 0 bytes, and an empty
// string_view may hold one.
void put_text(char* at, std::string_view s) {
  if (!s.empty()) std::memcpy(at, s.data(), s.size());
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const label_ref& l) {
  return os << l.name << "=\"" << l.value << '"';
}

std::ostream& operator<<(std::ostream& os, const label_list& labels) {
  os << '{';
  bool first = true;
  for (const label_ref l : labels) {
    if (!first) os << ',';
    first = false;
    os << l;
  }
  return os << '}';
}

std::optional<std::string_view> label_list::find(std::string_view name) const {
  for (const label_ref l : *this)
    if (l.name == name) return l.value;
  return std::nullopt;
}

std::vector<label> label_list::to_labels() const {
  std::vector<label> out;
  out.reserve(count_);
  for (const label_ref l : *this) out.push_back(label{std::string(l.name), std::string(l.value)});
  return out;
}

bool operator==(const label_list& a, const label_list& b) {
  if (a.count_ != b.count_) return false;
  for (std::size_t i = 0; i < a.count_; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

bool operator==(const label_list& a, std::span<const label> b) {
  if (a.count_ != b.size()) return false;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (a[i] != label_ref(b[i])) return false;
  return true;
}

sample::builder::builder(std::string_view name, std::size_t label_count, std::size_t text_room)
    : count_(label_count), header_(header_bytes(label_count)) {
  // Offsets are 32-bit; the parser's limits keep a sample far below that.
  if (name.size() + text_room > UINT32_MAX / 2) throw std::length_error("sample too large");
  // Constructed at full size: growing a string piece by piece pays a
  // capacity check per piece.
  packed_ = std::string(header_ + name.size() + text_room, '\0');
  put_u32(packed_.data(), label_count);
  put_text(packed_.data() + header_, name);
  pos_ = name.size();
  put_end();
}

void sample::builder::put_end() { put_u32(packed_.data() + 4 * next_end_++, pos_); }

void sample::builder::add(std::string_view name, std::string_view value) {
  put_text(value_room(name, value.size()), value);
  value_written(value.size());
}

char* sample::builder::value_room(std::string_view name, std::size_t room) {
  // A caller that miscounted must not write over the header or past the end.
  if (next_end_ + 2 > 2 + 2 * count_ || header_ + pos_ + name.size() + room > packed_.size()) {
    throw std::logic_error("sample::builder: more labels or text than announced");
  }
  room_ = room;
  put_text(packed_.data() + header_ + pos_, name);
  pos_ += name.size();
  put_end();
  return packed_.data() + header_ + pos_;
}

void sample::builder::value_written(std::size_t bytes) {
  if (bytes > room_) throw std::logic_error("sample::builder: value longer than its room");
  room_ = 0;
  pos_ += bytes;
  put_end();
}

sample sample::builder::finish(double value, std::optional<std::int64_t> timestamp_ms) {
  // Fewer labels than announced would leave ends unwritten.
  if (next_end_ != 2 + 2 * count_) throw std::logic_error("sample::builder: label count");
  packed_.resize(header_ + pos_);
  sample s(packed_tag{}, std::move(packed_));
  s.value = value;
  s.timestamp_ms = timestamp_ms;
  return s;
}

sample::sample(std::string_view name, const std::vector<label>& labels, double v,
               std::optional<std::int64_t> ts) {
  std::size_t room = 0;
  for (const label& l : labels) room += l.name.size() + l.value.size();
  builder b(name, labels.size(), room);
  for (const label& l : labels) b.add(l.name, l.value);
  *this = b.finish(v, ts);
}

}  // namespace cmp::exposition
