#include "cmp/upstream/state_store.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cmp::upstream {
namespace {

using std::chrono::milliseconds;
using wall_clock = std::chrono::system_clock;

class StateStore : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("cmp-state-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

const std::string om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";

TEST_F(StateStore, SnapshotKeepsItsContentType) {
  const state_store s(dir_, "https://example.test/org");
  const std::string body = "# TYPE c counter\nc_total 3\n# EOF\n";
  s.save_snapshot({wall_clock::time_point(milliseconds(1500)), wall_clock::time_point(milliseconds(1000)), body,
                   om_type});
  const auto loaded = s.load_snapshot();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->body, body);
  EXPECT_EQ(loaded->content_type, om_type);
  EXPECT_EQ(loaded->fetched_at, wall_clock::time_point(milliseconds(1500)));
  EXPECT_EQ(loaded->window_end, wall_clock::time_point(milliseconds(1000)));
}

TEST_F(StateStore, SnapshotWithoutContentTypeStaysReadable) {
  const state_store s(dir_, "https://example.test/org");
  s.save_snapshot({wall_clock::time_point(milliseconds(1500)), wall_clock::time_point(milliseconds(1000)), "a 1\n", ""});
  const auto loaded = s.load_snapshot();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->content_type, "");
  EXPECT_EQ(loaded->body, "a 1\n");
}

// Files written before the Content-Type was kept still restore.
TEST_F(StateStore, OldSnapshotFileHasNoContentType) {
  const state_store s(dir_, "https://example.test/org");
  {
    std::ofstream out(s.snapshot_path(), std::ios::binary);
    out << "cmp-snapshot v1 1500 1000\na 1\nb 2\n";
  }
  const auto loaded = s.load_snapshot();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->content_type, "");
  EXPECT_EQ(loaded->body, "a 1\nb 2\n");
  EXPECT_EQ(loaded->fetched_at, wall_clock::time_point(milliseconds(1500)));
}

TEST_F(StateStore, LineBreakInContentTypeCannotCorruptTheBody) {
  const state_store s(dir_, "https://example.test/org");
  s.save_snapshot({wall_clock::time_point(milliseconds(1)), wall_clock::time_point(milliseconds(1)), "a 1\n",
                   "text/plain\nb 2"});
  const auto loaded = s.load_snapshot();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->body, "a 1\n");
  EXPECT_EQ(loaded->content_type, "text/plain b 2");
}

}  // namespace
}  // namespace cmp::upstream
