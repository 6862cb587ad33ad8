#!/usr/bin/python3
"""dashboard_fixture.py -- turn `funnelstream replay` output into an
/api/funnels document, so the dashboard can be developed and tested against
realistic data without a running server.

Usage: dashboard_fixture.py [REPLAY.jsonl|-] [--until MS | --all] [--open K]
                            [--no-open FUNNEL]... [--empty FUNNEL]...
                            [--starting FUNNEL]... [--extra RECORDS.jsonl]...
                            [--mode FUNNEL=MODE]... [--optional FUNNEL=I,J]...
                            > fixture.json

Reads JSON lines (the replay output), keeps the "kind":"flow" records and
builds {"watermark", "funnels": [{name, stages, latest, recent}]} the way the
server does: latest = the last flow record of each funnel, recent = its last 60
windows (oldest first) reduced to window_start, window_end, reached, completed.
The watermark is the largest window_end kept (null when there is none).

A replay ends by flushing: the watermark becomes +inf and the expiries of the
open journeys land in windows days later, with reached all 0. A live server
would not be there yet, so by default records are kept only up to the last
window in which some funnel reached anything; `--until MS` keeps the records
with window_end <= MS instead (a snapshot of a live run at that point), and
`--all` keeps everything.
`--empty NAME` adds a funnel whose first window has not closed yet (latest
null, recent []) and that has no "open" field at all (an older server), to
exercise the page's waiting state.

`--open K` turns the last K kept windows of every funnel into its "open"
list (window_start, window_end, entered, reached, completed; oldest first),
the running counts of windows not closed yet: they leave latest/recent and
the watermark (a live server has not closed them). Without --open, funnels
have no "open" field. `--no-open NAME` gives that funnel "open": [] instead.
`--starting NAME` adds a funnel with no closed window but one open window
(made-up counts), the state of every funnel in the first seconds of a run.

`--extra FILE` adds hand-made flow records (JSON lines, e.g.
issue14_records.jsonl: fields the replay's config does not produce) after the
--until cut, so their times do not move it; they are then treated as the
replay's (latest, recent, --open). The server names each funnel's config
`mode` and `optional` stages (one bool per stage); a replay does not know
them, so `--mode NAME=MODE` and `--optional NAME=I,J` (stage indices) set
them; a funnel with neither has no such fields (an older server).
"""
import argparse
import json
import sys

RECENT = 60


def flow_records(lines):
    for line in lines:
        line = line.strip()
        if line:
            rec = json.loads(line)
            if rec.get("kind") == "flow":
                yield rec


def open_entry(r):
    return {"window_start": r["window_start"], "window_end": r["window_end"],
            "entered": r["entered"], "reached": r["reached"], "completed": r["completed"]}


def config_fields(entry, mode, optional):
    """The entry with "mode" and "optional", in the server's field order."""
    n = len(entry["stages"])
    bad = [i for i in optional if not 0 <= i < n]
    if bad:
        sys.exit("--optional %s: no stage %s" % (entry["name"], bad))
    out = {"name": entry["name"], "mode": mode, "stages": entry["stages"],
           "optional": [i in optional for i in range(n)]}
    out.update(entry)
    return out


def pairs(items, flag, convert):
    """["NAME=VALUE", ...] -> {NAME: convert(VALUE)}."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            sys.exit("%s %r: expected FUNNEL=VALUE" % (flag, item))
        out[name] = convert(value)
    return out


def build(records, until=None, empty=(), n_open=None, no_open=(), starting=(), extra=(),
          modes=None, optional=None):
    modes, optional = modes or {}, optional or {}
    if until is None:  # default: stop at the end of the activity (see above)
        active = [r["window_end"] for r in records if any(r["reached"])]
        until = max(active) if active else None
    funnels = {}  # name -> {"name", "stages", "records"}; dicts keep insertion order
    watermark = None
    for rec in records:
        if until is not None and rec["window_end"] > until:
            continue
        f = funnels.setdefault(rec["funnel"], {"name": rec["funnel"],
                                               "stages": rec["stages"],
                                               "records": []})
        f["records"].append(rec)
    for rec in extra:
        f = funnels.setdefault(rec["funnel"], {"name": rec["funnel"],
                                               "stages": rec["stages"],
                                               "records": []})
        f["records"].append(rec)
    out = []
    for f in funnels.values():
        recs = sorted(f["records"], key=lambda r: r["window_start"])
        k = n_open if n_open and f["name"] not in no_open else 0
        closed, still_open = recs[:len(recs) - k], recs[len(recs) - k:]
        for r in closed:
            if watermark is None or r["window_end"] > watermark:
                watermark = r["window_end"]
        entry = {
            "name": f["name"],
            "stages": f["stages"],
            "latest": closed[-1] if closed else None,
            "recent": [{"window_start": r["window_start"],
                        "window_end": r["window_end"],
                        "reached": r["reached"],
                        "completed": r["completed"]} for r in closed[-RECENT:]],
        }
        if f["name"] in modes or f["name"] in optional:
            entry = config_fields(entry, modes.get(f["name"], "open"), optional.get(f["name"], ()))
        if n_open is not None:
            entry["open"] = [open_entry(r) for r in still_open]
        out.append(entry)
    for name in empty:
        out.append({"name": name, "stages": ["first", "second"],
                    "latest": None, "recent": []})
    for name in starting:
        start = (watermark or 0) // 10000 * 10000
        out.append({"name": name, "stages": ["visit", "signup", "paid"], "latest": None,
                    "recent": [], "open": [{"window_start": start, "window_end": start + 10000,
                                            "entered": [5, 1, 0], "reached": [6, 3, 1],
                                            "completed": 1}]})
    return {"watermark": watermark, "funnels": out}


def main(argv):
    ap = argparse.ArgumentParser(description="replay output -> /api/funnels document")
    ap.add_argument("input", nargs="?", default="-", help="replay JSON lines (default stdin)")
    ap.add_argument("--until", type=int, help="keep records with window_end <= MS")
    ap.add_argument("--all", action="store_true", help="keep every record, the flush too")
    ap.add_argument("--empty", action="append", default=[], metavar="FUNNEL",
                    help="add a funnel with no closed window yet")
    ap.add_argument("--open", type=int, dest="n_open", metavar="K",
                    help="the last K windows of each funnel are still open")
    ap.add_argument("--no-open", action="append", default=[], metavar="FUNNEL",
                    help='with --open: this funnel has "open": []')
    ap.add_argument("--starting", action="append", default=[], metavar="FUNNEL",
                    help="add a funnel with no closed window and one open window")
    ap.add_argument("--extra", action="append", default=[], metavar="RECORDS",
                    help="hand-made flow records (JSON lines) to add")
    ap.add_argument("--mode", action="append", default=[], metavar="FUNNEL=MODE",
                    help='the funnel\'s "mode" (open, strict, unordered)')
    ap.add_argument("--optional", action="append", default=[], metavar="FUNNEL=I,J",
                    help="the funnel's optional stages, by index")
    args = ap.parse_args(argv)
    modes = pairs(args.mode, "--mode", str)
    optional = pairs(args.optional, "--optional", lambda v: {int(i) for i in v.split(",") if i})
    extra = []
    for path in args.extra:
        with open(path, encoding="utf-8") as f:
            extra += list(flow_records(f))
    src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with src:
        records = list(flow_records(src))
    until = args.until
    if args.all:
        until = max((r["window_end"] for r in records), default=0)
    doc = build(records, until, args.empty, args.n_open, args.no_open, args.starting, extra,
                modes, optional)
    json.dump(doc, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
