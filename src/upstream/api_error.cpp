#include "cmp/upstream/api_error.hpp"

#include <fmt/format.h>

#include <optional>

namespace cmp::upstream {

namespace {

// A minimal reader of one JSON document: just enough to find a string
// member of the top-level object. Anything it does not understand makes it
// give up, and the caller shows the raw body instead.
class json_reader {
 public:
  explicit json_reader(std::string_view text) : s_(text) {}

  // The string value of `name` in the top-level object, or of `message` in
  // the object that is the value of `name`.
  std::optional<std::string> member(std::string_view name) {
    pos_ = 0;
    if (!expect('{')) return std::nullopt;
    if (expect('}')) return std::nullopt;
    do {
      auto key = string();
      if (!key || !expect(':')) return std::nullopt;
      if (*key == name) {
        skip_space();
        if (peek() == '"') return string();
        if (peek() == '{') {
          json_reader inner(s_.substr(pos_));
          return inner.member("message");
        }
        return std::nullopt;
      }
      if (!skip_value()) return std::nullopt;
    } while (expect(','));
    return std::nullopt;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool expect(char c) {
    skip_space();
    if (peek() != c) return false;
    ++pos_;
    return true;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::optional<unsigned> hex4() {
    if (pos_ + 4 > s_.size()) return std::nullopt;
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f') v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') v |= static_cast<unsigned>(c - 'A' + 10);
      else return std::nullopt;
    }
    return v;
  }

  std::optional<std::string> string() {
    if (!expect('"')) return std::nullopt;
    std::string out;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) return std::nullopt;
      const char e = s_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u': {
          auto cp = hex4();
          if (!cp) return std::nullopt;
          // A surrogate pair is one character; a lone half becomes U+FFFD.
          if (*cp >= 0xd800 && *cp < 0xdc00 && s_.substr(pos_, 2) == "\\u") {
            pos_ += 2;
            const auto low = hex4();
            if (!low) return std::nullopt;
            *cp = (*low >= 0xdc00 && *low < 0xe000) ? 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00) : 0xfffd;
          } else if (*cp >= 0xd800 && *cp < 0xe000) {
            *cp = 0xfffd;
          }
          append_utf8(out, *cp);
          break;
        }
        default: out += e;  // \" \\ \/
      }
    }
    return std::nullopt;
  }

  // Any value: strings by their own rules, objects and arrays by depth,
  // numbers and literals up to the next delimiter.
  bool skip_value() {
    skip_space();
    int depth = 0;
    while (pos_ < s_.size()) {
      const char c = peek();
      if (c == '"') {
        if (!string()) return false;
      } else if (c == '{' || c == '[') {
        ++depth;
        ++pos_;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return true;
        --depth;
        ++pos_;
      } else if (c == ',' && depth == 0) {
        return true;
      } else {
        ++pos_;
      }
      if (depth == 0 && (peek() == ',' || peek() == '}')) return true;
      skip_space();
    }
    return false;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
};

std::string_view trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

std::string escape_controls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
    else out += c;
  }
  return out;
}

// Cuts before a UTF-8 continuation byte never lands inside a character.
std::string cut(std::string s, std::size_t limit) {
  if (s.size() <= limit) return s;
  std::size_t end = limit - 3;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xc0) == 0x80) --end;
  s.resize(end);
  return s + "...";
}

}  // namespace

std::string api_error_text(std::string_view body, const config::secret& key) {
  std::string text;
  json_reader json(body);
  for (const std::string_view name : {"message", "error", "detail"}) {
    if (auto v = json.member(name)) {
      text = std::move(*v);
      break;
    }
  }
  if (text.empty()) text = std::string(body);
  text = std::string(trim(text));
  if (const auto k = key.expose(); !k.empty()) {
    for (auto at = text.find(k); at != std::string::npos; at = text.find(k, at)) {
      text.replace(at, k.size(), config::secret::redacted());
      at += config::secret::redacted().size();
    }
  }
  return cut(escape_controls(text), api_error_text_limit);
}

}  // namespace cmp::upstream
