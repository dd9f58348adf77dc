#pragma once
// The Prometheus exposition data model shared by the parser, the writers and
// the transforms. Values with no invariants beyond what the parser checks.
//
// A sample keeps its name and labels in one allocation (one std::string,
// packed): a 1 MB Cerebras body is ~9 k samples of three labels each, and
// with a string per name, label name and label value the parser spent most
// of its time allocating (bench/HISTORY.md, "Micro-benchmarks").

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <iosfwd>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cmp::exposition {

enum class metric_type : std::uint8_t { untyped, counter, gauge, histogram, summary };

// A label that owns its text; what callers build samples from.
struct label {
  std::string name;
  std::string value;  // unescaped
  friend bool operator==(const label&, const label&) = default;
};

// A label of a sample, seen in the sample's storage: valid while the sample
// is alive and not assigned to.
struct label_ref {
  std::string_view name;
  std::string_view value;  // unescaped
  label_ref() = default;
  label_ref(std::string_view n, std::string_view v) : name(n), value(v) {}
  label_ref(const label& l) : name(l.name), value(l.value) {}  // NOLINT: a label is a label_ref
  friend bool operator==(const label_ref&, const label_ref&) = default;
};

std::ostream& operator<<(std::ostream& os, const label_ref& l);

// The labels of a sample in their order; a view with the same lifetime rule
// as label_ref. Like the sample, safe to read from any number of threads.
class label_list {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = label_ref;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = label_ref;
    iterator() = default;
    iterator(const label_list& list, std::uint32_t i)
        : text_(list.text_), ends_(list.ends_), i_(i) {}
    label_ref operator*() const { return at(text_, ends_, i_); }
    iterator& operator++() {
      ++i_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++i_;
      return old;
    }
    friend bool operator==(const iterator& a, const iterator& b) { return a.i_ == b.i_; }

   private:
    // Not a pointer to the label_list: an iterator may outlive it.
    const char* text_ = nullptr;
    const char* ends_ = nullptr;
    std::uint32_t i_ = 0;
  };
  using const_iterator = iterator;
  using value_type = label_ref;

  label_list(const char* text, const char* ends, std::uint32_t count)
      : text_(text), ends_(ends), count_(count) {}

  std::size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  label_ref operator[](std::size_t i) const { return at(text_, ends_, i); }
  iterator begin() const { return {*this, 0}; }
  iterator end() const { return {*this, count_}; }

  // The value of label `name`; nullopt if the sample has no such label.
  std::optional<std::string_view> find(std::string_view name) const;
  std::vector<label> to_labels() const;

  // Same labels in the same order.
  friend bool operator==(const label_list& a, const label_list& b);
  friend bool operator==(const label_list& a, std::span<const label> b);

 private:
  // ends holds 32-bit offsets from text: [0] is the end of the sample name;
  // label i's name ends at [2i+1] and its value at [2i+2].
  static label_ref at(const char* text, const char* ends, std::size_t i) {
    std::uint32_t e[3];
    std::memcpy(e, ends + 4 * (2 * i), sizeof e);
    return {{text + e[0], e[1] - e[0]}, {text + e[1], e[2] - e[1]}};
  }

  const char* text_;
  const char* ends_;
  std::uint32_t count_;
};

std::ostream& operator<<(std::ostream& os, const label_list& l);

// One sample line: name, labels, value, optional timestamp. A value type;
// const samples may be read from any number of threads at once.
class sample {
 public:
  // Writes a sample's name and labels straight into its storage: for the
  // parser and the transforms, which make many samples. Label values may be
  // written in place (unescaped) through value_room()/value_written().
  class builder {
   public:
    // `label_count` labels will follow, whose names and values take at most
    // `text_room` bytes (the name not included).
    builder(std::string_view name, std::size_t label_count, std::size_t text_room);
    void add(std::string_view name, std::string_view value);
    // Adds a label named `name` whose value, at most `room` bytes, is
    // written at the returned pointer and then committed with value_written.
    char* value_room(std::string_view name, std::size_t room);
    void value_written(std::size_t bytes);
    sample finish(double value, std::optional<std::int64_t> timestamp_ms = std::nullopt);

   private:
    void put_end();
    std::string packed_;
    std::size_t count_;
    std::size_t next_end_ = 1;  // index of the next end offset to write
    std::size_t pos_;           // where the next text byte goes, from text start
    std::size_t header_;
    std::size_t room_ = 0;  // of the value being written
  };

  sample() : sample(std::string_view{}) {}
  // Not explicit: `{name, {{"k", "v"}}, 1.0}` makes a sample.
  sample(std::string_view name, const std::vector<label>& labels = {}, double value = 0,
         std::optional<std::int64_t> timestamp_ms = std::nullopt);

  std::string_view name() const {
    return {text(), end0()};
  }
  label_list labels() const {
    return {text(), packed_.data() + 4, count()};
  }

  // Name and labels byte for byte the same (labels in the same order): the
  // same series; unequal keys can still be the same series in another order.
  bool same_key(const sample& other) const { return packed_ == other.packed_; }

  double value = 0;
  std::optional<std::int64_t> timestamp_ms;

 private:
  struct packed_tag {};
  sample(packed_tag, std::string packed) : packed_(std::move(packed)) {}
  std::uint32_t count() const {
    std::uint32_t n;
    std::memcpy(&n, packed_.data(), 4);
    return n;
  }
  std::uint32_t end0() const {
    std::uint32_t n;
    std::memcpy(&n, packed_.data() + 4, 4);
    return n;
  }
  const char* text() const { return packed_.data() + 4 * (2 + 2 * std::size_t{count()}); }

  // [u32 label count][u32 ends, 1 + 2 * count][name, then name and value of
  // each label]. End offsets count from the start of the text.
  std::string packed_;
};

struct family {
  std::string name;
  metric_type type = metric_type::untyped;
  std::optional<std::string> help;  // unescaped
  std::vector<sample> samples;
};

using family_list = std::vector<family>;

}  // namespace cmp::exposition
