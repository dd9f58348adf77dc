#!/usr/bin/env bash
# Checks the shipped Prometheus files with promtool:
#   * config/prometheus/rules/cerebras.rules.yml    promtool check rules
#   * config/prometheus/rules/cerebras.rules.test.yml promtool test rules
#   * config/prometheus/scrape.yml                   promtool check config
#   * config/prometheus/scrape-per-organization.yml  promtool check config
# and that the unit tests cover every alert (a firing and a not-firing case)
# and every recording rule (a value check), and that every rule reads the
# Cerebras families with organization_id!="" (a shared Prometheus holds other
# applications' requests_count_total too).
# Usage: prometheus_rules_test.sh REPO_ROOT
# Exit: 0 pass, 1 fail, 77 skip (no promtool).
set -euo pipefail

root=${1:?usage: prometheus_rules_test.sh REPO_ROOT}
dir="$root/config/prometheus"
rules="$dir/rules/cerebras.rules.yml"
tests="$dir/rules/cerebras.rules.test.yml"

command -v promtool >/dev/null 2>&1 || { echo "SKIP: promtool not found"; exit 77; }
for f in "$rules" "$tests" "$dir/scrape.yml" "$dir/scrape-per-organization.yml"; do
  [ -f "$f" ] || { echo "FAIL: $f missing"; exit 1; }
done

status=0
fail() { echo "FAIL: $*"; status=1; }

promtool check rules "$rules" || fail "promtool check rules"
# rule_files in the test file are relative to it.
(cd "$dir/rules" && promtool test rules "$(basename "$tests")") || fail "promtool test rules"
(cd "$dir" && promtool check config scrape.yml) || fail "promtool check config scrape.yml"
(cd "$dir" && promtool check config scrape-per-organization.yml) ||
  fail "promtool check config scrape-per-organization.yml"

# Coverage. The test file is written in one layout (alertname: then
# exp_alerts: on the next line, `[]` for "must not fire"), which keeps this
# check free of a YAML parser.
alerts=$(sed -n 's/^[[:space:]]*- alert:[[:space:]]*\([A-Za-z0-9_]*\).*/\1/p' "$rules")
records=$(sed -n 's/^[[:space:]]*- record:[[:space:]]*\([A-Za-z0-9_:]*\).*/\1/p' "$rules")
[ -n "$alerts" ] || fail "no alerts found in $rules"
[ -n "$records" ] || fail "no recording rules found in $rules"
cases=$(awk '
  /^[[:space:]]*alertname:/ { name = $2; next }
  name != "" && /^[[:space:]]*exp_alerts:/ {
    print name, ($2 == "[]" ? "silent" : "firing"); name = "" }' "$tests")
for a in $alerts; do
  grep -qx "$a firing" <<<"$cases" || fail "alert $a has no firing test case"
  grep -qx "$a silent" <<<"$cases" || fail "alert $a has no not-firing test case"
done
for r in $records; do
  grep -Eq "^[[:space:]]*- expr:[[:space:]]*$r[[:space:]]*$" "$tests" \
    || fail "recording rule $r has no promql_expr_test"
done

# The text of every expr: (one line, or the indented block under `expr: |`).
exprs=$(awk '
  match($0, /^[[:space:]]*(- )?expr:/) { ind = RLENGTH - 5; print substr($0, RLENGTH + 1); inexpr = 1; next }
  inexpr && /^[[:space:]]*$/ { next }
  inexpr { match($0, /^[[:space:]]*/); if (RLENGTH > ind) { print; next } inexpr = 0 }' "$rules")
families='inference_endpoint_status|requests_count_total|requests_success_total|requests_failure_total'
families+='|input_tokens_total|output_tokens_total|cache_rate|ttft_seconds|tpot_seconds'
families+='|e2e_latency_seconds|queue_time_seconds'
# Each use: the name and its braces, if any.
uses=$(grep -oE "(^|[^A-Za-z0-9_:])($families)(\\{[^}]*\\}|[^A-Za-z0-9_:{]|$)" <<<"$exprs" |
         grep -oE "($families)(\\{[^}]*\\})?" || true)
[ -n "$uses" ] || fail "no Cerebras family found in the rules' expressions"
while IFS= read -r use; do
  [ -n "$use" ] || continue
  grep -q 'organization_id!=""' <<<"$use" ||
    fail "a rule reads $use without organization_id!=\"\" (it would take other applications' series)"
done <<<"$uses"

[ $status -eq 0 ] && echo "PASS: $(wc -w <<<"$alerts") alerts and $(wc -w <<<"$records") recording rules checked and tested"
exit $status
