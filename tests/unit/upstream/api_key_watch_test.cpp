#include "cmp/upstream/api_key_watch.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>
#include <vector>

namespace cmp::upstream {
namespace {

using namespace std::chrono_literals;
using cause = api_key_watch::cause;
using read = api_key_watch::read_result;
using event = api_key_watch::event;
using tp = api_key_watch::time_point;

const tp noon = tp(std::chrono::seconds(1795608000));

key_file_stat file(std::uint64_t inode, std::int64_t mtime, std::int64_t ctime = 0,
                   std::int64_t size = 20) {
  key_file_stat s;
  s.ok = true;
  s.device = 1;
  s.inode = inode;
  s.size = size;
  s.mtime_ns = mtime;
  s.ctime_ns = ctime == 0 ? mtime : ctime;
  return s;
}

key_file_stat missing(int err = ENOENT) {
  key_file_stat s;
  s.error = err;
  return s;
}

TEST(ApiKeyWatch, ReadsBeforeAPollOnlyWhenTheFileChanged) {
  const auto loaded = file(10, 1000);
  const api_key_watch w(loaded);
  struct row {
    const char* what;
    key_file_stat now;
    bool read;
  };
  const row rows[] = {
      {"unchanged", loaded, false},
      {"replaced (new inode, Kubernetes symlink swap, mv)", file(11, 1000), true},
      {"rewritten in place", file(10, 2000), true},
      {"same mtime, other size", file(10, 1000, 1000, 21), true},
      {"chmod (ctime only)", file(10, 1000, 3000), true},
      {"deleted", missing(), true},
      {"directory no longer searchable", missing(EACCES), true},
  };
  for (const auto& r : rows) EXPECT_EQ(w.should_read(cause::before_poll, r.now), r.read) << r.what;
}

TEST(ApiKeyWatch, A401AlwaysReadsOnce) {
  const auto loaded = file(10, 1000);
  const api_key_watch w(loaded);
  EXPECT_TRUE(w.should_read(cause::unauthorized, loaded));
}

// A sequence of polls: what the file does, what reading it gives, and what
// the poller must log or count.
TEST(ApiKeyWatch, EventsOncePerChangeOfState) {
  api_key_watch w(file(10, 1000));
  struct step {
    const char* what;
    key_file_stat st;
    read result;
    event expected;
    bool unreadable_after;
  };
  const step steps[] = {
      {"rotated", file(11, 2000), read::new_key, event::rotated, false},
      {"touched, same key", file(11, 3000), read::same_key, event::none, false},
      {"deleted", missing(), read::failed, event::unreadable, true},
      {"replaced by an empty file", file(12, 4000, 4000, 0), read::failed, event::none, true},
      {"restored, same key", file(13, 5000), read::same_key, event::readable_again, false},
      {"emptied", file(13, 6000, 6000, 0), read::failed, event::unreadable, true},
      {"fixed with a new key", file(14, 7000), read::new_key, event::rotated, false},
  };
  for (const auto& s : steps) {
    ASSERT_TRUE(w.should_read(cause::before_poll, s.st)) << s.what;
    EXPECT_EQ(w.on_read(s.st, s.result), s.expected) << s.what;
    EXPECT_EQ(w.unreadable(), s.unreadable_after) << s.what;
  }
}

TEST(ApiKeyWatch, ABrokenFileIsNotReadAgainBeforeEveryPoll) {
  api_key_watch w(file(10, 1000));
  ASSERT_EQ(w.on_read(missing(), read::failed), event::unreadable);
  EXPECT_FALSE(w.should_read(cause::before_poll, missing()));
  EXPECT_TRUE(w.should_read(cause::before_poll, missing(EACCES)));  // another state: look again
  EXPECT_TRUE(w.should_read(cause::before_poll, file(10, 1000)));
}

TEST(ApiKeyWatch, A401RetriesOnlyWithANewKeyAndOncePerWindow) {
  api_key_watch w(file(10, 1000));
  struct row {
    const char* what;
    event e;
    tp window_end;
    bool retry;
  };
  const row rows[] = {
      {"re-read found the same key", event::none, noon, false},
      {"re-read found the file unreadable", event::unreadable, noon, false},
      {"re-read found a new key", event::rotated, noon, true},
      {"another new key in the same window", event::rotated, noon, false},
      {"a new key in the next window", event::rotated, noon + 60s, true},
      {"same key in the window after", event::none, noon + 120s, false},
  };
  for (const auto& r : rows)
    EXPECT_EQ(w.retry_after_unauthorized(r.e, r.window_end), r.retry) << r.what;
}

TEST(StatKeyFile, SeesReplacementAndDeletion) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("cmp-key-watch-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / "key";
  { std::ofstream(path) << "sk-one\n"; }
  const auto first = stat_key_file(path);
  ASSERT_TRUE(first.ok);
  EXPECT_EQ(first.size, 7);
  EXPECT_EQ(stat_key_file(path), first);
  { std::ofstream(dir / "next") << "sk-two-longer\n"; }
  std::filesystem::rename(dir / "next", path);
  const auto second = stat_key_file(path);
  EXPECT_NE(second, first);
  std::filesystem::remove(path);
  const auto gone = stat_key_file(path);
  EXPECT_FALSE(gone.ok);
  EXPECT_EQ(gone.error, ENOENT);
  std::filesystem::remove_all(dir);
}

TEST(RereadKey, NewSameOrFailedAndTheOldKeyStaysOnFailure) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("cmp-key-reread-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  config::upstream u;
  u.name = "org";
  u.api_key_file = (dir / "key").string();
  { std::ofstream(dir / "key") << "sk-one\n"; }
  config::secret key("sk-one");
  std::string problem;
  EXPECT_EQ(reread_key(u, "", key, problem), read::same_key);
  { std::ofstream(dir / "key") << "sk-two\n"; }
  EXPECT_EQ(reread_key(u, "", key, problem), read::new_key);
  EXPECT_EQ(key, config::secret("sk-two"));
  { std::ofstream(dir / "key") << ""; }
  EXPECT_EQ(reread_key(u, "", key, problem), read::failed);
  EXPECT_EQ(key, config::secret("sk-two"));
  EXPECT_NE(problem.find((dir / "key").string()), std::string::npos) << problem;
  std::filesystem::remove_all(dir);
}

TEST(Describe, EveryEventButNoneSaysSomethingAndNamesTheFileNotTheKey) {
  const std::filesystem::path file = "/run/credentials/x/api-key";
  EXPECT_EQ(describe(event::none, cause::before_poll, file, ""), "");
  for (const auto e : {event::rotated, event::readable_again}) {
    const auto line = describe(e, cause::before_poll, file, "");
    EXPECT_NE(line.find(file.string()), std::string::npos) << line;
  }
  EXPECT_NE(describe(event::rotated, cause::unauthorized, file, "").find("HTTP 401"), std::string::npos);
  EXPECT_NE(describe(event::unreadable, cause::before_poll, file, "x: empty").find("x: empty"),
            std::string::npos);
}

}  // namespace
}  // namespace cmp::upstream
