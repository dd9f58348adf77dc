#!/usr/bin/env bash
# /metrics of cerebras-metrics-proxy against a private nginx serving the same
# bytes as a static file, both pinned to one CPU, driven by wrk from another.
# See bench/README.md. Everything listens on 127.0.0.1 only.
#
# Exit: 0 when every run completed and the upstream saw only scheduled polls;
# 1 on any failure (missing tool, a process that did not start, a wrk run with
# errors, an upstream request caused by load). Performance is never asserted.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bench/run_http_bench.sh [options]
  --build DIR          build directory with cerebras-metrics-proxy and
                       cerebras-mock-upstream (default: $CMP_BUILD_DIR or ./build)
  --duration SECONDS   length of each wrk run (default 10)
  --rounds N           A/B rounds; the order alternates per round (default 3)
  --conns LIST         wrk connection counts (default 1,64,1000)
  --payloads LIST      small,medium,large (default all three)
  --encodings LIST     plain,gzip (default both)
  --server-cpu N       CPU for the daemon and nginx (default 1)
  --client-cpu N       CPU for wrk and the mock upstream (default 0)
  --poll-interval S    the daemon's poll interval and the mock's window (default 60)
  --out DIR            keep logs, configs and raw results here (default: a
                       temporary directory, removed at exit unless --keep)
  --keep               keep the temporary directory
  --quick              smoke test: 2 s runs, 1 round, small payload, 1 and 64
                       connections (checks the harness, not performance)
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
build=${CMP_BUILD_DIR:-$root/build}
duration=10
rounds=3
conns_list=1,64,1000
payload_list=small,medium,large
encoding_list=plain,gzip
server_cpu=1
client_cpu=0
interval=60
poll_offset=1
out=""
keep=0
quick=0

while [[ $# -gt 0 ]]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --conns) conns_list=$2; shift 2 ;;
    --payloads) payload_list=$2; shift 2 ;;
    --encodings) encoding_list=$2; shift 2 ;;
    --server-cpu) server_cpu=$2; shift 2 ;;
    --client-cpu) client_cpu=$2; shift 2 ;;
    --poll-interval) interval=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --quick) quick=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run_http_bench.sh: unknown option $1" >&2; usage >&2; exit 1 ;;
  esac
done
if [[ $quick == 1 ]]; then
  duration=2 rounds=1 conns_list=1,64 payload_list=small
fi

die() { echo "run_http_bench.sh: $*" >&2; exit 1; }
log() { echo "==> $*" >&2; }

# Endpoints of the mock upstream per payload (bytes measured on the daemon's
# /metrics, self-metrics included; see README).
declare -A endpoints=([small]=1 [medium]=32 [large]=330)

for tool in wrk nginx taskset curl gzip awk ss; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
daemon_bin=$build/cerebras-metrics-proxy
mock_bin=$build/cerebras-mock-upstream
[[ -x $daemon_bin ]] || die "$daemon_bin not found (build it, or pass --build DIR)"
[[ -x $mock_bin ]] || die "$mock_bin not found (build it, or pass --build DIR)"
[[ $duration =~ ^[0-9]+$ && $duration -ge 1 ]] || die "--duration must be a whole number of seconds >= 1"
[[ $rounds =~ ^[0-9]+$ && $rounds -ge 1 ]] || die "--rounds must be >= 1"
IFS=, read -r -a conns_arr <<<"$conns_list"
IFS=, read -r -a payload_arr <<<"$payload_list"
IFS=, read -r -a encoding_arr <<<"$encoding_list"
for p in "${payload_arr[@]}"; do [[ -n ${endpoints[$p]:-} ]] || die "unknown payload $p"; done
for e in "${encoding_arr[@]}"; do [[ $e == plain || $e == gzip ]] || die "unknown encoding $e"; done
max_conns=1
for c in "${conns_arr[@]}"; do
  [[ $c =~ ^[0-9]+$ && $c -ge 1 ]] || die "bad connection count $c"
  if ((c > max_conns)); then max_conns=$c; fi
done
((max_conns <= 1000)) || die "at most 1000 connections (the daemon's default cap is 1024)"

ncpu=$(nproc)
if ((ncpu < 2)); then
  echo "warning: one CPU only: wrk shares it with the servers" >&2
  server_cpu=0 client_cpu=0
fi

# wrk, the daemon and nginx each need a descriptor per connection.
need_fds=$((max_conns + 256))
if (($(ulimit -n) < need_fds)); then
  hard=$(ulimit -Hn)
  [[ $hard == unlimited ]] && hard=65536
  ((hard >= need_fds)) || die "ulimit -n hard limit $hard < $need_fds needed for $max_conns connections"
  ulimit -n "$((hard < 65536 ? hard : 65536))"
fi

if [[ -n $out ]]; then
  mkdir -p "$out"
  work=$(cd "$out" && pwd)
  keep=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/cmp-http-bench.XXXXXX")
fi
# nginx workers may run as another user (nobody): they must read html/.
chmod 755 "$work"

pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [[ $keep == 0 ]]; then rm -rf "$work"; else echo "logs and raw results kept in $work" >&2; fi
  exit "$rc"
}
stop_pid() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
forget_pid() {
  local keep_pids=() p
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || keep_pids+=("$p"); done
  pids=("${keep_pids[@]}")
}
trap cleanup EXIT
trap 'exit 1' INT TERM

now() { date +%s.%N; }

free_port() {
  local p used
  used=$(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

wait_for() {  # wait_for SECONDS CMD...: retries CMD every 0.1 s
  local deadline=$(($(date +%s) + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    (($(date +%s) < deadline)) || return 1
    sleep 0.1
  done
}

rss_kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }

# utime + stime of a process and its children (nginx: master + worker), ticks.
cpu_ticks() {
  local total=0 p
  for p in "$@" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
  done
  echo "$total"
}
clk_tck=$(getconf CLK_TCK)

# Parses wrk --latency output: rps p50_us p99_us errors non2xx requests bytes
parse_wrk() {
  awk '
    function us(v) {
      if (v ~ /us$/) return v + 0
      if (v ~ /ms$/) return (v + 0) * 1000
      if (v ~ /m$/) return (v + 0) * 60e6
      if (v ~ /s$/) return (v + 0) * 1e6
      return v + 0
    }
    function bytes(v) {
      if (v ~ /KB$/) return (v + 0) * 1024
      if (v ~ /MB$/) return (v + 0) * 1048576
      if (v ~ /GB$/) return (v + 0) * 1073741824
      if (v ~ /TB$/) return (v + 0) * 1099511627776
      return v + 0
    }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    $1 == "Requests/sec:" { rps = $2 }
    $2 == "requests" && $3 == "in" { reqs = $1; rb = bytes($5) }
    $1 == "Socket" && $2 == "errors:" {
      for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0
    }
    $1 == "Non-2xx" { non2xx = $NF }
    END {
      if (rps == "") exit 1
      printf "%s %.0f %.0f %d %d %d %.0f\n", rps, p50, p99, err, non2xx, reqs, (reqs > 0 ? rb / reqs : 0)
    }'
}

results=$work/results.tsv
rss_report=$work/rss.tsv
upstream_report=$work/upstream.tsv
printf 'payload\tconns\tencoding\tserver\tround\trps\tp50_us\tp99_us\terrors\tnon2xx\trequests\tbytes_per_resp\tcpu_us_per_req\n' >"$results"
: >"$rss_report"
: >"$upstream_report"

# run_wrk PAYLOAD CONNS ENCODING SERVER ROUND URL PID
run_wrk() {
  local payload=$1 c=$2 enc=$3 server=$4 round=$5 url=$6 pid=$7
  local args=(-t1 -c"$c" -d"${duration}s" --latency --timeout 10s)
  [[ $enc == gzip ]] && args+=(-H 'Accept-Encoding: gzip')
  local raw=$work/wrk-$payload-$c-$enc-$server-$round.txt cpu0 cpu1 parsed
  cpu0=$(cpu_ticks "$pid")
  taskset -c "$client_cpu" wrk "${args[@]}" "$url" >"$raw" 2>&1 || die "wrk failed: $(tail -3 "$raw")"
  cpu1=$(cpu_ticks "$pid")
  parsed=$(parse_wrk <"$raw") || die "cannot read wrk output $raw"
  read -r rps p50 p99 err non2xx reqs bpr <<<"$parsed"
  local cpu_us
  cpu_us=$(awk -v t=$((cpu1 - cpu0)) -v hz="$clk_tck" -v n="$reqs" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$payload" "$c" "$enc" "$server" "$round" \
    "$rps" "$p50" "$p99" "$err" "$non2xx" "$reqs" "$bpr" "$cpu_us" >>"$results"
  printf '  %-7s %5s conns %-5s %-6s round %s: %10.0f req/s  p50 %8.0f us  p99 %8.0f us  %6.1f cpu-us/req%s\n' \
    "$payload" "$c" "$enc" "$server" "$round" "$rps" "$p50" "$p99" "$cpu_us" \
    "$( ((err + non2xx > 0)) && echo "  ERRORS: $err socket, $non2xx non-2xx")" >&2
  ((non2xx == 0)) || die "$server answered $non2xx non-2xx responses ($raw)"
}

# Every upstream request after the first snapshot must be a scheduled poll:
# within 5 s after a slot (k * interval + offset), one per slot. Prints
# "observed expected bad".
check_upstream_log() {
  local logfile=$1 t0=$2 t1=$3
  awk -v t0="$t0" -v t1="$t1" -v iv="$interval" -v off="$poll_offset" -v tol=5 '
    {
      if (!match($0, /"t":[0-9.]+/)) next
      t = substr($0, RSTART + 4, RLENGTH - 4) + 0
      if (t < t0) next
      st = ""
      if (match($0, /"status":[0-9]+/)) st = substr($0, RSTART + 9, RLENGTH - 9)
      n++
      k = int((t - off) / iv)
      if (t - off - k * iv >= tol) {
        bad++; printf "upstream request off the poll schedule at %.3f (status %s)\n", t, st > "/dev/stderr"; next
      }
      if (seen[k]++) {
        bad++; printf "second upstream request for the poll slot at %.0f\n", k * iv + off > "/dev/stderr"; next
      }
      if (st != "200") printf "warning: scheduled poll at %.3f got status %s\n", t, st > "/dev/stderr"
    }
    END {
      # A slot counts when a poll in it (up to tol late) can fall after t0: the
      # first snapshot may be ready between a slot'\''s time and its request.
      k = int((t0 - off - tol) / iv); if (k * iv + off + tol <= t0) k++
      for (e = 0; k * iv + off < t1; k++) e++
      print n + 0, e, bad + 0
    }' "$logfile"
}

key="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
printf '%s\n' "$key" >"$work/api-key"
chmod 600 "$work/api-key"

failed=0
for payload in "${payload_arr[@]}"; do
  n=${endpoints[$payload]}
  pdir=$work/$payload
  rm -rf "$pdir"  # a kept --out directory from an earlier run
  mkdir -p "$pdir/state" "$pdir/html" "$pdir/tmp"
  chmod 755 "$pdir" "$pdir/html"
  log "$payload payload: mock upstream with --endpoints $n"

  taskset -c "$client_cpu" "$mock_bin" --api-key-file "$work/api-key" --listen 127.0.0.1:0 \
    --port-file "$pdir/mock.port" --window "${interval}s" --endpoints "$n" \
    --rate-limit 6 --rate-window 60s --request-log "$pdir/upstream-requests.jsonl" --quiet \
    2>"$pdir/mock.log" &
  mock_pid=$!
  pids+=("$mock_pid")
  wait_for 10 test -s "$pdir/mock.port" || die "mock upstream did not start: $(cat "$pdir/mock.log")"
  mock_port=$(tr -dc 0-9 <"$pdir/mock.port")

  daemon_port=$(free_port)
  cat >"$pdir/config.yml" <<YAML
# Generated by bench/run_http_bench.sh.
listen: "127.0.0.1:$daemon_port"
state_dir: "$pdir/state"
log:
  level: info
upstreams:
  - name: bench
    url: "http://127.0.0.1:$mock_port/api/v1/metrics/organizations/org_abc123"
    api_key_file: "$work/api-key"
    poll_interval: ${interval}s
    poll_offset: ${poll_offset}s
    timeout: 5s
    max_staleness: $((interval * 5))s
    rate_limit:
      requests: 6
      window: 60s
YAML
  chmod 600 "$pdir/config.yml"
  taskset -c "$server_cpu" "$daemon_bin" --config.file="$pdir/config.yml" 2>"$pdir/daemon.log" &
  daemon_pid=$!
  pids+=("$daemon_pid")
  wait_for 10 grep -q 'listening on' "$pdir/daemon.log" || die "daemon did not start: $(tail -5 "$pdir/daemon.log")"
  daemon_url=http://127.0.0.1:$daemon_port/metrics
  # grep -c reads to the end: with -q, curl gets SIGPIPE on a large body and pipefail fails the probe.
  has_snapshot() { curl -fsS "$daemon_url" | grep -c '^requests_count_total' >/dev/null; }
  wait_for $((interval + 15)) has_snapshot || die "no snapshot from the upstream: $(tail -5 "$pdir/daemon.log")"
  t_ready=$(now)
  sleep 1
  rss_idle=$(rss_kib "$daemon_pid" VmRSS)
  rss_idle_anon=$(rss_kib "$daemon_pid" RssAnon)

  # The static copy: the exact bytes the daemon served, and their gzip.
  curl -fsS -o "$pdir/html/metrics" "$daemon_url"
  gzip -6 -n -c "$pdir/html/metrics" >"$pdir/html/metrics.gz"
  chmod 644 "$pdir/html/metrics" "$pdir/html/metrics.gz"
  plain_bytes=$(stat -c %s "$pdir/html/metrics")
  daemon_gzip_bytes=$(curl -fsS -H 'Accept-Encoding: gzip' "$daemon_url" | wc -c)

  nginx_port=$(free_port)
  sed -e "s|@WORK@|$pdir|g" -e "s|@PORT@|$nginx_port|g" "$root/bench/nginx.conf.in" >"$pdir/nginx.conf"
  taskset -c "$server_cpu" nginx -p "$pdir/" -c "$pdir/nginx.conf" -e "$pdir/nginx-error.log" \
    2>"$pdir/nginx.stderr" &
  nginx_pid=$!
  pids+=("$nginx_pid")
  nginx_url=http://127.0.0.1:$nginx_port/metrics
  wait_for 10 curl -fsS -o /dev/null "$nginx_url" ||
    die "nginx did not start: $(cat "$pdir/nginx.stderr" "$pdir/nginx-error.log" 2>/dev/null | tail -5)"
  for url in "$daemon_url" "$nginx_url"; do
    curl -fsS -D - -o /dev/null -H 'Accept-Encoding: gzip' "$url" | grep -qi '^content-encoding: *gzip' ||
      die "$url does not answer gzip"
  done
  log "$payload: $plain_bytes bytes plain, daemon gzip $daemon_gzip_bytes, nginx gzip $(stat -c %s "$pdir/html/metrics.gz"); idle RSS $rss_idle KiB"

  # Warm both up (page cache, allocator, TCP) outside the measurements.
  taskset -c "$client_cpu" wrk -t1 -c16 -d1s "$daemon_url" >/dev/null 2>&1 || true
  taskset -c "$client_cpu" wrk -t1 -c16 -d1s "$nginx_url" >/dev/null 2>&1 || true

  for ((round = 1; round <= rounds; round++)); do
    for c in "${conns_arr[@]}"; do
      for enc in "${encoding_arr[@]}"; do
        if ((round % 2 == 1)); then order=(daemon nginx); else order=(nginx daemon); fi
        for server in "${order[@]}"; do
          if [[ $server == daemon ]]; then
            run_wrk "$payload" "$c" "$enc" daemon "$round" "$daemon_url" "$daemon_pid"
          else
            run_wrk "$payload" "$c" "$enc" nginx "$round" "$nginx_url" "$nginx_pid"
          fi
        done
      done
    done
  done
  t_end=$(now)

  sleep 2  # let connections close
  rss_after=$(rss_kib "$daemon_pid" VmRSS)
  rss_hwm=$(rss_kib "$daemon_pid" VmHWM)
  rss_after_anon=$(rss_kib "$daemon_pid" RssAnon)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$payload" "$plain_bytes" "$rss_idle" "$rss_after" "$rss_hwm" \
    "$rss_idle_anon" "$rss_after_anon" >>"$rss_report"

  read -r observed expected bad < <(check_upstream_log "$pdir/upstream-requests.jsonl" "$t_ready" "$t_end")
  printf '%s\t%s\t%s\t%s\n' "$payload" "$observed" "$expected" "$bad" >>"$upstream_report"
  if ((bad > 0 || observed > expected)); then
    echo "FAIL: $payload: $observed upstream requests during the benchmark, $expected scheduled polls" >&2
    failed=1
  fi

  for p in "$nginx_pid" "$daemon_pid" "$mock_pid"; do
    stop_pid "$p"
    forget_pid "$p"
  done
done

# ---- summary: medians over the rounds ----
echo
echo "cerebras-metrics-proxy vs nginx (static file), $rounds round(s) of ${duration}s, medians;"
echo "servers on CPU $server_cpu, wrk (1 thread) on CPU $client_cpu; spread = (max-min)/median over rounds"
awk -F'\t' '
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function spread(s,   a, n, i, lo, hi, m) {
    n = split(s, a, " "); lo = hi = a[1] + 0
    for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
    m = median(s); return m > 0 ? (hi - lo) / m * 100 : 0
  }
  NR == 1 { next }
  {
    k = $1 SUBSEP $2 SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
    rps[k, $4] = rps[k, $4] " " $6; p50[k, $4] = p50[k, $4] " " $7; p99[k, $4] = p99[k, $4] " " $8
    cpu[k, $4] = cpu[k, $4] " " $13; bpr[k, $4] = $12
  }
  END {
    printf "%-7s %5s %-5s | %9s %9s %6s | %8s %8s | %9s %9s | %7s %7s | %6s %6s | %8s %8s\n",
      "payload", "conns", "enc", "d req/s", "n req/s", "d/n", "d p50", "n p50", "d p99", "n p99",
      "d cpu", "n cpu", "d spr", "n spr", "d B/resp", "n B/resp"
    for (i = 1; i <= nk; i++) {
      k = order[i]; split(k, f, SUBSEP)
      dr = median(rps[k, "daemon"]); nr = median(rps[k, "nginx"])
      printf "%-7s %5s %-5s | %9.0f %9.0f %6.2f | %6.0fus %6.0fus | %7.0fus %7.0fus | %5.1fus %5.1fus | %5.0f%% %5.0f%% | %8d %8d\n",
        f[1], f[2], f[3], dr, nr, (nr > 0 ? dr / nr : 0), median(p50[k, "daemon"]), median(p50[k, "nginx"]),
        median(p99[k, "daemon"]), median(p99[k, "nginx"]), median(cpu[k, "daemon"]), median(cpu[k, "nginx"]),
        spread(rps[k, "daemon"]), spread(rps[k, "nginx"]), bpr[k, "daemon"], bpr[k, "nginx"]
    }
  }' "$results"
echo "(d = daemon, n = nginx; cpu = server CPU time per request, user+sys, from /proc)"

echo
echo "daemon RSS (VmRSS from /proc/PID/status; target: small idle <= 10 MiB, large <= 8 MiB + 4 x payload)"
awk -F'\t' '{
  budget = ($1 == "small") ? 10 * 1024 : ($1 == "large") ? 8 * 1024 + 4 * $2 / 1024 : 0
  printf "%-7s payload %8d B: idle %5.1f MiB (anon %5.1f), after load %5.1f MiB (anon %5.1f), peak (VmHWM) %5.1f MiB",
    $1, $2, $3 / 1024, $6 / 1024, $4 / 1024, $7 / 1024, $5 / 1024
  if (budget > 0) printf "; budget %5.1f MiB%s", budget / 1024, ($3 > budget) ? " (idle over budget)" : ""
  printf "\n"
}' "$rss_report"

echo
echo "upstream requests after the first snapshot (mock request log)"
awk -F'\t' '{ printf "%-7s %d requests, %d scheduled polls in that time, %d not on the schedule%s\n",
  $1, $2, $3, $4, ($4 > 0 || $2 > $3) ? "  <- FAIL" : "" }' "$upstream_report"

if ((failed)); then
  echo "FAILED: scrape load caused upstream requests" >&2
  exit 1
fi
echo "ok"
