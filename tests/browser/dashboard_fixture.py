#!/usr/bin/python3
"""dashboard_fixture.py -- turn `funnelstream replay` output into an
/api/funnels document, so the dashboard can be developed and tested against
realistic data without a running server.

Usage: dashboard_fixture.py [REPLAY.jsonl|-] [--until MS | --all] [--empty FUNNEL]...
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
null, recent []), to exercise the page's waiting state.
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


def build(records, until=None, empty=()):
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
        if watermark is None or rec["window_end"] > watermark:
            watermark = rec["window_end"]
    out = []
    for f in funnels.values():
        recs = sorted(f["records"], key=lambda r: r["window_start"])
        out.append({
            "name": f["name"],
            "stages": f["stages"],
            "latest": recs[-1],
            "recent": [{"window_start": r["window_start"],
                        "window_end": r["window_end"],
                        "reached": r["reached"],
                        "completed": r["completed"]} for r in recs[-RECENT:]],
        })
    for name in empty:
        out.append({"name": name, "stages": ["first", "second"],
                    "latest": None, "recent": []})
    return {"watermark": watermark, "funnels": out}


def main(argv):
    ap = argparse.ArgumentParser(description="replay output -> /api/funnels document")
    ap.add_argument("input", nargs="?", default="-", help="replay JSON lines (default stdin)")
    ap.add_argument("--until", type=int, help="keep records with window_end <= MS")
    ap.add_argument("--all", action="store_true", help="keep every record, the flush too")
    ap.add_argument("--empty", action="append", default=[], metavar="FUNNEL",
                    help="add a funnel with no closed window yet")
    args = ap.parse_args(argv)
    src = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")
    with src:
        records = list(flow_records(src))
    until = args.until
    if args.all:
        until = max((r["window_end"] for r in records), default=0)
    json.dump(build(records, until, args.empty), sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
