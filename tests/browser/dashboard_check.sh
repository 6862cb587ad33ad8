#!/usr/bin/env bash
# dashboard_check.sh -- does the live dashboard show what /api/funnels says?
#
# Usage: dashboard_check.sh URL [SCREENSHOT.png]
#
# Loads URL (the dashboard, web/dashboard.html as served by funnelstream or by
# tests/browser/dashboard_devserver.py) in headless Chromium, lets its polling
# run (--virtual-time-budget), dumps the rendered DOM and checks, with Python's
# html.parser only, that for every funnel of the API document
#   - there is a <section class="funnel" data-funnel="NAME">;
#   - when its `latest` is not null, the section has one .stage[data-stage=i]
#     per stage whose span.count text is exactly latest.reached[i];
# that the page shows no funnel the API does not have, and that the status
# says "live" (its last poll succeeded).
#
# The data moves while the browser runs, so the API (URL joined with
# "api/funnels", the same relative URL the page fetches) is read just before
# and just after the dump; each funnel must match one of the two documents
# (the page renders each poll whole, and a poll lands between the two reads).
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

# Headless Chromium with a throwaway profile; its chatter goes to a log that
# is shown only when it fails.
browser() {
  HOME=$TMP XDG_CONFIG_HOME=$TMP/xdg XDG_CACHE_HOME=$TMP/xdg \
    timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu \
    --user-data-dir="$TMP/profile" --no-first-run --no-default-browser-check \
    --disable-extensions --disable-breakpad --hide-scrollbars \
    --virtual-time-budget=8000 "$@" 2>> "$TMP/chrome.log"
}

fetch_api "$TMP/before.json" || exit 2
if ! browser --dump-dom "$URL" > "$TMP/dom.html"; then
  echo "chromium failed; its log:" >&2
  tail -n 30 "$TMP/chrome.log" >&2
  exit 2
fi
fetch_api "$TMP/after.json" || exit 2

rc=0
"$PY" - "$TMP/dom.html" "$TMP/before.json" "$TMP/after.json" << 'EOF' || rc=$?
import json, os, sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}


class Page(HTMLParser):
    """Collects section.funnel -> {stage index: span.count text}."""

    def __init__(self):
        super().__init__()
        self.stack = []  # (tag, classes, attrs)
        self.funnels = {}  # name -> {index(str): text}
        self.problems = []
        self.status = None

    def find(self, cls, attr):
        for tag, classes, attrs in reversed(self.stack):
            if cls in classes and attr in attrs:
                return attrs[attr]
        return None

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        a = {k: (v or "") for k, v in attrs}
        classes = a.get("class", "").split()
        self.stack.append((tag, classes, a))
        if tag == "section" and "funnel" in classes and "data-funnel" in a:
            if a["data-funnel"] in self.funnels:
                self.problems.append("two sections for funnel %r" % a["data-funnel"])
            self.funnels[a["data-funnel"]] = {}
        elif "count" in classes:
            funnel, stage = self.find("funnel", "data-funnel"), self.find("stage", "data-stage")
            if funnel is not None and stage is not None:
                if stage in self.funnels[funnel]:
                    self.problems.append("funnel %r: two counts for stage %s" % (funnel, stage))
                self.funnels[funnel][stage] = ""
        elif a.get("id") == "status-text":
            self.status = ""

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        if not self.stack:
            return
        tag, classes, a = self.stack[-1]
        if "count" in classes:
            funnel, stage = self.find("funnel", "data-funnel"), self.find("stage", "data-stage")
            if funnel is not None and stage is not None:
                self.funnels[funnel][stage] += data
        elif a.get("id") == "status-text":
            self.status += data


def load(path):
    doc = json.load(open(path, encoding="utf-8"))
    return {f["name"]: f for f in doc.get("funnels") or []}


def page_counts(stages):
    """The page's counts in stage order, or None if the indices are not 0..n-1."""
    try:
        idx = sorted(int(k) for k in stages)
    except ValueError:
        return None
    if idx != list(range(len(idx))):
        return None
    return [stages[str(i)] for i in idx]


def matches(shown, f):
    """Does the page's state of one funnel equal its state in one document?"""
    if f is None:
        return shown is None  # the funnel is not (yet / any more) in that document
    if f.get("latest") is None:
        return shown is not None  # "waiting" section: only its presence
    want = [str(v) for v in f["latest"]["reached"]]
    return shown is not None and page_counts(shown) == want


p = Page()
p.feed(open(sys.argv[1], encoding="utf-8").read())
p.close()
before, after = load(sys.argv[2]), load(sys.argv[3])
names = list(dict.fromkeys(list(before) + list(after) + list(p.funnels)))
failures = list(p.problems)
if p.status != "live":
    failures.append("status is %r, not 'live' (the page's last poll failed)" % p.status)

table = []
for name in names:
    shown = p.funnels.get(name)
    b, a = before.get(name), after.get(name)
    if matches(shown, b) or matches(shown, a):
        continue
    if b is None and a is None:
        failures.append("page shows funnel %r which the API does not have" % name)
        continue
    if shown is None:
        failures.append("funnel %r: no <section class=\"funnel\" data-funnel=...> on the page" % name)
        continue
    failures.append("funnel %r: stage counts differ from both API documents" % name)
    ref = (b or a).get("latest") or (a or {}).get("latest") or {}
    stage_names = ref.get("stages") or (b or a).get("stages") or []
    rb = ((b or {}).get("latest") or {}).get("reached") or []
    ra = ((a or {}).get("latest") or {}).get("reached") or []
    n = max(len(stage_names), len(rb), len(ra), len(shown))
    table.append("  %s:" % name)
    table.append("    %-3s %-16s %12s %12s %12s" % ("#", "stage", "page", "api before", "api after"))
    for i in range(n):
        cell = lambda xs: str(xs[i]) if i < len(xs) else "-"
        pg = shown.get(str(i), "-")
        mark = "" if (pg == cell(rb) or pg == cell(ra)) else "   <-- differs"
        table.append("    %-3d %-16s %12r %12s %12s%s" % (
            i, cell(stage_names)[:16], pg, cell(rb), cell(ra), mark))

closed = sum(1 for d in (before, after) for f in d.values() if f.get("latest") is not None)
if closed == 0 and os.environ.get("FS_DASH_ALLOW_EMPTY") != "1":
    failures.append("the API has no funnel with a closed window yet: nothing to compare "
                    "(FS_DASH_ALLOW_EMPTY=1 accepts that)")

if failures:
    print("dashboard check FAILED:")
    for f in failures:
        print("  - " + f)
    for line in table:
        print(line)
    sys.exit(1)
checked = sum(1 for n in names if n in p.funnels and
              (before.get(n) or after.get(n) or {}).get("latest") is not None)
print("dashboard check ok: %d funnel(s), %d with stage counts matching /api/funnels" % (len(names), checked))
EOF

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
