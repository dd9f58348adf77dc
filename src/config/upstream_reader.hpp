#pragma once
// Reading one `upstreams[i]` entry: YAML -> `upstream`, types only. What the
// values must satisfy is `validate()` (config.hpp), which is pure and runs on
// the struct, so a rule is written once whether the value came from the file
// or from a command-line override. Private to src/config.

#include <set>
#include <string>
#include <vector>

#include "yaml_reader.hpp"

namespace cmp::config::detail {

// Keys that look like a secret was pasted into the file.
inline constexpr key_hint secret_hints[] = {
    {"api_key", "the key is never written here: use api_key_env or api_key_file"},
    {"key", "the key is never written here: use api_key_env or api_key_file"},
    {"token", "the key is never written here: use api_key_env or api_key_file"},
    {"password", "the key is never written here: use api_key_env or api_key_file"},
};

// Reads the fields of one upstream (`key` is its path, e.g. `upstreams[0]`).
// Unknown keys, wrong types and malformed values are reported to `sink`; each
// field that could not be read keeps its default and its path relative to
// the upstream (`timeout`, `rate_limit.requests`, or the whole `rate_limit`
// when that is not a mapping) is added to `unreadable`, for validate().
// The keys read_upstream accepts, from its own table: `name`, ...,
// `rate_limit.requests`, `replicas.index` (a block's keys, not the block).
[[nodiscard]] std::vector<std::string> upstream_keys();

[[nodiscard]] upstream read_upstream(const YAML::Node& node, const std::string& key,
                                     problem_sink& sink, std::set<std::string>& unreadable);

}  // namespace cmp::config::detail
