#!/usr/bin/env python3
"""Hand-worked cases for the reference (python3 -m unittest, from this directory
or with it on sys.path). Every expected number below is worked out from
SPEC.md and decisions a-h of README.md, not from running the code."""

import json
import os
import sys
import unittest

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


def funnel(name="f", mode="open", cw="5m", stages=("a", "b", "c"), exclude=()):
    return {"name": name, "mode": mode, "conversion_window": cw, "exclude": list(exclude),
            "stages": [{"name": s.upper(), "events": [s]} for s in stages]}


def ev(cid, ts, event, channel=None, segment=None, value=None):
    d = {"customer_id": cid, "ts": ts, "event": event}
    if channel is not None:
        d["channel"] = channel
    if segment is not None:
        d["segment"] = segment
    if value is not None:
        d["value"] = value
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
                                   "by_channel", "by_segment", "attribution", "late_events",
                                   "rejected_events"])
        self.assertEqual(f["ttc_ms"], {"count": 0, "min": None, "max": None, "sum": 0,
                                       "p50": None, "p90": None, "p99": None})
        self.assertEqual(f["abandoned"], [1, 0])
        self.assertEqual(c, {"kind": "cohort", "funnel": "f", "window_start": 0,
                             "window_end": MIN, "stages": ["A", "B"], "started": 1,
                             "reached": [1, 0], "completed": 0, "conversion": [0.0],
                             "final": True})


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
