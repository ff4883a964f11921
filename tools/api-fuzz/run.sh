#!/usr/bin/env bash
# Property-based fuzzing of a running raydar's REST API with schemathesis, driven by the OpenAPI
# document raydar serves itself (URL/api/v1/openapi.json): every operation is called with requests
# generated from its description (valid ones and deliberately invalid ones), and every response is
# checked against it with all of schemathesis' checks (no 5xx, documented status codes, content
# types, headers and bodies; invalid input refused with a 4xx, valid input not refused with 400/422;
# 405 with Allow for undocumented methods; ...).
#
#   tools/api-fuzz/run.sh [URL]      URL defaults to $RAYDAR_URL, e.g. from
#                                    scripts/raydar.sh run -- tools/api-fuzz/run.sh
#
# Exits non-zero when schemathesis finds a failure (or cannot run, or the run exceeds its time
# budget). Prints the failing operations and schemathesis' summary; its whole output (each failure
# with its request, response and a curl line) and JUnit/NDJSON reports are in
# $RAYDAR_LOCAL/api-fuzz-report/.
#
# Settings (environment):
#   API_FUZZ_MAX_EXAMPLES     test cases per operation and phase (default 30)
#   API_FUZZ_SEED             Hypothesis seed, so that a run can be repeated (default 1)
#   API_FUZZ_REQUEST_TIMEOUT  seconds per request; also how long an event stream is read (default 10)
#   API_FUZZ_TIME_LIMIT       seconds for the whole run before it is stopped (default 600)
#   API_FUZZ_WORKERS          concurrent workers (default 1: the order of requests, and so the
#                             result, is the same on every run)
#   API_FUZZ_ARGS             more `schemathesis run` arguments, e.g. "--include-path-regex gpus"
#
# raydar's action limit (RAYDAR_ACTION_RATE, 30 launches/changes/teardowns per user per minute)
# answers 429 once the fuzzer has spent it (429 is documented, so that passes, but those requests
# test nothing beyond the limit): for full coverage of the writes run the server with a high one, e.g.
#   RAYDAR_ACTION_RATE=100000 scripts/raydar.sh run -- tools/api-fuzz/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
local_dir=${RAYDAR_LOCAL:-$root/.local}

url=${1:-${RAYDAR_URL:-}}
[ -n "$url" ] || { echo "usage: $0 URL (or RAYDAR_URL=URL $0)" >&2; exit 2; }
url=${url%/}
max_examples=${API_FUZZ_MAX_EXAMPLES:-30}
seed=${API_FUZZ_SEED:-1}
request_timeout=${API_FUZZ_REQUEST_TIMEOUT:-10}
time_limit=${API_FUZZ_TIME_LIMIT:-600}
workers=${API_FUZZ_WORKERS:-1}

venv=$("$here/setup.sh")
report=$local_dir/api-fuzz-report
rm -rf "$report"
mkdir -p "$report"

# Dev mode: everyone is the dev user. Writes under /api/v1 need a same-origin Origin and the user's
# CSRF token (server/src/security/csrf.rs), so both go on every request.
session=$(curl -fsS --max-time 10 "$url/api/v1/session") || { echo "error: GET $url/api/v1/session failed" >&2; exit 2; }
token=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["csrfToken"])' <<<"$session") ||
  { echo "error: no csrfToken in GET $url/api/v1/session: $session" >&2; exit 2; }

args=(
  "$url/api/v1/openapi.json" --url "$url"
  --checks all
  # examples (from the document), coverage (boundary values, missing/wrong parameters,
  # undocumented methods), fuzzing (random valid and invalid requests) and stateful (sequences
  # along links, declared or inferred from Location headers).
  --phases examples,coverage,fuzzing,stateful
  --mode all
  --max-examples "$max_examples"
  --seed "$seed"
  # No example database: it would replay earlier runs' failures (and live in .hypothesis/ of the
  # working directory), so a run would depend on the ones before it.
  --generation-database none
  --workers "$workers"
  --request-timeout "$request_timeout"
  --request-retries 0
  --max-redirects 0
  -H "Origin: $url"
  -H "X-CSRF-Token: $token"
  --report junit,ndjson --report-junit-path "$report/junit.xml" --report-ndjson-path "$report/events.ndjson"
  --output-truncate false
  --no-color
)
# The server-sent-event endpoints (GET /api/v1/clusters/events, .../logs/stream) never end.
# They are not excluded: schemathesis 4 reads a text/event-stream response only until it ends,
# 20 events arrive or the request timeout passes, and checks what it read.
# shellcheck disable=SC2206
args+=(${API_FUZZ_ARGS:-})

echo "api-fuzz: $("$venv/bin/schemathesis" --version) against $url (seed $seed, $max_examples examples per operation, output: $report/output.txt)"
status=0
start=$(date +%s)
# --kill-after: schemathesis gets 15 s to write its reports after SIGTERM.
# From the report directory: schemathesis (.schemathesis/, replay files) and Hypothesis (.hypothesis/)
# write caches into the working directory, which must not be the work tree.
(cd "$report" && exec timeout --kill-after=15 "$time_limit" "$venv/bin/schemathesis" \
  --config-file "$here/schemathesis.toml" run "${args[@]}") \
  </dev/null >"$report/output.txt" 2>&1 || status=$?
elapsed=$(($(date +%s) - start))

# What to print: one line per failing operation with the checks it failed, then schemathesis'
# summary (totals per check); each failure in full, with its request and response, stays in
# output.txt.
awk '
  /^=+ FAILURES =+$/ { f = 1; next }
  /^=+ [A-Z]+ =+$/ { if (f && op != "") print op ":" checks; f = 0; op = "" }
  f && /^___+ .* ___+$/ {
    if (op != "") print op ":" checks
    op = $0; gsub(/^_+ | _+$/, "", op); checks = ""; delete seen
  }
  f && /^- ST[0-9]+ / { c = substr($0, 3); if (!(c in seen)) { seen[c] = 1; checks = checks " [" c "]" } }
' "$report/output.txt" >"$report/failures.txt"
if [ -s "$report/failures.txt" ]; then
  echo "--- failing operations (details in $report/output.txt)"
  cat "$report/failures.txt"
fi
if grep -qE '^=+ SUMMARY =+$' "$report/output.txt"; then
  awk '/^=+ SUMMARY =+$/ { s = 1 } s' "$report/output.txt"
else
  tail -n 40 "$report/output.txt"
fi
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "api-fuzz: stopped after $time_limit s (API_FUZZ_TIME_LIMIT)" >&2
fi
echo "api-fuzz: exit status $status after ${elapsed}s; failures in detail: $report/output.txt"
exit "$status"
