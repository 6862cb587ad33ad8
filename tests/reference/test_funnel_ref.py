#!/usr/bin/env python3
"""Hand-worked cases for the reference (python3 -m unittest, from this directory
or with it on sys.path). Every expected number below is worked out from
SPEC.md and decisions a-h of README.md, not from running the code."""

import json
import os
import sys
import unittest
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import compare  # noqa: E402
import funnel_ref as fr  # noqa: E402

MIN = 60_000


def config(funnels, size="1m", hop=None, ooo=None):
    window = {"size": size}
    if hop:
        window["hop"] = hop
    if ooo:
        window["max_out_of_orderness"] = ooo
    return fr.config_from_dict({"window": window, "funnels": funnels})


def funnel(name="f", mode="open", cw="5m", stages=("a", "b", "c"), exclude=(), optional=(),
           **options):
    """A funnel whose stage X is reached by event x; stages named in optional
    are optional; options: breakdowns, max_breakdown_values, stage_time."""
    d = {"name": name, "mode": mode, "conversion_window": cw, "exclude": list(exclude),
         "stages": [{"name": s.upper(), "events": [s]} for s in stages]}
    for st in d["stages"]:
        if st["events"][0] in optional:
            st["optional"] = True
    d.update(options)
    return d


NO_CAMPAIGN = object()  # ev(): leave the campaign key out


def ev(cid, ts, event, channel=None, segment=None, value=None, campaign=NO_CAMPAIGN):
    d = {"customer_id": cid, "ts": ts, "event": event}
    if channel is not None:
        d["channel"] = channel
    if segment is not None:
        d["segment"] = segment
    if value is not None:
        d["value"] = value
    if campaign is not NO_CAMPAIGN:
        d["campaign"] = campaign  # None -> JSON null
    return json.dumps(d)


def run(cfg, lines):
    data = "\n".join(lines).encode("utf-8") + b"\n"
    return fr.run(cfg, fr.iter_jsonl(data))


def flows(records, name="f"):
    return {r["window_start"]: r for r in records if r["kind"] == "flow" and r["funnel"] == name}


def cohorts(records, name="f"):
    return {r["window_start"]: r for r in records if r["kind"] == "cohort" and r["funnel"] == name}


def is_rejected(line):
    try:
        fr.decode_json_line(line)
    except fr.Rejected:
        return True
    return False


class JsonValidation(unittest.TestCase):
    def test_minimal_event_gets_defaults(self):
        e = fr.decode_json_line(b'{"customer_id":"u","ts":5,"event":"x"}')
        self.assertEqual((e.customer_id, e.ts, e.event, e.channel, e.segment, e.value),
                         ("u", 5, "x", "unknown", "unknown", 0))

    def test_null_optional_is_absent_and_empty_string_is_kept(self):
        e = fr.decode_json_line(b'{"customer_id":"u","ts":5,"event":"x","channel":null,'
                                b'"segment":"","value":null,"campaign":null}')
        self.assertEqual((e.channel, e.segment, e.value), ("unknown", "", 0))

    def test_rejections(self):
        base = '"customer_id":"u","event":"x"'
        bad = [
            '{%s,"ts":1.0}' % base,  # float ts, even 1.0
            '{%s,"ts":1e3}' % base,
            '{%s,"ts":true}' % base,
            '{%s,"ts":"5"}' % base,
            '{%s,"ts":9223372036854775808}' % base,
            '{%s,"ts":-9223372036854775809}' % base,
            '{%s,"ts":9223372036854775807}' % base,  # int64, but outside |ts| <= 2^53 - 1
            '{%s,"ts":-9223372036854775808}' % base,
            '{%s,"ts":9007199254740992}' % base,  # 2^53: one past the valid range
            '{%s,"ts":-9007199254740992}' % base,
            '{%s}' % base,  # ts missing
            '{%s,"ts":null}' % base,  # null required = missing
            '{%s,"ts":1,"value":NaN}' % base,
            '{%s,"ts":1,"value":Infinity}' % base,
            '{%s,"ts":1,"value":1e400}' % base,  # parses as inf
            '{%s,"ts":1,"value":1e18}' % base,
            '{%s,"ts":1,"value":-1000000000000000000}' % base,
            '{%s,"ts":1,"value":"3"}' % base,
            '{%s,"ts":1,"value":false}' % base,
            '{%s,"ts":1,"channel":5}' % base,
            '{%s,"ts":1,"campaign":[]}' % base,
            '{%s,"ts":1,"segment":"%s"}' % (base, "s" * 65),
            '{"customer_id":"","ts":1,"event":"x"}',
            '{"customer_id":"%s","ts":1,"event":"x"}' % ("c" * 129),
            '{"customer_id":"u","ts":1,"event":""}',
            '{"customer_id":"u","ts":1,"event":"%s"}' % ("e" * 65),
            '{"customer_id":7,"ts":1,"event":"x"}',
            '{"customer_id":"\\ud800","ts":1,"event":"x"}',  # lone surrogate
            '{"customer_id":"u","ts":1,"event":"x"} x',  # trailing garbage
            '{"customer_id":"u","ts":1,"event":"x"}{}',
            '{"customer_id":"u","ts":1,"event":"x"',  # truncated
            '[{"customer_id":"u","ts":1,"event":"x"}]',  # not an object
            '"u"',
            '{"customer_id":"u","ts":1,"event":"x",}',  # trailing comma
        ]
        for line in bad:
            with self.subTest(line=line):
                self.assertTrue(is_rejected(line.encode("utf-8")))

    def test_accepted_edge_cases(self):
        good = [
            b'{"customer_id":"u","ts":-9007199254740991,"event":"x"}',  # -(2^53 - 1)
            b'{"customer_id":"u","ts":9007199254740991,"event":"x","value":-5}',
            b'{"customer_id":"u","ts":1,"event":"x","value":999999999999999872}',
            b'{"customer_id":"u","ts":1,"event":"x","value":-0.5e3}',
            b'{"customer_id":"u","ts":1,"event":"x","extra":{"a":[1,null,NaN]}}'.replace(
                b"NaN", b"2"),
            b'{"customer_id":"u","ts":1,"event":"x","channel":"' + b"c" * 64 + b'"}',
            b'  {"ts":1, "event":"x", "customer_id":"u"}\r',
            b'{"customer_id":"\\ud83d\\ude00","ts":1,"event":"x"}',  # a valid pair
        ]
        for line in good:
            with self.subTest(line=line):
                self.assertFalse(is_rejected(line))

    def test_lengths_are_utf8_bytes(self):
        ok = '{"customer_id":"%s","ts":1,"event":"x"}' % ("\u00e9" * 64)  # 128 bytes
        self.assertFalse(is_rejected(ok.encode("utf-8")))
        bad = '{"customer_id":"%s","ts":1,"event":"x"}' % ("\u00e9" * 64 + "a")  # 129
        self.assertTrue(is_rejected(bad.encode("utf-8")))
        bad_event = '{"customer_id":"u","ts":1,"event":"%s"}' % ("\u20ac" * 22)  # 66 bytes
        self.assertTrue(is_rejected(bad_event.encode("utf-8")))

    def test_invalid_utf8_bytes_reject(self):
        self.assertTrue(is_rejected(b'{"customer_id":"u\xff","ts":1,"event":"x"}'))
        self.assertTrue(is_rejected(b'{"customer_id":"u\xed\xa0\x80","ts":1,"event":"x"}'))

    def test_last_duplicate_wins(self):
        e = fr.decode_json_line(b'{"customer_id":"u","ts":1.5,"event":"x","ts":7}')
        self.assertEqual(e.ts, 7)
        self.assertTrue(is_rejected(b'{"customer_id":"u","ts":7,"event":"x","ts":1.5}'))

    def test_blank_lines_skipped_and_every_other_line_counts(self):
        data = (b'\n  \t\r\n{"customer_id":"u","ts":1,"event":"x"}\n\nnope\n'
                b'{"customer_id":"u","ts":2,"event":"x"}')  # no final newline
        items = list(fr.iter_jsonl(data))
        self.assertEqual(len(items), 3)
        self.assertIs(items[1], fr.REJECT)
        self.assertEqual(items[2].ts, 2)


class MsgpackValidation(unittest.TestCase):
    def setUp(self):
        import msgpack
        self.pack = lambda o: msgpack.packb(o, use_bin_type=True)

    def items(self, data):
        return list(fr.iter_msgpack(data))

    def test_valid_and_invalid_objects(self):
        ok = {"customer_id": "u", "ts": 3, "event": "x", "value": 2.5}
        stream = b"".join([
            self.pack(ok),
            self.pack({**ok, "customer_id": b"u"}),  # bin is not a string
            self.pack({**ok, "ts": 3.0}),  # float ts
            self.pack({**ok, "ts": 2**63}),  # uint64 beyond int64
            self.pack({**ok, 5: "five"}),  # non-string key
            self.pack([1, 2]),  # not a map
            self.pack({**ok, "channel": None, "unknown": b"\x00"}),  # null = absent
        ])
        items = self.items(stream)
        self.assertEqual(len(items), 7)
        self.assertEqual(items[0].value, 2.5)
        self.assertEqual([it is fr.REJECT for it in items],
                         [False, True, True, True, True, True, False])
        self.assertEqual(items[6].channel, "unknown")

    def test_invalid_utf8_str_rejects(self):
        # fixmap{ "customer_id": str(0xff), "ts": 1, "event": "x" }
        raw = (b"\x83" + b"\xabcustomer_id" + b"\xa1\xff" + b"\xa2ts\x01"
               + b"\xa5event\xa1x")
        self.assertEqual(self.items(raw), [fr.REJECT])

    def test_garbage_byte_resumes_and_truncated_tail_is_one_rejection(self):
        ok = self.pack({"customer_id": "u", "ts": 3, "event": "x"})
        stream = b"\xc1" + ok + b"\xc1\xc1" + ok + ok[:-3]
        items = self.items(stream)
        self.assertEqual([it is fr.REJECT for it in items], [True, False, True, True, False, True])

    def test_last_duplicate_wins(self):
        # fixmap of 4 pairs with "ts" twice: first a float, then an int
        raw = (b"\x84\xabcustomer_id\xa1u\xa2ts\xcb" + b"\x3f\xf0" + b"\x00" * 6
               + b"\xa5event\xa1x\xa2ts\x07")
        (e,) = self.items(raw)
        self.assertEqual(e.ts, 7)


class Journeys(unittest.TestCase):
    def test_strict_vs_open_entry(self):
        lines = [ev("u", 1000, "b", "search"), ev("u", 2000, "c", "search", value=4)]
        strict = run(config([funnel(mode="strict")]), lines)
        self.assertEqual(strict, [])  # nothing starts a strict journey but stage 0
        (r,) = flows(run(config([funnel(mode="open")]), lines)).values()
        self.assertEqual(r["entered"], [0, 1, 0])
        self.assertEqual(r["reached"], [1, 1, 1])
        self.assertEqual(r["skipped"], [1, 0, 0])
        self.assertEqual(r["completed"], 1)
        self.assertEqual(r["revenue"], 4.0)
        self.assertEqual(r["ttc_ms"]["min"], 1000)
        self.assertEqual(r["conversion"], [1.0, 1.0])

    def test_open_skips_stages_strict_ignores_jumps(self):
        stages = ("a", "b", "c", "d")
        lines = [ev("u", 0, "a", "x"), ev("u", 10, "c", "y"), ev("u", 20, "b", "z"),
                 ev("u", 30, "d", "z")]
        o = flows(run(config([funnel(stages=stages)]), lines))[0]
        # a starts; c advances skipping b; b is a touch; d completes
        self.assertEqual(o["reached"], [1, 1, 1, 1])
        self.assertEqual(o["skipped"], [0, 1, 0, 0])
        self.assertEqual(o["by_channel"], {"x": {"reached": [1, 0, 0, 0], "completed": 0},
                                           "y": {"reached": [0, 1, 1, 0], "completed": 0},
                                           "z": {"reached": [0, 0, 0, 1], "completed": 1}})
        self.assertEqual(o["attribution"]["linear"], {"x": 0.25, "y": 0.25, "z": 0.5})
        s = flows(run(config([funnel(stages=stages, mode="strict")]), lines))[0]
        # a starts; c ignored (not a touch); b advances; d ignored: no completion
        self.assertEqual(s["reached"], [1, 1, 0, 0])
        self.assertEqual(s["skipped"], [0, 0, 0, 0])
        self.assertEqual(s["completed"], 0)
        self.assertEqual(s["abandoned"], [0, 0, 0, 0])
        # the journey expires at 0 + 5m, in window [300000, 360000)
        s5 = flows(run(config([funnel(stages=stages, mode="strict")]), lines))[5 * MIN]
        self.assertEqual(s5["abandoned"], [0, 1, 0, 0])
        self.assertEqual(s5["reached"], [0, 0, 0, 0])

    def test_expiry_at_exactly_the_window_still_counts(self):
        cfg = config([funnel(cw="1m")])
        r = run(cfg, [ev("u", 0, "a"), ev("u", MIN, "c", value=2)])
        f = flows(r)
        self.assertEqual(f[0]["entered"], [1, 0, 0])
        self.assertEqual(f[MIN]["completed"], 1)
        self.assertEqual(f[MIN]["ttc_ms"]["max"], MIN)
        self.assertEqual(f[0]["abandoned"], [0, 0, 0])
        self.assertEqual(cohorts(r)[0]["completed"], 1)

    def test_expiry_one_ms_later_abandons_and_starts_anew(self):
        cfg = config([funnel(cw="1m")])
        r = run(cfg, [ev("u", 0, "a"), ev("u", 10, "b"), ev("u", MIN + 1, "c", value=2)])
        f = flows(r)
        self.assertEqual(f[0]["reached"], [1, 1, 0])
        # expiry time 60000 lies in window [60000, 120000)
        self.assertEqual(f[MIN]["abandoned"], [0, 1, 0])
        # the late-by-1ms event starts a new open journey at the last stage:
        # it completes at once, with ttc 0
        self.assertEqual(f[MIN]["entered"], [0, 0, 1])
        self.assertEqual(f[MIN]["completed"], 1)
        self.assertEqual(f[MIN]["ttc_ms"], {"count": 1, "min": 0, "max": 0, "sum": 0,
                                            "p50": 0, "p90": 0, "p99": 0})
        c = cohorts(r)
        self.assertEqual((c[0]["started"], c[0]["reached"], c[0]["completed"]), (1, [1, 1, 0], 0))
        self.assertEqual((c[MIN]["started"], c[MIN]["completed"]), (1, 1))

    def test_timer_fires_only_when_watermark_passes_expiry(self):
        cfg = config([funnel(cw="1m")])
        # v's event puts the watermark at exactly 60000 = u's expiry: no firing,
        # so u's event at 60000 still completes the journey.
        r = run(cfg, [ev("u", 0, "a"), ev("v", MIN, "x"), ev("u", MIN, "c")])
        self.assertEqual(flows(r)[MIN]["completed"], 1)
        self.assertEqual(flows(r)[MIN]["abandoned"], [0, 0, 0])
        # one ms more and the timer fires first: abandoned, then a new journey
        r = run(cfg, [ev("u", 0, "a"), ev("v", MIN + 1, "x"), ev("u", MIN + 1, "c")])
        self.assertEqual(flows(r)[MIN]["abandoned"], [1, 0, 0])
        self.assertEqual(flows(r)[MIN]["entered"], [0, 0, 1])

    def test_expiry_lands_in_its_own_window(self):
        cfg = config([funnel(cw="30s")])
        r = run(cfg, [ev("u", 0, "a"), ev("u", 1000, "b"), ev("v", 10 * MIN, "x")])
        (only,) = flows(r).values()  # v's event counts nothing
        self.assertEqual(only["window_start"], 0)
        self.assertEqual(only["abandoned"], [0, 1, 0])
        self.assertEqual(only["reached"], [1, 1, 0])
        self.assertEqual(only["conversion"], [1.0, 0.0])

    def test_exclusion(self):
        cfg = config([funnel(exclude=["unsub"])])
        r = run(cfg, [
            ev("v", 0, "unsub"),  # no journey: nothing
            ev("u", 0, "a", "s1"), ev("u", 1, "b", "s2"), ev("u", 2, "unsub", "s3"),
            ev("u", 3, "c", "s4", value=1),  # a new journey, entering at the end
        ])
        (f,) = flows(r).values()
        self.assertEqual(f["excluded"], [0, 1, 0])
        self.assertEqual(f["entered"], [1, 0, 1])
        self.assertEqual(f["reached"], [2, 2, 1])
        self.assertEqual(f["completed"], 1)
        self.assertEqual(f["attribution"], {"first_touch": {"s4": 1}, "last_touch": {"s4": 1},
                                            "linear": {"s4": 1.0}})
        self.assertEqual(cohorts(r)[0]["started"], 2)
        self.assertEqual(cohorts(r)[0]["reached"], [2, 2, 1])

    def test_completion_then_new_journey(self):
        cfg = config([funnel()])
        r = run(cfg, [ev("u", 0, "a", "e"), ev("u", 1, "b", "e"), ev("u", 2, "c", "e", value=3),
                      ev("u", 3, "b", "s"), ev("u", 5, "c", "s", value=2.5)])
        (f,) = flows(r).values()
        self.assertEqual(f["entered"], [1, 1, 0])
        self.assertEqual(f["reached"], [2, 2, 2])
        self.assertEqual(f["skipped"], [1, 0, 0])
        self.assertEqual(f["completed"], 2)
        self.assertEqual(f["revenue"], 5.5)
        self.assertEqual(f["ttc_ms"], {"count": 2, "min": 2, "max": 2, "sum": 4,
                                       "p50": 2, "p90": 2, "p99": 2})
        self.assertEqual(f["attribution"]["first_touch"], {"e": 1, "s": 1})
        self.assertEqual(f["abandoned"], [0, 0, 0])

    def test_touch_and_event_outside_funnel(self):
        cfg = config([funnel()])
        r = run(cfg, [ev("u", 0, "a", "c1"), ev("u", 1, "a", "c2"), ev("u", 2, "zzz", "c3"),
                      ev("u", 3, "b", "c2"), ev("u", 4, "a", "c1"), ev("u", 5, "c", "c3")])
        (f,) = flows(r).values()
        # funnel events: a(c1) a(c2) b(c2) a(c1) c(c3): c1 2/5, c2 2/5, c3 1/5
        self.assertEqual(f["attribution"]["linear"], {"c1": 0.4, "c2": 0.4, "c3": 0.2})
        self.assertEqual(f["attribution"]["first_touch"], {"c1": 1})
        self.assertEqual(f["attribution"]["last_touch"], {"c3": 1})
        self.assertEqual(f["entered"], [1, 0, 0])
        self.assertEqual(f["by_channel"]["c1"], {"reached": [1, 0, 0], "completed": 0})

    def test_linear_thirds(self):
        cfg = config([funnel()])
        r = run(cfg, [
            ev("u", 0, "a", "x"), ev("u", 1, "b", "y"), ev("u", 2, "c", "z"),
            ev("v", 0, "a", "x"), ev("v", 1, "a", "x"), ev("v", 2, "c", "y"),
            ev("w", 0, "c", "y"),
        ])
        (f,) = flows(r).values()
        lin = f["attribution"]["linear"]
        # u: x,y,z 1/3 each; v: x 2/3, y 1/3; w: y 1
        self.assertAlmostEqual(lin["x"], 1.0, places=12)
        self.assertAlmostEqual(lin["y"], 5 / 3, places=12)
        self.assertAlmostEqual(lin["z"], 1 / 3, places=12)
        self.assertEqual(f["attribution"]["first_touch"], {"x": 2, "y": 1})
        self.assertEqual(f["attribution"]["last_touch"], {"y": 2, "z": 1})
        self.assertEqual(f["completed"], 3)

    def test_segments_follow_the_causing_event(self):
        cfg = config([funnel()])
        r = run(cfg, [ev("u", 0, "a", "x", "b2c"), ev("u", 1, "c", "y", "b2b")])
        (f,) = flows(r).values()
        self.assertEqual(f["by_segment"], {"b2b": {"reached": [0, 1, 1], "completed": 1},
                                           "b2c": {"reached": [1, 0, 0], "completed": 0}})

    def test_quantiles_nearest_rank(self):
        cfg = config([funnel(stages=("a", "b"))])
        lines = []
        for i in range(1, 11):  # ttc = 10, 20, ..., 100
            lines += [ev(f"u{i}", 0, "a"), ev(f"u{i}", i * 10, "b")]
        (f,) = flows(run(cfg, lines)).values()
        self.assertEqual(f["ttc_ms"], {"count": 10, "min": 10, "max": 100, "sum": 550,
                                       "p50": 50, "p90": 90, "p99": 100})

    def test_funnels_are_independent(self):
        cfg = config([funnel("f", stages=("a", "b")), funnel("g", stages=("b", "c"))])
        r = run(cfg, [ev("u", 0, "a"), ev("u", 1, "b"), ev("u", 2, "c")])
        self.assertEqual(flows(r, "f")[0]["completed"], 1)
        self.assertEqual(flows(r, "g")[0]["completed"], 1)
        self.assertEqual(flows(r, "g")[0]["ttc_ms"]["sum"], 1)


class WindowsAndTime(unittest.TestCase):
    def test_ts_range_boundaries(self):
        # size 1m hop 30s, cw 1m; the same case as the engine's e2e
        # test_ts_range_boundaries, worked out there: T = 2^53 - 1.
        t = 2**53 - 1
        cfg = config([funnel(cw="1m", stages=("a", "b"))], size="1m", hop="30s")
        r = run(cfg, [
            ev("u", -t - 1, "a"),  # rejected (bad_ts), held before the first event
            ev("u", -(2**63) + 5, "a"),  # rejected
            ev("u", -t, "a"),  # windows -9007199254800000, -9007199254770000
            ev("u", -t + 1000, "b"),  # windows -9007199254770000, -9007199254740000
            ev("v", t, "a"),  # windows 9007199254710000, 9007199254740000
            ev("v", t + 1, "b"),  # rejected: lands in the earliest open window
            ev("v", 2**63 - 1, "b"),  # rejected
        ])
        f = flows(r)
        want = {  # window_start: (entered, reached, abandoned, completed, rejected)
            -9007199254800000: ([1, 0], [1, 0], [0, 0], 0, 2),
            -9007199254770000: ([1, 0], [1, 1], [0, 0], 1, 0),
            -9007199254740000: ([0, 0], [0, 1], [0, 0], 1, 0),
            9007199254710000: ([1, 0], [1, 0], [0, 0], 0, 2),
            9007199254740000: ([1, 0], [1, 0], [0, 0], 0, 0),
            9007199254770000: ([0, 0], [0, 0], [1, 0], 0, 0),  # expiry t + 1m
            9007199254800000: ([0, 0], [0, 0], [1, 0], 0, 0),
        }
        self.assertEqual(sorted(f), sorted(want))
        for s, (entered, reached, abandoned, completed, rejected) in want.items():
            with self.subTest(window_start=s):
                self.assertEqual(f[s]["window_end"], s + MIN)
                self.assertEqual((f[s]["entered"], f[s]["reached"], f[s]["abandoned"],
                                  f[s]["completed"], f[s]["rejected_events"]),
                                 (entered, reached, abandoned, completed, rejected))

    def test_durations_are_capped(self):
        self.assertEqual(fr.parse_duration("9007199254740991ms", "x"), 2**53 - 1)
        self.assertEqual(fr.parse_duration("104249991d", "x"), 104249991 * 86_400_000)
        for bad in ("9007199254740992ms", "104249992d", "9223372036854775807ms"):
            with self.subTest(duration=bad):
                with self.assertRaises(fr.ConfigError):
                    fr.parse_duration(bad, "x")

    def test_late_events_with_hopping_windows(self):
        cfg = config([funnel()], size="10s", hop="5s")
        r = run(cfg, [
            ev("u", 20_000, "a"),  # wm 20000: windows [5000,15000) [10000,20000) closed
            ev("v", 12_000, "a"),  # both its windows closed -> late in [15000,25000)
            ev("w", 17_000, "a"),  # [10000,20000) closed, [15000,25000) open
            ev("w", 18_000, "a"),  # a touch counts nothing: never late
        ])
        f = flows(r)
        self.assertNotIn(5_000, f)
        self.assertNotIn(10_000, f)
        self.assertEqual(f[15_000]["late_events"], 2)
        self.assertEqual(f[15_000]["entered"], [2, 0, 0])  # u and w
        self.assertEqual(f[20_000]["late_events"], 0)
        self.assertEqual(f[20_000]["entered"], [1, 0, 0])  # u
        # cohorts: v's start (12000) belongs to windows 5000 and 10000, neither
        # final yet (final at end + 5m), so v still counts there
        c = cohorts(r)
        self.assertEqual({s: c[s]["started"] for s in c},
                         {5_000: 1, 10_000: 2, 15_000: 2, 20_000: 1})

    def test_late_only_window_emits_and_out_of_orderness_absorbs(self):
        cfg = config([funnel()], ooo="5s")
        r = run(cfg, [ev("u", MIN + 4000, "a"), ev("v", MIN - 1, "a")])
        self.assertEqual(flows(r)[0]["entered"], [1, 0, 0])  # wm 59000: not late
        r = run(cfg, [ev("u", MIN + 5000, "a"), ev("v", MIN - 1, "a")])
        f = flows(r)
        self.assertNotIn(0, f)
        self.assertEqual(f[MIN]["late_events"], 1)
        self.assertEqual(f[MIN]["entered"], [1, 0, 0])

    def test_late_journey_expiry_and_final_cohort(self):
        cfg = config([funnel(cw="30s")])
        r = run(cfg, [
            ev("u", 5 * MIN, "a"),  # wm 300000
            ev("v", 0, "a"),  # late start; its cohort window 0 is final (60000+30000)
            ev("u", 5 * MIN + 1, "x"),  # wm advances: v's timer (30000) fires late
        ])
        f = flows(r)
        self.assertEqual(sorted(f), [5 * MIN])
        self.assertEqual(f[5 * MIN]["late_events"], 2)
        self.assertEqual(f[5 * MIN]["abandoned"], [1, 0, 0])  # u, at 330000
        self.assertEqual(f[5 * MIN]["entered"], [1, 0, 0])
        self.assertEqual(sorted(cohorts(r)), [5 * MIN])  # v dropped from final cohort 0

    def test_rejections_every_funnel_and_held(self):
        cfg = config([funnel("f"), funnel("g", stages=("x", "y"))], ooo="30s")
        r = run(cfg, [
            "garbage", '{"ts":1}',  # held: no watermark yet
            ev("u", 2 * MIN + 5000, "a"),  # wm 95000 -> earliest open window is 60000
            "also garbage",  # -> 60000 too
            ev("u", 3 * MIN + 31_000, "a"),  # wm 181000 -> earliest open window 180000
            "[]",
        ])
        f, g = flows(r, "f"), flows(r, "g")
        # (u's journey expires at 125000 + 5m, in window 420000)
        self.assertEqual(sorted(f), [MIN, 2 * MIN, 3 * MIN, 7 * MIN])
        self.assertEqual(sorted(g), [MIN, 3 * MIN])  # g counted nothing at 120000
        self.assertEqual(f[MIN]["rejected_events"], 3)
        self.assertEqual(g[MIN]["rejected_events"], 3)
        self.assertEqual(f[MIN]["entered"], [0, 0, 0])
        self.assertEqual(f[2 * MIN]["rejected_events"], 0)
        self.assertEqual(f[3 * MIN]["rejected_events"], 1)
        self.assertEqual(g[3 * MIN]["reached"], [0, 0])
        self.assertEqual(g[3 * MIN]["conversion"], [None])

    def test_rejections_without_any_event_are_not_output(self):
        self.assertEqual(run(config([funnel()]), ["x", "y"]), [])

    def test_negative_timestamps_floor(self):
        cfg = config([funnel()], size="10s", hop="5s")
        r = run(cfg, [ev("u", -1, "a")])
        # expiry at -1 + 5m = 299999
        self.assertEqual(sorted(flows(r)), [-10_000, -5_000, 290_000, 295_000])
        self.assertEqual(flows(r)[-5_000]["window_end"], 5_000)

    def test_record_shape(self):
        r = run(config([funnel(stages=("a", "b"), cw="30s")]), [ev("u", 0, "a")])
        f, c = r
        self.assertEqual(list(f), ["kind", "funnel", "window_start", "window_end", "stages",
                                   "entered", "reached", "skipped", "abandoned", "excluded",
                                   "completed", "revenue", "conversion", "ttc_ms",
                                   "by_channel", "by_segment", "attribution", "stage_time_ms",
                                   "late_events", "rejected_events"])
        self.assertEqual(f["stage_time_ms"], [{"count": 0, "min": None, "max": None, "sum": 0,
                                               "p50": None, "p90": None, "p99": None}])
        self.assertEqual(list(f["attribution"]), ["first_touch", "last_touch", "linear"])
        self.assertEqual(f["ttc_ms"], {"count": 0, "min": None, "max": None, "sum": 0,
                                       "p50": None, "p90": None, "p99": None})
        self.assertEqual(f["abandoned"], [1, 0])
        self.assertEqual(c, {"kind": "cohort", "funnel": "f", "window_start": 0,
                             "window_end": MIN, "stages": ["A", "B"], "started": 1,
                             "reached": [1, 0], "completed": 0, "conversion": [0.0],
                             "final": True})


EMPTY_TIME = {"count": 0, "min": None, "max": None, "sum": 0, "p50": None, "p90": None, "p99": None}


def one_time(v):
    return {"count": 1, "min": v, "max": v, "sum": v, "p50": v, "p90": v, "p99": v}


class ConfigIssue14(unittest.TestCase):
    def bad(self, **kw):
        with self.assertRaises(fr.ConfigError):
            config([funnel(**kw)])

    def test_defaults(self):
        (f,) = config([funnel()]).funnels
        self.assertEqual((f.mode, f.breakdowns, f.max_values, f.stage_time, f.optional),
                         ("open", {"channel", "segment"}, 1000, True, [False] * 3))

    def test_valid_options(self):
        (f,) = config([funnel(mode="strict", stages=("a", "b", "c", "d"), optional=("b", "c"),
                              breakdowns=["campaign", "channel"], max_breakdown_values=1,
                              stage_time=False)]).funnels
        self.assertEqual(f.optional, [False, True, True, False])
        self.assertEqual((f.breakdowns, f.max_values, f.stage_time),
                         ({"campaign", "channel"}, 1, False))
        (g,) = config([funnel(mode="unordered", breakdowns=[],
                              max_breakdown_values=1000000)]).funnels
        self.assertTrue(g.unordered)
        self.assertEqual(g.breakdowns, set())

    def test_bad_options(self):
        self.bad(mode="any")
        self.bad(optional=("a",))  # first stage
        self.bad(optional=("c",))  # last stage
        self.bad(mode="unordered", optional=("b",))
        self.bad(breakdowns=["channel", "country"])
        self.bad(breakdowns=["segment", "segment"])
        self.bad(breakdowns="channel")
        for v in (0, -1, 1000001, "3", 2.0, True):
            with self.subTest(max_breakdown_values=v):
                self.bad(max_breakdown_values=v)
        self.bad(stage_time="yes")
        doc = funnel()
        doc["stages"][1]["optional"] = "yes"
        with self.assertRaises(fr.ConfigError):
            config([doc])


class Unordered(unittest.TestCase):
    def test_progress_touch_completion(self):
        cfg = config([funnel(mode="unordered")])
        r = run(cfg, [
            ev("u", 0, "b", "x"),  # start: progress 0 (entered[0], not [1])
            ev("u", 1, "b", "y"),  # b reached before: touch
            ev("u", 2, "a", "z"),  # a new stage: progress 1
            ev("u", 3, "a", "z"),  # touch
            ev("u", 10, "c", "w", value=5),  # the third stage: progress 2, completes
        ])
        (f,) = flows(r).values()
        self.assertEqual(f["entered"], [1, 0, 0])
        self.assertEqual(f["reached"], [1, 1, 1])
        self.assertEqual(f["skipped"], [0, 0, 0])
        self.assertEqual((f["completed"], f["revenue"], f["ttc_ms"]["sum"]), (1, 5.0, 10))
        self.assertEqual(f["by_channel"], {"w": {"reached": [0, 0, 1], "completed": 1},
                                           "x": {"reached": [1, 0, 0], "completed": 0},
                                           "z": {"reached": [0, 1, 0], "completed": 0}})
        # every funnel event counts for linear: x, y, z, z, w
        self.assertEqual(f["attribution"], {"first_touch": {"x": 1}, "last_touch": {"w": 1},
                                            "linear": {"w": 0.2, "x": 0.2, "y": 0.2, "z": 0.4}})
        # touches do not restart the clock: 2 - 0 at progress 0, 10 - 2 at 1
        self.assertEqual(f["stage_time_ms"], [one_time(2), one_time(8)])
        self.assertEqual(f["stages"], ["A", "B", "C"])
        c = cohorts(r)[0]
        self.assertEqual((c["started"], c["reached"], c["completed"]), (1, [1, 1, 1], 1))

    def test_no_completion_without_every_stage(self):
        cfg = config([funnel(mode="unordered")])
        r = run(cfg, [ev("u", 0, "c"), ev("u", 1, "c"), ev("u", 2, "b"), ev("u", 3, "c"),
                      ev("u", 4, "b")])
        f = flows(r)
        self.assertEqual(f[0]["reached"], [1, 1, 0])
        self.assertEqual(f[0]["completed"], 0)
        # expiry (at 0 + 5m) counts at max_stage = progress 1
        self.assertEqual(f[5 * MIN]["abandoned"], [0, 1, 0])
        self.assertEqual(f[5 * MIN]["stage_time_ms"], [EMPTY_TIME, EMPTY_TIME])  # expiry: none

    def test_exclusion_at_progress_and_restart(self):
        cfg = config([funnel(mode="unordered", exclude=["q"])])
        r = run(cfg, [ev("u", 0, "c"), ev("u", 1, "a"), ev("u", 2, "q"), ev("u", 3, "a")])
        f = flows(r)[0]
        self.assertEqual(f["excluded"], [0, 1, 0])
        self.assertEqual(f["entered"], [2, 0, 0])  # c at 0, then a anew at 3
        self.assertEqual(f["reached"], [2, 1, 0])
        self.assertEqual(f["stage_time_ms"][0], one_time(1))

    def test_strict_expiry_semantics_apply(self):
        # one ms past the conversion window: expiry, then a new journey
        cfg = config([funnel(mode="unordered", cw="1m", stages=("a", "b"))])
        r = run(cfg, [ev("u", 0, "a"), ev("u", MIN + 1, "b")])
        f = flows(r)
        self.assertEqual(f[MIN]["abandoned"], [1, 0])
        self.assertEqual(f[MIN]["entered"], [1, 0])
        self.assertEqual(f[MIN]["completed"], 0)


class OptionalStages(unittest.TestCase):
    STAGES = ("a", "b", "c", "d")

    def test_strict_advances_over_optional_only(self):
        both = config([funnel(mode="strict", stages=self.STAGES, optional=("b", "c"))])
        (f,) = flows(run(both, [ev("u", 0, "a"), ev("u", 5, "d")])).values()
        self.assertEqual(f["reached"], [1, 1, 1, 1])
        self.assertEqual(f["skipped"], [0, 0, 0, 0])  # optional stages never skipped
        self.assertEqual(f["completed"], 1)
        # only b optional: a -> d jumps over required c and is ignored, a -> c advances
        one = config([funnel(mode="strict", stages=self.STAGES, optional=("b",))])
        r = flows(run(one, [ev("u", 0, "a"), ev("u", 1, "d"), ev("u", 2, "c"),
                            ev("u", 3, "d")]))[0]
        self.assertEqual(r["reached"], [1, 1, 1, 1])
        self.assertEqual(r["skipped"], [0, 0, 0, 0])
        self.assertEqual(r["completed"], 1)
        self.assertEqual(r["ttc_ms"]["sum"], 3)  # completed by the second d
        # from the optional stage itself, over a required one: ignored
        r = flows(run(one, [ev("u", 0, "a"), ev("u", 1, "b"), ev("u", 2, "d")]))[0]
        self.assertEqual((r["reached"], r["completed"]), ([1, 1, 0, 0], 0))

    def test_strict_without_optional_still_ignores_jumps(self):
        cfg = config([funnel(mode="strict", stages=self.STAGES)])
        r = flows(run(cfg, [ev("u", 0, "a"), ev("u", 1, "c")]))[0]
        self.assertEqual((r["reached"], r["skipped"]), ([1, 0, 0, 0], [0, 0, 0, 0]))

    def test_strict_start_needs_stage_0(self):
        cfg = config([funnel(mode="strict", stages=self.STAGES, optional=("b", "c"))])
        self.assertEqual(run(cfg, [ev("u", 0, "b"), ev("u", 1, "d")]), [])

    def test_open_skipped_ignores_optional(self):
        cfg = config([funnel(stages=self.STAGES, optional=("b",))])
        # advance a -> d: b optional (not skipped), c required (skipped)
        (f,) = flows(run(cfg, [ev("u", 0, "a"), ev("u", 1, "d")])).values()
        self.assertEqual(f["reached"], [1, 1, 1, 1])
        self.assertEqual(f["skipped"], [0, 0, 1, 0])
        # an open start at d: stages below reached, b not skipped
        (g,) = flows(run(cfg, [ev("v", 0, "d")])).values()
        self.assertEqual(g["entered"], [0, 0, 0, 1])
        self.assertEqual(g["reached"], [1, 1, 1, 1])
        self.assertEqual(g["skipped"], [1, 0, 1, 0])


class StageTime(unittest.TestCase):
    STAGES = ("a", "b", "c", "d")

    def test_skips_record_only_the_stage_left(self):
        cfg = config([funnel(stages=self.STAGES)])
        (f,) = flows(run(cfg, [ev("u", 0, "a"), ev("u", 10, "c"), ev("u", 25, "d")])).values()
        # a -> c records 10 at stage 0; b was jumped over; c -> d records 15 at stage 2
        self.assertEqual(f["stage_time_ms"], [one_time(10), EMPTY_TIME, one_time(15)])

    def test_mid_funnel_entry_and_entry_at_the_end(self):
        cfg = config([funnel(stages=self.STAGES)])
        (f,) = flows(run(cfg, [ev("u", 0, "c"), ev("u", 7, "d"), ev("v", 3, "d")])).values()
        self.assertEqual(f["completed"], 2)
        # u entered at c: nothing for a and b; v's start completes at once: nothing
        self.assertEqual(f["stage_time_ms"], [EMPTY_TIME, EMPTY_TIME, one_time(7)])

    def test_touches_do_not_restart_and_times_clamp(self):
        cfg = config([funnel(stages=("a", "b", "c"))])
        r = run(cfg, [ev("u", 100, "a"), ev("u", 150, "a"), ev("u", 40, "b"),
                      ev("u", 300, "a"), ev("u", 400, "c")])
        (f,) = flows(r).values()
        # a -> b at 40 is before the clock's 100: clamped to 0; then 400 - 40
        self.assertEqual(f["stage_time_ms"], [one_time(0), one_time(360)])

    def test_recorded_in_the_window_of_the_moving_event(self):
        cfg = config([funnel(stages=("a", "b", "c"))])
        f = flows(run(cfg, [ev("u", 50_000, "a"), ev("u", 70_000, "b"),
                            ev("u", 190_000, "c")]))
        self.assertEqual(f[0]["stage_time_ms"], [EMPTY_TIME, EMPTY_TIME])
        self.assertEqual(f[MIN]["stage_time_ms"], [one_time(20_000), EMPTY_TIME])
        self.assertEqual(f[3 * MIN]["stage_time_ms"], [EMPTY_TIME, one_time(120_000)])

    def test_quantiles_and_late_moves(self):
        cfg = config([funnel(stages=("a", "b"))])
        lines = []
        for i in range(1, 11):  # times at stage 0: 10, 20, ..., 100
            lines += [ev(f"u{i}", 0, "a"), ev(f"u{i}", i * 10, "b")]
        (f,) = flows(run(cfg, lines)).values()
        self.assertEqual(f["stage_time_ms"], [{"count": 10, "min": 10, "max": 100, "sum": 550,
                                               "p50": 50, "p90": 90, "p99": 100}])
        # a move into a closed window is late: not recorded anywhere
        r = run(cfg, [ev("u", 0, "a"), ev("v", 2 * MIN, "a"), ev("u", 10, "b")])
        f = flows(r)
        self.assertEqual(f[2 * MIN]["late_events"], 1)
        self.assertEqual(f[2 * MIN]["stage_time_ms"], [EMPTY_TIME])
        self.assertEqual(f[0]["stage_time_ms"], [EMPTY_TIME])

    def test_stage_time_false_drops_the_field(self):
        cfg = config([funnel(stages=("a", "b"), stage_time=False)])
        (f,) = flows(run(cfg, [ev("u", 0, "a"), ev("u", 5, "b")])).values()
        self.assertNotIn("stage_time_ms", f)
        self.assertEqual(list(f)[-3:], ["attribution", "late_events", "rejected_events"])

    def test_omit_switch(self):
        cfg = config([funnel(stages=("a", "b"))])
        data = (ev("u", 0, "a") + "\n").encode()
        records = fr.run(cfg, fr.iter_jsonl(data), omit_stage_time=True)
        self.assertEqual([r["kind"] for r in records], ["flow", "flow", "cohort"])  # 0, expiry
        for r in records:
            self.assertNotIn("stage_time_ms", r)


class Campaigns(unittest.TestCase):
    def test_by_campaign_and_attribution(self):
        cfg = config([funnel(breakdowns=["campaign", "channel"])])
        r = run(cfg, [
            ev("u", 0, "a", "x", campaign="k1"),
            ev("u", 1, "b", "x"),  # no campaign key: "unknown"
            ev("u", 2, "c", "y", campaign="", value=1),  # "": a value of its own
            ev("v", 0, "a", "x", campaign=None),  # null: "unknown"
        ])
        f = flows(r)[0]  # (v's expiry lands in window 5m)
        keys = list(f)
        self.assertEqual(keys[keys.index("ttc_ms") + 1:],
                         ["by_channel", "by_campaign", "attribution", "stage_time_ms",
                          "late_events", "rejected_events"])
        self.assertEqual(f["by_campaign"], {"": {"reached": [0, 0, 1], "completed": 1},
                                            "k1": {"reached": [1, 0, 0], "completed": 0},
                                            "unknown": {"reached": [1, 1, 0], "completed": 0}})
        a = f["attribution"]
        self.assertEqual(list(a), ["first_touch", "last_touch", "linear", "campaign"])
        self.assertEqual(a["campaign"]["first_touch"], {"k1": 1})
        self.assertEqual(a["campaign"]["last_touch"], {"": 1})
        self.assertEqual(list(a["campaign"]["linear"]), ["", "k1", "unknown"])
        for v in a["campaign"]["linear"].values():
            self.assertAlmostEqual(v, 1 / 3, places=12)
        self.assertEqual(a["first_touch"], {"x": 1})

    def test_breakdown_subsets(self):
        lines = [ev("u", 0, "a", "x", "s", campaign="k"), ev("u", 1, "c", "y", "t")]
        shapes = {
            (): [],
            ("segment",): ["by_segment"],
            ("campaign", "segment"): ["by_segment", "by_campaign"],
            ("segment", "campaign", "channel"): ["by_channel", "by_segment", "by_campaign"],
        }
        for breakdowns, by in shapes.items():
            with self.subTest(breakdowns=breakdowns):
                cfg = config([funnel(breakdowns=list(breakdowns))])
                (f,) = flows(run(cfg, lines)).values()
                self.assertEqual([k for k in f if k.startswith("by_")], by)
                want = ["first_touch", "last_touch", "linear"]
                if "campaign" in breakdowns:
                    want.append("campaign")
                self.assertEqual(list(f["attribution"]), want)
                self.assertEqual(f["attribution"]["first_touch"], {"x": 1})  # always by channel


class OtherCut(unittest.TestCase):
    def starts(self, channel, count, completes=0):
        """count journeys of channel starting at a; the first `completes` of
        them also complete (with b on the same channel)."""
        lines = []
        for i in range(count):
            cid = f"{channel}{i}"
            lines.append(ev(cid, 0, "a", channel))
            if i < completes:
                lines.append(ev(cid, 1, "b", channel))
        return lines

    def by_channel(self, limit, lines):
        cfg = config([funnel(stages=("a", "b"), breakdowns=["channel"],
                             max_breakdown_values=limit)])
        return flows(run(cfg, lines))[0]  # (the expiries land in window 5m)

    def test_ranking_ties_and_sum(self):
        # scores (sum of reached): p 3, q 2 (1 + 1), r 2, s 1
        lines = (self.starts("p", 3) + self.starts("q", 1, completes=1) + self.starts("r", 2)
                 + self.starts("s", 1))
        f = self.by_channel(2, lines)
        # q and r tie at 2: q wins by name
        self.assertEqual(f["by_channel"], {"(other)": {"reached": [3, 0], "completed": 0},
                                           "p": {"reached": [3, 0], "completed": 0},
                                           "q": {"reached": [1, 1], "completed": 1}})
        self.assertEqual(f["reached"], [7, 1])  # totals are never cut
        self.assertEqual(list(self.by_channel(4, lines)["by_channel"]), ["p", "q", "r", "s"])

    def test_shorter_name_first_in_a_tie(self):
        f = self.by_channel(1, self.starts("ab", 1) + self.starts("a", 1))
        self.assertEqual(list(f["by_channel"]), ["(other)", "a"])

    def test_real_other_value(self):
        lines = (self.starts("p", 3) + self.starts("q", 2) + self.starts("r", 1)
                 + self.starts("(other)", 5))
        # V = {p, q, r}: the real "(other)" does not count towards the limit...
        kept = self.by_channel(3, lines)["by_channel"]
        self.assertEqual(kept["(other)"], {"reached": [5, 0], "completed": 0})
        self.assertEqual(list(kept), ["(other)", "p", "q", "r"])
        # ... and joins the sum when a cut happens (ranked above p or not)
        cut = self.by_channel(1, lines)["by_channel"]
        self.assertEqual(cut, {"(other)": {"reached": [8, 0], "completed": 0},
                               "p": {"reached": [3, 0], "completed": 0}})

    def test_attribution_maps_cut_separately(self):
        cfg = config([funnel(stages=("a", "b"), max_breakdown_values=1)])
        r = run(cfg, [ev("u1", 0, "a", "x"), ev("u1", 1, "b", "y"),
                      ev("u2", 0, "a", "x"), ev("u2", 1, "b", "y"),
                      ev("u3", 0, "a", "z"), ev("u3", 1, "b", "z")])
        (f,) = flows(r).values()
        self.assertEqual(f["attribution"], {
            "first_touch": {"(other)": 1, "x": 2},
            "last_touch": {"(other)": 1, "y": 2},
            "linear": {"(other)": 2.0, "x": 1.0},  # x, y, z all 1: x wins the tie
        })
        self.assertEqual(f["by_channel"]["(other)"], {"reached": [1, 3], "completed": 3})
        self.assertEqual(f["by_channel"]["x"], {"reached": [2, 0], "completed": 0})
        self.assertEqual(f["by_segment"], {"unknown": {"reached": [3, 3], "completed": 3}})

    def test_campaign_maps_are_cut_too(self):
        cfg = config([funnel(stages=("a", "b"), breakdowns=["campaign"],
                             max_breakdown_values=1)])
        r = run(cfg, [ev("u", 0, "a", "x", campaign="k1"), ev("u", 1, "b", "x", campaign="k2"),
                      ev("v", 0, "a", "x", campaign="k1")])
        f = flows(r)[0]
        self.assertEqual(f["by_campaign"], {"(other)": {"reached": [0, 1], "completed": 1},
                                            "k1": {"reached": [2, 0], "completed": 0}})
        self.assertEqual(f["attribution"]["campaign"],
                         {"first_touch": {"k1": 1}, "last_touch": {"k2": 1},
                          "linear": {"(other)": 0.5, "k1": 0.5}})
        self.assertEqual(f["attribution"]["linear"], {"x": 1.0})

    def test_linear_ranks_exactly(self):
        # b's credit 1/10 + 2/10 equals a's 3/10 exactly (in floats it would
        # be 0.30000000000000004 and win); the tie goes to a by name
        table = {"a": Fraction(3, 10), "b": Fraction(1, 10) + Fraction(2, 10),
                 "c": Fraction(1, 10)}
        self.assertEqual(fr.credit_map(table, 1, as_float=True), {"(other)": 0.4, "a": 0.3})
        self.assertEqual(fr.credit_map({"a": 0, "b": 2}, 1), {"b": 2})  # zero entries dropped

    def test_linear_accumulates_exactly_across_journeys(self):
        # 10 funnel events per journey: u1 gives b 1/10, u2 gives b 2/10, u3
        # gives a 3/10 (and c the rest). a and b tie at 3/10 exactly; summed
        # in floats b would be 0.30000000000000004 and win the second place.
        lines = []
        for cid, extra, last in (("u1", [], "b"), ("u2", ["b"], "b"), ("u3", ["a", "a"], "a")):
            chans = ["c"] * (9 - len(extra)) + extra
            lines += [ev(cid, i, "a", ch) for i, ch in enumerate(chans)]
            lines.append(ev(cid, 20, "b", last))
        cfg = config([funnel(stages=("a", "b"), max_breakdown_values=2)])
        (f,) = flows(run(cfg, lines)).values()
        lin = f["attribution"]["linear"]
        self.assertEqual(list(lin), ["(other)", "a", "c"])
        self.assertAlmostEqual(lin["(other)"], 0.3, places=12)
        self.assertAlmostEqual(lin["c"], 2.4, places=12)


class RandomConfig(unittest.TestCase):
    def test_every_seed_gives_a_valid_config_and_options_vary(self):
        import yaml
        import random_config

        seen = set()
        for seed in range(300):
            with self.subTest(seed=seed):
                doc = yaml.safe_load(random_config.config_text(seed))
                cfg = fr.config_from_dict(doc)
                self.assertEqual(random_config.config_text(seed),
                                 random_config.config_text(seed))  # deterministic
                seen.add(("hopping", cfg.hop != cfg.size))
                seen.add(("funnels", len(cfg.funnels)))
                for f, fd in zip(cfg.funnels, doc["funnels"]):
                    seen.add(("mode", f.mode))
                    seen.add(("optional", any(f.optional)))
                    seen.add(("campaign", "campaign" in f.breakdowns))
                    seen.add(("no breakdowns", not f.breakdowns))
                    seen.add(("default breakdowns", "breakdowns" not in fd))
                    seen.add(("max", f.max_values))
                    seen.add(("stage_time", f.stage_time))
                    seen.add(("exclude", bool(f.exclude)))
        for want in [("hopping", True), ("hopping", False), ("mode", "strict"), ("mode", "open"),
                     ("mode", "unordered"), ("optional", True), ("campaign", True),
                     ("no breakdowns", True), ("default breakdowns", True), ("max", 1),
                     ("max", 5), ("max", 1000), ("stage_time", True), ("stage_time", False),
                     ("exclude", True), ("funnels", 1), ("funnels", 4)]:
            self.assertIn(want, seen)


def act_of(records):
    """A deep copy, as the engine's output read back would be."""
    return json.loads(json.dumps(records))


class Compare(unittest.TestCase):
    def setUp(self):
        cfg = config([funnel()])
        self.exp = run(cfg, [ev("u", 0, "a", "x"), ev("u", 1, "b", "y"),
                             ev("u", 20, "c", "z", value=1.5), ev("v", 0, "a")])

    def problems(self, actual):
        return compare.compare([(i, r) for i, r in enumerate(self.exp)],
                               [(i, r) for i, r in enumerate(actual)])

    def test_equal_and_tolerances(self):
        self.assertEqual(self.problems(self.exp), [])
        act = json.loads(json.dumps(self.exp))
        act[0]["revenue"] = 1.5 * (1 + 1e-12)
        act[0]["ttc_ms"]["p50"] = 20.1  # within 1 %
        act[0]["attribution"]["linear"]["x"] = 1 / 3 + 1e-13
        self.assertEqual(self.problems(act), [])
        act[0]["ttc_ms"]["p90"] = 20.3
        act[0]["ttc_ms"]["min"] = 20.0  # exact field as a float
        self.assertEqual(len(self.problems(act)), 2)

    def test_stage_time_quantiles_and_campaign_linear_tolerances(self):
        cfg = config([funnel(breakdowns=["campaign"])])
        exp = run(cfg, [ev("u", 0, "a", campaign="k"), ev("u", 100, "b", campaign="m"),
                        ev("u", 300, "c", campaign="m")])
        problems = compare.compare([(0, r) for r in exp], [(0, r) for r in act_of(exp)])
        self.assertEqual(problems, [])
        act = act_of(exp)
        act[0]["stage_time_ms"][1]["p50"] = 201.9  # 200 within 1 %
        act[0]["stage_time_ms"][0]["p99"] = 100.5
        act[0]["attribution"]["campaign"]["linear"]["m"] += 1e-13
        self.assertEqual(compare.compare([(0, r) for r in exp], [(0, r) for r in act]), [])
        act[0]["stage_time_ms"][1]["p90"] = 202.1  # beyond 1 %
        act[0]["stage_time_ms"][0]["sum"] = 101  # sums are exact
        act[0]["attribution"]["campaign"]["first_touch"]["k"] = 1.0  # counts are integers
        self.assertEqual(len(compare.compare([(0, r) for r in exp], [(0, r) for r in act])), 3)

    def test_cohorts_last_record_must_be_final(self):
        act = json.loads(json.dumps(self.exp))
        coh = next(r for r in act if r["kind"] == "cohort")
        early = dict(coh, final=False, started=1)
        self.assertEqual(self.problems([early] + act), [])
        self.assertTrue(self.problems(act + [early]))

    def test_duplicate_missing_and_extra_flows(self):
        act = json.loads(json.dumps(self.exp))
        self.assertTrue(self.problems(act + [act[0]]))
        self.assertTrue(self.problems(act[1:]))
        self.assertTrue(self.problems(act + [dict(act[0], window_start=MIN)]))
        act[0]["by_channel"] = dict(reversed(list(act[0]["by_channel"].items())))
        self.assertTrue(self.problems(act))


if __name__ == "__main__":
    unittest.main()
