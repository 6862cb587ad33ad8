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
#     records of it (both come from the output topic); when a funnel has
#     "open" (running counts of the windows not closed yet), its shape and
#     the per-window invariants of the counting (see the comment there);
#   /api/journeys/<id>: a customer with active journeys is found among
#     c0..c499 and its journeys agree with configs/demo.yaml; an unknown id
#     is 200 with no journeys, "%63%31" is decoded to c1, a bad escape and a
#     129-byte id are 400, an empty id 404;
#   / serves the dashboard, and headless Chromium renders the same stage
#     counts and open window as /api/funnels and that customer's journeys
#     as /api/journeys (tests/browser/dashboard_check.sh; the screenshot is
#     kept in $FS_TMP/dashboard.png).
# (tests/browser/fixture_check.sh, the dashboard against fixed data, is a
# ctest test of its own: browser/fixture_check.)
# Then SIGINT must stop the demo with exit 0. Every wait is on the demo's
# own output; nothing sleeps.
#
# Exit 0: every check ran and passed. 1: a check failed. 77: every check
# that could run passed, but promtool or Chromium is missing, so a part was
# not checked; ctest shows the test as Skipped (SKIP_RETURN_CODE in
# tests/CMakeLists.txt) and the output names what was left out. Never a
# pass with a part silently left out.
set -euo pipefail
BIN=${FS_BIN:?}
SRC=${FS_SOURCE_DIR:?}
TMP=${FS_TMP:-/tmp}
PY=/usr/bin/python3
work=$(mktemp -d "$TMP/http-XXXXXX")
out=$work/demo.out

skipped=() # the parts not checked, for want of a tool

# A browser check script; its exit 77 (no Chromium) is a skip, not a failure.
browser_check() { # what script args...
  local what=$1 rc
  shift
  set +e
  bash "$@"
  rc=$?
  set -e
  [ $rc -eq 77 ] && skipped+=("$what (no Chromium)")
  [ $rc -eq 0 ] || [ $rc -eq 77 ] || { echo "FAIL: $what: exit $rc"; return 1; }
}

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
  skipped+=("/metrics syntax by Prometheus's parser (no promtool)")
fi
for family in consumer_lag events_total rejected_total active_journeys journey_table_bytes \
    open_windows open_window_label_values records_emitted_total close_to_ack_seconds_bucket \
    producer_queue \
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

# "open": per funnel, the running counts of the windows not closed yet
# (absent from servers before it; then nothing to check). Asserted per
# window, from how src/core/worker.c counts (count_reach, count_completion; all
# in the windows open at the event's ts): a start at stage k adds entered[k]
# and reached[0..k]; an advance adds reached[max_stage+1..k], never
# reached[0]; reaching stage n-1 always completes (funnel.c), adding
# `completed` with that same reached[n-1]. Each worker's snapshot is taken
# between batches, and sums keep equalities, so per window:
# sum(entered) == reached[0], completed == reached[n-1], entered[s] <=
# reached[s], and a strict funnel only enters at stage 0. The same holds for
# the closed `latest` record, checked alongside.
# NOT asserted: reached[s] >= reached[s+1]. A journey that started in an
# earlier window and advances in this one adds reached[s+1] here without
# reached[s] (closed windows show it too, e.g. aida reached [79,80,76,..]).
# Nor that an open window is absent from `recent`: the sink may post a
# window's record before every worker's next snapshot drops it.
curl -sf "${url}api/funnels" >"$work/funnels2.json"
$PY - "$work/funnels2.json" "$SRC/configs/demo.yaml" <<'PY'
import json, re, sys, yaml
doc = json.load(open(sys.argv[1]))
cfg = yaml.safe_load(open(sys.argv[2]))
def ms(text):
    n, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text)).groups()
    return int(n) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}[unit]
size = ms(cfg["window"]["size"])
hop = ms(cfg["window"].get("hop", cfg["window"]["size"]))
modes = {f["name"]: f.get("mode", "open") for f in cfg["funnels"]}
def counts_ok(where, e, r, c, n, mode):
    assert len(e) == n and len(r) == n, where
    assert all(isinstance(x, int) and x >= 0 for x in e + r + [c]), where
    assert all(a <= b for a, b in zip(e, r)), (where, "entered > reached")
    assert sum(e) == r[0], (where, "sum(entered) != reached[0]")
    assert c == r[-1], (where, "completed != reached[n-1]")
    if mode == "strict":
        assert not any(e[1:]), (where, "a strict funnel entered past stage 0")
seen = 0
for f in doc["funnels"]:
    n = len(f["stages"])
    # the mode and the optional stages, as the config says (the page labels its stages by them)
    want_opt = [bool(s.get("optional", False)) for c in cfg["funnels"] if c["name"] == f["name"]
                for s in c["stages"]]
    assert f["mode"] == modes[f["name"]] and f["optional"] == want_opt, (f["name"], f["mode"], f["optional"])
    if f.get("latest"):
        l = f["latest"]
        counts_ok((f["name"], "latest"), l["entered"], l["reached"], l["completed"], n, modes[f["name"]])
    if "open" not in f:
        continue
    ws = f["open"]
    assert isinstance(ws, list), (f["name"], ws)
    starts = [w["window_start"] for w in ws]
    assert starts == sorted(set(starts)), (f["name"], "not ascending", starts)
    for w in ws:
        where = (f["name"], w)
        assert set(w) >= {"window_start", "window_end", "entered", "reached", "completed"}, where
        assert w["window_end"] - w["window_start"] == size and w["window_start"] % hop == 0, where
        counts_ok(where, w["entered"], w["reached"], w["completed"], n, modes[f["name"]])
        seen += 1
print(f"/api/funnels open: {seen} open window(s) checked" if seen else
      "/api/funnels has no \"open\" windows: not checked")
PY

# /api/journeys: the first of c0..c499 (src/cli/generate.c names customers
# c0..c<M-1>) with an active journey; 400 ids at the demo's rate leave
# plenty, so none at all is a failure.
cust=""
for i in $(seq 0 499); do
  curl -sf "${url}api/journeys/c$i" >"$work/journeys.json" || fail "/api/journeys/c$i: HTTP error"
  if grep -q '"funnel":' "$work/journeys.json"; then cust=c$i; break; fi
done
[ -n "$cust" ] || fail "no customer among c0..c499 has an active journey"
$PY - "$work/journeys.json" "$SRC/configs/demo.yaml" "$cust" <<'PY'
import json, re, sys, yaml
doc = json.load(open(sys.argv[1], encoding="utf-8"))
cfg = yaml.safe_load(open(sys.argv[2]))
def ms(text):
    n, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", str(text)).groups()
    return int(n) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}[unit]
funnels = {f["name"]: f for f in cfg["funnels"]}
assert doc["customer_id"] == sys.argv[3], doc
js = doc["journeys"]
assert js, doc
assert len({j["funnel"] for j in js}) == len(js), ("two journeys in one funnel", doc)
for j in js:
    f = funnels.get(j["funnel"])
    assert f is not None, ("not a funnel of demo.yaml", j)
    stages = [s["name"] for s in f["stages"]]
    # The last stage completes (and ends) a journey, so it is never active.
    assert isinstance(j["stage"], int) and 0 <= j["stage"] < len(stages) - 1, j
    assert j["stage_name"] == stages[j["stage"]], (j, stages)
    assert j["started_at"] < j["expires_at"], j
    assert j["expires_at"] - j["started_at"] == ms(f["conversion_window"]), (j, f["conversion_window"])
    chans = [t["channel"] for t in j["touches"]]
    assert chans and len(set(chans)) == len(chans), ("touches empty or repeated", j)
    assert all(isinstance(t["count"], int) and t["count"] >= 1 for t in j["touches"]), j
    assert j["first_channel"] in chans, j
print(f"/api/journeys/{sys.argv[3]}: {len(js)} active journey(s) agree with demo.yaml")
PY

status() { curl -s -o "$work/body" -w '%{http_code}' "${url}api/journeys/$1"; }
jfield() { $PY -c 'import json, sys; d = json.load(open(sys.argv[1])); print(json.dumps(d[sys.argv[2]]))' "$work/body" "$1"; }
[ "$(status no-such-customer)" = 200 ] || fail "unknown customer: HTTP $(status no-such-customer)"
[ "$(jfield customer_id)" = '"no-such-customer"' ] && [ "$(jfield journeys)" = '[]' ] ||
  fail "unknown customer: $(cat "$work/body")"
[ "$(status %63%31)" = 200 ] && [ "$(jfield customer_id)" = '"c1"' ] ||
  fail "/api/journeys/%63%31: $(cat "$work/body")"
[ "$(status %zz)" = 400 ] || fail "/api/journeys/%zz: HTTP $(status %zz), want 400"
[ "$(status c%4)" = 400 ] || fail "/api/journeys/c%4: HTTP $(status c%4), want 400"
[ "$(status "")" = 404 ] || fail "/api/journeys/: HTTP $(status ""), want 404"
id128=$(printf 'x%.0s' $(seq 128))
[ "$(status "$id128")" = 200 ] || fail "128-byte id: HTTP $(status "$id128"), want 200"
[ "$(status "${id128}x")" = 400 ] || fail "129-byte id: HTTP $(status "${id128}x"), want 400"
qstatus() { curl -s -o "$work/body" -w '%{http_code}' "${url}api/journeys?$1"; }
[ "$(qstatus id=c1)" = 200 ] && [ "$(jfield customer_id)" = '"c1"' ] ||
  fail "/api/journeys?id=c1: $(cat "$work/body")"
[ "$(qstatus 'x=1&id=%2E%2E')" = 200 ] && [ "$(jfield customer_id)" = '".."' ] ||
  fail "/api/journeys?id=%2E%2E (an id no path can carry): $(cat "$work/body")"
[ "$(qstatus id=)" = 400 ] || fail "/api/journeys?id=: HTTP $(qstatus id=), want 400"
[ "$(status %FF)" = 400 ] && jfield error >/dev/null ||
  fail "/api/journeys/%FF (not UTF-8): HTTP $(status %FF), want 400 with a JSON error"
code=$(curl -s -o "$work/body" -w '%{http_code}' "${url}api/%6Aourneys/c1")
[ "$code" = 404 ] || fail "/api/%6Aourneys/c1 (routed by the normalized path only): HTTP $code, want 404"
echo "/api/journeys: errors and escapes ok"

# Into a file first: with pipefail, `curl | grep -q` fails whenever grep has
# seen enough and exits before curl has written everything (curl: EPIPE).
curl -sf "$url" >"$work/index.html" || fail "/: HTTP error"
grep -q "<html" "$work/index.html" || fail "/ is not the dashboard"
browser_check "browser check" "$SRC/tests/browser/dashboard_check.sh" "${url}?customer=$cust" \
  "$TMP/dashboard.png" || exit 1

kill -INT -- -"$pid"
set +e
wait "$pid"
status=$?
set -e
[ $status -eq 0 ] || { cat "$work/demo.err"; fail "demo exit $status after SIGINT"; }
trap 'rm -rf "$work"' EXIT
if [ ${#skipped[@]} -gt 0 ]; then
  echo "http_check: every check that ran passed, but these were SKIPPED:"
  printf '  - %s\n' "${skipped[@]}"
  exit 77
fi
echo "http_check: ok"
