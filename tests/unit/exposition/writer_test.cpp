#include "cmp/exposition/writer.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../bench/cerebras_payload.hpp"
#include "cmp/exposition/parser.hpp"
#include "test_support.hpp"
#include "cmp/exposition/transform.hpp"

namespace cmp::exposition {
namespace {

using test_support::parse_ok;
using test_support::text;

const std::string data_dir = std::string(CMP_TEST_DATA_DIR) + "/exposition/";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const std::string& body) {
  std::ofstream(path, std::ios::binary) << body;
}

std::string openmetrics(const family_list& f) {
  std::string out;
  write_openmetrics(f, out);
  return out;
}

sample make_sample(std::string name, std::vector<label> labels, double v,
                   std::optional<std::int64_t> ts = {}) {
  return sample{std::move(name), std::move(labels), v, ts};
}

TEST(WriteText, FamilyWithHelpTypeLabelsAndTimestamp) {
  const family_list fams{family{"x_total",
                                metric_type::counter,
                                "Help \\ with\nnewline and \"quotes\"",
                                {make_sample("x_total", {{"a", "q\"b\\s\nn"}}, 5, 1700000000123)}}};
  EXPECT_EQ(text(fams),
            "# HELP x_total Help \\\\ with\\nnewline and \"quotes\"\n"
            "# TYPE x_total counter\n"
            "x_total{a=\"q\\\"b\\\\s\\nn\"} 5 1700000000123\n");
}

TEST(WriteText, ValuesUseShortestRoundTripForm) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  struct value_case {
    double v;
    const char* expected;
  };
  const value_case cases[] = {{1.0, "1"},          {-0.0, "-0"},       {0.1, "0.1"},
                              {100000, "100000"},  {1e6, "1000000"},   {1.5, "1.5"},
                              {nan, "NaN"},        {inf, "+Inf"},      {-inf, "-Inf"},
                              {1e-7, "1e-07"},     {1e300, "1e+300"},  {-123.456, "-123.456"},
                              {9007199254740992.0, "9007199254740992"},
                              {0.1 + 0.2, "0.30000000000000004"}};
  for (const auto& c : cases) {
    const family_list fams{family{"v", metric_type::gauge, {}, {make_sample("v", {}, c.v)}}};
    EXPECT_EQ(text(fams), std::string("# TYPE v gauge\nv ") + c.expected + "\n") << c.expected;
  }
}

TEST(WriteText, AppendsAndSkipsEmptyFamilies) {
  const family_list fams{family{"empty", metric_type::gauge, "nothing", {}},
                         family{"u", metric_type::untyped, {}, {make_sample("u", {}, 1)}}};
  std::string out = "prefix\n";
  write_text(fams, out);
  EXPECT_EQ(out, "prefix\n# TYPE u untyped\nu 1\n");
}

TEST(WriteOpenMetrics, TypeMappingAndNames) {
  const family_list fams{
      family{"requests_total", metric_type::counter, "Requests.", {make_sample("requests_total", {}, 3)}},
      family{"legacy", metric_type::counter, {}, {make_sample("legacy", {}, 4)}},
      family{"negative_total", metric_type::counter, {}, {make_sample("negative_total", {}, -1)}},
      family{"requests_count_total", metric_type::gauge, {}, {make_sample("requests_count_total", {}, 1)}},
      family{"u", metric_type::untyped, "say \"hi\"", {make_sample("u", {}, 1, 1500)}},
  };
  EXPECT_EQ(openmetrics(fams),
            "# HELP requests Requests.\n"
            "# TYPE requests counter\n"
            "requests_total 3\n"
            "# TYPE legacy unknown\n"
            "legacy 4\n"
            "# TYPE negative_total unknown\n"
            "negative_total -1\n"
            "# TYPE requests_count_total gauge\n"
            "requests_count_total 1\n"
            "# HELP u say \\\"hi\\\"\n"
            "# TYPE u unknown\n"
            "u 1 1.500\n");
}

TEST(WriteOpenMetrics, CounterWhoseStemIsTakenStaysUnknown) {
  const family_list fams{
      family{"jobs", metric_type::gauge, {}, {make_sample("jobs", {}, 1)}},
      family{"jobs_total", metric_type::counter, {}, {make_sample("jobs_total", {}, 2)}},
  };
  EXPECT_EQ(openmetrics(fams),
            "# TYPE jobs gauge\njobs 1\n# TYPE jobs_total unknown\njobs_total 2\n");
}

TEST(WriteOpenMetrics, TimestampsInSeconds) {
  struct ts_case {
    std::int64_t ms;
    const char* expected;
  };
  const ts_case cases[] = {{0, "0"},
                           {1700000000000, "1700000000"},
                           {1700000000123, "1700000000.123"},
                           {1700000000050, "1700000000.050"},
                           {-1, "-0.001"},
                           {-1500, "-1.500"},
                           {std::numeric_limits<std::int64_t>::min(), "-9223372036854775.808"}};
  for (const auto& c : cases) {
    const family_list fams{family{"g", metric_type::gauge, {}, {make_sample("g", {}, 1, c.ms)}}};
    EXPECT_EQ(openmetrics(fams), std::string("# TYPE g gauge\ng 1 ") + c.expected + "\n");
  }
}

TEST(WriteOpenMetrics, NoEofLine) {
  const auto fams = parse_ok(read_file(data_dir + "corpus.prom"));
  const std::string om = openmetrics(fams);
  EXPECT_EQ(om.find("# EOF"), std::string::npos);
  EXPECT_EQ(om.back(), '\n');
}

// Structural OpenMetrics 1.0 check of writer output (plus "# EOF"): metadata
// before samples, one block per family, sample names allowed for the type,
// counters' samples end in _total, values and timestamps are numbers.
std::string check_openmetrics_structure(const std::string& om) {
  std::istringstream in(om);
  std::string line;
  std::set<std::string> done;
  std::string family, type;
  bool samples_seen = false;
  const auto allowed = [&](const std::string& name) {
    const auto is = [&](const char* suffix) { return name == family + suffix; };
    if (type == "counter") return is("_total");
    if (type == "histogram") return is("_bucket") || is("_sum") || is("_count");
    if (type == "summary") return is("") || is("_sum") || is("_count");
    return is("");
  };
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, rest;
      words >> name;
      if (name != family) {
        if (done.count(name)) return "family re-appears: " + line;
        if (!family.empty()) done.insert(family);
        family = name;
        type.clear();
        samples_seen = false;
      }
      if (samples_seen) return "metadata after samples: " + line;
      if (line[2] == 'T') {
        words >> type;
        static const std::set<std::string> types{"counter", "gauge", "histogram", "summary",
                                                 "unknown"};
        if (!types.count(type)) return "bad type: " + line;
      }
      continue;
    }
    if (line.empty() || line[0] == '#') return "unexpected line: " + line;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    if (type.empty()) return "sample without TYPE: " + line;
    if (!allowed(name)) return "sample name " + name + " not allowed in " + type + " " + family;
    samples_seen = true;
    // Value and optional timestamp follow the last '}' or the name.
    const auto brace = line.rfind('}');
    std::istringstream tail(line.substr(brace == std::string::npos ? name.size() : brace + 1));
    std::string value, ts, extra;
    tail >> value >> ts >> extra;
    double ignored;
    if (parse_text("x " + value + "\n").has_value() == false) return "bad value: " + line;
    if (!ts.empty() && std::sscanf(ts.c_str(), "%lf", &ignored) != 1) return "bad ts: " + line;
    if (!extra.empty()) return "trailing text: " + line;
  }
  return {};
}

TEST(WriteOpenMetrics, StructureOfCorpusAndCerebrasOutput) {
  for (const std::string& body :
       {read_file(data_dir + "corpus.prom"), cmp::bench::cerebras_payload(2)}) {
    const std::string om = openmetrics(parse_ok(body));
    EXPECT_EQ(check_openmetrics_structure(om), "") << om;
  }
}

// Golden files: <name>.prom is parsed, written both ways and compared with
// <name>.text.golden and <name>.openmetrics.golden. CMP_UPDATE_GOLDEN=1
// rewrites the golden files instead (review the diff before committing).
class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, WritersMatchGoldenFiles) {
  const std::string base = data_dir + GetParam();
  const auto fams = parse_ok(read_file(base + ".prom"));
  ASSERT_FALSE(fams.empty());
  const std::string got_text = text(fams);
  const std::string got_om = openmetrics(fams);
  if (std::getenv("CMP_UPDATE_GOLDEN")) {
    write_file(base + ".text.golden", got_text);
    write_file(base + ".openmetrics.golden", got_om);
  }
  EXPECT_EQ(got_text, read_file(base + ".text.golden"));
  EXPECT_EQ(got_om, read_file(base + ".openmetrics.golden"));
}

INSTANTIATE_TEST_SUITE_P(Files, Golden, ::testing::Values("corpus", "cerebras"));

TEST(RoundTrip, ParseWriteParseIsIdentity) {
  for (const std::string& body :
       {read_file(data_dir + "corpus.prom"), cmp::bench::cerebras_payload(5)}) {
    const auto first = parse_ok(body);
    const auto second = parse_ok(text(first));
    EXPECT_TRUE(equivalent(first, second));
    // And the text output is a fixed point.
    EXPECT_EQ(text(second), text(first));
  }
}

TEST(RoundTrip, AwkwardModelSurvivesText) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const family_list model{
      family{"a", metric_type::gauge, "", {make_sample("a", {{"l", "\\\"\n\\n"}}, nan, 5)}},
      family{"b", metric_type::untyped, " lead\tand trail ", {make_sample("b", {}, 5e-324)}},
      family{"c:d", metric_type::counter, "\\n", {make_sample("c:d", {{"_", "€"}}, 1e308)}},
  };
  const auto back = parse_ok(text(model));
  EXPECT_TRUE(equivalent(model, back)) << text(model);
}

// Runs `command` with `input` on stdin; returns the exit status and output.
std::pair<int, std::string> run_with_stdin(const std::string& command, const std::string& input) {
  char in_path[] = "/tmp/cmp_expo_in_XXXXXX";
  const int fd = ::mkstemp(in_path);
  if (fd < 0) return {-1, "mkstemp failed"};
  ::close(fd);
  write_file(in_path, input);
  const std::string full = command + " < " + in_path + " 2>&1";
  std::string output;
  int status = -1;
  if (FILE* p = ::popen(full.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
    status = ::pclose(p);
  }
  ::unlink(in_path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

bool have_promtool() { return run_with_stdin("command -v promtool", "").first == 0; }

TEST_P(Golden, PromtoolAcceptsTextOutput) {
  if (!have_promtool()) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  const auto [status, output] = run_with_stdin("promtool check metrics", read_file(data_dir + GetParam() + ".text.golden"));
  // 0: clean; 3: lint findings only (e.g. the Cerebras gauges named *_total,
  // which we pass through as the upstream names them); 1: does not parse.
  EXPECT_TRUE(status == 0 || status == 3) << output;
  EXPECT_EQ(output.find("parsing error"), std::string::npos) << output;
}

TEST_P(Golden, ReferenceParserAcceptsOpenMetricsOutput) {
  // The OpenMetrics reference parser ships with the Python client
  // (Debian package python3-prometheus-client).
  const std::string check = data_dir + "check_openmetrics.py";
  int status = 77;
  std::string output;
  for (const char* python : {"python3", "/usr/bin/python3"}) {
    std::tie(status, output) = run_with_stdin(std::string(python) + " " + check,
                                              read_file(data_dir + GetParam() + ".openmetrics.golden") + "# EOF\n");
    if (status != 77 && status != 127) break;
  }
  if (status == 77 || status == 127) {
    GTEST_SKIP() << "no python3 with prometheus_client (Debian package python3-prometheus-client)";
  }
  EXPECT_EQ(status, 0) << output;
}

}  // namespace
}  // namespace cmp::exposition
