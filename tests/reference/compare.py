#!/usr/bin/env python3
"""Compares the engine's output with the reference's.

    compare.py EXPECTED.jsonl ACTUAL.jsonl [--max-diffs N]

Flow records are keyed (funnel, window_start): keys must be unique in ACTUAL
and the key sets equal. Cohort records are keyed the same way; per key only
the LAST cohort record of ACTUAL counts, and it must be final and equal to the
expected (final) one. Within a record, structure, key order, strings, integers
and nulls must be equal exactly; revenue, conversion and linear attribution
(by channel and by campaign) within 1e-9 relative (1e-9 absolute near 0); the
p50/p90/p99 of ttc_ms and of every stage_time_ms entry within 1 % of the
expected value (exactly when that is 0).

Exit status: 0 equal, 1 different, 2 unreadable input.
"""

import argparse
import json
import math
import sys

REL_TIGHT = 1e-9
REL_QUANTILE = 0.01


def load(path):
    """Returns the list of records of a JSON-lines file; raises ValueError
    naming the line at fault."""
    records = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON: {exc}")
            if not isinstance(rec, dict) or rec.get("kind") not in ("flow", "cohort"):
                raise ValueError(f"{path}:{lineno}: not a flow/cohort record")
            if "funnel" not in rec or "window_start" not in rec:
                raise ValueError(f"{path}:{lineno}: record without funnel/window_start")
            records.append((lineno, rec))
    return records


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


QUANTILES = ("p50", "p90", "p99")


def _tolerance(path):
    """Relative tolerance for the number at path, or None for exact."""
    if path[0] == "revenue" or path[0] == "conversion":
        return REL_TIGHT
    # attribution.linear.<channel> and attribution.campaign.linear.<campaign>
    if len(path) >= 3 and path[0] == "attribution" and path[1] == "linear":
        return REL_TIGHT
    if len(path) >= 4 and path[0] == "attribution" and path[1:3] == ["campaign", "linear"]:
        return REL_TIGHT
    # ttc_ms.pXX and stage_time_ms[s].pXX
    if len(path) == 2 and path[0] == "ttc_ms" and path[1] in QUANTILES:
        return REL_QUANTILE
    if len(path) == 3 and path[0] == "stage_time_ms" and path[2] in QUANTILES:
        return REL_QUANTILE
    return None


def _close(exp, act, rel):
    if rel == REL_QUANTILE:
        if exp == 0:
            return act == 0
        return abs(act - exp) <= rel * abs(exp)
    return abs(act - exp) <= rel * max(1.0, abs(exp))


def diff(exp, act, path, out):
    """Appends (path, expected, actual) for every difference to out."""
    rel = _tolerance(path) if path else None
    if rel is not None and _is_num(exp):
        if not _is_num(act) or not _close(float(exp), float(act), rel):
            out.append((path, exp, act))
        return
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            out.append((path, exp, act))
            return
        if list(exp) != list(act):
            missing = [k for k in exp if k not in act]
            extra = [k for k in act if k not in exp]
            if missing or extra:
                out.append((path + ["<keys>"], f"missing {missing}", f"unexpected {extra}"))
            else:
                out.append((path + ["<key order>"], list(exp), list(act)))
        for k in exp:
            if k in act:
                diff(exp[k], act[k], path + [k], out)
        return
    if isinstance(exp, list):
        if not isinstance(act, list) or len(exp) != len(act):
            out.append((path, exp, act))
            return
        for i, (e, a) in enumerate(zip(exp, act)):
            diff(e, a, path + [i], out)
        return
    if _is_int(exp):
        if not _is_int(act) or exp != act:
            out.append((path, exp, act))
        return
    if isinstance(exp, float):
        if not _is_num(act) or float(act) != exp:
            out.append((path, exp, act))
        return
    if type(exp) is not type(act) or exp != act:
        out.append((path, exp, act))


def _key(rec):
    return (rec["funnel"], rec["window_start"])


def _fmt_path(path):
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p)
                   for i, p in enumerate(path)) or "<record>"


def compare(expected, actual):
    """Returns a list of human-readable problems (empty when equal)."""
    problems = []
    exp_flows, exp_cohorts = {}, {}
    for _, rec in expected:
        table = exp_flows if rec["kind"] == "flow" else exp_cohorts
        if _key(rec) in table:
            problems.append(f"EXPECTED has two {rec['kind']} records for {_key(rec)}")
        table[_key(rec)] = rec
    act_flows, act_cohorts = {}, {}
    for lineno, rec in actual:
        k = _key(rec)
        if rec["kind"] == "flow":
            if k in act_flows:
                problems.append(f"flow {k}: emitted twice (actual lines {act_flows[k][0]} and "
                                f"{lineno})")
            act_flows[k] = (lineno, rec)
        else:
            act_cohorts[k] = (lineno, rec)  # the last one wins
    for kind, exp_t, act_t in (("flow", exp_flows, act_flows), ("cohort", exp_cohorts, act_cohorts)):
        for k in sorted(set(exp_t) - set(act_t), key=repr):
            problems.append(f"{kind} {k}: missing from actual; expected {json.dumps(exp_t[k])}")
        for k in sorted(set(act_t) - set(exp_t), key=repr):
            lineno, rec = act_t[k]
            problems.append(f"{kind} {k}: unexpected (actual line {lineno}): {json.dumps(rec)}")
        for k in sorted(set(exp_t) & set(act_t), key=repr):
            lineno, rec = act_t[k]
            if kind == "cohort" and rec.get("final") is not True:
                problems.append(f"cohort {k}: last record (actual line {lineno}) is not final")
            out = []
            diff(exp_t[k], rec, [], out)
            for path, e, a in out:
                problems.append(f"{kind} {k} (actual line {lineno}) {_fmt_path(path)}: "
                                f"expected {json.dumps(e)}, actual {json.dumps(a)}")
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description="compare engine output with the reference")
    ap.add_argument("expected")
    ap.add_argument("actual")
    ap.add_argument("--max-diffs", type=int, default=25)
    args = ap.parse_args(argv)
    try:
        expected = load(args.expected)
        actual = load(args.actual)
    except (OSError, ValueError) as exc:
        print(f"compare: {exc}", file=sys.stderr)
        return 2
    problems = compare(expected, actual)
    n_flow = sum(1 for _, r in expected if r["kind"] == "flow")
    n_cohort = sum(1 for _, r in expected if r["kind"] == "cohort")
    if problems:
        print(f"compare: {len(problems)} difference(s) between {args.expected} (expected) and "
              f"{args.actual} (actual):")
        for p in problems[:args.max_diffs]:
            print("  " + p)
        if len(problems) > args.max_diffs:
            print(f"  ... and {len(problems) - args.max_diffs} more")
        return 1
    print(f"compare: OK ({n_flow} flow and {n_cohort} cohort records match)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
