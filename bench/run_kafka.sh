#!/usr/bin/env bash
# run_kafka.sh -- Kafka stage benchmarks (issue 4; figures in bench/RESULTS.md).
#
# Everything runs against ONE embedded broker (`funnelstream dev-broker`,
# librdkafka's mock cluster) started here with configs/default.yaml's topics
# (touchpoints, funnel-metrics, touchpoints-dlq; PARTITIONS each):
#
# 1. Throughput. Preloads `touchpoints` with EVENTS generated events of
#    CUSTOMERS customers (msgpack, keyed by customer), checks that the broker
#    kept all of them (bench_kafka_consume --check: low watermarks 0, high
#    watermarks adding up to EVENTS), then alternates RUNS times: the bare
#    librdkafka consumer (bench/bench_kafka_consume.c), then `funnelstream
#    run --until-eof --threads THREADS` with configs/default.yaml (bootstrap
#    replaced, a fresh group.id). Both report events/s from their first
#    message to the last partition's end; the ratio run/bare is the stage's
#    efficiency (issue 4's target: >= 90 %).
#    Both consumers get fetch.wait.max.ms=FETCH_WAIT_MS (default 10): the end
#    of a partition is only known from an empty fetch, which the broker holds
#    for fetch.wait.max.ms (librdkafka's default 500 ms), a constant that
#    would otherwise dominate a sub-second measurement. FETCH_WAIT_MS=default
#    leaves librdkafka's default.
# 2. Latency. For each rate in RATES, `generate --events 0 --realtime --rate R`
#    produces to a fresh topic (touchpoints-live-R, auto-created by the mock
#    cluster with its default of 4 partitions: dev-broker only creates the
#    config's three topics), while `funnelstream run` (default.yaml's funnels,
#    window {size: 1s, max_out_of_orderness: 200ms, idle_timeout: 5s}) runs for
#    LATENCY_S seconds. Then SIGTERM to the generator, and once it has
#    flushed, to the stage, whose "stage stopped" line gives the number of
#    window closes and the close -> acknowledged latency p50/p99.
#
# The mock cluster keeps at most 5 MiB of record batches per partition and
# silently drops the oldest: ~140k of these events over 3 partitions (see
# RESULTS.md), hence the default EVENTS.
#
# Usage: bench/run_kafka.sh [BUILD_DIR]
#   env: EVENTS (120000), CUSTOMERS (200000), RUNS (3), THREADS (2),
#        PARTITIONS (3), FETCH_WAIT_MS (10), RATES ("5000 20000"),
#        LATENCY_S (60), SKIP_LATENCY=1, SKIP_THROUGHPUT=1,
#        PERF=FILE (one more stage run under `perf record -g -o FILE`),
#        KEEP=1 (keep the logs)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/funnelstream
bare=$build/bench/bench_kafka_consume
events=${EVENTS:-120000}
customers=${CUSTOMERS:-200000}
runs=${RUNS:-3}
threads=${THREADS:-2}
partitions=${PARTITIONS:-3}
fetch_wait=${FETCH_WAIT_MS:-10}
rates=${RATES:-5000 20000}
latency_s=${LATENCY_S:-60}
py=/usr/bin/python3
for f in "$bin" "$bare"; do
  [ -x "$f" ] || { echo "run_kafka.sh: $f missing: build it first" >&2; exit 2; }
done

work=$(mktemp -d /tmp/fs-kafka-bench.XXXXXX)
kids=()
cleanup() {
  local rc=$? i
  for ((i = ${#kids[@]} - 1; i >= 0; i--)); do # newest first, the broker last
    if kill -0 "${kids[i]}" 2>/dev/null; then
      kill -TERM "${kids[i]}" 2>/dev/null || true
      wait "${kids[i]}" 2>/dev/null || true
    fi
  done
  if [ "${KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then
    echo "logs: $work" >&2
  else
    rm -rf "$work"
  fi
}
# forget PID: no longer ours to clean up (it has been waited for).
forget() {
  local i
  for i in "${!kids[@]}"; do [ "${kids[i]}" != "$1" ] || unset "kids[i]"; done
  kids=("${kids[@]}")
}
# stop PID: SIGTERM, wait for it, forget it; returns its exit status.
stop() {
  local rc=0
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" || rc=$?
  forget "$1"
  return "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() { # name line
  sed -En "s/(^|.*[ \"])$1=([^ ]*).*/\2/p" <<<"$2" | head -1
}
load() { cut -d' ' -f1 /proc/loadavg; }

# Writes a stage config: default.yaml with the broker, a group and overrides.
# config OUT GROUP [input_topic window_yaml]
config() {
  "$py" - "$@" "$bs" "$fetch_wait" <<'EOF'
import sys, yaml
out, group, *rest = sys.argv[1:]
topic, window, bs, fetch_wait = (rest if len(rest) == 4 else [None, None] + rest)
cfg = yaml.safe_load(open("configs/default.yaml"))
cfg["kafka"]["bootstrap.servers"] = bs
cfg["kafka"]["group.id"] = group
if topic:
    cfg["input"]["topic"] = topic
    cfg["window"] = yaml.safe_load(window)
elif fetch_wait != "default":
    cfg["kafka"]["fetch.wait.max.ms"] = int(fetch_wait)
yaml.safe_dump(cfg, open(out, "w"), sort_keys=False)
EOF
}

# ---- the broker -------------------------------------------------------------
"$bin" dev-broker --partitions "$partitions" --config configs/default.yaml \
  >"$work/bootstrap" 2>"$work/broker.log" &
kids+=($!)
for _ in $(seq 200); do # up to 10 s
  [ -s "$work/bootstrap" ] && break
  kill -0 "${kids[0]}" 2>/dev/null || { cat "$work/broker.log" >&2; exit 1; }
  sleep 0.05
done
bs=$(cat "$work/bootstrap")
[ -n "$bs" ] || { echo "run_kafka.sh: the broker printed no address" >&2; exit 1; }

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: nproc=$(nproc), $cpu, $(date -u +%FT%TZ), load at start $(load)"
echo "broker: funnelstream dev-broker --partitions $partitions ($bs)"

# ---- throughput -------------------------------------------------------------
if [ "${SKIP_THROUGHPUT:-}" != 1 ]; then
  "$bin" generate --events "$events" --customers "$customers" --brokers "$bs" \
    --topic touchpoints 2>"$work/preload.log" || { cat "$work/preload.log" >&2; exit 1; }
  if ! "$bare" --brokers "$bs" --topic touchpoints --partitions "$partitions" \
    --check "$events" >"$work/check.txt"; then
    cat "$work/check.txt" >&2
    echo "run_kafka.sh: the broker did not keep all $events events (the mock cluster keeps" \
      "5 MiB per partition, ~140k events on 3 partitions): lower EVENTS" >&2
    exit 1
  fi
  echo "preload: $events events, $customers customers, intact ($(tr '\n' ' ' <"$work/check.txt"))"
  xprops=()
  [ "$fetch_wait" = default ] || xprops=(-X "fetch.wait.max.ms=$fetch_wait")
  echo
  echo "| run | load avg | bare events/s | bare consume_s | run events/s | run consume_s | run/bare |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  bare_all=() run_all=()
  for i in $(seq "$runs"); do
    l=$(load)
    bl=$("$bare" --brokers "$bs" --topic touchpoints --partitions "$partitions" "${xprops[@]}" \
      2>>"$work/bare.log")
    [ "$(field consumed "$bl")" = "$events" ] || { echo "bare: $bl" >&2; exit 1; }
    config "$work/run-$i.yaml" "bench-run-$$-$i"
    "$bin" run --config "$work/run-$i.yaml" --until-eof --threads "$threads" 2>"$work/run-$i.log" ||
      { tail "$work/run-$i.log" >&2; exit 1; }
    rl=$(grep 'msg="input ends"' "$work/run-$i.log")
    [ "$(field consumed "$rl")" = "$events" ] || { echo "run: $rl" >&2; exit 1; }
    be=$(field events_per_s "$bl") re=$(field events_per_s "$rl")
    bare_all+=("$be") run_all+=("$re")
    awk -v i="$i" -v l="$l" -v be="$be" -v bs_="$(field consume_s "$bl")" -v re="$re" \
      -v rs="$(field consume_s "$rl")" 'BEGIN {
      printf "| %d | %s | %.0fk | %s | %.0fk | %s | %.0f %% |\n", i, l, be / 1e3, bs_, re / 1e3, rs, 100 * re / be }'
  done
  # best (the figure), spread, and the median, which says more than the
  # best when a run lasts a fraction of a second on a shared machine
  awk -v b="${bare_all[*]}" -v r="${run_all[*]}" '
    function sort(a, n,  i, j, t) {
      for (i = 2; i <= n; i++)
        for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    }
    function median(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    BEGIN {
      n = split(b, B, " "); split(r, R, " ")
      for (i = 1; i <= n; i++) Q[i] = R[i] / B[i]
      sort(B, n); sort(R, n); sort(Q, n)
      printf "\nbare: best %.0fk events/s (spread %.0fk-%.0fk, median %.0fk)\n", B[n] / 1e3, B[1] / 1e3, B[n] / 1e3, median(B, n) / 1e3
      printf "run:  best %.0fk events/s (spread %.0fk-%.0fk, median %.0fk)\n", R[n] / 1e3, R[1] / 1e3, R[n] / 1e3, median(R, n) / 1e3
      printf "ratio run/bare: best/best %.0f %%, median of the %d pairs %.0f %% (spread %.0f-%.0f %%); target >= 90 %%\n",
        100 * R[n] / B[n], n, 100 * median(Q, n), 100 * Q[1], 100 * Q[n]
    }'
  if [ -n "${PERF:-}" ]; then
    config "$work/run-perf.yaml" "bench-run-$$-perf"
    perf record -g -o "$PERF" -- "$bin" run --config "$work/run-perf.yaml" --until-eof \
      --threads "$threads" 2>"$work/run-perf.log"
    echo "perf: $(grep -o 'consumed=.*' <(grep 'msg="input ends"' "$work/run-perf.log")) -> $PERF"
  fi
fi

# ---- latency ----------------------------------------------------------------
if [ "${SKIP_LATENCY:-}" != 1 ]; then
  window='{size: 1s, max_out_of_orderness: 200ms, idle_timeout: 5s}'
  echo
  echo "latency: generate --realtime for ${latency_s} s per rate, run --threads $threads, window $window"
  echo
  echo "| rate (events/s) | load avg | produced | consumed | late | closes | close->ack p50 (ms) | p99 (ms) |"
  echo "|---:|---|---:|---:|---:|---:|---:|---:|"
  for rate in $rates; do
    topic=touchpoints-live-$rate
    l=$(load)
    "$bin" generate --events 0 --customers "$customers" --realtime --rate "$rate" \
      --brokers "$bs" --topic "$topic" 2>"$work/gen-$rate.log" &
    gen=$!
    kids+=("$gen")
    config "$work/lat-$rate.yaml" "bench-lat-$$-$rate" "$topic" "$window"
    "$bin" run --config "$work/lat-$rate.yaml" --threads "$threads" 2>"$work/lat-$rate.log" &
    stage=$!
    kids+=("$stage")
    # The measurement's length, not a synchronisation. In the background so
    # that a signal to this script is handled at once, not after the sleep.
    sleep "$latency_s" &
    kids+=($!)
    wait "$!"
    forget "$!"
    if ! kill -0 "$gen" 2>/dev/null || ! kill -0 "$stage" 2>/dev/null; then
      tail "$work/gen-$rate.log" "$work/lat-$rate.log" >&2
      exit 1
    fi
    stop "$gen" || { tail "$work/gen-$rate.log" >&2; exit 1; }
    stop "$stage" || { tail "$work/lat-$rate.log" >&2; exit 1; }
    gl=$(grep 'msg="generate finished"' "$work/gen-$rate.log")
    sl=$(grep 'msg="stage stopped"' "$work/lat-$rate.log")
    echo "| $rate | $l | $(field produced "$gl") | $(field consumed "$sl") |" \
      "$(field late_events "$sl") | $(field closes "$sl") |" \
      "$(field close_to_ack_ms_p50 "$sl") | $(field close_to_ack_ms_p99 "$sl") |"
  done
fi
