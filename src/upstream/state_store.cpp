#include "cmp/upstream/state_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

namespace cmp::upstream {

namespace {

using wall_clock = std::chrono::system_clock;

constexpr std::string_view ledger_magic = "cmp-ledger v1";
constexpr std::string_view snapshot_magic = "cmp-snapshot v1";

// FNV-1a: stable across builds and platforms, unlike std::hash.
std::string url_key(const std::string& url) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : url) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

std::int64_t to_ms(wall_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
wall_clock::time_point from_ms(std::int64_t ms) {
  return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(std::chrono::milliseconds(ms)));
}

std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

[[noreturn]] void throw_errno(std::string_view what, const std::filesystem::path& path) {
  throw std::runtime_error(fmt::format("{} {}: {}", what, path.string(), std::strerror(errno)));
}

std::optional<std::string> read_whole(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    throw_errno("cannot read", path);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw_errno("cannot read", path);
  return std::move(ss).str();
}

}  // namespace

void write_file_durably(const std::filesystem::path& path, std::string_view data) {
  const auto tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw_errno("cannot create", tmp);
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      throw_errno("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    throw_errno("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("cannot rename onto", path);
  const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // makes the rename itself durable
    ::close(dfd);
  }
}

state_store::state_store(std::filesystem::path dir, const std::string& upstream_url) : dir_(std::move(dir)) {
  if (dir_.empty()) return;
  const auto key = url_key(upstream_url);
  ledger_ = dir_ / (key + ".ledger");
  snapshot_ = dir_ / (key + ".snapshot");
  counters_ = dir_ / (key + ".counters");
}

std::optional<std::string> state_store::load_counters() const {
  if (!enabled()) return std::nullopt;
  return read_whole(counters_);
}

void state_store::save_counters(std::string_view text) const {
  if (enabled()) write_file_durably(counters_, text);
}

std::optional<std::vector<wall_clock::time_point>> state_store::load_ledger() const {
  if (!enabled()) return std::nullopt;
  auto text = read_whole(ledger_);
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  if (!std::getline(in, line) || line != ledger_magic)
    throw std::runtime_error(fmt::format("{}: not a ledger file (bad header)", ledger_.string()));
  std::vector<wall_clock::time_point> sent;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto ms = parse_int(line);
    if (!ms) throw std::runtime_error(fmt::format("{}: corrupt entry \"{}\"", ledger_.string(), line));
    sent.push_back(from_ms(*ms));
  }
  return sent;
}

void state_store::save_ledger(const std::vector<wall_clock::time_point>& sent) const {
  if (!enabled()) return;
  std::string text(ledger_magic);
  text += '\n';
  for (auto t : sent) text += fmt::format("{}\n", to_ms(t));
  write_file_durably(ledger_, text);
}

std::optional<stored_snapshot> state_store::load_snapshot() const {
  if (!enabled()) return std::nullopt;
  auto text = read_whole(snapshot_);
  if (!text) return std::nullopt;
  const auto eol = text->find('\n');
  if (eol == std::string::npos)
    throw std::runtime_error(fmt::format("{}: not a snapshot file", snapshot_.string()));
  std::istringstream header(text->substr(0, eol));
  std::string magic_a, magic_b, fetched, window;
  header >> magic_a >> magic_b >> fetched >> window;
  auto f = parse_int(fetched);
  auto w = parse_int(window);
  std::string magic(magic_a);
  magic.append(" ").append(magic_b);
  if (magic != snapshot_magic || !f || !w)
    throw std::runtime_error(fmt::format("{}: corrupt snapshot header", snapshot_.string()));
  // The rest of the header line is the Content-Type (absent in older files;
  // older readers skip it, so a downgrade still reads this file).
  std::string content_type;
  std::getline(header, content_type);
  const auto first = content_type.find_first_not_of(' ');
  content_type.erase(0, first == std::string::npos ? content_type.size() : first);
  return stored_snapshot{from_ms(*f), from_ms(*w), text->substr(eol + 1), std::move(content_type)};
}

void state_store::save_snapshot(const stored_snapshot& s) const {
  if (!enabled()) return;
  // A header value cannot hold a line break (HTTP), but a corrupt one must
  // not break the file either.
  std::string content_type = s.content_type;
  std::replace_if(content_type.begin(), content_type.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  std::string text = fmt::format("{} {} {} {}\n", snapshot_magic, to_ms(s.fetched_at), to_ms(s.window_end),
                                 content_type);
  text += s.body;
  write_file_durably(snapshot_, text);
}

}  // namespace cmp::upstream
