#include "cmp/upstream/api_key_watch.hpp"

#include <sys/stat.h>

#include <cerrno>

namespace cmp::upstream {

key_file_stat stat_key_file(const std::filesystem::path& path) noexcept {
  key_file_stat s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    s.error = errno;
    return s;
  }
  s.ok = true;
  s.device = static_cast<std::uint64_t>(st.st_dev);
  s.inode = static_cast<std::uint64_t>(st.st_ino);
  s.size = static_cast<std::int64_t>(st.st_size);
  s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + st.st_ctim.tv_nsec;
  return s;
}

bool api_key_watch::should_read(cause why, const key_file_stat& now) const noexcept {
  if (why == cause::unauthorized) return true;
  return now != seen_;
}

api_key_watch::event api_key_watch::on_read(const key_file_stat& st, read_result r) noexcept {
  // Remember the stat even after a failed read: the same broken file is not
  // read again before every poll, only once it changes.
  seen_ = st;
  switch (r) {
    case read_result::failed:
      if (unreadable_) return event::none;
      unreadable_ = true;
      return event::unreadable;
    case read_result::new_key:
      unreadable_ = false;
      return event::rotated;
    case read_result::same_key:
      if (!unreadable_) return event::none;
      unreadable_ = false;
      return event::readable_again;
  }
  return event::none;
}

bool api_key_watch::retry_after_unauthorized(event e, time_point window_end) noexcept {
  if (e != event::rotated) return false;
  if (retried_window_ == window_end) return false;
  retried_window_ = window_end;
  return true;
}

api_key_watch::read_result reread_key(const config::upstream& cfg, const std::string& config_source,
                                      config::secret& key, std::string& problem) {
  try {
    auto fresh = config::load_api_key(cfg, config_source);
    if (fresh == key) return api_key_watch::read_result::same_key;
    key = std::move(fresh);
    return api_key_watch::read_result::new_key;
  } catch (const config::config_error& e) {
    problem = e.what();  // names the file and the reason, never the content
    return api_key_watch::read_result::failed;
  }
}

std::string describe(api_key_watch::event e, api_key_watch::cause why, const std::filesystem::path& file,
                     std::string_view problem) {
  using event = api_key_watch::event;
  switch (e) {
    case event::rotated:
      return "API key reloaded from " + file.string() + " (" +
             (why == api_key_watch::cause::unauthorized ? "re-read after HTTP 401" : "the file changed") +
             "); used from this request on";
    case event::unreadable:
      return "API key file unusable, keeping the key in use: " + std::string(problem);
    case event::readable_again:
      return "API key file " + file.string() + " readable again (same key)";
    case event::none:
      break;
  }
  return {};
}

}  // namespace cmp::upstream
