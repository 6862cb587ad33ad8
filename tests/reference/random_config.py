#!/usr/bin/env python3
"""Writes a random valid funnelstream config for the reference check.

    random_config.py --seed N [--output FILE]

The same seed always gives the same config (random.Random(seed), no other
input). Stages use the event types `funnelstream generate` produces
(src/cli/generate.c: the B2C and B2B paths and the noise types), so random
traffic moves journeys through them. Over many seeds every funnel option of
SPEC §2 and the issue 14 design comes up:

- window: tumbling or hopping (hop = size/2 or size/4), a few sizes and
  max_out_of_orderness values;
- 1-4 funnels, mode strict, open or unordered;
- stages following a generator path (journeys get far) or drawn from all
  event types; optional middle stages (ordered modes only);
- exclude lists (0-2 types no stage uses);
- breakdowns: left out (the default) or any subset in any order, campaign
  included; max_breakdown_values: left out (1000) or 1..5, so that the
  "(other)" cut happens;
- stage_time: left out (true), true or false.
"""

import argparse
import random
import sys

# The generator's event types (src/cli/generate.c), by stage of its paths.
B2C_PATH = [["ad_impression", "social_view"], ["page_view", "content_download"],
            ["product_view", "compare"], ["add_to_cart"], ["checkout_start"], ["purchase"]]
B2B_PATH = [["ad_impression", "webinar_view", "page_view"], ["content_download", "form_submit"],
            ["demo_request", "sales_call"], ["trial_start"], ["contract_signed"]]
NOISE = ["email_open", "login", "newsletter_signup", "support_ticket", "search"]
ABORTS = ["unsubscribe", "disqualified"]  # the generator's exclusion-like events
ALL_EVENTS = sorted({e for st in B2C_PATH + B2B_PATH for e in st} | set(NOISE) | set(ABORTS))

WINDOW_SIZES_S = [30, 60, 120, 300]
OUT_OF_ORDERNESS = ["0s", "2s", "5s", "10s"]
CONVERSION_WINDOWS = ["2m", "10m", "30m", "1h", "1d", "7d"]
FIELDS = ["channel", "segment", "campaign"]


def path_stages(rng):
    """Stages along a generator path: a run of consecutive path stages, each
    with a non-empty subset of its event types."""
    path = rng.choice([B2C_PATH, B2B_PATH])
    n = rng.randint(2, len(path))
    first = rng.randint(0, len(path) - n)
    return [rng.sample(st, rng.randint(1, len(st))) for st in path[first:first + n]]


def drawn_stages(rng):
    """2-5 stages of 1-3 event types drawn from every type, none twice."""
    pool = ALL_EVENTS[:]
    rng.shuffle(pool)
    stages = []
    for _ in range(rng.randint(2, 5)):
        k = rng.randint(1, 3)
        stages.append(pool[:k])
        pool = pool[k:]
    return stages


def funnel_lines(rng, index):
    mode = rng.choice(["strict", "open", "unordered"])
    stages = path_stages(rng) if rng.random() < 0.6 else drawn_stages(rng)
    used = {e for st in stages for e in st}
    free = [e for e in ALL_EVENTS if e not in used]
    exclude = rng.sample(free, rng.randint(0, min(2, len(free))))
    lines = [f"  - name: f{index}_{mode}",
             f"    mode: {mode}",
             f"    conversion_window: {rng.choice(CONVERSION_WINDOWS)}"]
    if exclude:
        lines.append(f"    exclude: [{', '.join(exclude)}]")
    if rng.random() < 0.7:
        fields = rng.sample(FIELDS, rng.randint(0, 3))  # a subset, in random order
        lines.append(f"    breakdowns: [{', '.join(fields)}]")
    if rng.random() < 0.7:
        lines.append(f"    max_breakdown_values: {rng.randint(1, 5)}")
    stage_time = rng.choice([None, True, False])
    if stage_time is not None:
        lines.append(f"    stage_time: {'true' if stage_time else 'false'}")
    lines.append("    stages:")
    for k, events in enumerate(stages):
        middle = 0 < k < len(stages) - 1
        optional = mode != "unordered" and middle and rng.random() < 0.4
        extra = ", optional: true" if optional else ""
        lines.append(f"      - {{name: s{k}, events: [{', '.join(events)}]{extra}}}")
    return lines


def config_text(seed):
    rng = random.Random(seed)
    size = rng.choice(WINDOW_SIZES_S)
    window = f"size: {size}s, max_out_of_orderness: {rng.choice(OUT_OF_ORDERNESS)}"
    hopping = rng.random() < 0.4
    if hopping:
        window += f", hop: {size * 1000 // rng.choice([2, 4])}ms"
    lines = [f"# random_config.py --seed {seed} ({'hopping' if hopping else 'tumbling'})",
             f"window: {{{window}}}",
             "cohort: {emit_interval: 1m}",
             "funnels:"]
    for i in range(rng.randint(1, 4)):
        lines += funnel_lines(rng, i)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description="write a random valid funnelstream config")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--output", help="file to write (default: stdout)")
    args = ap.parse_args(argv)
    text = config_text(args.seed)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
