#include "yaml_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>
#include <sstream>

#include <fmt/format.h>

namespace cmp::config::detail {

void problem_sink::add(std::string_view key, std::string_view reason) {
  problems_.push_back(fmt::format("{}: {}: {}", source_, key, reason));
}

void problem_sink::add_file(std::string_view reason) {
  problems_.push_back(fmt::format("{}: {}", source_, reason));
}

namespace {

constexpr std::size_t max_echo = 64;

void append_escaped(std::string& out, std::string_view s) {
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\x{:02x}", c);
        } else {
          out += ch;
        }
    }
  }
}

std::string_view clip(std::string_view s) {
  return s.size() > max_echo ? s.substr(0, max_echo) : s;
}

// Levenshtein distance, for "did you mean" on unknown keys; keys are short.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0U : 1U)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string quote(std::string_view value) {
  std::string out = "\"";
  append_escaped(out, clip(value));
  out += '"';
  if (value.size() > max_echo) out += fmt::format(" (cut, {} bytes)", value.size());
  return out;
}

std::string printable_key(std::string_view key) {
  std::string out;
  append_escaped(out, clip(key));
  if (key.size() > max_echo) out += "...";
  if (out.empty()) out = "\"\"";
  return out;
}

std::string child_key(std::string_view parent, std::string_view child) {
  if (parent.empty()) return printable_key(child);
  return fmt::format("{}.{}", parent, printable_key(child));
}

std::string index_key(std::string_view parent, std::size_t index) {
  return fmt::format("{}[{}]", parent, index);
}

std::string_view node_kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Null:
      return "empty (null)";
    case YAML::NodeType::Undefined:
      break;
  }
  return "undefined";
}

std::size_t utf8_error_at(std::string_view s) noexcept {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1fU;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0fU;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07U;
    } else {
      return i;
    }
    if (i + n >= s.size()) return i;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (cc & 0x3fU);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
      return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

bool is_valid_utf8(std::string_view s) noexcept {
  return utf8_error_at(s) == std::string_view::npos;
}

namespace {

// Counts documents and stops at two: we only need to know "more than one".
class document_counter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

std::string position(std::string_view text, std::size_t offset) {
  const auto before = text.substr(0, offset);
  const auto line = static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n')) + 1;
  const auto nl = before.rfind('\n');
  const std::size_t col = nl == std::string_view::npos ? offset + 1 : offset - nl;
  return fmt::format("{}:{}", line, col);
}

}  // namespace

std::optional<YAML::Node> parse_document(std::string_view text, problem_sink& sink) {
  if (text.size() > max_file_size) {
    sink.add_file(fmt::format("file is larger than {} bytes", max_file_size));
    return std::nullopt;
  }
  // yaml-cpp 0.7 does not refuse bytes YAML forbids, and some of them make
  // YAML::LoadAll yield empty documents forever (found by fuzzing). Refuse
  // them first, with a position, then count documents with a capped pass.
  const std::string_view body = text.starts_with("\xef\xbb\xbf") ? text.substr(3) : text;
  const std::size_t skip = text.size() - body.size();
  if (const auto bad = utf8_error_at(body); bad != std::string_view::npos) {
    sink.add_raw(fmt::format("{}:{}: YAML syntax error: invalid UTF-8", sink.source(),
                             position(text, skip + bad)));
    return std::nullopt;
  }
  for (std::size_t i = 0; i < body.size(); ++i) {
    const auto c = static_cast<unsigned char>(body[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
      sink.add_raw(
          fmt::format("{}:{}: YAML syntax error: control character 0x{:02x} is not allowed",
                      sink.source(), position(text, skip + i), c));
      return std::nullopt;
    }
  }
  try {
    const std::string owned(text);
    {
      std::istringstream in(owned);
      YAML::Parser parser(in);
      document_counter counter;
      std::size_t docs = 0;
      while (docs < 2 && parser.HandleNextDocument(counter)) ++docs;
      if (docs > 1) {
        sink.add_file("holds several YAML documents (`---`); a configuration is one document");
        return std::nullopt;
      }
      if (docs == 0) return YAML::Node(YAML::NodeType::Null);
    }
    return YAML::Load(owned);
  } catch (const YAML::ParserException& e) {
    // yaml-cpp marks are 0-based; editors count from 1.
    sink.add_raw(fmt::format("{}:{}:{}: YAML syntax error: {}", sink.source(), e.mark.line + 1,
                             e.mark.column + 1, e.msg));
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    sink.add_file(fmt::format("YAML error: {}", e.what()));
    return std::nullopt;
  }
}

std::optional<std::string> read_text_file(const std::filesystem::path& file, problem_sink& sink) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    sink.add_file(fmt::format("cannot open: {}", std::strerror(errno)));
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    sink.add_file("is a directory, not a file");
    return std::nullopt;
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      sink.add_file(fmt::format("cannot read: {}", std::strerror(err)));
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_file_size) {
      ::close(fd);
      sink.add_file(fmt::format("file is larger than {} bytes", max_file_size));
      return std::nullopt;
    }
  }
  ::close(fd);
  return text;
}

std::optional<std::map<std::string, YAML::Node>> read_fields(
    const YAML::Node& node, const std::string& key, problem_sink& sink,
    std::span<const std::string_view> allowed, std::span<const key_hint> hints) {
  std::map<std::string, YAML::Node> fields;
  if (node.IsNull()) return fields;
  if (!node.IsMap()) {
    sink.add(key.empty() ? std::string("(top level)") : key,
             fmt::format("must be a mapping of keys to values, not {}", node_kind(node)));
    return std::nullopt;
  }
  std::set<std::string> seen;
  // Range-for copies each pair: the iterator's operator-> returns a proxy
  // temporary that GCC 12 flags as dangling.
  for (const auto& kv : node) {
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) {
      sink.add(key.empty() ? std::string("(top level)") : key,
               fmt::format("keys must be plain strings, found {} used as a key", node_kind(k)));
      continue;
    }
    const std::string& name = k.Scalar();
    const std::string path = child_key(key, name);
    if (!seen.insert(name).second) {
      sink.add(path, "duplicate key");
      continue;
    }
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) {
      fields.emplace(name, kv.second);
      continue;
    }
    std::string reason = "unknown key";
    const auto hint =
        std::find_if(hints.begin(), hints.end(), [&](const key_hint& h) { return h.key == name; });
    if (hint != hints.end()) {
      reason += fmt::format(" ({})", hint->hint);
    } else if (name == "<<") {
      reason += " (YAML merge keys are not supported; write the settings out)";
    } else {
      std::string_view best;
      std::size_t best_distance = 3;
      for (const std::string_view candidate : allowed) {
        const std::size_t d = edit_distance(name, candidate);
        if (d < best_distance) {
          best_distance = d;
          best = candidate;
        }
      }
      if (!best.empty() && name.size() > 2) reason += fmt::format(" (did you mean {}?)", best);
    }
    sink.add(path, reason);
  }
  return fields;
}

std::optional<std::string> read_string(const YAML::Node& node, const std::string& key,
                                       problem_sink& sink) {
  if (node.IsNull()) return std::string();
  if (!node.IsScalar()) {
    sink.add(key, fmt::format("must be a string, not {}", node_kind(node)));
    return std::nullopt;
  }
  const std::string& value = node.Scalar();
  if (value.find('\0') != std::string::npos) {
    sink.add(key, "contains a NUL byte");
    return std::nullopt;
  }
  return value;
}

std::optional<duration> read_duration(const YAML::Node& node, const std::string& key,
                                      problem_sink& sink) {
  if (!node.IsScalar()) {
    sink.add(key, fmt::format("must be a duration such as 10s, not {}", node_kind(node)));
    return std::nullopt;
  }
  const auto d = parse_duration(node.Scalar());
  if (!d) {
    sink.add(key,
             fmt::format("{} is not a duration (use 500ms, 10s, 5m, 1h)", quote(node.Scalar())));
  }
  return d;
}

std::optional<std::uint32_t> read_uint32(const YAML::Node& node, const std::string& key,
                                         problem_sink& sink) {
  if (!node.IsScalar()) {
    sink.add(key, fmt::format("must be a whole number, not {}", node_kind(node)));
    return std::nullopt;
  }
  const std::string& text = node.Scalar();
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size()) {
    sink.add(key, fmt::format("{} is not a whole number", quote(text)));
    return std::nullopt;
  }
  if (ec == std::errc::result_out_of_range || value > UINT32_MAX) {
    sink.add(key, fmt::format("{} is too large (at most {})", quote(text), UINT32_MAX));
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

std::optional<bool> read_bool(const YAML::Node& node, const std::string& key, problem_sink& sink) {
  if (node.IsScalar()) {
    const std::string& v = node.Scalar();
    // YAML 1.2 core schema only: `yes`/`on` are strings there, and a
    // setting that reads differently in different parsers is a trap.
    if (v == "true" || v == "True" || v == "TRUE") return true;
    if (v == "false" || v == "False" || v == "FALSE") return false;
    sink.add(key, fmt::format("{} is not a boolean (use true or false)", quote(v)));
    return std::nullopt;
  }
  sink.add(key, fmt::format("must be true or false, not {}", node_kind(node)));
  return std::nullopt;
}

std::optional<std::vector<std::string>> read_string_list(const YAML::Node& node,
                                                         const std::string& key,
                                                         problem_sink& sink) {
  std::vector<std::string> out;
  if (node.IsNull()) return out;
  if (!node.IsSequence()) {
    sink.add(key, fmt::format("must be a list of strings, not {}", node_kind(node)));
    return std::nullopt;
  }
  bool ok = true;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const YAML::Node item = node[i];
    const std::string path = index_key(key, i);
    if (!item.IsScalar()) {
      sink.add(path, fmt::format("must be a string, not {}", node_kind(item)));
      ok = false;
      continue;
    }
    out.push_back(item.Scalar());
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<std::map<std::string, std::string>> read_string_map(const YAML::Node& node,
                                                                  const std::string& key,
                                                                  problem_sink& sink) {
  std::map<std::string, std::string> out;
  if (node.IsNull()) return out;
  if (!node.IsMap()) {
    sink.add(key, fmt::format("must be a mapping of strings to strings, not {}", node_kind(node)));
    return std::nullopt;
  }
  bool ok = true;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      sink.add(key, fmt::format("keys must be plain strings, found {} used as a key",
                                node_kind(kv.first)));
      ok = false;
      continue;
    }
    const std::string& name = kv.first.Scalar();
    const std::string path = child_key(key, name);
    if (!kv.second.IsScalar()) {
      sink.add(path, fmt::format("must be a string, not {}", node_kind(kv.second)));
      ok = false;
      continue;
    }
    if (!out.emplace(name, kv.second.Scalar()).second) {
      sink.add(path, "duplicate key");
      ok = false;
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

}  // namespace cmp::config::detail
