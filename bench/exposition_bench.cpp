// Throughput of the exposition module on Cerebras-shaped bodies. Targets:
// parse >= 500 MB/s and OpenMetrics render >= 500 MB/s on one core.
// Bytes/s are counted on the text body for parsing and on the produced
// output for rendering.
//
// Reading the numbers: about a third of parsing is malloc/free of the model's
// strings and vectors (fixed by model.hpp). On VMs where a page fault is slow,
// glibc returning freed memory to the kernel after every iteration dominates
// the larger sizes; MALLOC_TRIM_THRESHOLD_=1000000000 shows the parser alone.

#include <benchmark/benchmark.h>

#include <ctime>
#include <map>
#include <string>

#include "cerebras_payload.hpp"
#include "cmp/exposition/parser.hpp"
#include "cmp/exposition/transform.hpp"
#include "cmp/exposition/writer.hpp"

namespace {

using namespace cmp::exposition;

// 1 endpoint is ~4 KB, 30 ~ 130 KB, 300 ~ 1.3 MB.
void endpoint_counts(benchmark::internal::Benchmark* b) {
  for (int n : {1, 30, 300}) b->Arg(n);
}

void bm_parse_text(benchmark::State& state) {
  const std::string body = cmp::bench::cerebras_payload(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto r = parse_text(body);
    if (!r) state.SkipWithError(r.error().message().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(bm_parse_text)->Apply(endpoint_counts);

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Parsing alone: the previous result is freed outside the timed region (the
// daemon frees an old snapshot long after parsing a new one). Timed in thread
// CPU time, so other processes on a busy machine do not count.
void bm_parse_text_only(benchmark::State& state) {
  const std::string body = cmp::bench::cerebras_payload(static_cast<std::size_t>(state.range(0)));
  parse_result previous;
  for (auto _ : state) {
    previous = family_list{};
    const double start = thread_cpu_seconds();
    auto r = parse_text(body);
    state.SetIterationTime(thread_cpu_seconds() - start);
    if (!r) state.SkipWithError(r.error().message().c_str());
    previous = std::move(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(bm_parse_text_only)->Apply(endpoint_counts)->UseManualTime();

family_list parsed(std::size_t endpoints) {
  return parse_text(cmp::bench::cerebras_payload(endpoints)).value();
}

template <void (*Write)(const family_list&, std::string&)>
void bm_render(benchmark::State& state) {
  const family_list fams = parsed(static_cast<std::size_t>(state.range(0)));
  std::string out;
  std::size_t bytes = 0;
  for (auto _ : state) {
    out.clear();  // keeps capacity, as a server reusing its buffer would
    Write(fams, out);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["out_bytes"] = static_cast<double>(out.size());
}
BENCHMARK_TEMPLATE(bm_render, write_openmetrics)->Name("bm_render_openmetrics")->Apply(endpoint_counts);
BENCHMARK_TEMPLATE(bm_render, write_text)->Name("bm_render_text")->Apply(endpoint_counts);

// The render into a fresh string (first response after a snapshot).
void bm_render_openmetrics_fresh(benchmark::State& state) {
  const family_list fams = parsed(static_cast<std::size_t>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    std::string out;
    write_openmetrics(fams, out);
    bytes += out.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(bm_render_openmetrics_fresh)->Apply(endpoint_counts);

// Per-poll model work: labels added and the parts merged.
void bm_add_labels_and_merge(benchmark::State& state) {
  const family_list base = parsed(static_cast<std::size_t>(state.range(0)));
  const std::map<std::string, std::string> extra{{"upstream", "default"}, {"env", "prod"}};
  for (auto _ : state) {
    family_list a = base;
    add_labels(a, extra);
    const family_list* parts[] = {&a};
    auto merged = merge(parts);
    benchmark::DoNotOptimize(merged);
  }
}
BENCHMARK(bm_add_labels_and_merge)->Apply(endpoint_counts);

}  // namespace

BENCHMARK_MAIN();
