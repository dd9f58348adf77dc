// The status page's data lives in the snapshot_store: written by each
// upstream's poller, read by the server.
#include <gtest/gtest.h>

#include "cmp/exposition/parser.hpp"
#include "cmp/snapshot/snapshot.hpp"

namespace cmp::snapshot {
namespace {

using namespace std::chrono_literals;

const wall_clock::time_point t0 = wall_clock::time_point{} + std::chrono::seconds(1'800'000'000);

// noipa: GCC 12 constant-propagates the literals into std::string and warns
// falsely (-Wrestrict, GCC bug 105329).
[[gnu::noipa]] upstream_status status_of(std::string_view name, bool up, std::string_view error) {
  upstream_status s;
  s.name.assign(name);
  s.url.append("https://cloud.cerebras.ai/api/v1/metrics/organizations/").append(s.name);
  s.up = up;
  s.last_error.assign(error);
  s.budget_limit = 6;
  // A ledger whose window frees one request every 10 s.
  s.budget_left_at = [](wall_clock::time_point now) {
    return static_cast<std::uint32_t>(std::min<std::int64_t>(6, (now - t0) / 10s));
  };
  return s;
}

TEST(UpstreamStatus, ListsConfiguredUpstreamsInOrderWithWhatTheirPollersWrote) {
  snapshot_store store;
  store.configure({{"b", 5min}, {"a", 2min}}, t0);
  store.set_status(status_of("a", true, ""));
  store.set_status(status_of("c", true, ""));  // not configured: ignored
  const auto list = store.statuses(t0 + 25s);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "b");  // no status yet: just its name
  EXPECT_FALSE(list[0].up);
  EXPECT_EQ(list[0].max_staleness, 5min);
  EXPECT_EQ(list[1].name, "a");
  EXPECT_TRUE(list[1].up);
  EXPECT_EQ(list[1].max_staleness, 2min);  // the store's, from the configuration
  EXPECT_EQ(list[1].budget_left, 2u);      // asked at the time of the request
  EXPECT_EQ(store.statuses(t0 + 45s)[1].budget_left, 4u);
  EXPECT_FALSE(list[1].snapshot_fetched_at.has_value());
}

TEST(UpstreamStatus, SnapshotTimeIsTheKeptSnapshotsAndAReloadKeepsStatuses) {
  snapshot_store store;
  store.configure({{"a", 5min}, {"b", 5min}}, t0);
  store.set_status(status_of("a", false, "timeout after 10s"));
  store.publish(render_snapshot("a", exposition::parse_text("x 1\n").value(), t0 + 3s, t0), t0 + 3s);
  EXPECT_EQ(store.statuses(t0 + 4s)[0].snapshot_fetched_at, t0 + 3s);
  EXPECT_EQ(store.statuses(t0 + 4s)[0].last_error, "timeout after 10s");

  store.configure({{"a", 5min}}, t0 + 5s);  // b removed by a reload
  const auto list = store.statuses(t0 + 6s);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].last_error, "timeout after 10s");
  EXPECT_EQ(list[0].snapshot_fetched_at, t0 + 3s);
}

}  // namespace
}  // namespace cmp::snapshot
