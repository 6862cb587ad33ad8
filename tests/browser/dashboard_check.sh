#!/usr/bin/env bash
# dashboard_check.sh -- does the live dashboard show what the API says?
#
# Usage: dashboard_check.sh URL [SCREENSHOT.png]
#
# Loads URL (the dashboard, web/dashboard.html as served by funnelstream or by
# tests/browser/dashboard_devserver.py) in headless Chromium, lets its polling
# run (--virtual-time-budget), dumps the rendered DOM and checks, with Python's
# html.parser only (tests/browser/dashboard_verify.py), that for every funnel
# of the /api/funnels document
#   - there is a <section class="funnel" data-funnel="NAME">;
#   - when its `latest` is not null, the section has one .stage[data-stage=i]
#     per stage whose span.count text is exactly latest.reached[i];
#   - when its optional `open` list is not empty, the section shows the newest
#     open window as .open-window[data-window-start][data-window-end] with
#     .ostage[data-stage=i] span.ocount = reached[i] and .ocompleted =
#     completed; and no .open-window when `open` is missing or empty;
#   - the issue 14 views: each .stage (and live .ostage) is labelled with
#     its stage name, "(optional)" after a stage the funnel's `optional`
#     marks, or "reached k of n" when the funnel's `mode` is "unordered";
#     when latest.stage_time_ms is there, each stage row shows p50 and p90 of
#     its entry as the page formats durations (a dash for count 0, nothing
#     for the last stage), else no row does; when latest.by_campaign is
#     there, one campaign table lists the top 10 by the ranking
#     ?campaign_rank= asks for (default completions; ties by name) and then
#     "(other)" (the rest plus the record's own "(other)"), with reached,
#     completed and the three credits, else there is no table;
# that the page shows no funnel the API does not have, and that the status
# says "live" (its last poll succeeded).
#
# Customer lookup: when URL has ?customer=ID, the page looks ID up on load
# (see the top comment of web/dashboard.html) and the check reads
# api/journeys/<ID> too: #lookup-result must show that answer -- each
# journey's funnel, stage, start and expiry in local time, first channel and
# touches, in API order; or "no active journeys"; or "HTTP <status>: <body>".
# The browser runs with TZ=$FS_DASH_TZ (default Asia/Kolkata, not UTC, so the
# local-time conversion is really checked). Without ?customer= the lookup
# must stay idle. API text that became markup (an <img>/<script> element
# inside a funnel section or the lookup) fails the check.
#
# The data moves while the browser runs, so the API (URL joined with
# "api/funnels", the same relative URL the page fetches) is read just before
# and just after the dump; each funnel must match one of the two documents
# (the page renders each poll whole, and a poll lands between the two reads).
# Open windows change all the time, so against a live server their counts
# are bounded instead: a window's counts only grow and the newest open window
# only moves forward, so the page's must lie between the two reads' (the later
# one may be the window's closed record in `recent`). A lookup must equal one
# of the two answers; if the customer changed between them and the page shows
# neither, that is noted, not failed.
#
# FS_DASH_FIXTURE=1 (a devserver on a fixture: tests/browser/fixture_check.sh)
# says the data does not move: the two reads must be equal, the open window
# must match exactly and at least one funnel must show one.
# FS_DASH_LOOKUP_STATE=ok|empty|error requires the API's answer to the lookup
# to be of that kind, so a broken fixture cannot make the lookup check vacuous.
# At least one funnel must have a closed window (set FS_DASH_ALLOW_EMPTY=1 to
# accept an API with none). With SCREENSHOT it also saves a 1280x900
# screenshot, whether the check passed or not (a test artifact).
#
# Exit 0: match. 1: mismatch (a table of page vs API is printed). 2: usage or
# the API/browser could not be reached. 77: no Chromium (CHROMIUM= overrides
# the binary). Lives in tests/browser/, not tests/e2e/, because it needs a
# running server: the caller starts one and passes its URL.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 URL [SCREENSHOT.png]" >&2
  exit 2
fi
URL=$1
SHOT=${2:-}
PY=/usr/bin/python3
HERE=$(cd "$(dirname "$0")" && pwd)
export FS_DASH_TZ=${FS_DASH_TZ:-Asia/Kolkata}

CHROME=${CHROMIUM:-}
if [ -z "$CHROME" ]; then
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" > /dev/null 2>&1; then CHROME=$c; break; fi
  done
fi
if [ -z "$CHROME" ]; then
  echo "skipped: no chromium found (apt-get install chromium, or set CHROMIUM=)" >&2
  exit 77
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dashcheck.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
API=$("$PY" -c 'import sys, urllib.parse; print(urllib.parse.urljoin(sys.argv[1], "api/funnels"))' "$URL")

# ?customer=ID decoded as the page's URLSearchParams does, and the journeys
# URL encoded as its encodeURIComponent does (which leaves !*'() alone).
unset FS_DASH_CUSTOMER
JAPI=
if "$PY" - "$URL" "$TMP/customer" << 'EOF'; then
import sys, urllib.parse
q = urllib.parse.parse_qs(urllib.parse.urlsplit(sys.argv[1]).query, keep_blank_values=True)
if not q.get("customer") or q["customer"][0] == "":
    sys.exit(1)
open(sys.argv[2], "w", encoding="utf-8").write(q["customer"][0])
EOF
  FS_DASH_CUSTOMER=$(cat "$TMP/customer")
  export FS_DASH_CUSTOMER
  JAPI=$("$PY" -c 'import sys, urllib.parse as u
print(u.urljoin(sys.argv[1], "api/journeys/" + u.quote(open(sys.argv[2], encoding="utf-8").read(), safe="!*()" + chr(39))))' \
    "$URL" "$TMP/customer")
fi

# ?campaign_rank=KEY: the ranking the campaign tables must show.
FS_DASH_CAMPAIGN_RANK=$("$PY" -c 'import sys, urllib.parse as u
print(u.parse_qs(u.urlsplit(sys.argv[1]).query).get("campaign_rank", [""])[0])' "$URL")
export FS_DASH_CAMPAIGN_RANK

fetch_api() { # fetch_api OUT.json
  "$PY" - "$API" "$1" << 'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        body = r.read()
    json.loads(body)
except Exception as e:  # unreachable, HTTP error or not JSON
    sys.exit("cannot read %s: %s" % (sys.argv[1], e))
open(sys.argv[2], "wb").write(body)
EOF
}

fetch_journeys() { # fetch_journeys OUT.json: {"status": N, "body": TEXT}, HTTP errors included
  [ -n "$JAPI" ] || return 0
  "$PY" - "$JAPI" "$1" << 'EOF'
import json, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        status, body = r.status, r.read()
except urllib.error.HTTPError as e:
    status, body = e.code, e.read()
except Exception as e:  # unreachable
    sys.exit("cannot read %s: %s" % (sys.argv[1], e))
json.dump({"status": status, "body": body.decode("utf-8", "replace")}, open(sys.argv[2], "w"))
EOF
}

# Headless Chromium with a throwaway profile; its chatter goes to a log that
# is shown only when it fails.
browser() {
  TZ=$FS_DASH_TZ HOME=$TMP XDG_CONFIG_HOME=$TMP/xdg XDG_CACHE_HOME=$TMP/xdg \
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu \
    --user-data-dir="$TMP/profile" --no-first-run --no-default-browser-check \
    --disable-extensions --disable-breakpad --hide-scrollbars \
    --virtual-time-budget=8000 "$@" 2>> "$TMP/chrome.log"
}

fetch_api "$TMP/before.json" || exit 2
fetch_journeys "$TMP/jbefore.json" || exit 2
if ! browser --dump-dom "$URL" > "$TMP/dom.html"; then
  echo "chromium failed; its log:" >&2
  tail -n 30 "$TMP/chrome.log" >&2
  exit 2
fi
fetch_api "$TMP/after.json" || exit 2
fetch_journeys "$TMP/jafter.json" || exit 2

rc=0
if [ -n "$JAPI" ]; then
  "$PY" "$HERE/dashboard_verify.py" "$TMP/dom.html" "$TMP/before.json" "$TMP/after.json" \
    "$TMP/jbefore.json" "$TMP/jafter.json" || rc=$?
else
  "$PY" "$HERE/dashboard_verify.py" "$TMP/dom.html" "$TMP/before.json" "$TMP/after.json" || rc=$?
fi

if [ -n "$SHOT" ]; then
  if browser --window-size=1280,900 --screenshot="$SHOT" "$URL" > /dev/null && [ -s "$SHOT" ]; then
    echo "screenshot: $SHOT"
  else
    echo "screenshot failed; chromium log:" >&2
    tail -n 30 "$TMP/chrome.log" >&2
    [ "$rc" -ne 0 ] || rc=2
  fi
fi
exit "$rc"
