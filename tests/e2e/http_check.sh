#!/usr/bin/env bash
# http_check.sh -- the stage's HTTP endpoints, on a running `funnelstream demo`.
#
# Starts the demo, reads its stdout until it has printed the dashboard URL
# and the first closed window, then checks:
#   /health 200 "ok"; /ready 200 (partitions assigned, lag small);
#   /metrics parses with Prometheus's own parser (promtool check metrics)
#     and has the families issue 5 names;
#   /api/funnels is JSON with every funnel of configs/demo.yaml, and the
#     demo's last printed line of a funnel is one of the API's recent
#     records of it (both come from the output topic);
#   / serves the dashboard, and headless Chromium renders the same stage
#     counts as /api/funnels (tests/browser/dashboard_check.sh; the
#     screenshot is kept in $FS_TMP/dashboard.png).
# Then SIGINT must stop the demo with exit 0. Every wait is on the demo's
# own output; nothing sleeps.
set -euo pipefail
BIN=${FS_BIN:?}
SRC=${FS_SOURCE_DIR:?}
TMP=${FS_TMP:-/tmp}
PY=/usr/bin/python3
work=$(mktemp -d "$TMP/http-XXXXXX")
out=$work/demo.out

setsid "$BIN" demo --rate 400 >"$out" 2>"$work/demo.err" &
pid=$!
cleanup() { kill -INT -- -"$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The URL line, then the first window lines (tail -f ends with the demo).
url=""
while IFS= read -r line; do
  case "$line" in
    Dashboard:*) url=$(echo "$line" | grep -o 'http://[^ ]*') ;;
    *"| completed "*) [ -n "$url" ] && break ;;
  esac
done < <(tail -n +1 -f --pid="$pid" "$out")
[ -n "$url" ] || { echo "no dashboard URL"; cat "$work/demo.err"; exit 1; }
echo "dashboard at $url"

fail() { echo "FAIL: $*"; exit 1; }
[ "$(curl -sf "${url}health")" = ok ] || fail "/health"
curl -sf "${url}ready" >/dev/null || fail "/ready: $(curl -s "${url}ready")"
curl -sf "${url}metrics" >"$work/metrics"
if command -v promtool >/dev/null; then
  promtool check metrics <"$work/metrics" || fail "promtool check metrics"
else
  echo "promtool not installed: exposition syntax not checked by Prometheus's parser"
fi
for family in consumer_lag events_total rejected_total active_journeys journey_table_bytes \
    open_windows records_emitted_total close_to_ack_seconds_bucket producer_queue \
    rebalances_total restore_seconds; do
  grep -q "^funnelstream_$family" "$work/metrics" || fail "/metrics has no funnelstream_$family"
done
grep -q '^funnelstream_events_total{outcome="accepted"} [1-9]' "$work/metrics" ||
  fail "no accepted events counted"

# Lines first: every line printed by now has its record on the board.
grep '| completed ' "$out" >"$work/lines"
curl -sf "${url}api/funnels" >"$work/funnels.json"
$PY - "$work/funnels.json" "$work/lines" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
names = [f["name"] for f in doc["funnels"]]
assert names == ["aida", "product", "b2b_pipeline"], names
lines = open(sys.argv[2]).read().splitlines()
checked = 0
for f in doc["funnels"]:
    latest = f["latest"]
    if latest is None:
        continue
    assert latest["kind"] == "flow" and latest["funnel"] == f["name"], latest
    assert latest["stages"] == f["stages"]
    assert f["recent"][-1] == latest
    # The demo's last line for this funnel is one of the API's recent
    # windows (the API may already hold a newer one the screen has not
    # printed yet: the board is updated before a record is produced).
    import re
    mine = [re.sub(r" \(\d+%\)", "", l) for l in lines if f"  {f['name']} " in l]
    if not mine:
        continue
    shown = [" > ".join(f"{s} {n}" for s, n in zip(f["stages"], r["reached"]))
             for r in f["recent"]]
    assert any(w in mine[-1] for w in shown), (f["name"], mine[-1], shown[-3:])
    checked += 1
assert checked >= 1, "no funnel had a closed window"
print(f"/api/funnels: {checked} funnels match the demo's lines")
PY

curl -sf "$url" | grep -q "<html" || fail "/ is not the dashboard"
set +e
bash "$SRC/tests/browser/dashboard_check.sh" "$url" "$TMP/dashboard.png"
rc=$?
set -e
if [ $rc -eq 77 ]; then
  echo "chromium not installed: browser check skipped"
elif [ $rc -ne 0 ]; then
  fail "dashboard_check.sh exit $rc"
fi

kill -INT -- -"$pid"
set +e
wait "$pid"
status=$?
set -e
[ $status -eq 0 ] || { cat "$work/demo.err"; fail "demo exit $status after SIGINT"; }
trap 'rm -rf "$work"' EXIT
echo "http_check: ok"
