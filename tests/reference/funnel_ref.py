#!/usr/bin/env python3
"""Independent reference computation of funnelstream's semantics (SPEC.md).

    funnel_ref.py --config CFG.yaml --input FILE(.jsonl|.msgpack|-) [--format json|msgpack]

prints the output records the engine is expected to produce (one partition =
the whole file) as JSON lines. It is written for obviousness, not speed: every
count is applied to plain Python objects, revenue and linear attribution are
summed exactly (fractions.Fraction), and nothing is approximated.

The rules the SPEC leaves open are implemented as decided for the C engine;
they are the numbered "Semantics" decisions of the repository README, and
tests/reference/README.md maps the letters used below (decisions a-h) to them.
The funnel options of issue 14 (unordered mode, optional stages, breakdowns,
max_breakdown_values and the "(other)" cut, stage_time_ms) follow the issue 14
design note; tests/reference/README.md lists where each rule lives here.

FUNNEL_REF_OMIT_STAGE_TIME=1 (transitional) leaves stage_time_ms out of every
record, for an engine that does not print it yet.

Needs python3-yaml and python3-msgpack (Debian packages).
"""

import argparse
import heapq
import json
import math
import os
import re
import sys
from fractions import Fraction

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# Valid event times and the longest duration (README "Event time range"):
# |ts| <= 2^53 - 1 ms; a ts outside is rejected (bad_ts), a longer duration
# is a config error.
TS_MAX = 2**53 - 1
TS_MIN = -TS_MAX
DURATION_MAX = TS_MAX
NEG_INF = float("-inf")
POS_INF = float("inf")

# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

_DURATION_RE = re.compile(r"^([0-9]+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class ConfigError(Exception):
    pass


def parse_duration(value, field, allow_zero=False):
    """'500ms', '30s', '5m', '2h', '7d' -> milliseconds."""
    if isinstance(value, int) and not isinstance(value, bool) and value == 0 and allow_zero:
        return 0
    if not isinstance(value, str):
        raise ConfigError(f"{field}: duration must be a string with a unit, got {value!r}")
    m = _DURATION_RE.match(value.strip())
    if not m:
        raise ConfigError(f"{field}: bad duration {value!r}")
    ms = int(m.group(1)) * _UNIT_MS[m.group(2)]
    if ms <= 0 and not allow_zero:
        raise ConfigError(f"{field}: duration must be positive")
    if ms > DURATION_MAX:
        raise ConfigError(f"{field}: duration {value!r} is longer than 2^53 - 1 ms")
    return ms


BREAKDOWN_FIELDS = ("channel", "segment", "campaign")  # the fixed output order
MAX_BREAKDOWN_VALUES_LIMIT = 1_000_000
OTHER = "(other)"


def _is_bool(v):
    return isinstance(v, bool)


class Stage:
    def __init__(self, name, events, optional=False):
        self.name = name
        self.events = list(events)
        self.optional = optional


class Funnel:
    """One funnel of the config. mode: "strict", "open" or "unordered".
    stages: list of Stage. breakdowns: the event fields the flow records split
    by (any subset of BREAKDOWN_FIELDS). stage_time: whether the records carry
    stage_time_ms (issue 14 design: our extension, default true)."""

    def __init__(self, name, mode, conversion_window_ms, stages, exclude,
                 breakdowns=("channel", "segment"), max_breakdown_values=1000, stage_time=True):
        if mode not in ("strict", "open", "unordered"):
            raise ConfigError(f"funnel {name}: mode {mode!r}")
        stages = [s if isinstance(s, Stage) else Stage(*s) for s in stages]
        if len(stages) < 2:
            raise ConfigError(f"funnel {name}: a funnel needs at least 2 stages")
        self.name = name
        self.mode = mode
        self.strict = mode == "strict"
        self.unordered = mode == "unordered"
        self.cw = conversion_window_ms
        self.stage_names = [s.name for s in stages]
        self.n = len(stages)
        self.optional = [s.optional for s in stages]
        for k, st in enumerate(stages):
            if not _is_bool(st.optional):
                raise ConfigError(f"funnel {name}: stage {st.name}: optional must be true or false")
            if st.optional and (k == 0 or k == self.n - 1):
                raise ConfigError(f"funnel {name}: stage {st.name}: the first and the last "
                                  f"stage cannot be optional")
            if st.optional and self.unordered:
                raise ConfigError(f"funnel {name}: stage {st.name}: optional stages are for "
                                  f"strict and open funnels only")
        self.stage_of = {}
        for k, st in enumerate(stages):
            for e in st.events:
                if e in self.stage_of:
                    raise ConfigError(f"funnel {name}: event {e!r} is in two stages")
                self.stage_of[e] = k
        self.exclude = set(exclude)
        for e in self.exclude:
            if e in self.stage_of:
                raise ConfigError(f"funnel {name}: exclude type {e!r} is also a stage event")
        breakdowns = list(breakdowns)
        for b in breakdowns:
            if b not in BREAKDOWN_FIELDS:
                raise ConfigError(f"funnel {name}: breakdowns: unknown field {b!r}")
        if len(set(breakdowns)) != len(breakdowns):
            raise ConfigError(f"funnel {name}: breakdowns: a field is listed twice")
        self.breakdowns = set(breakdowns)
        if (not isinstance(max_breakdown_values, int) or _is_bool(max_breakdown_values)
                or not 1 <= max_breakdown_values <= MAX_BREAKDOWN_VALUES_LIMIT):
            raise ConfigError(f"funnel {name}: max_breakdown_values must be an integer in "
                              f"1..{MAX_BREAKDOWN_VALUES_LIMIT}, got {max_breakdown_values!r}")
        self.max_values = max_breakdown_values
        if not _is_bool(stage_time):
            raise ConfigError(f"funnel {name}: stage_time must be true or false")
        self.stage_time = stage_time

    def strict_can_advance(self, m, k):
        """Strict mode: from max_stage m, does stage k > m advance? Only when
        every stage strictly between them is optional (k = m + 1 always)."""
        return all(self.optional[s] for s in range(m + 1, k))


class Config:
    def __init__(self, size, hop, ooo, funnels, input_format="msgpack"):
        if size <= 0 or hop <= 0 or size % hop != 0:
            raise ConfigError("window.hop must divide window.size")
        self.size = size
        self.hop = hop
        self.ooo = ooo
        self.funnels = funnels
        self.input_format = input_format


def config_from_dict(doc):
    """Builds a Config from the parsed YAML document (defaults as in SPEC §6)."""
    if not isinstance(doc, dict):
        raise ConfigError("config must be a mapping")
    win = doc.get("window") or {}
    size = parse_duration(win.get("size", "1m"), "window.size")
    hop = parse_duration(win["hop"], "window.hop") if "hop" in win else size
    ooo = parse_duration(win.get("max_out_of_orderness", 0), "window.max_out_of_orderness",
                         allow_zero=True)
    fmt = (doc.get("input") or {}).get("format", "msgpack")
    funnels = []
    for i, f in enumerate(doc.get("funnels") or []):
        funnels.append(funnel_from_dict(f, f"funnels[{i}]"))
    if not funnels:
        raise ConfigError("funnels: at least one funnel is required")
    return Config(size, hop, ooo, funnels, fmt)


def funnel_from_dict(f, where):
    if not isinstance(f, dict):
        raise ConfigError(f"{where}: must be a mapping")
    mode = f.get("mode", "open")
    if mode not in ("open", "strict", "unordered"):
        raise ConfigError(f"{where}.mode: {mode!r}")
    cw = parse_duration(f.get("conversion_window", "7d"), f"{where}.conversion_window")
    stages = []
    for j, st in enumerate(f.get("stages") or []):
        if not isinstance(st, dict) or "name" not in st or "events" not in st:
            raise ConfigError(f"{where}.stages[{j}]: needs name and events")
        stages.append(Stage(st["name"], st["events"], st.get("optional", False)))
    breakdowns = f.get("breakdowns", ["channel", "segment"])
    if not isinstance(breakdowns, list):
        raise ConfigError(f"{where}.breakdowns: must be a list")
    return Funnel(f["name"], mode, cw, stages, f.get("exclude") or [], breakdowns,
                  f.get("max_breakdown_values", 1000), f.get("stage_time", True))


def load_config(path):
    import yaml

    with open(path, "r", encoding="utf-8") as fh:
        return config_from_dict(yaml.safe_load(fh))


# ---------------------------------------------------------------------------
# Input validation (SPEC §1)
# ---------------------------------------------------------------------------


class Event:
    __slots__ = ("customer_id", "ts", "event", "channel", "segment", "value", "campaign")

    def __init__(self, customer_id, ts, event, channel, segment, value, campaign="unknown"):
        self.customer_id = customer_id
        self.ts = ts
        self.event = event
        self.channel = channel
        self.segment = segment
        self.value = value
        self.campaign = campaign  # absent or null -> "unknown"; "" is a value of its own

    def labels(self):
        """The event's value of every breakdown field."""
        return {"channel": self.channel, "segment": self.segment, "campaign": self.campaign}

    def __repr__(self):
        return (f"Event({self.customer_id!r}, {self.ts}, {self.event!r}, "
                f"{self.channel!r}, {self.segment!r}, {self.value!r}, {self.campaign!r})")


REJECT = object()  # what the input iterators yield for a rejected record


class Rejected(Exception):
    pass


def _utf8_len(s):
    """UTF-8 length of a decoded string; a lone surrogate (a \\ud800 escape in
    JSON, an invalid byte smuggled through surrogateescape in MessagePack) is
    invalid UTF-8 and rejects the record."""
    try:
        return len(s.encode("utf-8"))
    except UnicodeEncodeError:
        raise Rejected("invalid utf-8")


def _string_field(obj, key, lo, hi, required, default):
    v = obj.get(key)
    if v is None:  # absent, or null which counts as absent
        if required:
            raise Rejected(f"missing {key}")
        return default
    if not isinstance(v, str):  # bytes (msgpack bin) is not a string
        raise Rejected(f"{key}: not a string")
    n = _utf8_len(v)
    if not lo <= n <= hi:
        raise Rejected(f"{key}: length {n}")
    return v


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def validate_event(obj):
    """obj: dict of the record's top-level keys (last duplicate already won).
    Returns an Event or raises Rejected."""
    if not isinstance(obj, dict):
        raise Rejected("not a map")
    customer_id = _string_field(obj, "customer_id", 1, 128, True, None)
    event = _string_field(obj, "event", 1, 64, True, None)
    channel = _string_field(obj, "channel", 0, 64, False, "unknown")
    campaign = _string_field(obj, "campaign", 0, 64, False, "unknown")
    segment = _string_field(obj, "segment", 0, 64, False, "unknown")
    ts = obj.get("ts")
    if ts is None:
        raise Rejected("missing ts")
    if not _is_int(ts) or not INT64_MIN <= ts <= INT64_MAX:
        raise Rejected("ts: not an int64")
    if not TS_MIN <= ts <= TS_MAX:
        raise Rejected("ts: outside the valid range")
    value = obj.get("value")
    if value is None:
        value = 0
    elif _is_int(value):
        # the engine holds values as doubles: 999999999999999999 is 1e18 there
        if not abs(float(value)) < 1e18:
            raise Rejected("value: out of range")
    elif isinstance(value, float):
        if not math.isfinite(value) or not abs(value) < 1e18:
            raise Rejected("value: not finite / out of range")
    else:
        raise Rejected("value: not a number")
    return Event(customer_id, ts, event, channel, segment, value, campaign)


MAX_DEPTH = 32  # nested containers, the top-level map included (decision h)


class _Map(list):
    """A MessagePack map as decoded here: its (key, value) pairs."""


def _too_deep(v, depth=1):
    """True when v, a container at nesting level depth, holds containers
    nested beyond MAX_DEPTH (a JSON dict/list, a msgpack _Map/list)."""
    if depth > MAX_DEPTH:
        return True
    if isinstance(v, dict):
        children = v.values()
    elif isinstance(v, _Map):
        children = [x for pair in v for x in pair]
    else:
        children = v
    return any(isinstance(c, (dict, list)) and _too_deep(c, depth + 1) for c in children)


def _json_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def decode_json_line(line):
    """One non-blank JSONL line (bytes) -> Event, or raises Rejected."""
    try:
        text = line.decode("utf-8", errors="strict")
        obj = json.loads(text, parse_constant=_json_constant, object_pairs_hook=dict)
    except Exception as exc:  # bad UTF-8, bad JSON, trailing data, absurd nesting, ...
        raise Rejected(f"bad json: {exc}")
    if isinstance(obj, (dict, list)) and _too_deep(obj):
        raise Rejected("nested too deep")
    if isinstance(obj, dict):
        for k in obj:
            _utf8_len(k)
    return validate_event(obj)


def _is_blank(line):
    return line.strip(b" \t\r") == b""


def iter_jsonl(data):
    """Yields an Event or REJECT for every non-blank line of data (bytes).
    A last line without a newline is a line like any other."""
    for line in data.split(b"\n"):
        if _is_blank(line):
            continue
        try:
            yield decode_json_line(line)
        except Rejected:
            yield REJECT


class MsgpackGarbage(Exception):
    pass


# Fixed total sizes of the MessagePack types without a length field.
_MP_FIXED = {0xC0: 1, 0xC2: 1, 0xC3: 1, 0xCA: 5, 0xCB: 9, 0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9,
             0xD0: 2, 0xD1: 3, 0xD2: 5, 0xD3: 9, 0xD4: 3, 0xD5: 4, 0xD6: 6, 0xD7: 10, 0xD8: 18}
# type byte -> (bytes of the length field, extra fixed bytes after it (ext type))
_MP_SIZED = {0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0), 0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),
             0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0)}
# type byte -> (bytes of the count field, children per count)
_MP_CONTAINER = {0xDC: (2, 1), 0xDD: (4, 1), 0xDE: (2, 2), 0xDF: (4, 2)}


def msgpack_object_end(buf, i):
    """End offset of the MessagePack object starting at buf[i]; None when the
    buffer ends inside it. Raises MsgpackGarbage for 0xc1 (never valid)."""
    n = len(buf)
    pending = 1
    while pending:
        if i >= n:
            return None
        b = buf[i]
        pending -= 1
        if b <= 0x7F or b >= 0xE0:
            i += 1
        elif b <= 0x8F:
            pending += 2 * (b & 0x0F)
            i += 1
        elif b <= 0x9F:
            pending += b & 0x0F
            i += 1
        elif b <= 0xBF:
            i += 1 + (b & 0x1F)
        elif b == 0xC1:
            raise MsgpackGarbage(i)
        elif b in _MP_FIXED:
            i += _MP_FIXED[b]
        elif b in _MP_SIZED:
            lb, extra = _MP_SIZED[b]
            if i + 1 + lb > n:
                return None
            i += 1 + lb + extra + int.from_bytes(buf[i + 1:i + 1 + lb], "big")
        else:
            lb, per = _MP_CONTAINER[b]
            if i + 1 + lb > n:
                return None
            pending += per * int.from_bytes(buf[i + 1:i + 1 + lb], "big")
            i += 1 + lb
    return i if i <= n else None


def decode_msgpack_object(raw):
    """One complete MessagePack object (bytes) -> Event, or raises Rejected."""
    import msgpack

    try:
        # str -> str (invalid UTF-8 kept as lone surrogates, rejected by
        # _utf8_len), bin -> bytes; maps -> lists of pairs so that any key
        # type survives decoding and can be judged here.
        obj = msgpack.unpackb(raw, raw=False, unicode_errors="surrogateescape",
                              strict_map_key=False, object_pairs_hook=_Map)
    except Exception as exc:  # e.g. an ext -1 (timestamp) of invalid length
        raise Rejected(f"bad msgpack: {exc}")
    if not isinstance(obj, list) or not raw or not (0x80 <= raw[0] <= 0x8F or raw[0] in (0xDE, 0xDF)):
        raise Rejected("not a map")
    if _too_deep(obj):
        raise Rejected("nested too deep")
    fields = {}
    for k, v in obj:
        if not isinstance(k, str):
            raise Rejected("map key is not a string")
        _utf8_len(k)  # keys must be valid UTF-8 too
        fields[k] = v  # the last duplicate wins
    return validate_event(fields)


def iter_msgpack(data):
    """Yields an Event or REJECT for every object of a concatenated stream.
    A 0xc1 byte at the top level is one rejection and decoding resumes at the
    next byte; an incomplete object at the end is one rejection. A 0xc1 nested
    inside an object is not supported (the SPEC does not say how far to skip)."""
    i, n = 0, len(data)
    while i < n:
        try:
            end = msgpack_object_end(data, i)
        except MsgpackGarbage as g:
            if g.args[0] != i:
                raise ValueError(f"msgpack: 0xc1 nested in the object at offset {i}: unsupported")
            yield REJECT
            i += 1
            continue
        if end is None:
            yield REJECT
            return
        try:
            yield decode_msgpack_object(data[i:end])
        except Rejected:
            yield REJECT
        i = end


# ---------------------------------------------------------------------------
# Aggregates
# ---------------------------------------------------------------------------

ATTR_FIELDS = ("channel", "campaign")  # the fields attribution credits
ATTR_KINDS = ("first_touch", "last_touch", "linear")


class Agg:
    """The flow counters of one funnel in one window (or one event's delta).
    Every breakdown field and both attribution fields are always counted; the
    record shows only those the funnel's breakdowns ask for."""

    def __init__(self, n):
        self.n = n
        self.entered = [0] * n
        self.reached = [0] * n
        self.skipped = [0] * n
        self.abandoned = [0] * n
        self.excluded = [0] * n
        self.completed = 0
        self.revenue = Fraction(0)
        self.ttc = []
        self.stage_time = [[] for _ in range(n - 1)]  # stage -> times spent there (ms)
        # field -> label -> {"reached": [..], "completed": c}
        self.by = {field: {} for field in BREAKDOWN_FIELDS}
        # field -> kind -> label -> credit (int, or Fraction for linear)
        self.attr = {field: {kind: {} for kind in ATTR_KINDS} for field in ATTR_FIELDS}
        self.late = 0

    def has_counts(self):
        return (any(self.entered) or any(self.reached) or any(self.skipped)
                or any(self.abandoned) or any(self.excluded) or self.completed > 0)

    def split(self, field, label):
        table = self.by[field]
        if label not in table:
            table[label] = {"reached": [0] * self.n, "completed": 0}
        return table[label]

    def reach(self, lo, hi, labels):
        """reached[s] += 1 for lo <= s <= hi, split by every breakdown field
        (labels: field -> the causing event's value)."""
        for s in range(lo, hi + 1):
            self.reached[s] += 1
            for field in BREAKDOWN_FIELDS:
                self.split(field, labels[field])["reached"][s] += 1

    def merge(self, d):
        for s in range(self.n):
            self.entered[s] += d.entered[s]
            self.reached[s] += d.reached[s]
            self.skipped[s] += d.skipped[s]
            self.abandoned[s] += d.abandoned[s]
            self.excluded[s] += d.excluded[s]
        self.completed += d.completed
        self.revenue += d.revenue
        self.ttc.extend(d.ttc)
        for s in range(self.n - 1):
            self.stage_time[s].extend(d.stage_time[s])
        for field in BREAKDOWN_FIELDS:
            for label, v in d.by[field].items():
                t = self.split(field, label)
                for s in range(self.n):
                    t["reached"][s] += v["reached"][s]
                t["completed"] += v["completed"]
        for field in ATTR_FIELDS:
            for kind in ATTR_KINDS:
                mine = self.attr[field][kind]
                for label, v in d.attr[field][kind].items():
                    mine[label] = mine.get(label, 0) + v
        self.late += d.late


class Journey:
    __slots__ = ("funnel", "customer_id", "start_ts", "max_stage", "since", "first",
                 "touches", "seen", "alive")

    def __init__(self, funnel, customer_id, start_ts, stage, labels):
        self.funnel = funnel
        self.customer_id = customer_id
        self.start_ts = start_ts
        self.max_stage = stage
        self.since = start_ts  # when max_stage became its current value (stage_time_ms)
        self.first = labels  # the start event's labels: first touch
        # field -> label -> number of funnel events of the journey (linear)
        self.touches = {field: {} for field in ATTR_FIELDS}
        self.seen = set()  # unordered mode: the stages reached so far
        self.alive = True

    def touch(self, labels):
        for field in ATTR_FIELDS:
            counts = self.touches[field]
            counts[labels[field]] = counts.get(labels[field], 0) + 1


class Cohort:
    def __init__(self, n):
        self.started = 0
        self.reached = [0] * n
        self.completed = 0


def _conversion(reached):
    return [reached[s + 1] / reached[s] if reached[s] else None for s in range(len(reached) - 1)]


def _nearest_rank(sorted_values, pct):
    rank = max(1, -(-pct * len(sorted_values) // 100))  # ceil(pct/100 * count)
    return sorted_values[rank - 1]


def time_summary(times):
    """The {count,min,max,sum,p50,p90,p99} object of ttc_ms and of every
    stage_time_ms entry, computed exactly from the list of times."""
    v = sorted(times)
    if not v:
        return {"count": 0, "min": None, "max": None, "sum": 0,
                "p50": None, "p90": None, "p99": None}
    return {"count": len(v), "min": v[0], "max": v[-1], "sum": sum(v),
            "p50": _nearest_rank(v, 50), "p90": _nearest_rank(v, 90), "p99": _nearest_rank(v, 99)}


def _bytewise(name):
    """Sort key: names compare as their UTF-8 bytes (memcmp, shorter prefix first)."""
    return name.encode("utf-8")


def cut_other(entries, limit, score, combine):
    """The "(other)" cut of one map (issue 14 design). entries: name -> value,
    the map's non-zero entries. When more than `limit` names other than
    "(other)" are present, the `limit` best by score (descending; ties by name,
    bytewise) stay and every other one, with a real "(other)" entry, is summed
    (combine) into one "(other)" entry. Returns the map sorted by name."""
    named = [k for k in entries if k != OTHER]
    if len(named) <= limit:
        kept = dict(entries)
    else:
        ranked = sorted(named, key=lambda k: (-score(entries[k]), _bytewise(k)))
        kept = {k: entries[k] for k in ranked[:limit]}
        rest = ranked[limit:] + ([OTHER] if OTHER in entries else [])
        total = entries[rest[0]]
        for k in rest[1:]:
            total = combine(total, entries[k])
        kept[OTHER] = total
    return {k: kept[k] for k in sorted(kept, key=_bytewise)}


def _add_splits(x, y):
    return {"reached": [a + b for a, b in zip(x["reached"], y["reached"])],
            "completed": x["completed"] + y["completed"]}


def split_map(table, limit):
    """A by_<field> map: entries with some reached or completed, then the cut
    (score: the sum of reached over all stages)."""
    entries = {k: {"reached": list(v["reached"]), "completed": v["completed"]}
               for k, v in table.items() if any(v["reached"]) or v["completed"]}
    return cut_other(entries, limit, lambda v: sum(v["reached"]), _add_splits)


def credit_map(table, limit, as_float=False):
    """An attribution map: entries with credit > 0, then the cut (score: the
    credit, exact), then linear credit printed as a float."""
    entries = {k: v for k, v in table.items() if v}
    cut = cut_other(entries, limit, lambda v: v, lambda x, y: x + y)
    return {k: float(v) for k, v in cut.items()} if as_float else cut


# ---------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------


class Engine:
    """One partition: call event()/reject() in input order, then finish();
    the records are in self.out, in emission order."""

    def __init__(self, cfg, omit_stage_time=False):
        self.cfg = cfg
        # Transitional: an engine without issue 14 prints no stage_time_ms.
        self.omit_stage_time = omit_stage_time
        self.size = cfg.size
        self.hop = cfg.hop
        self.wm = NEG_INF
        self.max_ts = None
        self.held_rejections = 0
        self.journeys = {}  # (funnel index, customer_id) -> Journey
        self.timers = []  # heap of (expiry_time, seq, Journey)
        self.seq = 0
        self.aggs = {}  # (funnel index, window_start) -> Agg
        self.rejected = {}  # window_start -> count
        self.open_windows = []  # heap of window starts holding anything
        self.open_set = set()
        self.cohorts = {}  # (funnel index, window_start) -> Cohort
        self.cohort_heap = []  # (final_at, window_start, funnel index)
        self.out = []

    # -- windows -------------------------------------------------------------

    def windows_of(self, x):
        """Starts of every window [s, s+size) containing x (decision b)."""
        last = (x // self.hop) * self.hop
        return [last - i * self.hop for i in range(self.size // self.hop - 1, -1, -1)]

    def earliest_open(self, wm):
        """Smallest window start s with s + size > wm."""
        return ((wm - self.size) // self.hop + 1) * self.hop

    def touch_window(self, s, closed_wm):
        assert s + self.size > closed_wm, "count into a closed window"
        if s not in self.open_set:
            self.open_set.add(s)
            heapq.heappush(self.open_windows, s)

    def agg(self, fi, s, closed_wm):
        self.touch_window(s, closed_wm)
        key = (fi, s)
        if key not in self.aggs:
            self.aggs[key] = Agg(self.cfg.funnels[fi].n)
        return self.aggs[key]

    def commit(self, fi, t, delta, closed_wm, late_wm):
        """Adds delta (counted at time t) to every window of t that is still
        open; if any is closed, late_events += 1 in the earliest window open
        at late_wm (decision c)."""
        late = False
        for s in self.windows_of(t):
            if s + self.size <= closed_wm:
                late = True
            else:
                self.agg(fi, s, closed_wm).merge(delta)
        if late:
            self.agg(fi, self.earliest_open(late_wm), closed_wm).late += 1

    # -- cohorts -------------------------------------------------------------

    def cohort_update(self, fi, start_ts, update):
        """Applies update to the cohort of every window containing start_ts
        whose final record has not been emitted yet (decision g)."""
        f = self.cfg.funnels[fi]
        for s in self.windows_of(start_ts):
            final_at = s + self.size + f.cw
            if final_at <= self.wm:
                continue  # already final: dropped
            key = (fi, s)
            if key not in self.cohorts:
                self.cohorts[key] = Cohort(f.n)
                heapq.heappush(self.cohort_heap, (final_at, s, fi))
            update(self.cohorts[key])

    # -- watermark -----------------------------------------------------------

    def advance(self, new_wm):
        """Decision a: fire timers, close windows, emit due cohorts."""
        old_wm = self.wm
        # Timers fire before any window closes (SPEC §4), so a late expiry
        # goes to the earliest window open at that moment: the one open
        # before this advance (README decisions 1 and 6).
        late_wm = old_wm
        while self.timers and self.timers[0][0] < new_wm:
            _, _, j = heapq.heappop(self.timers)
            if j.alive:
                self.expire(j, old_wm, late_wm)
        while self.open_windows and self.open_windows[0] + self.size <= new_wm:
            s = heapq.heappop(self.open_windows)
            self.open_set.discard(s)
            self.emit_window(s)
        due = []
        while self.cohort_heap and self.cohort_heap[0][0] <= new_wm:
            _, s, fi = heapq.heappop(self.cohort_heap)
            due.append((s, fi))
        for s, fi in sorted(due):
            self.emit_cohort(fi, s)
        self.wm = new_wm

    def expire(self, j, closed_wm, late_wm):
        f = self.cfg.funnels[j.funnel]
        delta = Agg(f.n)
        delta.abandoned[j.max_stage] += 1
        self.end(j)
        self.commit(j.funnel, j.start_ts + f.cw, delta, closed_wm, late_wm)

    def end(self, j):
        j.alive = False
        del self.journeys[(j.funnel, j.customer_id)]

    # -- input ---------------------------------------------------------------

    def reject(self):
        """Decision d."""
        if self.wm == NEG_INF:
            self.held_rejections += 1
        else:
            s = self.earliest_open(self.wm)
            self.touch_window(s, self.wm)
            self.rejected[s] = self.rejected.get(s, 0) + 1

    def event(self, ev):
        self.max_ts = ev.ts if self.max_ts is None else max(self.max_ts, ev.ts)
        new_wm = self.max_ts - self.cfg.ooo
        if new_wm > self.wm:
            self.advance(new_wm)
        if self.held_rejections:
            held, self.held_rejections = self.held_rejections, 0
            for _ in range(held):
                self.reject()
        for fi in range(len(self.cfg.funnels)):
            self.apply(fi, ev)

    def apply(self, fi, ev):
        """SPEC §2 for one funnel (decision f)."""
        f = self.cfg.funnels[fi]
        t = ev.ts
        j = self.journeys.get((fi, ev.customer_id))
        # 1. expiry, on any event of the customer
        if j is not None and t > j.start_ts + f.cw:
            self.expire(j, self.wm, self.wm)
            j = None
        delta = Agg(f.n)
        # 2. exclusion
        if ev.event in f.exclude:
            if j is not None:
                delta.excluded[j.max_stage] += 1
                self.end(j)
                self.commit(fi, t, delta, self.wm, self.wm)
            return
        # 3. not a stage of this funnel
        k = f.stage_of.get(ev.event)
        if k is None:
            return
        labels = ev.labels()
        if j is None:
            # 4. start
            if f.strict and k != 0:
                return
            j = self.start(fi, f, ev, k, delta)
        else:
            new = self.next_stage(f, j, k)
            if new is None:
                return  # strict mode: a jump over a required stage is ignored
            if new <= j.max_stage:
                j.touch(labels)  # 6. touch: no count
                return
            self.move(fi, f, j, new, t, labels, delta)  # 5. advance
        j.touch(labels)
        # 7. completion
        if j.max_stage == f.n - 1:
            self.complete(fi, f, j, ev, delta)
        self.commit(fi, t, delta, self.wm, self.wm)

    def start(self, fi, f, ev, k, delta):
        """Rule 4: a new journey at stage k (unordered: at progress 0)."""
        t = ev.ts
        entry = 0 if f.unordered else k
        j = Journey(fi, ev.customer_id, t, entry, ev.labels())
        j.seen.add(k)
        self.journeys[(fi, ev.customer_id)] = j
        self.seq += 1
        heapq.heappush(self.timers, (t + f.cw, self.seq, j))
        delta.entered[entry] += 1
        delta.reach(0, entry, ev.labels())
        for s in range(entry):
            if not f.optional[s]:
                delta.skipped[s] += 1

        def started(c):
            c.started += 1
            for s in range(entry + 1):
                c.reached[s] += 1

        self.cohort_update(fi, j.start_ts, started)
        return j

    def next_stage(self, f, j, k):
        """The journey's max_stage after an event of stage k: max_stage itself
        or lower for a touch, None for an event strict mode ignores."""
        if f.unordered:
            if k in j.seen:
                return j.max_stage  # a stage reached before: touch
            j.seen.add(k)
            return len(j.seen) - 1  # the progress
        if k <= j.max_stage:
            return k
        if f.strict and not f.strict_can_advance(j.max_stage, k):
            return None
        return k

    def move(self, fi, f, j, new, t, labels, delta):
        """Rule 5 (and unordered progress): max_stage m -> new > m, at t."""
        m = j.max_stage
        delta.reach(m + 1, new, labels)
        for s in range(m + 1, new):
            if not f.optional[s]:
                delta.skipped[s] += 1
        if f.stage_time:
            delta.stage_time[m].append(max(0, t - j.since))
        j.max_stage = new
        j.since = t

        def advanced(c):
            for s in range(m + 1, new + 1):
                c.reached[s] += 1

        self.cohort_update(fi, j.start_ts, advanced)

    def complete(self, fi, f, j, ev, delta):
        """Rule 7 and the attribution of §4."""
        labels = ev.labels()
        delta.completed += 1
        delta.revenue += Fraction(ev.value)
        delta.ttc.append(max(0, ev.ts - j.start_ts))
        for field in BREAKDOWN_FIELDS:
            delta.split(field, labels[field])["completed"] += 1
        for field in ATTR_FIELDS:
            credit = delta.attr[field]
            credit["first_touch"][j.first[field]] = 1
            credit["last_touch"][labels[field]] = 1
            total = sum(j.touches[field].values())
            for label, cnt in j.touches[field].items():
                credit["linear"][label] = Fraction(cnt, total)

        def completed(c):
            c.completed += 1

        self.cohort_update(fi, j.start_ts, completed)
        self.end(j)

    def finish(self):
        """End of input: the watermark becomes +inf."""
        self.advance(POS_INF)

    # -- output --------------------------------------------------------------

    def emit_window(self, s):
        rejected = self.rejected.pop(s, 0)
        for fi, f in enumerate(self.cfg.funnels):
            a = self.aggs.pop((fi, s), None) or Agg(f.n)
            if a.has_counts() or a.late or rejected:
                self.out.append(self.flow_record(f, s, a, rejected))

    def flow_record(self, f, s, a, rejected):
        """The flow record, fields in the order of the issue 14 design."""
        rec = {
            "kind": "flow", "funnel": f.name, "window_start": s, "window_end": s + self.size,
            "stages": f.stage_names, "entered": a.entered, "reached": a.reached,
            "skipped": a.skipped, "abandoned": a.abandoned, "excluded": a.excluded,
            "completed": a.completed, "revenue": float(a.revenue),
            "conversion": _conversion(a.reached), "ttc_ms": time_summary(a.ttc),
        }
        for field in BREAKDOWN_FIELDS:  # fixed order, whatever the config's order
            if field in f.breakdowns:
                rec["by_" + field] = split_map(a.by[field], f.max_values)

        def credits(field):
            return {kind: credit_map(a.attr[field][kind], f.max_values, kind == "linear")
                    for kind in ATTR_KINDS}

        rec["attribution"] = credits("channel")
        if "campaign" in f.breakdowns:
            rec["attribution"]["campaign"] = credits("campaign")
        if f.stage_time and not self.omit_stage_time:
            rec["stage_time_ms"] = [time_summary(times) for times in a.stage_time]
        rec["late_events"] = a.late
        rec["rejected_events"] = rejected
        return rec

    def emit_cohort(self, fi, s):
        f = self.cfg.funnels[fi]
        c = self.cohorts.pop((fi, s))
        if c.started == 0:
            return
        self.out.append({
            "kind": "cohort", "funnel": f.name, "window_start": s, "window_end": s + self.size,
            "stages": f.stage_names, "started": c.started, "reached": c.reached,
            "completed": c.completed, "conversion": _conversion(c.reached), "final": True,
        })


def run(cfg, items, omit_stage_time=False):
    """items: iterable of Event or REJECT. Returns the output records."""
    eng = Engine(cfg, omit_stage_time)
    for it in items:
        if it is REJECT:
            eng.reject()
        else:
            eng.event(it)
    eng.finish()
    return eng.out


def input_format(path, override, cfg):
    if override:
        return override
    if path.endswith((".jsonl", ".json", ".ndjson")):
        return "json"
    if path.endswith((".msgpack", ".mp", ".mpk")):
        return "msgpack"
    return cfg.input_format


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--input", required=True, help="replay file, or - for stdin")
    ap.add_argument("--format", choices=("json", "msgpack"), help="input format")
    ap.add_argument("--stats", action="store_true", help="print input counts to stderr")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    if args.input == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(args.input, "rb") as fh:
            data = fh.read()
    fmt = input_format(args.input, args.format, cfg)
    items = list(iter_jsonl(data) if fmt == "json" else iter_msgpack(data))
    # FUNNEL_REF_OMIT_STAGE_TIME=1: leave stage_time_ms out of every record,
    # to check an engine that does not print it yet (before issue 14).
    omit = os.environ.get("FUNNEL_REF_OMIT_STAGE_TIME", "") not in ("", "0")
    records = run(cfg, items, omit)
    out = sys.stdout
    for r in records:
        out.write(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
        out.write("\n")
    if args.stats:
        rejected = sum(1 for it in items if it is REJECT)
        print(f"funnel_ref: {len(items) - rejected} events, {rejected} rejected, "
              f"{sum(1 for r in records if r['kind'] == 'flow')} flow records, "
              f"{sum(1 for r in records if r['kind'] == 'cohort')} cohort records",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
