#pragma once
// Strict, error-collecting reading of yaml-cpp nodes, shared by the daemon
// config and the web config. Private to src/config: yaml-cpp never leaks out
// of this module. Nothing here throws on bad input; every problem is added to
// the problem_sink so the user sees all of them in one run.

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "cmp/config/config.hpp"

namespace cmp::config::detail {

// Files larger than this are refused before parsing: a configuration is a
// few kilobytes, and yaml-cpp builds the whole tree in memory.
inline constexpr std::size_t max_file_size = 1024 * 1024;

class problem_sink {
 public:
  explicit problem_sink(std::string_view source) : source_(source) {}

  // `SOURCE: KEY: reason`
  void add(std::string_view key, std::string_view reason);
  // `SOURCE: reason`, for problems with the file as a whole.
  void add_file(std::string_view reason);
  // A line that already names the source (`SOURCE:LINE:COL: ...`).
  void add_raw(std::string line) { problems_.push_back(std::move(line)); }

  [[nodiscard]] const std::string& source() const noexcept { return source_; }
  [[nodiscard]] bool empty() const noexcept { return problems_.empty(); }
  [[nodiscard]] std::vector<std::string> take() { return std::move(problems_); }

 private:
  std::string source_;
  std::vector<std::string> problems_;
};

// A value echoed in a message: quoted, control bytes escaped, long values cut
// so that a binary blob cannot flood the terminal.
[[nodiscard]] std::string quote(std::string_view value);
// A key as written by the user, made printable for a key path.
[[nodiscard]] std::string printable_key(std::string_view key);
[[nodiscard]] std::string child_key(std::string_view parent, std::string_view child);
[[nodiscard]] std::string index_key(std::string_view parent, std::size_t index);

// Parses one YAML document. A syntax error becomes `SOURCE:LINE:COL: ...`.
// Several documents in one file are an error (the later ones would be silently
// ignored otherwise). Returns a null node when the text is empty.
[[nodiscard]] std::optional<YAML::Node> parse_document(std::string_view text, problem_sink& sink);

// Reads a whole file (bounded by max_file_size); problems name the file.
[[nodiscard]] std::optional<std::string> read_text_file(const std::filesystem::path& file,
                                                        problem_sink& sink);

// A key the user may mean, with why it is not accepted; shown after
// "unknown key" (e.g. `api_key`: the key belongs in the environment).
struct key_hint {
  std::string_view key;
  std::string_view hint;
};

// Checks that `node` is a mapping whose keys are distinct strings from
// `allowed`; reports every other key once. A null node counts as an empty
// mapping (`log:` with nothing under it). Returns the known fields, or
// nullopt when `node` is not a mapping at all.
[[nodiscard]] std::optional<std::map<std::string, YAML::Node>> read_fields(
    const YAML::Node& node, const std::string& key, problem_sink& sink,
    std::span<const std::string_view> allowed, std::span<const key_hint> hints = {});
[[nodiscard]] inline std::optional<std::map<std::string, YAML::Node>> read_fields(
    const YAML::Node& node, const std::string& key, problem_sink& sink,
    std::initializer_list<std::string_view> allowed, std::initializer_list<key_hint> hints = {}) {
  return read_fields(node, key, sink, std::span(allowed.begin(), allowed.size()),
                     std::span(hints.begin(), hints.size()));
}

// Scalars. A null value reads as the empty string for strings (`ca_file:`
// means "none"); for every other type it is an error.
[[nodiscard]] std::optional<std::string> read_string(const YAML::Node& node, const std::string& key,
                                                     problem_sink& sink);
[[nodiscard]] std::optional<duration> read_duration(const YAML::Node& node, const std::string& key,
                                                    problem_sink& sink);
[[nodiscard]] std::optional<std::uint32_t> read_uint32(const YAML::Node& node,
                                                       const std::string& key, problem_sink& sink);
[[nodiscard]] std::optional<bool> read_bool(const YAML::Node& node, const std::string& key,
                                            problem_sink& sink);
// A sequence of strings; null is an empty list.
[[nodiscard]] std::optional<std::vector<std::string>> read_string_list(const YAML::Node& node,
                                                                       const std::string& key,
                                                                       problem_sink& sink);
// A mapping of string to string; null is an empty map. Duplicate keys are
// reported. Values are never echoed: basic_auth_users holds password hashes.
[[nodiscard]] std::optional<std::map<std::string, std::string>> read_string_map(
    const YAML::Node& node, const std::string& key, problem_sink& sink);

[[nodiscard]] std::string_view node_kind(const YAML::Node& node);
[[nodiscard]] bool is_valid_utf8(std::string_view s) noexcept;
// Offset of the first byte that is not valid UTF-8, or npos.
[[nodiscard]] std::size_t utf8_error_at(std::string_view s) noexcept;

}  // namespace cmp::config::detail
