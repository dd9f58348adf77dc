// The poller's I/O shell with its fetch and its state writes in the test's
// hands: the state writer runs on an io_context that the test polls
// explicitly, so "the write has run" is a step of the test, not a timing.

#include "cmp/upstream/poller.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <filesystem>
#include <string>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include <ctime>
#include <sstream>

#include "cmp/snapshot/gzip.hpp"

namespace cmp::upstream {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using wall_clock = std::chrono::system_clock;

// 20 s into the current minute, inside the span where a first poll goes at
// once ([poll_offset, poll_interval - timeout] = [5 s, 50 s] by default): the
// tests must not depend on when they run.
wall_clock::time_point pinned_now() {
  static const auto t = std::chrono::floor<std::chrono::minutes>(wall_clock::now()) + 20s;
  return t;
}

const std::string text_type = "text/plain; version=0.0.4; charset=utf-8";
const std::string om_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const std::string om_body = "# TYPE c counter\nc_total 3 # {trace_id=\"x\"} 1\n# EOF\n";

class Poller : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("cmp-poller-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    cfg_.name = "org";
    cfg_.url = "http://127.0.0.1:9/metrics";
    store_.configure({{cfg_.name, cfg_.max_staleness}}, pinned_now());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::shared_ptr<poller> make(std::function<asio::awaitable<fetch_result>(const fetch_request&)> fetch) {
    poller_context pc{ioc_, store_, metrics_, log_, [] { return 0.5; }, dir_, "", {}, files_, std::move(fetch), pinned_now};
    return std::make_shared<poller>(pc, cfg_, config::secret("k"), nullptr, ledger_);
  }
  // Runs what is ready on the I/O thread and on the writer, alternately,
  // until nothing is left to run on either.
  void settle() {
    for (int i = 0; i < 100; ++i) {
      const auto n = ioc_.poll() + files_ctx_.poll();
      ioc_.restart();
      files_ctx_.restart();
      if (n == 0) return;
    }
  }
  [[nodiscard]] std::size_t ledger_entries() const {
    const auto sent = state_store(dir_, cfg_.url).load_ledger();
    return sent ? sent->size() : 0;
  }

  std::filesystem::path dir_;
  config::upstream cfg_;
  asio::io_context ioc_;
  asio::io_context files_ctx_;
  std::shared_ptr<state_writer> files_ = std::make_shared<state_writer>(files_ctx_.get_executor());
  snapshot::snapshot_store store_;
  telemetry::registry metrics_;
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::shared_ptr<budget_ledger> ledger_ = std::make_shared<budget_ledger>(6, 60s);
};

fetch_result ok(std::string body, std::string type) {
  fetch_result r;
  r.status = 200;
  r.body = std::move(body);
  r.content_type = std::move(type);
  return r;
}

// The fake upstream. A named coroutine taking its state by pointer: lambda
// coroutines get a wrong frame size at deallocation from GCC 12, which
// corrupts Asio's recycled frame memory.
struct fake_upstream {
  std::function<std::size_t()> on_request;  // what to record when a request leaves
  fetch_result reply;
  int requests = 0;
  std::size_t recorded = 99;
};

asio::awaitable<fetch_result> serve(fake_upstream* u) {
  ++u->requests;
  if (u->on_request) u->recorded = u->on_request();
  co_return u->reply;
}

std::function<asio::awaitable<fetch_result>(const fetch_request&)> fetch_from(fake_upstream& u) {
  return [p = &u](const fetch_request&) { return serve(p); };
}

// The budget promise: the ledger entry is on disk before the request leaves,
// though the write runs off the I/O thread.
TEST_F(Poller, LedgerIsWrittenBeforeTheRequestLeaves) {
  fake_upstream up{[this] { return ledger_entries(); }, ok("a 1\n", text_type)};
  auto p = make(fetch_from(up));
  poller::start(p);
  ioc_.poll();  // the first poll takes budget and submits the ledger write
  EXPECT_EQ(up.requests, 0) << "the request left before its ledger entry was written";
  EXPECT_EQ(files_->pending(), 1u);
  settle();
  EXPECT_EQ(up.requests, 1);
  EXPECT_EQ(up.recorded, 1u);
  ASSERT_NE(store_.latest("org"), nullptr);
  // The poll's snapshot was written after it, with its Content-Type.
  const auto stored = state_store(dir_, cfg_.url).load_snapshot();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->body, "a 1\n");
  EXPECT_EQ(stored->content_type, text_type);

  std::weak_ptr<poller> alive = p;
  p->stop();
  p.reset();
  settle();
  EXPECT_TRUE(alive.expired()) << "the loop did not end after stop()";
}

// Stopped while its ledger entry is being written: the entry reaches the
// disk (it may have been spent), the request is not sent.
TEST_F(Poller, StopDuringTheLedgerWriteSendsNothingAndLosesNothing) {
  fake_upstream up{nullptr, ok("a 1\n", text_type)};
  auto p = make(fetch_from(up));
  poller::start(p);
  ioc_.poll();
  ASSERT_EQ(files_->pending(), 1u);
  p->stop();
  settle();
  EXPECT_EQ(up.requests, 0);
  EXPECT_EQ(ledger_entries(), 1u);
  std::weak_ptr<poller> alive = p;
  p.reset();
  settle();
  EXPECT_TRUE(alive.expired());
}

// An OpenMetrics body kept in state_dir restores as OpenMetrics after a
// restart (the stored Content-Type), published before the loop runs.
TEST_F(Poller, RestoredSnapshotIsParsedAsItsContentType) {
  fake_upstream up{nullptr, ok(om_body, om_type)};
  auto p = make(fetch_from(up));
  poller::start(p);
  settle();
  ASSERT_NE(store_.latest("org"), nullptr);
  p->stop();
  p.reset();
  settle();

  snapshot::snapshot_store fresh;
  fresh.configure({{cfg_.name, cfg_.max_staleness}}, pinned_now());
  fake_upstream down{nullptr, fetch_result{}};
  poller_context pc{ioc_, fresh, metrics_, log_, [] { return 0.5; }, dir_, "", {}, files_, fetch_from(down), pinned_now};
  auto restarted = std::make_shared<poller>(pc, cfg_, config::secret("k"), nullptr,
                                            std::make_shared<budget_ledger>(6, 60s));
  poller::start(restarted);  // restores synchronously
  const auto snap = fresh.latest("org");
  ASSERT_NE(snap, nullptr);
  EXPECT_NE(snap->rendered->text.find("c_total"), std::string::npos);
  restarted->stop();
  restarted.reset();
  settle();
}

fetch_result gzipped(unsigned status, const std::string& body) {
  fetch_result r = ok(snapshot::gzip_compress(body), text_type);
  r.status = status;
  r.gzip_encoded = true;
  return r;
}

// A gzip body is decoded by the poll's worker (decode_body), not by fetch():
// the snapshot, its state file and the `code` counted are those of the
// decoded body. The worker is a real thread here, as in the daemon.
TEST_F(Poller, GzipBodyIsDecodedOnTheWorker) {
  asio::thread_pool worker(1);
  fake_upstream up{nullptr, gzipped(200, "a 1\n")};
  poller_context pc{ioc_, store_, metrics_, log_, [] { return 0.5; }, dir_, "", worker.get_executor(), files_,
                    fetch_from(up), pinned_now};
  auto p = std::make_shared<poller>(pc, cfg_, config::secret("k"), nullptr, ledger_);
  poller::start(p);
  for (int i = 0; i < 2000 && !store_.latest("org"); ++i) {
    settle();
    if (!store_.latest("org")) ioc_.run_one_for(5ms);  // the worker's post back
  }
  settle();
  const auto snap = store_.latest("org");
  ASSERT_NE(snap, nullptr);
  EXPECT_NE(snap->rendered->text.find("a 1"), std::string::npos);
  EXPECT_EQ(metrics_.upstream("org").requests_by_code().count("200"), 1u);
  const auto stored = state_store(dir_, cfg_.url).load_snapshot();
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->body, "a 1\n");
  p->stop();
  p.reset();
  worker.join();
  settle();
}

// Over the limit once decompressed: nothing published, counted as
// code="protocol" (as when fetch() decoded it), the upstream down.
TEST_F(Poller, DecompressedBodyOverTheLimitIsRefused) {
  // 16 MiB + 1 of text, ~17 KB compressed: only the decoded size is over.
  fake_upstream up{nullptr, gzipped(200, std::string(fetch_request{}.body_limit + 1, 'a'))};
  auto p = make(fetch_from(up));
  poller::start(p);
  settle();
  EXPECT_EQ(up.requests, 1);
  EXPECT_EQ(store_.latest("org"), nullptr);
  EXPECT_EQ(metrics_.upstream("org").requests_by_code().count("protocol"), 1u);
  EXPECT_EQ(metrics_.upstream("org").requests_by_code().count("200"), 0u);
  EXPECT_FALSE(metrics_.upstream("org").up());
  p->stop();
  p.reset();
  settle();
}

TEST_F(Poller, CorruptGzipBodyIsAProtocolFault) {
  fetch_result bad = ok("not gzip", text_type);
  bad.gzip_encoded = true;
  fake_upstream up{nullptr, bad};
  auto p = make(fetch_from(up));
  poller::start(p);
  settle();
  EXPECT_EQ(store_.latest("org"), nullptr);
  EXPECT_EQ(metrics_.upstream("org").requests_by_code().count("protocol"), 1u);
  p->stop();
  p.reset();
  settle();
}

// The skew comes from the answer's Date and the times the request left and
// its head came back, read with the poller's clock: a clock pinned at
// :20, a Date of :30, a request that took 100 ms.
TEST_F(Poller, DateHeaderSetsTheClockSkewGaugeAndWarnsOnce) {
  std::ostringstream lines;
  log_ = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(lines));
  log_->set_level(spdlog::level::info);
  fetch_result answer = ok("a{endpoint=\"x\"} 1\na{endpoint=\"y\"} 2\nb 3\n", text_type);
  const std::time_t api = wall_clock::to_time_t(pinned_now()) + 10;
  char date[64];
  std::tm tm{};
  gmtime_r(&api, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  answer.date = date;
  answer.request_sent_after = 20ms;
  answer.head_received_after = 120ms;
  fake_upstream up{nullptr, answer};
  auto p = make(fetch_from(up));
  poller::start(p);
  settle();
  ASSERT_EQ(up.requests, 1);
  const auto skew = metrics_.upstream("org").clock_skew();
  ASSERT_TRUE(skew.has_value());
  EXPECT_DOUBLE_EQ(*skew, 9.88);  // at least 10 s - 120 ms ahead
  const auto text = lines.str();
  EXPECT_NE(text.find("clock skew: the API's clock is 9.9 s ahead of ours"), std::string::npos) << text;
  // What a new user looks for: the first snapshot, what it holds.
  EXPECT_NE(text.find("upstream=org first snapshot: 2 families, 3 series, 2 endpoints"), std::string::npos)
      << text;
  p->stop();
  p.reset();
  settle();
}

}  // namespace
}  // namespace cmp::upstream
