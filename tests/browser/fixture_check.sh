#!/usr/bin/env bash
# fixture_check.sh -- the dashboard against fixed data: deterministic browser checks.
#
# Usage: fixture_check.sh FUNNELSTREAM_BINARY [SCREENSHOT.png]
#
# Against a live server the open windows and the journeys move while the
# browser runs, so dashboard_check.sh can only bound them there. Here they
# stand still: the binary generates a fixed event file (same options, same
# bytes) and replays it with configs/demo.yaml, dashboard_fixture.py turns the
# records into an /api/funnels document in which
#   aida, b2b_pipeline  have their last 2 windows still open ("open": [2]),
#   product             has "open": [],
#   legacy              has no closed window and no "open" field at all,
#   fresh               has no closed window but one open window,
#   velocity, campaigns, anyorder  come from issue14_records.jsonl (fields the
#                       demo config does not make): stage_time_ms with a
#                       count-0 entry and an optional stage; by_campaign and
#                       attribution.campaign with 12 campaigns, ties, "", an
#                       HTML-like name and a real "(other)"; an unordered
#                       funnel. product and these get "mode" / "optional";
#                       aida and b2b_pipeline have neither (an older server),
# and dashboard_devserver.py serves it with journeys_fixture.json (customer
# ids and channel names chosen to break naive encoding and innerHTML). Then
# dashboard_check.sh runs with FS_DASH_FIXTURE=1 (exact comparisons, an open
# window must be on show) once per lookup case:
#   ?customer=c1                   two journeys, HTML-like channel names;
#   ?customer=a/b c&d?é%           one journey: the id survives encodeURIComponent
#                                  and the server's percent-decoding;
#   ?customer=nobody               "no active journeys";
#   ?customer=<129 x>              the server's 400, shown as an error;
#   no ?customer=                  the lookup stays idle;
#   ?campaign_rank=linear          the campaign table ranked by linear credit.
# FS_DASH_HTML serves another page file instead of web/dashboard.html (to try
# a change, or a deliberately broken copy, without touching the tree that
# other builds embed). Waits only on the devserver's first output line (its
# URL). Exit codes are dashboard_check.sh's (77: no Chromium).
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 FUNNELSTREAM_BINARY [SCREENSHOT.png]" >&2
  exit 2
fi
BIN=$1
SHOT=${2:-}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dashfix.XXXXXX")
pid=
cleanup() {
  [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$BIN" generate --events 8000 --customers 300 --rate 100 --seed 1 --format json \
  --output "$work/events.jsonl"
"$BIN" replay --config "$SRC/configs/demo.yaml" --input "$work/events.jsonl" --format json \
  --quiet --log-level warn --output "$work/records.jsonl"
"$PY" "$HERE/dashboard_fixture.py" "$work/records.jsonl" --open 2 --no-open product \
  --empty legacy --starting fresh --extra "$HERE/issue14_records.jsonl" \
  --mode product=strict --mode velocity=open --optional velocity=2 \
  --mode campaigns=strict --mode anyorder=unordered > "$work/funnels.json"

"$PY" "$HERE/dashboard_devserver.py" 0 "$work/funnels.json" "${FS_DASH_HTML:-$SRC/web/dashboard.html}" \
  "$HERE/journeys_fixture.json" > "$work/server.out" 2> "$work/server.err" &
pid=$!
url=
while IFS= read -r line; do
  url=$(echo "$line" | grep -o 'http://[^ ]*' || true)
  break
done < <(tail -n +1 -f --pid="$pid" "$work/server.out")
if [ -z "$url" ]; then
  echo "devserver did not start:" >&2
  cat "$work/server.err" >&2
  exit 2
fi
echo "fixture dashboard at $url"

# Every case runs (a failure names all the broken ones); the exit status is
# 77 if Chromium is missing, else the first failure's.
long=$(printf 'x%.0s' $(seq 129))
status=0
check() { # check QUERY LOOKUP_STATE [SCREENSHOT]
  echo "-- ${1:0:60}"
  local rc=0
  FS_DASH_FIXTURE=1 FS_DASH_LOOKUP_STATE=$2 bash "$HERE/dashboard_check.sh" "$url$1" ${3:+"$3"} || rc=$?
  [ "$rc" -eq 77 ] && exit 77
  [ "$status" -ne 0 ] || status=$rc
}
check "?customer=c1" ok "$SHOT"
check "?customer=a%2Fb+c%26d%3F%C3%A9%25" ok
check "?customer=nobody" empty
check "?customer=$long" error
check "" ""
check "?campaign_rank=linear" ""
if [ "$status" -ne 0 ]; then
  echo "fixture_check: FAILED"
  exit "$status"
fi
echo "fixture_check: ok"
