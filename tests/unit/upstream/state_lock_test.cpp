#include "cmp/upstream/state_lock.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cmp::upstream {
namespace {

// flock(2) locks belong to an open file description: two locks taken by one
// process through two opens conflict exactly as two processes' would.
class StateLock : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("cmp-lock-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(StateLock, ARunningDaemonRefusesAProbe) {
  const auto daemon = state_lock::shared(dir_ / "state");  // creates the directory
  ASSERT_TRUE(daemon.held());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "state" / "lock"));
  std::string why;
  bool busy = false;
  EXPECT_FALSE(state_lock::exclusive(dir_ / "state", why, &busy).has_value());
  EXPECT_TRUE(busy);
  EXPECT_EQ(why, "a running daemon (or another probe) uses state_dir " + (dir_ / "state").string());
}

TEST_F(StateLock, DaemonsShareAndAProbeFollowsThem) {
  std::string why;
  {
    const auto a = state_lock::shared(dir_);
    const auto b = state_lock::shared(dir_);  // two daemons on one state_dir still start
    EXPECT_TRUE(a.held() && b.held());
  }
  auto probe = state_lock::exclusive(dir_, why);
  ASSERT_TRUE(probe.has_value()) << why;
  std::string second;
  EXPECT_FALSE(state_lock::exclusive(dir_, second).has_value()) << "two probes at once";
  auto moved = std::move(*probe);
  EXPECT_TRUE(moved.held());
  EXPECT_FALSE(probe->held());
}

TEST_F(StateLock, UnusableDirectory) {
  std::filesystem::create_directories(dir_);
  const auto file = dir_ / "not-a-dir";
  { std::ofstream(file.string()) << "x"; }
  std::string why;
  bool busy = true;
  EXPECT_FALSE(state_lock::exclusive(file, why, &busy).has_value());
  EXPECT_FALSE(busy) << "not a daemon: the directory is unusable";
  EXPECT_NE(why.find("cannot open " + (file / "lock").string()), std::string::npos) << why;
  // The daemon's side never fails the start; it just holds nothing.
  EXPECT_FALSE(state_lock::shared(file).held());
}

}  // namespace
}  // namespace cmp::upstream
