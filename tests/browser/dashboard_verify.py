#!/usr/bin/python3
"""dashboard_verify.py -- compare the dashboard's rendered DOM with the API.

Usage: dashboard_verify.py DOM.html BEFORE.json AFTER.json [JOURNEYS_BEFORE.json JOURNEYS_AFTER.json]

Called by dashboard_check.sh (which documents what is checked and why);
DOM.html is Chromium's --dump-dom of the page, BEFORE/AFTER the
/api/funnels documents read just before and just after it, and
JOURNEYS_* the answers to the page's lookup ({"status": N, "body": TEXT}),
read the same way, when the page's URL had ?customer=ID. Only Python's
html.parser, no browser automation library.

Environment: FS_DASH_CUSTOMER (the looked-up id), FS_DASH_TZ (the browser's
time zone, for the local times), FS_DASH_FIXTURE=1 (the data does not move:
exact comparisons, and at least one open window must be on show),
FS_DASH_LOOKUP_STATE (ok|empty|error: the lookup must have ended so),
FS_DASH_ALLOW_EMPTY=1 (accept an API without closed windows),
FS_DASH_CAMPAIGN_RANK (the page's ?campaign_rank=: the campaign ranking it
must show; default and unknown values: completed).
Exit 0: match, 1: mismatch (listed), 2: bad input.
"""
import datetime
import decimal
import json
import math
import os
import sys
import zoneinfo
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
        "meta", "source", "track", "wbr"}
# Elements that only appear when API text was parsed as markup (innerHTML).
FORBIDDEN = {"img", "script", "iframe", "object", "embed"}


class Page(HTMLParser):
    """The parts of the page the markup contract (web/dashboard.html) names."""

    def __init__(self):
        super().__init__()
        self.stack = []  # [tag, classes, attrs, text sink or None]
        self.funnels = {}  # name -> {stage index (str): span.count text}
        self.open = {}  # name -> {"start", "end", "counts": {i: text}, "completed"}
        self.problems = []
        self.status = None
        self.lookup = None  # {"state", "customer", "head", "journeys", "none", "error"}
        self.labels = {}  # name -> {"stage"|"ostage": {stage index: span.name text}}
        self.vel = {}  # name -> {stage index: {"text", "vel-p50", "vel-p90"}}
        self.campaigns = {}  # name -> [{"rank", "rows": [{"name", "other", "c-...": text}]}]

    def find(self, cls, attr=None):
        for tag, classes, attrs, _ in reversed(self.stack):
            if cls in classes and (attr is None or attr in attrs):
                return attrs.get(attr, "") if attr else attrs
        return None

    def sink(self, holder, key):
        """Text of the element just opened (descendants included) goes to holder[key]."""
        holder[key] = ""
        self.stack[-1][3] = (holder, key)

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag in FORBIDDEN and (self.find("funnel", "data-funnel") is not None
                                 or self.find("lookup") is not None):
            self.problems.append("a <%s> element inside the page's data: API text parsed "
                                 "as markup (innerHTML?)" % tag)
        if tag in VOID:
            return
        classes = a.get("class", "").split()
        self.stack.append([tag, classes, a, None])
        funnel = self.find("funnel", "data-funnel")
        if tag == "section" and "funnel" in classes and "data-funnel" in a:
            if a["data-funnel"] in self.funnels:
                self.problems.append("two sections for funnel %r" % a["data-funnel"])
            self.funnels[a["data-funnel"]] = {}
        elif "count" in classes:
            stage = self.find("stage", "data-stage")
            if funnel is not None and stage is not None:
                if stage in self.funnels[funnel]:
                    self.problems.append("funnel %r: two counts for stage %s" % (funnel, stage))
                self.sink(self.funnels[funnel], stage)
        elif "open-window" in classes and funnel is not None:
            if funnel in self.open:
                self.problems.append("funnel %r: more than one .open-window" % funnel)
            self.open[funnel] = {"start": a.get("data-window-start"),
                                 "end": a.get("data-window-end"),
                                 "counts": {}, "completed": None}
        elif "ocount" in classes and funnel in self.open:
            stage = self.find("ostage", "data-stage")
            if stage is not None:
                if stage in self.open[funnel]["counts"]:
                    self.problems.append("funnel %r: two open counts for stage %s" % (funnel, stage))
                self.sink(self.open[funnel]["counts"], stage)
        elif "ocompleted" in classes and funnel in self.open:
            self.sink(self.open[funnel], "completed")
        elif funnel is not None and self.issue14_part(funnel, tag, set(classes), a):
            pass
        elif a.get("id") == "status-text":
            self.sink(self.__dict__, "status")
        elif a.get("id") == "lookup-result":
            self.lookup = {"state": a.get("data-state"), "customer": a.get("data-customer"),
                           "journeys": []}
        elif self.lookup is not None and any(s[2].get("id") == "lookup-result" for s in self.stack):
            self.lookup_part(tag, set(classes), a)

    def issue14_part(self, funnel, tag, classes, a):
        """Stage labels, stage velocity and the campaign table; True if the element is one."""
        if "name" in classes:
            for row in ("stage", "ostage"):
                stage = self.find(row, "data-stage")
                if stage is not None:
                    labels = self.labels.setdefault(funnel, {}).setdefault(row, {})
                    if stage in labels:
                        self.problems.append("funnel %r: two labels for %s %s" % (funnel, row, stage))
                    self.sink(labels, stage)
                    return True
        elif "vel" in classes and self.find("stage", "data-stage") is not None:
            stage = self.find("stage", "data-stage")
            vel = self.vel.setdefault(funnel, {})
            if stage in vel:
                self.problems.append("funnel %r: two .vel for stage %s" % (funnel, stage))
            vel[stage] = {}
            self.sink(vel[stage], "text")
            return True
        elif classes & {"vel-p50", "vel-p90"} and self.find("vel") is not None:
            stage = self.find("stage", "data-stage")
            self.sink(self.vel[funnel][stage], min(classes & {"vel-p50", "vel-p90"}))
            return True
        elif "campaigns" in classes:
            self.campaigns.setdefault(funnel, []).append({"rank": a.get("data-rank"), "rows": []})
            return True
        elif tag == "tr" and "campaign" in classes and funnel in self.campaigns:
            self.campaigns[funnel][-1]["rows"].append({"name": a.get("data-campaign"),
                                                       "other": "other" in classes})
            return True
        elif tag == "td" and funnel in self.campaigns and self.campaigns[funnel][-1]["rows"]:
            cell = [c for c in classes if c.startswith("c-") and c != "c-name"]
            if cell:
                self.sink(self.campaigns[funnel][-1]["rows"][-1], cell[0])
                return True
        return False

    def lookup_part(self, tag, classes, a):
        lk = self.lookup
        j = lk["journeys"][-1] if lk["journeys"] else None
        if "journey" in classes:
            lk["journeys"].append({"data-funnel": a.get("data-funnel"),
                                   "data-stage": a.get("data-stage"), "touches": []})
        elif "touch" in classes and j is not None:
            j["touches"].append({})
        elif classes & {"t-channel", "t-count"}:
            if j is not None and j["touches"]:
                self.sink(j["touches"][-1], min(classes & {"t-channel", "t-count"}))
        elif tag == "time" and j is not None and ("j-started" in classes or "j-expires" in classes):
            key = "j-started" if "j-started" in classes else "j-expires"
            j[key + "-datetime"] = a.get("datetime")
            self.sink(j, key)
        elif j is not None and classes & {"j-funnel", "j-stage", "j-first"}:
            self.sink(j, min(classes & {"j-funnel", "j-stage", "j-first"}))
        elif classes & {"lookup-customer", "lookup-none", "lookup-error"}:
            self.sink(lk, min(classes & {"lookup-customer", "lookup-none", "lookup-error"}))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        for entry in self.stack:
            if entry[3] is not None:
                holder, key = entry[3]
                holder[key] += data


def load(path):
    doc = json.load(open(path, encoding="utf-8"))
    return {f["name"]: f for f in doc.get("funnels") or []}


def ordered(stages):
    """The page's texts in stage order, or None if the indices are not 0..n-1."""
    try:
        idx = sorted(int(k) for k in stages)
    except ValueError:
        return None
    if idx != list(range(len(idx))):
        return None
    return [stages[str(i)] for i in idx]


def matches(shown, f):
    """Does the page's closed-window state of one funnel equal one document's?"""
    if f is None:
        return shown is None  # the funnel is not (yet / any more) in that document
    if f.get("latest") is None:
        return shown is not None  # "waiting" section: only its presence
    want = [str(v) for v in f["latest"]["reached"]]
    return shown is not None and ordered(shown) == want


# ---- open windows ----------------------------------------------------------------

def open_list(f):
    return [w for w in (f or {}).get("open") or [] if isinstance(w, dict)]


def newest(f):
    ws = open_list(f)
    return max(ws, key=lambda w: w["window_start"]) if ws else None


def open_exact(name, shown, f):
    """Fixture mode: the page shows exactly the newest open window, or none."""
    want = newest(f)
    if want is None:
        return [] if shown is None else [
            "funnel %r: the page shows an open window, the API has none" % name]
    if shown is None:
        return ["funnel %r: no .open-window on the page, the API has %d open window(s)"
                % (name, len(open_list(f)))]
    got = (shown["start"], shown["end"], ordered(shown["counts"]), shown["completed"])
    exp = (str(want["window_start"]), str(want["window_end"]),
           [str(v) for v in want["reached"]], str(want["completed"]))
    if got != exp:
        return ["funnel %r: open window differs\n      page: start %s end %s reached %s completed %s"
                "\n      api:  start %s end %s reached %s completed %s" % ((name,) + got + exp)]
    return []


def as_ints(texts):
    try:
        return [int(t) for t in texts]
    except (TypeError, ValueError):
        return None


def open_bounded(name, shown, fb, fa):
    """Live mode: the counts of a window only grow, and the newest open window
    only moves forward, so the page's (read between the two API documents)
    must lie between them: before <= page <= after (the after side may be the
    window's closed record)."""
    nb, na = newest(fb), newest(fa)
    if shown is None:
        if nb is not None and na is not None:
            return ["funnel %r: no .open-window, but the API had open windows before and after" % name]
        return []
    counts, done = as_ints(ordered(shown["counts"]) or [None]), as_ints([shown["completed"]])
    start = as_ints([shown["start"]])
    if counts is None or done is None or start is None:
        return ["funnel %r: open window not plain integers: %r" % (name, shown)]
    start, done = start[0], done[0]
    stages = (fb or fa or {}).get("stages") or []
    out = []
    if len(counts) != len(stages):
        out.append("funnel %r: %d open counts for %d stages" % (name, len(counts), len(stages)))
    if nb is None and na is None:
        out.append("funnel %r: the page shows an open window, the API had none" % name)
    if nb is not None and start < nb["window_start"]:
        out.append("funnel %r: page's open window %d is older than the API's newest before (%d)"
                   % (name, start, nb["window_start"]))
    if na is not None and start > na["window_start"]:
        out.append("funnel %r: page's open window %d is newer than the API's newest after (%d)"
                   % (name, start, na["window_start"]))
    low = next((w for w in open_list(fb) if w["window_start"] == start), None)
    high = next((w for w in open_list(fa) if w["window_start"] == start), None)
    if high is None:  # closed by now: its record is the final count
        high = next((r for r in (fa or {}).get("recent") or [] if r.get("window_start") == start), None)
    for label, ref, ok in (("before", low, lambda p, r: p >= r), ("after", high, lambda p, r: p <= r)):
        if ref is None:
            continue
        if "window_end" in ref and str(ref["window_end"]) != shown["end"]:
            out.append("funnel %r: open window end %s, API %s %s" % (name, shown["end"], label, ref["window_end"]))
        if not (all(ok(p, r) for p, r in zip(counts, ref["reached"])) and ok(done, ref["completed"])):
            out.append("funnel %r: open counts %s completed %d not %s the API's %s: %s completed %d"
                       % (name, counts, done, ">=" if label == "before" else "<=", label,
                          ref["reached"], ref["completed"]))
    return out


# ---- issue 14: stage labels, stage velocity, campaigns ----------------------------
# The page's formatting, replicated: JavaScript's toFixed rounds the exact
# binary value half up (Python's "%.1f" rounds half to even), Math.round
# rounds half towards +inf, toLocaleString("en-US") groups by 3 digits.

DASH = "\u2014"
RANKS = ("completed", "first_touch", "last_touch", "linear")
MODELS = ("first_touch", "last_touch", "linear")
TOP_CAMPAIGNS = 10
OTHER = "(other)"


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def to_fixed(x, digits):
    q = decimal.Decimal(1).scaleb(-digits)
    return str(decimal.Decimal(x).quantize(q, rounding=decimal.ROUND_HALF_UP))


def fmt_int(n):
    return "{:,}".format(math.floor(n + 0.5)) if is_num(n) else DASH


def fmt_dur(ms):
    if not is_num(ms):
        return DASH
    for size, unit in ((86400000, "d"), (3600000, "h"), (60000, "min"), (1000, "s")):
        if abs(ms) >= size:
            v = ms / size
            return to_fixed(v, 0 if v >= 100 else 1) + " " + unit
    return "%d ms" % math.floor(ms + 0.5)


def page_stages(f):
    """The stage list the page draws: the latest record's, else the funnel's."""
    latest = f.get("latest") or {}
    return latest.get("stages") or f.get("stages") or []


def label(f, stages, i):
    if f.get("mode") == "unordered":
        return "reached %d of %d" % (i + 1, len(stages))
    opt = f.get("optional") if isinstance(f.get("optional"), list) else []
    return str(stages[i]) + (" (optional)" if i < len(opt) and opt[i] is True else "")


def expected_velocity(latest, n):
    """{stage index: {"text", ["vel-p50", "vel-p90"]}}, or None: no .vel at all."""
    times = latest.get("stage_time_ms")
    if not isinstance(times, list):
        return None
    out = {}
    for i in range(n):
        t = times[i] if i < n - 1 and i < len(times) and isinstance(times[i], dict) else {}
        if i == n - 1:
            out[str(i)] = {"text": ""}
        elif is_num(t.get("count")) and t["count"] > 0:
            p50, p90 = fmt_dur(t.get("p50")), fmt_dur(t.get("p90"))
            out[str(i)] = {"text": "p50 %s \u00b7 p90 %s" % (p50, p90), "vel-p50": p50, "vel-p90": p90}
        else:
            out[str(i)] = {"text": DASH}
    return out


def expected_campaigns(latest, rank):
    """The table's rows in page order, or None: no campaign table."""
    by = latest.get("by_campaign")
    if not isinstance(by, dict):
        return None
    att = latest.get("attribution") if isinstance(latest.get("attribution"), dict) else {}
    credit = att.get("campaign") if isinstance(att.get("campaign"), dict) else {}
    maps = {m: credit[m] if isinstance(credit.get(m), dict) else {} for m in MODELS}
    num = lambda v: v if is_num(v) else 0

    def row_of(k):
        e = by.get(k) if isinstance(by.get(k), dict) else {}
        reached = e.get("reached") if isinstance(e.get("reached"), list) else []
        r = {"name": k, "reached": num(reached[0] if reached else None), "completed": num(e.get("completed"))}
        for m in MODELS:
            r[m] = num(maps[m].get(k))
        return r
    names = set(by) | {k for m in MODELS for k in maps[m]}
    cut = OTHER in names
    names.discard(OTHER)
    # JavaScript compares strings by UTF-16 code units
    rows = sorted((row_of(k) for k in names), key=lambda r: r["name"].encode("utf-16-be"))
    rows.sort(key=lambda r: -r[rank])
    top, below = rows[:TOP_CAMPAIGNS], rows[TOP_CAMPAIGNS:]
    shown = [(r, False) for r in top]
    if cut or below:
        other = row_of(OTHER)
        for r in below:
            for k in ("reached", "completed") + MODELS:
                other[k] += r[k]
        shown.append((other, True))
    out = []
    for r, is_other in shown:
        cells = {"c-" + k: fmt_int(r[k]) for k in ("reached", "completed", "first_touch", "last_touch")}
        cells["c-linear"] = to_fixed(r["linear"], 1)
        out.append(dict(cells, name=r["name"], other=is_other))
    return out


def issue14_problems(name, p, f):
    """What the page shows of the issue 14 views of one funnel, against one document."""
    out = []
    stages = page_stages(f)
    latest = f.get("latest")
    want = {str(i): label(f, stages, i) for i in range(len(stages))} if latest else {}
    got = p.labels.get(name, {}).get("stage", {})
    if got != want:
        out.append("funnel %r: stage labels %s, expected %s" % (name, ordered(got) or got, ordered(want)))
    if newest(f) is not None:
        live = f.get("stages") or stages
        want = {str(i): label(f, live, i) for i in range(len(live))}
        got = p.labels.get(name, {}).get("ostage", {})
        if got != want:
            out.append("funnel %r: live card labels %s, expected %s" % (name, ordered(got) or got, ordered(want)))
    vel = expected_velocity(latest, len(stages)) if latest else None
    got = p.vel.get(name)
    if vel is None and got:
        out.append("funnel %r: the page shows stage velocity, the record has no stage_time_ms" % name)
    elif vel is not None and got != vel:
        out.append("funnel %r: stage velocity differs\n      page: %s\n      api:  %s" % (name, got, vel))
    rank = os.environ.get("FS_DASH_CAMPAIGN_RANK", "completed")
    rank = rank if rank in RANKS else "completed"
    camp = expected_campaigns(latest, rank) if latest else None
    tables = p.campaigns.get(name, [])
    if camp is None and tables:
        out.append("funnel %r: the page shows campaigns, the record has no by_campaign" % name)
    elif camp is not None:
        if len(tables) != 1:
            out.append("funnel %r: %d campaign tables, expected 1" % (name, len(tables)))
        elif tables[0]["rank"] != rank:
            out.append("funnel %r: campaigns ranked by %r, expected %r" % (name, tables[0]["rank"], rank))
        elif tables[0]["rows"] != camp:
            out.append("funnel %r: campaign rows differ\n      page: %s\n      api:  %s"
                       % (name, [r["name"] for r in tables[0]["rows"]], [r["name"] for r in camp])
                       + "".join("\n      row %d: page %s, api %s" % (i, g, w) for i, (g, w)
                                 in enumerate(zip(tables[0]["rows"], camp)) if g != w))
    return out


# ---- customer lookup -----------------------------------------------------------

def utc_iso(ms):
    t = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def local_text(ms, tz):
    """The page's fmtLocal: 'YYYY-MM-DD HH:MM:SS UTC+HH:MM' in the browser's zone."""
    t = (datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
         + datetime.timedelta(milliseconds=ms)).astimezone(zoneinfo.ZoneInfo(tz))
    off = int(t.utcoffset().total_seconds()) // 60
    return "%04d-%02d-%02d %02d:%02d:%02d UTC%s%02d:%02d" % (
        t.year, t.month, t.day, t.hour, t.minute, t.second,
        "-" if off < 0 else "+", abs(off) // 60, abs(off) % 60)


def expected_lookup(answer, customer, tz):
    """What #lookup-result must hold for one API answer ({"status", "body"})."""
    if answer["status"] != 200:
        return {"state": "error", "customer": customer,
                "lookup-error": "HTTP %d: %s" % (answer["status"], answer["body"].strip()[:300])}
    doc = json.loads(answer["body"])
    journeys = []
    for j in doc["journeys"]:
        journeys.append({
            "data-funnel": j["funnel"], "j-funnel": j["funnel"],
            "data-stage": str(j["stage"]), "j-stage": j["stage_name"],
            "j-started": local_text(j["started_at"], tz), "j-started-datetime": utc_iso(j["started_at"]),
            "j-expires": local_text(j["expires_at"], tz), "j-expires-datetime": utc_iso(j["expires_at"]),
            "j-first": j["first_channel"],
            "touches": [{"t-channel": t["channel"], "t-count": str(t["count"])} for t in j["touches"]],
        })
    if not journeys:
        return {"state": "empty", "customer": customer, "lookup-customer": doc["customer_id"],
                "lookup-none": "no active journeys"}
    return {"state": "ok", "customer": customer, "lookup-customer": doc["customer_id"],
            "journeys": journeys}


def shown_lookup(lk):
    return {k: v for k, v in lk.items() if k != "journeys" or v}


def lookup_diff(got, want, where=""):
    """One line per differing field, journey by journey."""
    out = []
    for k in sorted(set(got) | set(want)):
        g, w = got.get(k), want.get(k)
        if g == w:
            continue
        if isinstance(g, list) and isinstance(w, list) and len(g) == len(w):
            for i, (gi, wi) in enumerate(zip(g, w)):
                if isinstance(gi, dict) and isinstance(wi, dict):
                    out += lookup_diff(gi, wi, "%s%s[%d]." % (where, k, i))
                elif gi != wi:
                    out.append("      %s%s[%d]: page %r, api %r" % (where, k, i, gi, wi))
        else:
            out.append("      %s%s: page %r, api %r" % (where, k, g, w))
    return out


def main(argv):
    if len(argv) not in (3, 5):
        sys.stderr.write(__doc__)
        return 2
    fixture = os.environ.get("FS_DASH_FIXTURE") == "1"
    p = Page()
    p.feed(open(argv[0], encoding="utf-8").read())
    p.close()
    raw_before, raw_after = open(argv[1], "rb").read(), open(argv[2], "rb").read()
    before, after = load(argv[1]), load(argv[2])
    failures = list(p.problems)
    if fixture and json.loads(raw_before) != json.loads(raw_after):
        print("FS_DASH_FIXTURE=1 but /api/funnels changed during the check")
        return 2
    if p.status != "live":
        failures.append("status is %r, not 'live' (the page's last poll failed)" % p.status)

    names = list(dict.fromkeys(list(before) + list(after) + list(p.funnels)))
    table = []
    for name in names:
        shown = p.funnels.get(name)
        b, a = before.get(name), after.get(name)
        if fixture:
            failures += open_exact(name, p.open.get(name), b)
        else:
            failures += open_bounded(name, p.open.get(name), b, a)
        if b is not None or a is not None:
            pb = issue14_problems(name, p, b) if b is not None else ["not in the first document"]
            if pb and (a is None or issue14_problems(name, p, a)):
                failures += pb
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
    n_open = sum(1 for n in names if n in p.open)
    if fixture and n_open == 0:
        failures.append("FS_DASH_FIXTURE=1 but no funnel shows an open window: the fixture needs one")

    notes = []
    customer = os.environ.get("FS_DASH_CUSTOMER")
    lk = p.lookup
    if lk is None:
        failures.append("no #lookup-result on the page")
    elif customer is None:
        if lk["state"] != "idle" or lk["journeys"]:
            failures.append("no ?customer= in the URL, yet the lookup is %r" % lk["state"])
    else:
        tz = os.environ.get("FS_DASH_TZ", "UTC")
        jb = json.load(open(argv[3], encoding="utf-8"))
        ja = json.load(open(argv[4], encoding="utf-8"))
        wb, wa = expected_lookup(jb, customer, tz), expected_lookup(ja, customer, tz)
        got = shown_lookup(lk)
        want_state = os.environ.get("FS_DASH_LOOKUP_STATE")
        if lk["state"] in ("idle", "loading"):
            failures.append("lookup of %r did not finish: state %r" % (customer, lk["state"]))
        elif got == wb or got == wa:
            pass
        elif wb != wa and not fixture:
            notes.append("customer %r changed during the check (two different API answers): "
                         "the page's lookup is not compared" % customer)
        else:
            failures.append("lookup of %r differs from /api/journeys:\n%s"
                            % (customer, "\n".join(lookup_diff(got, wb))))
        if want_state and want_state not in (wb["state"], wa["state"]):
            failures.append("FS_DASH_LOOKUP_STATE=%s but the API's answer for %r is %s"
                            % (want_state, customer, wb["state"]))

    for n in notes:
        print("note: " + n)
    if failures:
        print("dashboard check FAILED:")
        for f in failures:
            print("  - " + f)
        for line in table:
            print(line)
        return 1
    checked = sum(1 for n in names if n in p.funnels and
                  (before.get(n) or after.get(n) or {}).get("latest") is not None)
    extra = ""
    if customer is not None:
        extra = ", lookup of %r: %s with %d journey(s)" % (customer, lk["state"], len(lk["journeys"]))
    n_vel = sum(1 for n in names if p.vel.get(n))
    n_camp = sum(len(p.campaigns.get(n, [])) for n in names)
    print("dashboard check ok: %d funnel(s), %d with stage counts matching /api/funnels, "
          "%d with an open window, %d with stage velocity, %d with campaigns%s"
          % (len(names), checked, n_open, n_vel, n_camp, extra))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
