// Component test of the listener: a real server on 127.0.0.1:0 driven by a
// raw blocking TCP client, so every byte on the wire is visible. The server's
// io_context runs on its own thread; server calls are posted to it.

#include "cmp/server/http_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/sinks/null_sink.h>

#include "cmp/exposition/parser.hpp"
#include "cmp/snapshot/gzip.hpp"
#include "cmp/snapshot/snapshot.hpp"

namespace cmp::server {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view prometheus_accept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

// Fri, 15 Jan 2027 08:00:00 GMT
const wall_clock::time_point fetched = wall_clock::time_point{} + std::chrono::seconds(1'800'000'000);

std::shared_ptr<const snapshot::snapshot> make_snapshot(std::string_view body, std::string name = "prod",
                                                        wall_clock::time_point at = fetched) {
  return snapshot::render_snapshot(std::move(name), exposition::parse_text(body).value(), at, at);
}

std::shared_ptr<const snapshot::exposition_view> make_view(std::string_view body, std::string name = "prod") {
  return make_snapshot(body, std::move(name))->own;
}

const std::string upstream_body =
    "# HELP requests_count_total Requests per model.\n"
    "# TYPE requests_count_total gauge\n"
    "requests_count_total{model=\"llama3.1-8b\",upstream=\"prod\"} 12\n"
    "requests_count_total{model=\"qwen-3-32b\",upstream=\"prod\"} 3\n"
    "# TYPE tokens_total counter\n"
    "tokens_total{upstream=\"prod\"} 1234\n";

struct http_response {
  unsigned status = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  [[nodiscard]] bool has(const std::string& name) const { return headers.contains(name); }
  [[nodiscard]] std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

// A blocking HTTP/1.1 client that reads exactly what the server sends.
// Every read gives up after 10 s so a broken server fails the test instead
// of hanging it.
class raw_client {
 public:
  // `rcvbuf` > 0: a small receive buffer (set before connecting, so the
  // window is small too), for clients the server has to wait for.
  explicit raw_client(unsigned short port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~raw_client() { close(); }
  raw_client(raw_client&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), connected_(o.connected_), buf_(std::move(o.buf_)) {}
  raw_client& operator=(raw_client&&) = delete;

  [[nodiscard]] bool connected() const { return connected_; }

  void shutdown_send() { ::shutdown(fd_, SHUT_WR); }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send(std::string_view data) {
    while (!data.empty()) {
      auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // One response; for a HEAD request the body is not read (there is none).
  std::optional<http_response> read_response(bool head_request = false) {
    std::size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return std::nullopt;
    const std::string head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);

    http_response r;
    auto line_end = head.find("\r\n");
    const auto status_line = head.substr(0, line_end);
    if (!status_line.starts_with("HTTP/1.1 ")) return std::nullopt;
    r.status = static_cast<unsigned>(std::stoul(status_line.substr(9, 3)));
    for (auto pos = line_end + 2; pos < head.size();) {
      auto next = head.find("\r\n", pos);
      auto line = head.substr(pos, next - pos);
      auto colon = line.find(':');
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      EXPECT_FALSE(r.headers.contains(name)) << "duplicate header " << name;
      r.headers[name] = value;
      pos = next + 2;
    }
    if (head_request) return r;
    const auto length = std::stoul(r.header("content-length"));
    while (buf_.size() < length)
      if (!fill()) return std::nullopt;
    r.body = buf_.substr(0, length);
    buf_.erase(0, length);
    return r;
  }

  // True when the server closed the connection without sending anything
  // more; false if bytes arrived or nothing happened for 10 s.
  bool closed_by_server() {
    if (!buf_.empty()) return false;
    char c;
    auto n = ::recv(fd_, &c, 1, 0);
    if (n == 1) buf_ += c;
    return n == 0 || (n < 0 && errno == ECONNRESET);
  }

  // Reads at most `max` bytes at a time, pausing `pause` between reads.
  void slow_down(std::size_t max, std::chrono::microseconds pause) {
    slow_max_ = max;
    slow_pause_ = pause;
  }

  // Everything already sent and then whether the server closed the
  // connection (false: nothing more came for 10 s).
  std::pair<std::string, bool> drain() {
    char chunk[16384];
    for (;;) {
      auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      const bool closed = n == 0 || errno == ECONNRESET;
      return {std::exchange(buf_, {}), closed};
    }
  }

  // Everything up to the server's close (for Connection: close responses).
  std::string read_to_end() {
    while (fill()) {
    }
    return std::exchange(buf_, {});
  }

 private:
  bool fill() {
    char chunk[16384];
    if (slow_pause_.count() > 0) std::this_thread::sleep_for(slow_pause_);
    auto n = ::recv(fd_, chunk, std::min(sizeof chunk, slow_max_), 0);
    if (n <= 0) return false;
    buf_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
  std::size_t slow_max_ = 16384;
  std::chrono::microseconds slow_pause_{0};
};

std::string get(std::string_view target, std::string_view extra_headers = "") {
  return "GET " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + std::string(extra_headers) +
         "\r\n";
}

class HttpServer : public ::testing::Test {
 protected:
  // Self-metrics as of each scrape (not up to a second old): the tests
  // read counts right after the requests they count.
  void start(server_options options = {}) {
    options.self_metrics_max_age = 0ms;
    handler_context ctx;
    ctx.views = [this] {
      if (served) return served;
      auto v = std::make_shared<snapshot::served_views>();
      v->all = view_for_scrape ? view_for_scrape() : view;
      return std::shared_ptr<const snapshot::served_views>(v);
    };
    ctx.upstreams = [](wall_clock::time_point) { return std::vector<upstream_status>{}; };
    ctx.authorize = authorize;
    server_ = std::make_unique<http_server>(
        ioc_, std::move(ctx), metrics_, options,
        std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
    server_->listen("127.0.0.1:0");
    port_ = server_->local_endpoint().port();
    server_->start();
    run_ = std::async(std::launch::async, [this] { ioc_.run(); });
  }

  // Stops the server on its thread; true when io_context::run() returned.
  bool stop_and_wait() {
    if (!run_.valid()) return true;
    asio::post(ioc_, [this] { server_->stop(); });
    const bool returned = run_.wait_for(20s) == std::future_status::ready;
    if (!returned) ioc_.stop();
    run_.get();
    return returned;
  }

  void TearDown() override { EXPECT_TRUE(stop_and_wait()) << "run() did not return after stop()"; }

  raw_client connect() {
    raw_client c(port_);
    EXPECT_TRUE(c.connected());
    return c;
  }

  // One request on a fresh connection that asks to be closed afterwards;
  // checks that Content-Length is exactly what was sent.
  http_response exchange(std::string_view target, std::string extra_headers = "") {
    auto c = connect();
    c.send(get(target, extra_headers + "Connection: close\r\n"));
    auto r = c.read_response();
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(c.read_to_end(), "") << "bytes after Content-Length";
    return r.value_or(http_response{});
  }

  std::shared_ptr<const snapshot::exposition_view> view = make_view(upstream_body);
  std::shared_ptr<const snapshot::served_views> served;  // set: served instead of `view`
  std::function<std::shared_ptr<const snapshot::exposition_view>()> view_for_scrape;
  std::function<bool(std::string_view)> authorize;

  asio::io_context ioc_;
  telemetry::registry metrics_;
  std::unique_ptr<http_server> server_;
  unsigned short port_ = 0;
  std::future<void> run_;
};

TEST_F(HttpServer, MetricsServesTheViewThenTheSelfMetricsAsText) {
  start();
  const auto r = exchange("/metrics", "Accept: */*\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("content-type"), text_content_type);
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_EQ(r.header("connection"), "close");
  EXPECT_THAT(r.body, StartsWith(view->text.plain.str()));
  EXPECT_THAT(r.body, HasSubstr("\ncerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  EXPECT_THAT(r.body, HasSubstr("\ncerebras_proxy_build_info{"));
  EXPECT_THAT(r.body, Not(HasSubstr("# EOF")));
  // The whole body is one valid exposition a Prometheus 0.0.4 parser takes.
  auto parsed = exposition::parse_text(r.body);
  EXPECT_TRUE(parsed.has_value()) << parsed.error().message();
}

TEST_F(HttpServer, MetricsServesOpenMetricsToPrometheusWithEofLast) {
  start();
  const auto r = exchange("/metrics", "Accept: " + std::string(prometheus_accept) + "\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("content-type"), openmetrics_content_type);
  EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
  EXPECT_THAT(r.body, StartsWith(view->openmetrics.plain.str()));
  EXPECT_THAT(r.body, HasSubstr("# TYPE cerebras_proxy_scrapes counter\n"));
  EXPECT_THAT(r.body, EndsWith("\n# EOF\n"));
  EXPECT_EQ(r.body.find("# EOF"), r.body.size() - 6);  // once, and last
}

TEST_F(HttpServer, GzipDecodesToThePlainBody) {
  start();
  for (const auto& accept : {std::string("*/*"), std::string(prometheus_accept)}) {
    const auto plain = exchange("/metrics", "Accept: " + accept + "\r\n");
    const auto packed = exchange("/metrics", "Accept: " + accept + "\r\nAccept-Encoding: gzip\r\n");
    EXPECT_EQ(packed.status, 200u);
    EXPECT_EQ(packed.header("content-encoding"), "gzip");
    EXPECT_EQ(packed.header("content-type"), plain.header("content-type"));
    EXPECT_THAT(packed.header("vary"), HasSubstr("Accept-Encoding"));
    const auto body = snapshot::gzip_decompress(packed.body, 1u << 24);
    ASSERT_TRUE(body.has_value()) << accept;
    // The two scrapes differ only in the self-metrics' counters; compare
    // everything up to the scrape counter, which the second one increments.
    const auto cut = [](const std::string& s) { return s.substr(0, s.find("cerebras_proxy_scrapes_total{")); };
    EXPECT_EQ(cut(*body), cut(plain.body)) << accept;
    EXPECT_THAT(*body, StartsWith((accept == "*/*" ? view->text.plain : view->openmetrics.plain).str()));
    if (accept != "*/*") {
      EXPECT_THAT(*body, EndsWith("\n# EOF\n"));
    }
  }
  // Refused explicitly: plain.
  const auto r = exchange("/metrics", "Accept-Encoding: gzip;q=0, identity\r\n");
  EXPECT_FALSE(r.has("content-encoding"));
  EXPECT_THAT(r.body, StartsWith(view->text.plain.str()));
}

// Two organizations configured, one with a snapshot, as the daemon's store
// serves them.
std::shared_ptr<const snapshot::served_views> two_organizations() {
  snapshot::snapshot_store store;
  store.configure({{"prod", std::chrono::hours(24 * 365 * 100)}, {"dev", std::chrono::hours(1)}},
                  fetched);
  store.publish(make_snapshot(upstream_body), fetched);
  return store.views();
}

TEST_F(HttpServer, OneUpstreamIsServedAloneWithoutSelfMetrics) {
  served = two_organizations();
  view = served->all;
  start();
  const auto& own = *served->upstream("prod");
  const auto text = exchange("/metrics?upstream=prod", "Accept: */*\r\n");
  EXPECT_EQ(text.status, 200u);
  EXPECT_EQ(text.header("content-type"), text_content_type);
  EXPECT_EQ(text.body, own.text.plain);
  EXPECT_EQ(text.header("last-modified"), "Fri, 15 Jan 2027 08:00:00 GMT");

  const auto om = exchange("/metrics?upstream=prod", "Accept: " + std::string(prometheus_accept) + "\r\n");
  EXPECT_EQ(om.header("content-type"), openmetrics_content_type);
  EXPECT_EQ(om.body, own.openmetrics.plain.str() + "# EOF\n");

  for (const auto& accept : {std::string("*/*"), std::string(prometheus_accept)}) {
    const auto plain = exchange("/metrics?upstream=prod", "Accept: " + accept + "\r\n");
    const auto packed = exchange("/metrics?upstream=prod",
                                 "Accept: " + accept + "\r\nAccept-Encoding: gzip\r\n");
    EXPECT_EQ(packed.header("content-encoding"), "gzip");
    EXPECT_EQ(packed.header("content-length"), std::to_string(packed.body.size()));
    EXPECT_EQ(snapshot::gzip_decompress(packed.body, 1u << 24), plain.body) << accept;
  }

  // HEAD: the same headers, no body.
  auto c = connect();
  c.send("HEAD /metrics?upstream=prod HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  const auto head = c.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200u);
  EXPECT_EQ(head->header("content-length"), std::to_string(own.text.plain.size()));

  // Configured but without a snapshot: served empty, without Last-Modified.
  const auto dev = exchange("/metrics?upstream=dev", "Accept: */*\r\n");
  EXPECT_EQ(dev.status, 200u);
  EXPECT_EQ(dev.body, "");
  EXPECT_FALSE(dev.has("last-modified"));

  // The whole view still has the self-metrics.
  EXPECT_THAT(exchange("/metrics").body, HasSubstr("cerebras_proxy_build_info"));
}

TEST_F(HttpServer, AnUnknownUpstreamIs404) {
  served = two_organizations();
  start();
  const auto r = exchange("/metrics?upstream=staging");
  EXPECT_EQ(r.status, 404u);
  EXPECT_THAT(exchange("/metrics").body, HasSubstr("cerebras_proxy_scrapes_total{code=\"404\"} 1\n"));
}

TEST_F(HttpServer, LastModifiedAndAgeOnceASnapshotExists) {
  start();
  const auto r = exchange("/metrics");
  EXPECT_EQ(r.header("last-modified"), "Fri, 15 Jan 2027 08:00:00 GMT");
  ASSERT_TRUE(r.has("age"));
  EXPECT_EQ(r.header("age"), "0");  // fetched in the future of this test's clock: never negative
  EXPECT_TRUE(r.has("date"));
}

TEST_F(HttpServer, AgeCountsSecondsSinceTheFetch) {
  view = make_snapshot(upstream_body, "prod", wall_clock::now() - 90s)->own;
  start();
  const auto r = exchange("/metrics");
  ASSERT_TRUE(r.has("age"));
  const auto age = std::stoul(r.header("age"));
  EXPECT_GE(age, 90u);
  EXPECT_LT(age, 90u + 60u);
}

TEST_F(HttpServer, NoLastModifiedBeforeTheFirstSnapshot) {
  view = snapshot::empty_view();
  start();
  const auto r = exchange("/metrics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_FALSE(r.has("last-modified"));
  EXPECT_FALSE(r.has("age"));
  EXPECT_THAT(r.body, StartsWith("# HELP cerebras_proxy_"));  // self-metrics only
}

TEST_F(HttpServer, ScrapeWaitsForTheFirstSnapshotWithinTheScrapeTimeout) {
  // The first look at the view finds nothing; the snapshot arrives while the
  // scrape waits.
  int calls = 0;
  view_for_scrape = [&]() -> std::shared_ptr<const snapshot::exposition_view> {
    return ++calls == 1 ? snapshot::empty_view() : view;
  };
  start();
  const auto r = exchange("/metrics", "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_TRUE(r.has("last-modified"));
  EXPECT_THAT(r.body, StartsWith(view->text.plain.str()));
}

TEST_F(HttpServer, ScrapeServesWhatItHasWhenNoSnapshotArrivesInTime) {
  view = snapshot::empty_view();
  start();
  const auto r = exchange("/metrics", "X-Prometheus-Scrape-Timeout-Seconds: 0.7\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_FALSE(r.has("last-modified"));
  EXPECT_THAT(r.body, HasSubstr("cerebras_proxy_build_info"));
}

TEST_F(HttpServer, HeadHasTheHeadersButNoBody) {
  start();
  auto c = connect();
  c.send("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  auto head = c.read_response(/*head_request=*/true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200u);
  EXPECT_EQ(head->header("content-type"), text_content_type);
  EXPECT_GT(std::stoul(head->header("content-length")), view->text.plain.size());
  EXPECT_TRUE(head->has("last-modified"));
  // The next response follows at once: no body bytes were sent for HEAD.
  c.send(get("/-/healthy"));
  auto next = c.read_response();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->status, 200u);
  EXPECT_EQ(next->body, "ok\n");
}

TEST_F(HttpServer, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  auto c = connect();
  for (int i = 0; i < 3; ++i) {
    for (auto [target, status] : std::vector<std::pair<std::string_view, unsigned>>{
             {"/metrics", 200}, {"/-/healthy", 200}, {"/nope", 404}, {"/-/ready", 200}, {"/", 200}}) {
      ASSERT_TRUE(c.send(get(target)));
      auto r = c.read_response();
      ASSERT_TRUE(r) << target;
      EXPECT_EQ(r->status, status) << target;
      EXPECT_FALSE(r->has("connection")) << target;
    }
  }
}

TEST_F(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  start();
  auto c = connect();
  c.send(get("/-/healthy") + get("/missing") + "HEAD /metrics HTTP/1.1\r\n\r\n" + get("/metrics") +
         "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n" + get("/readyz"));
  auto a = c.read_response();
  auto b = c.read_response();
  auto h = c.read_response(true);
  auto m = c.read_response();
  auto p = c.read_response();
  auto r = c.read_response();
  ASSERT_TRUE(a && b && h && m && p && r);
  EXPECT_EQ(a->body, "ok\n");
  EXPECT_EQ(b->status, 404u);
  EXPECT_EQ(h->status, 200u);
  EXPECT_THAT(m->body, StartsWith(view->text.plain.str()));
  EXPECT_EQ(p->status, 405u);
  EXPECT_EQ(r->status, 200u);
}

TEST_F(HttpServer, AClientThatHalfClosesAfterItsRequestsStillGetsTheAnswers) {
  // `printf 'GET ...' | nc host port` style clients.
  start();
  auto c = connect();
  c.send(get("/-/healthy") + get("/metrics"));
  c.shutdown_send();
  auto a = c.read_response();
  auto b = c.read_response();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->body, "ok\n");
  EXPECT_THAT(b->body, StartsWith(view->text.plain.str()));
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(HttpServer, ANewHandlerContextAppliesToTheNextRequest) {
  start();
  auto c = connect();
  c.send(get("/metrics"));
  ASSERT_TRUE(c.read_response());
  // A reload switches the context (here: auth turned on) on the server's thread.
  std::promise<void> switched;
  asio::post(ioc_, [&] {
    handler_context ctx;
    ctx.views = [] { return std::make_shared<const snapshot::served_views>(); };
    ctx.upstreams = [](wall_clock::time_point) { return std::vector<upstream_status>{}; };
    ctx.authorize = [](std::string_view) { return false; };
    server_->set_handler_context(std::move(ctx));
    switched.set_value();
  });
  switched.get_future().wait();
  c.send(get("/metrics"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401u);
}

TEST_F(HttpServer, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  start();
  auto c = connect();
  c.send(get("/favicon.ico"));
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404u);
  c.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405u);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
  c.send("DELETE /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405u);
  EXPECT_EQ(r->header("allow"), "GET, HEAD");
}

TEST_F(HttpServer, AuthorizationRejectionAsksForCredentials) {
  authorize = [](std::string_view a) { return a == "Basic cHJvbTpzZWNyZXQ="; };
  start();
  auto r = exchange("/metrics");
  EXPECT_EQ(r.status, 401u);
  EXPECT_EQ(r.header("www-authenticate"), "Basic realm=\"cerebras-metrics-proxy\"");
  EXPECT_THAT(r.body, Not(HasSubstr("requests_count_total")));
  r = exchange("/metrics", "Authorization: Basic cHJvbTpzZWNyZXQ=\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(exchange("/-/healthy").status, 200u);
}

TEST_F(HttpServer, OversizedHeaderIs431AndTheConnectionCloses) {
  start();
  auto c = connect();
  c.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9 * 1024, 'a') + "\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 431u);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(HttpServer, ErrorAnswersSurviveUnreadRequestBytes) {
  // The server answers before it has read all the client sent; closing a
  // socket with unread input makes the kernel send a reset, which must not
  // destroy the answer on its way to the client.
  start();
  for (int round = 0; round < 20; ++round) {
    {
      auto c = connect();
      c.send("GET /metrics HTTP/1.1\r\nX-Big: " + std::string(256 * 1024, 'a') + "\r\n\r\n");
      auto r = c.read_response();
      ASSERT_TRUE(r) << "431 lost, round " << round;
      EXPECT_EQ(r->status, 431u);
    }
    {
      auto c = connect();
      c.send("POST /-/reload HTTP/1.1\r\nContent-Length: 262144\r\n\r\n" + std::string(256 * 1024, 'b'));
      auto r = c.read_response();
      ASSERT_TRUE(r) << "413 lost, round " << round;
      EXPECT_EQ(r->status, 413u);
    }
  }
}

// Request headers live in an arena the connection reuses (spilling to the
// heap past 2 KiB): on one connection, big and small requests in turn must
// each see exactly their own headers.
TEST_F(HttpServer, KeepAliveRequestsWithBigAndSmallHeadersSeeTheirOwnFields) {
  start();
  auto c = connect();
  for (int round = 0; round < 3; ++round) {
    c.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(6 * 1024, 'a') +
           "\r\nAccept-Encoding: gzip\r\n\r\n");
    auto big = c.read_response();
    ASSERT_TRUE(big) << "round " << round;
    EXPECT_EQ(big->status, 200u);
    EXPECT_EQ(big->header("content-encoding"), "gzip");
    c.send(get("/metrics"));
    auto small = c.read_response();
    ASSERT_TRUE(small) << "round " << round;
    EXPECT_EQ(small->status, 200u);
    EXPECT_FALSE(small->has("content-encoding")) << "a field of the previous request leaked";
    EXPECT_THAT(small->body, HasSubstr("requests_count_total"));
  }
}

TEST_F(HttpServer, HeaderJustUnderTheLimitIsServed) {
  start();
  auto c = connect();
  c.send("GET /-/healthy HTTP/1.1\r\nX-Big: " + std::string(7 * 1024, 'a') + "\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
}

TEST_F(HttpServer, BadRequestLinesAre400) {
  start();
  for (std::string_view bad : {"GARBAGE\r\n\r\n", "GET /metrics HTTP/9.9\r\n\r\n", "GET\r\n\r\n",
                               "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n", "\x01\x02\x03\r\n\r\n"}) {
    auto c = connect();
    c.send(bad);
    auto r = c.read_response();
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400u) << bad;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_server());
  }
}

TEST_F(HttpServer, RequestBodiesAre413) {
  start();
  for (std::string_view req : {"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                               "GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
                               "POST /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}) {
    auto c = connect();
    c.send(req);
    auto r = c.read_response();
    ASSERT_TRUE(r) << req;
    EXPECT_EQ(r->status, 413u) << req;
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_server());
  }
}

TEST_F(HttpServer, ClientConnectionCloseAndHttp10AreHonoured) {
  start();
  {
    auto c = connect();
    c.send(get("/-/healthy", "Connection: close\r\n"));
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    auto c = connect();
    c.send("GET /-/healthy HTTP/1.0\r\n\r\n");
    auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->body, "ok\n");
    EXPECT_TRUE(c.closed_by_server());
  }
}

TEST_F(HttpServer, Http10KeepAliveIsConfirmedOrRefusedExplicitly) {
  // An HTTP/1.0 client keeps a connection open only when the answer says
  // `Connection: keep-alive`; without it, it waits for the server's close.
  start();
  auto c = connect();
  c.send("GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header("connection"), "keep-alive");
  c.send("GET /metrics HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->header("connection"), "keep-alive");
}

TEST_F(HttpServer, ScrapesAreCountedByStatus) {
  authorize = [](std::string_view a) { return a == "Basic cHJvbTpzZWNyZXQ="; };
  start();
  EXPECT_EQ(exchange("/metrics").status, 401u);
  EXPECT_EQ(exchange("/metrics?x=1").status, 401u);
  const auto r = exchange("/metrics", "Authorization: Basic cHJvbTpzZWNyZXQ=\r\n");
  EXPECT_EQ(r.status, 200u);
  EXPECT_THAT(r.body, HasSubstr("\ncerebras_proxy_scrapes_total{code=\"200\"} 1\n"));
  EXPECT_THAT(r.body, HasSubstr("\ncerebras_proxy_scrapes_total{code=\"401\"} 2\n"));
  EXPECT_EQ(exchange("/-/ready").status, 401u);  // not a scrape
  const auto again = exchange("/metrics", "Authorization: Basic cHJvbTpzZWNyZXQ=\r\n");
  EXPECT_THAT(again.body, HasSubstr("\ncerebras_proxy_scrapes_total{code=\"401\"} 2\n"));
}

TEST_F(HttpServer, ConnectionCapRefusesWith503AndKeepsServing) {
  server_options o;
  o.max_connections = 2;
  start(o);
  auto a = connect();
  auto b = connect();
  // A request on each makes sure the server holds both connections.
  for (auto* c : {&a, &b}) {
    c->send(get("/-/healthy"));
    ASSERT_TRUE(c->read_response());
  }
  {
    auto refused = connect();
    refused.send(get("/metrics"));
    auto r = refused.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503u);
    EXPECT_EQ(r->header("connection"), "close");
    EXPECT_TRUE(r->has("retry-after"));
    EXPECT_TRUE(refused.closed_by_server());
  }
  // The held connections still work, and the refusal is counted.
  a.send(get("/metrics"));
  auto r = a.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_THAT(r->body, HasSubstr("cerebras_proxy_http_connections_refused_total 1\n"));
  EXPECT_THAT(r->body, HasSubstr("cerebras_proxy_http_connections_open 2\n"));

  // Once a slot is free again new clients are served. The server notices the
  // close asynchronously, so a few refusals may come first.
  b.close();
  unsigned status = 0;
  for (int attempt = 0; attempt < 1000 && status != 200; ++attempt) {
    auto c = connect();
    c.send(get("/-/healthy"));
    auto resp = c.read_response();
    ASSERT_TRUE(resp);
    status = resp->status;
  }
  EXPECT_EQ(status, 200u);
}

TEST_F(HttpServer, IdleKeepAliveConnectionsAreClosed) {
  server_options o;
  o.idle_timeout = 200ms;
  start(o);
  auto silent = connect();  // never sends a byte
  auto used = connect();
  used.send(get("/-/healthy"));
  ASSERT_TRUE(used.read_response());
  EXPECT_TRUE(silent.closed_by_server());
  EXPECT_TRUE(used.closed_by_server());
}

TEST_F(HttpServer, SlowHeadersAreCutOffByTheHeaderTimeout) {
  server_options o;
  o.header_timeout = 200ms;
  start(o);
  auto c = connect();
  c.send("GET /metrics HTTP/1.1\r\nHost: x\r\n");  // and never the blank line
  EXPECT_TRUE(c.closed_by_server());
}

TEST_F(HttpServer, StopClosesIdleConnectionsAndRunReturns) {
  start();
  auto idle = connect();
  idle.send(get("/-/healthy"));
  ASSERT_TRUE(idle.read_response());
  auto never_spoke = connect();
  // Make sure the server has accepted the second one before stopping.
  auto probe = connect();
  probe.send(get("/-/healthy"));
  ASSERT_TRUE(probe.read_response());

  EXPECT_TRUE(stop_and_wait());
  EXPECT_TRUE(idle.closed_by_server());
  EXPECT_TRUE(never_spoke.closed_by_server());
  EXPECT_TRUE(probe.closed_by_server());
  raw_client late(port_);
  EXPECT_FALSE(late.connected());
}

TEST_F(HttpServer, StopDoesNotWaitForAnIncompleteRequest) {
  // Nothing is in flight until a request's header is complete: a client
  // that trickles (or stalls) must not hold the shutdown for the header
  // timeout. The SIGTERM contract is an exit within 5 s.
  server_options o;
  o.header_timeout = std::chrono::hours(1);
  start(o);
  auto stalled = connect();
  stalled.send("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  auto probe = connect();
  probe.send(get("/-/healthy"));
  ASSERT_TRUE(probe.read_response());
  EXPECT_TRUE(stop_and_wait());
  EXPECT_TRUE(stalled.closed_by_server());
}

TEST_F(HttpServer, StopLetsAWaitingScrapeFinish) {
  std::promise<void> waiting;
  bool first = true;
  view_for_scrape = [&] {
    if (std::exchange(first, false)) waiting.set_value();
    return snapshot::empty_view();
  };
  start();
  auto c = connect();
  c.send(get("/metrics", "X-Prometheus-Scrape-Timeout-Seconds: 60\r\n"));
  // The scrape now waits for a first snapshot (up to 59.5 s); stopping must
  // neither leave it hanging nor drop it unanswered.
  ASSERT_EQ(waiting.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(stop_and_wait());
  auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200u);
  EXPECT_EQ(r->header("connection"), "close");
  EXPECT_THAT(r->body, HasSubstr("cerebras_proxy_build_info"));
  EXPECT_TRUE(c.closed_by_server());
}

// --- large bodies: one scatter write, TCP or TLS alike ---

// Three organizations with `series` samples in all (~75 bytes each),
// merged as the store merges them: a view of many ranges.
std::shared_ptr<const snapshot::served_views> large_views(std::size_t series) {
  snapshot::snapshot_store store;
  const auto forever = std::chrono::hours(24 * 365 * 100);
  store.configure({{"prod", forever}, {"dev", forever}, {"test", forever}}, fetched);
  for (const std::string org : {"prod", "dev", "test"}) {
    std::string body = "# HELP requests_count_total Requests per model.\n# TYPE requests_count_total gauge\n";
    for (std::size_t i = 0; i < series / 3; ++i)
      body += "requests_count_total{model=\"m" + std::to_string(i) + "\",upstream=\"" + org + "\"} " +
              std::to_string(i) + "\n";
    body += "# TYPE tokens_total counter\ntokens_total{upstream=\"" + org + "\"} 1234\n";
    store.publish(make_snapshot(body, org), fetched);
  }
  return store.views();
}

TEST_F(HttpServer, ALargeMergedViewIsServedByteIdenticalInEveryForm) {
  served = large_views(3000);
  view = served->all;
  ASSERT_GE(view->text.plain.segments().size(), 6u);  // 2 families x 3 organizations
  ASSERT_GT(view->text.plain.size(), 150'000u);
  start();
  const auto text = exchange("/metrics", "Accept: */*\r\n");
  EXPECT_EQ(text.status, 200u);
  EXPECT_EQ(text.body.substr(0, view->text.plain.size()), view->text.plain.str());
  EXPECT_THAT(text.body, HasSubstr("\ncerebras_proxy_build_info{"));
  EXPECT_TRUE(exposition::parse_text(text.body).has_value());

  const auto om = exchange("/metrics", "Accept: " + std::string(prometheus_accept) + "\r\n");
  EXPECT_EQ(om.body.substr(0, view->openmetrics.plain.size()), view->openmetrics.plain.str());
  EXPECT_THAT(om.body, EndsWith("\n# EOF\n"));

  const auto packed = exchange("/metrics", "Accept: */*\r\nAccept-Encoding: gzip\r\n");
  EXPECT_EQ(packed.header("content-encoding"), "gzip");
  const auto unpacked = snapshot::gzip_decompress(packed.body, 1u << 24);
  ASSERT_TRUE(unpacked);
  EXPECT_THAT(*unpacked, StartsWith(view->text.plain.str()));

  // Per upstream: the view's bytes and nothing else.
  const auto& own = *served->upstream("prod");
  EXPECT_EQ(exchange("/metrics?upstream=prod", "Accept: */*\r\n").body, own.text.plain.str());
  EXPECT_EQ(exchange("/metrics?upstream=prod", "Accept: " + std::string(prometheus_accept) + "\r\n").body,
            own.openmetrics.plain.str() + "# EOF\n");

  // Several responses on one connection, each with its own head.
  auto c = connect();
  for (int i = 0; i < 5; ++i) {
    c.send(get("/metrics?upstream=prod"));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
    EXPECT_EQ(r->body, own.text.plain.str()) << i;
  }
}

// A client that reads slowly through a small window: the server's socket
// fills up again and again. Loopback send buffers grow to tcp_wmem's
// maximum (4 MiB by default) at once, so the body must be larger than that.
TEST_F(HttpServer, ASlowReaderGetsTheWholeLargeBody) {
  served = large_views(120'000);  // ~7 MB
  view = served->all;
  start();
  raw_client c(port_, 4096);
  ASSERT_TRUE(c.connected());
  c.slow_down(16384, std::chrono::microseconds(100));
  for (int i = 0; i < 2; ++i) {
    c.send(get("/metrics"));
    const auto r = c.read_response();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body.size(), std::stoul(r->header("content-length")));
    EXPECT_EQ(r->body.substr(0, view->text.plain.size()), view->text.plain.str()) << i;
    EXPECT_THAT(r->body, HasSubstr("\ncerebras_proxy_build_info{"));
  }
}

TEST_F(HttpServer, AClientThatStopsReadingIsDroppedAfterTheWriteTimeout) {
  served = large_views(120'000);  // ~7 MB: more than the socket buffers hold
  view = served->all;
  server_options o;
  o.write_timeout = 300ms;
  start(o);
  raw_client stuck(port_, 4096);
  ASSERT_TRUE(stuck.connected());
  stuck.send(get("/metrics"));
  // Others are served meanwhile, whole.
  for (int i = 0; i < 2; ++i) {
    const auto r = exchange("/metrics?upstream=prod", "Accept: */*\r\n");
    EXPECT_EQ(r.body.size(), served->upstream("prod")->text.plain.size());
  }
  std::this_thread::sleep_for(1s);
  // Then the server gave up on it: what was queued arrives, then the close,
  // short of the whole response.
  const auto [got, closed] = stuck.drain();
  EXPECT_TRUE(closed);
  EXPECT_LT(got.size(), view->text.plain.size());
  EXPECT_THAT(got, StartsWith("HTTP/1.1 200 OK\r\n"));
  // And keeps serving.
  EXPECT_EQ(exchange("/-/healthy").status, 200u);
}

// A write towards a peer that is gone raises SIGPIPE unless it is sent
// with MSG_NOSIGNAL (Asio's, for TCP and TLS alike); the default action
// would end the whole daemon, and nothing ignores SIGPIPE process-wide.
TEST_F(HttpServer, AClientThatHangsUpMidBodyDoesNotStopTheServer) {
  served = large_views(120'000);  // ~7 MB: the server is still sending when it hangs up
  view = served->all;
  start();
  // Closed with nothing unread (a FIN, as wrk and scrapers that time out
  // close), or with bytes unread (a RST), while the body is on its way.
  for (int i = 0; i < 20; ++i) {
    raw_client c(port_, 4096);
    ASSERT_TRUE(c.connected());
    c.send(get("/metrics"));
    if (i % 2 == 1) std::this_thread::sleep_for(20ms);
    c.close();
  }
  std::this_thread::sleep_for(200ms);
  const auto r = exchange("/metrics?upstream=prod", "Accept: */*\r\n");
  EXPECT_EQ(r.body.size(), served->upstream("prod")->text.plain.size());
}

TEST(ParseListenAddress, AcceptsHostPortForms) {
  EXPECT_EQ(parse_listen_address("127.0.0.1:9753"),
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 9753));
  EXPECT_EQ(parse_listen_address("[::1]:80"),
            boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("::1"), 80));
  EXPECT_EQ(parse_listen_address(":9753").address(), boost::asio::ip::make_address("0.0.0.0"));
  EXPECT_EQ(parse_listen_address("localhost:0").address(), boost::asio::ip::make_address("127.0.0.1"));
  EXPECT_EQ(parse_listen_address("0.0.0.0:0").port(), 0);
}

TEST(ParseListenAddress, RejectsMalformedAddresses) {
  for (auto bad : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x",
                   "::1:80", "[::1]", "[::1]80", "[::1", "example.com:80", "1.2.3.4.5:1"}) {
    EXPECT_THROW((void)parse_listen_address(bad), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace cmp::server
