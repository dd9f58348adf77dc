// The scrape path without sockets: what the server does per /metrics request
// once the request is parsed, on Cerebras-shaped views of ~4 KB, ~100 KB and
// ~1 MB (1, 30 and 300 endpoints of bench/cerebras_payload.hpp, rendered
// once with render_snapshot, as a poll does).
//
//   bm_handle_metrics       routing + content negotiation (handler.cpp)
//   bm_scrape_assemble      handle() + picking the prepared bytes (the view's,
//                           the prepared self-metrics', the gzip trailer),
//                           i.e. everything http_server.cpp does before the
//                           write except formatting the response head
//   bm_self_metrics_render  registry::render (all self-metrics) alone
//   bm_self_metrics_prepare render + gzip end piece: once a second at most
//   bm_gzip_begin           compression of a whole body (MB/s of input)
//   bm_render_snapshot      per poll: merge, render both formats, gzip both
//   bm_merge_views          per burst: N organizations' snapshots merged, gzipped
//   bm_http_keepalive_scrape  the same scrape through http_server and a
//                           loopback socket, request parsing included
//
// `allocs` counts calls to operator new per iteration (this binary replaces
// the global operator new): the steady scrape path should show 0.

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "cerebras_payload.hpp"
#include "cmp/exposition/parser.hpp"
#include "cmp/server/handler.hpp"
#include "cmp/server/http_server.hpp"
#include "cmp/server/scrape_body.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/snapshot/gzip.hpp"
#include "cmp/snapshot/snapshot.hpp"
#include "cmp/telemetry/registry.hpp"

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}  // namespace

// Counting allocator for the `allocs` counter. Sized and aligned variants
// forward to these or to malloc directly.
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
// Not inlined: GCC would otherwise see free() of a pointer from operator new
// at call sites and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace cmp;
namespace asio = boost::asio;
using wall_clock = std::chrono::system_clock;

// What Prometheus 2.x/3.x sends.
constexpr std::string_view prometheus_accept =
    "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
constexpr std::string_view text_accept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";

void payload_sizes(benchmark::internal::Benchmark* b) {
  for (int n : {1, 30, 300}) b->Arg(n);
}

std::shared_ptr<const snapshot::snapshot> make_snapshot(std::size_t endpoints, const std::string& org = "default") {
  auto parsed = exposition::parse_text(bench::cerebras_payload(endpoints));
  if (!parsed) std::abort();
  // Told apart by an `org` label when several are merged, as a
  // multi-organization config does.
  if (org != "default") exposition::add_labels(*parsed, {{"org", org}});
  return snapshot::render_snapshot(org, *parsed, wall_clock::now(), wall_clock::now());
}

// One organization's view, as a poll leaves it.
std::shared_ptr<const snapshot::exposition_view> make_view(std::size_t endpoints) {
  return make_snapshot(endpoints)->own;
}

// A registry shaped like a running daemon's with one upstream.
void fill_registry(telemetry::registry& r) {
  auto& u = r.upstream("default");
  for (int i = 0; i < 100; ++i) u.count_request("200", 0.2 + 0.01 * i);
  u.count_request("429", 0.1);
  u.count_request("timeout", 5);
  u.set_up(true, wall_clock::now());
  u.snapshot_fetched_at = u.last_success();
  u.set_snapshot_served(true);
  u.rate_limit_remaining = [](wall_clock::time_point) { return 5u; };
  r.count_scrape(200);
  r.count_scrape(401);
  r.set_open_connections(64);
}

server::handler_context context_for(std::shared_ptr<const snapshot::exposition_view> view) {
  auto views = std::make_shared<snapshot::served_views>();
  views->all = std::move(view);
  server::handler_context ctx;
  ctx.views = [views] { return views; };
  return ctx;
}

void bm_handle_metrics(benchmark::State& state) {
  const auto ctx = context_for(make_view(1));
  server::request_view req;
  req.target = "/metrics";
  req.accept = prometheus_accept;
  req.accept_encoding = "gzip";
  req.scrape_timeout = "10";
  const auto now = wall_clock::now();
  const auto allocs0 = g_allocs.load();
  for (auto _ : state) {
    auto r = server::handle(req, ctx, now);
    benchmark::DoNotOptimize(r);
  }
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(g_allocs.load() - allocs0),
                                                benchmark::Counter::kAvgIterations);
}
BENCHMARK(bm_handle_metrics);

// Args: endpoints, gzip (0/1), openmetrics (0/1). What http_server.cpp's
// serve() does for /metrics between parsing the request and formatting the
// response head.
void bm_scrape_assemble(benchmark::State& state) {
  const auto ctx = context_for(make_view(static_cast<std::size_t>(state.range(0))));
  const bool gzip = state.range(1) != 0;
  const bool om_wanted = state.range(2) != 0;
  telemetry::registry metrics;
  fill_registry(metrics);
  server::self_metrics self(metrics, std::chrono::seconds(1));
  server::scrape_body body;
  server::request_view req;
  req.target = "/metrics";
  req.accept = om_wanted ? prometheus_accept : text_accept;
  req.accept_encoding = gzip ? "gzip, deflate" : "";
  const auto scrape_once = [&] {
    const auto now = wall_clock::now();
    const auto m = std::get<server::metrics_request>(server::handle(req, ctx, now));
    metrics.count_scrape(200);
    body.assemble(ctx.views()->all, self.get(m.format, now), m.format, m.gzip);
    benchmark::DoNotOptimize(body.parts.data());
  };
  // Warm-up: buffers reach their steady size, the self-metrics are prepared.
  scrape_once();
  const auto allocs0 = g_allocs.load();
  for (auto _ : state) scrape_once();
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(g_allocs.load() - allocs0),
                                                benchmark::Counter::kAvgIterations);
  state.counters["response_bytes"] = static_cast<double>(body.size);
}
BENCHMARK(bm_scrape_assemble)
    ->ArgNames({"endpoints", "gzip", "om"})
    ->ArgsProduct({{1, 30, 300}, {0, 1}, {0}})
    ->Args({30, 1, 1});

void bm_self_metrics_render(benchmark::State& state) {
  telemetry::registry metrics;
  fill_registry(metrics);
  const auto f = state.range(0) != 0 ? exposition::format::openmetrics : exposition::format::text;
  std::string out;
  for (auto _ : state) {
    out.clear();
    metrics.render(out, f, wall_clock::now());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(bm_self_metrics_render)->ArgName("om")->Arg(0)->Arg(1);

// What preparing the self-metrics costs (at most once a second, and when
// a poll changes them): render, and compress as the gzip end piece.
void bm_self_metrics_prepare(benchmark::State& state) {
  telemetry::registry metrics;
  fill_registry(metrics);
  server::self_metrics self(metrics, std::chrono::milliseconds(0));
  std::size_t plain = 0, packed = 0;
  for (auto _ : state) {
    const auto t = self.get(exposition::format::openmetrics, wall_clock::now());
    plain = t->plain.size();
    packed = t->gzip.bytes.size();
    benchmark::DoNotOptimize(t);
  }
  state.counters["plain_bytes"] = static_cast<double>(plain);
  state.counters["gzip_bytes"] = static_cast<double>(packed);
}
BENCHMARK(bm_self_metrics_prepare)->Unit(benchmark::kMicrosecond);

// Per poll, not per scrape: MB/s of uncompressed input.
void bm_gzip_begin(benchmark::State& state) {
  const auto view = make_view(static_cast<std::size_t>(state.range(0)));
  const std::string body = view->text.plain.str();
  std::size_t out = 0;
  for (auto _ : state) {
    auto h = snapshot::gzip_begin(body);
    out = h.bytes.size();
    benchmark::DoNotOptimize(h);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.counters["in_bytes"] = static_cast<double>(body.size());
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(out);
}
BENCHMARK(bm_gzip_begin)->Apply(payload_sizes)->Unit(benchmark::kMicrosecond);

// Per poll: merge one organization's families, render text +
// OpenMetrics, gzip both (its own view).
void bm_render_snapshot(benchmark::State& state) {
  const std::string body = bench::cerebras_payload(static_cast<std::size_t>(state.range(0)));
  auto parsed = exposition::parse_text(body);
  if (!parsed) std::abort();
  for (auto _ : state) {
    auto s = snapshot::render_snapshot("default", *parsed, wall_clock::now(), wall_clock::now());
    benchmark::DoNotOptimize(s);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(bm_render_snapshot)->Apply(payload_sizes)->Unit(benchmark::kMillisecond);

// Per burst: the merged view of N organizations of ~100 KB each (their
// `org` label tells them apart), both formats, gzipped whole.
void bm_merge_views(benchmark::State& state) {
  std::vector<std::shared_ptr<const snapshot::snapshot>> parts;
  for (int i = 0; i < state.range(0); ++i) parts.push_back(make_snapshot(30, "org" + std::to_string(i)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto v = snapshot::merge_views(parts);
    bytes = v->text.plain.size() + v->openmetrics.plain.size();
    benchmark::DoNotOptimize(v);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(bm_merge_views)->ArgName("orgs")->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond);

// The whole scrape through http_server on 127.0.0.1: one keep-alive
// connection, a blocking client sending what Prometheus sends and reading
// each response to its end. Arg: gzip (0/1). `allocs` counts both threads
// (the client allocates nothing after its warm-up): the server's steady
// path, request parsing included, should show 0.
void bm_http_keepalive_scrape(benchmark::State& state) {
  const bool gzip = state.range(0) != 0;
  asio::io_context ioc;
  telemetry::registry metrics;
  fill_registry(metrics);
  server::http_server srv(ioc, context_for(make_view(30)), metrics, {},
                          std::make_shared<spdlog::logger>(
                              "bench", std::make_shared<spdlog::sinks::null_sink_mt>()));
  srv.listen("127.0.0.1:0");
  const unsigned short port = srv.local_endpoint().port();
  srv.start();
  std::thread server_thread([&] { ioc.run(); });

  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) std::abort();
  const std::string request = std::string("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n") +
                              "User-Agent: Prometheus/3.0.0\r\nAccept: " +
                              std::string(prometheus_accept) + "\r\n" +
                              (gzip ? "Accept-Encoding: gzip\r\n" : "") +
                              "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
  std::vector<char> buf(4u << 20);
  std::size_t response_bytes = 0;
  const auto scrape_once = [&] {
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      std::abort();
    }
    std::size_t have = 0, need = 0;
    for (;;) {
      const ssize_t n = ::recv(fd, buf.data() + have, buf.size() - have, 0);
      if (n <= 0) std::abort();
      have += static_cast<std::size_t>(n);
      if (need == 0) {
        const std::string_view got(buf.data(), have);
        const auto end = got.find("\r\n\r\n");
        if (end == std::string_view::npos) continue;
        const auto cl = got.find("Content-Length: ");
        if (cl == std::string_view::npos || cl > end) std::abort();
        need = end + 4 + std::strtoull(buf.data() + cl + 16, nullptr, 10);
      }
      if (have >= need) break;
    }
    response_bytes = have;
  };
  for (int i = 0; i < 100; ++i) scrape_once();  // warm-up: buffers and caches reach their size
  const auto allocs0 = g_allocs.load();
  for (auto _ : state) scrape_once();
  state.counters["allocs"] = benchmark::Counter(static_cast<double>(g_allocs.load() - allocs0),
                                                benchmark::Counter::kAvgIterations);
  state.counters["response_bytes"] = static_cast<double>(response_bytes);
  ::close(fd);
  asio::post(ioc, [&] { srv.stop(); });
  server_thread.join();
}
BENCHMARK(bm_http_keepalive_scrape)->ArgName("gzip")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
