#!/usr/bin/env bash
# run_group.sh -- scale-out benchmarks (issue 12; figures in bench/RESULTS.md, "Scaling out").
#
# Each measurement starts its own embedded broker (`funnelstream dev-broker`,
# librdkafka's mock cluster: it cannot create topics on request, so the
# broker is started with the measurement's config and creates its input,
# output, state and partials topics), PARTITIONS partitions.
#
# 1. CPU per event, one instance against a group of two on the same topic
#    (they share this machine's cores, so this is a cost, not a speed-up):
#    the instances (`run --threads 1`) start on the empty topic; once the
#    group has formed (every partition held), EVENTS generated events are
#    produced; CPU = user + system of every instance (/proc) from then until
#    their /metrics count every event applied; partials made and their bytes
#    from /metrics too. Startup, the group protocol and the last windows'
#    closing are left out: this is the per-event cost.
# 2. Latency, window close -> its final record readable, at RATE events/s:
#    `generate --realtime` produces events whose ts is the wall clock, so a
#    window closes for a partition when an event of ts >= end +
#    max_out_of_orderness arrives, about at wall time end + ooo. kcat reads
#    the output topic (read_committed) and stamps each flow record's arrival;
#    latency = arrival - (window_end + max_out_of_orderness). For INSTANCES
#    (1 and 2), LATENCY_S seconds each, commit_interval COMMIT_MS.
#
# Usage: bench/run_group.sh [BUILD_DIR]
#   env: EVENTS (240000), CUSTOMERS (50000), PARTITIONS (12), RATE (20000),
#        LATENCY_S (30), COMMIT_MS (100), SKIP_CPU=1, SKIP_LATENCY=1, KEEP=1
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/funnelstream
events=${EVENTS:-240000}
customers=${CUSTOMERS:-50000}
partitions=${PARTITIONS:-12}
rate=${RATE:-20000}
latency_s=${LATENCY_S:-30}
commit_ms=${COMMIT_MS:-100}
py=/usr/bin/python3
[ -x "$bin" ] || { echo "run_group.sh: $bin missing: build it first" >&2; exit 2; }

work=$(mktemp -d /tmp/fs-group-bench.XXXXXX)
kids=()
cleanup() {
  local rc=$? i
  for ((i = ${#kids[@]} - 1; i >= 0; i--)); do
    if kill -0 "${kids[i]}" 2>/dev/null; then
      kill -TERM "${kids[i]}" 2>/dev/null || true
      wait "${kids[i]}" 2>/dev/null || true
    fi
  done
  if [ "${KEEP:-}" = 1 ] || [ "$rc" -ne 0 ]; then echo "logs: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

field() { # name line
  sed -En "s/(^|.*[ \"])$1=([^ ]*).*/\2/p" <<<"$2" | head -1
}

# config OUT GROUP BOOTSTRAP WINDOW_YAML COMMIT_MS
config() {
  "$py" - "$@" <<'EOF'
import sys, yaml
out, group, bs, window, commit = sys.argv[1:]
cfg = yaml.safe_load(open("configs/default.yaml"))
cfg["kafka"]["bootstrap.servers"] = bs or "unused:9092"
cfg["kafka"]["group.id"] = group
cfg["kafka"]["fetch.wait.max.ms"] = 10
# the mock cluster holds a join for session.timeout.ms - 1 s after a member
# leaves; a short session lets the group form in seconds
cfg["kafka"]["session.timeout.ms"] = 6000
cfg["kafka"]["heartbeat.interval.ms"] = 500
cfg["http"] = {"listen": "127.0.0.1:0"}
if window:
    cfg["window"] = yaml.safe_load(window)
if commit:
    cfg["commit_interval"] = commit + "ms"
yaml.safe_dump(cfg, open(out, "w"), sort_keys=False)
EOF
}

# broker NAME CONFIG: starts a dev broker for CONFIG's topics; sets $bs, $broker
broker() {
  "$bin" dev-broker --partitions "$partitions" --config "$2" >"$work/$1.bootstrap" \
    2>"$work/$1.broker.log" &
  broker=$!
  kids+=("$broker")
  for _ in $(seq 200); do
    [ -s "$work/$1.bootstrap" ] && break
    kill -0 "$broker" 2>/dev/null || { cat "$work/$1.broker.log" >&2; exit 1; }
    sleep 0.05
  done
  bs=$(cat "$work/$1.bootstrap")
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "machine: nproc=$(nproc), $cpu, $(date -u +%FT%TZ)"

# ---- 1. CPU per event -------------------------------------------------------
# cpu_of PID: its user + system CPU so far, in clock ticks
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# metric PORT NAME: the sum of a metric's samples on an instance's /metrics
metric() {
  curl -sf "http://127.0.0.1:$1/metrics" | awk -v n="funnelstream_$2" \
    '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}
if [ "${SKIP_CPU:-}" != 1 ]; then
  echo
  echo "CPU per event in steady state: the instances start on an empty topic, the group forms,"
  echo "then $events events are produced; CPU (user+sys, /proc) from the first event to the"
  echo "last one applied, summed over the instances (windows still open are not closed)"
  echo
  echo "| instances | events | CPU s | CPU ns/event | partials | partial bytes | bytes/partial |"
  echo "|---:|---:|---:|---:|---:|---:|---:|"
  tck=$(getconf CLK_TCK)
  for n in 1 2; do
    config "$work/g$n.pre.yaml" "bench-g$n" "" "" ""
    broker "g$n" "$work/g$n.pre.yaml"
    config "$work/g$n.yaml" "bench-g$n" "$bs" "" ""
    pids=() ports=()
    for i in $(seq "$n"); do
      "$bin" run --config "$work/g$n.yaml" --threads 1 2>"$work/g$n.$i.log" &
      pids+=($!)
      kids+=($!)
    done
    for _ in $(seq 1200); do # the group has formed: every partition held, each instance some
      held=0 ok=1
      for i in $(seq "$n"); do
        h=$(( $(grep -c 'msg="partition assigned"' "$work/g$n.$i.log" || true) -
              $(grep -c 'msg="partition revoked"' "$work/g$n.$i.log" || true) ))
        [ "$h" -gt 0 ] || ok=0
        held=$((held + h))
      done
      [ "$ok" = 1 ] && [ "$held" = $((partitions + 1)) ] && break
      sleep 0.1
    done
    for i in $(seq "$n"); do
      ports+=("$(sed -En 's/.*msg="http listening".* port=([0-9]+).*/\1/p' "$work/g$n.$i.log")")
    done
    before=0
    for p in "${pids[@]}"; do before=$((before + $(cpu_of "$p"))); done
    "$bin" generate --events "$events" --customers "$customers" --brokers "$bs" \
      --topic touchpoints 2>"$work/g$n.gen.log" || { cat "$work/g$n.gen.log" >&2; exit 1; }
    for _ in $(seq 1200); do # every event applied
      done_=0
      for port in "${ports[@]}"; do done_=$((done_ + $(metric "$port" 'events_total{outcome="accepted"}'))); done
      [ "$done_" -ge "$events" ] && break
      sleep 0.1
    done
    after=0 partials=0 pbytes=0
    for p in "${pids[@]}"; do after=$((after + $(cpu_of "$p"))); done
    for port in "${ports[@]}"; do
      partials=$((partials + $(metric "$port" partials_made_total)))
      pbytes=$((pbytes + $(metric "$port" partial_bytes_total)))
    done
    for p in "${pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
    awk -v n="$n" -v ev="$done_" -v c=$((after - before)) -v t="$tck" -v pa="$partials" -v pb="$pbytes" \
      'BEGIN { printf "| %d | %d | %.2f | %.0f | %d | %d | %.0f |\n", n, ev, c / t, c / t * 1e9 / ev, pa, pb, pb / (pa ? pa : 1) }'
    kill -TERM "$broker" && wait "$broker" || true
  done
fi

# ---- 2. latency ---------------------------------------------------------------
if [ "${SKIP_LATENCY:-}" != 1 ]; then
  window='{size: 1s, max_out_of_orderness: 200ms, idle_timeout: 5s}'
  echo
  echo "latency: generate --realtime --rate $rate for ${latency_s} s, window $window,"
  echo "commit_interval ${commit_ms}ms, run --threads 1 per instance"
  echo
  echo "| instances | flow records | close -> readable p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |"
  echo "|---:|---:|---:|---:|---:|---:|"
  for n in 1 2; do
    config "$work/l$n.pre.yaml" "bench-l$n" "" "$window" "$commit_ms"
    broker "l$n" "$work/l$n.pre.yaml"
    config "$work/l$n.yaml" "bench-l$n" "$bs" "$window" "$commit_ms"
    kcat -b "$bs" -C -t funnel-metrics -o end -u -f '%s\n' -X isolation.level=read_committed \
      2>"$work/l$n.kcat.log" |
      "$py" -u -c 'import sys, time
for line in sys.stdin:
    print(f"{time.time() * 1000:.0f} {line}", end="", flush=True)' >"$work/l$n.arrivals" &
    reader=$!
    kids+=("$reader")
    stages=()
    for i in $(seq "$n"); do
      "$bin" run --config "$work/l$n.yaml" --threads 1 2>"$work/l$n.$i.log" &
      stages+=($!)
      kids+=($!)
    done
    for i in $(seq "$n"); do # every instance has its partitions (the group formed)
      for _ in $(seq 600); do
        grep -q 'msg="partition assigned"' "$work/l$n.$i.log" && break
        sleep 0.05
      done
    done
    start_ms=$(date +%s%3N)
    "$bin" generate --events 0 --customers "$customers" --realtime --rate "$rate" \
      --brokers "$bs" --topic touchpoints 2>"$work/l$n.gen.log" &
    gen=$!
    kids+=("$gen")
    sleep "$latency_s" # the measurement's length, not a synchronisation
    kill -TERM "$gen"; wait "$gen" || true
    for p in "${stages[@]}"; do kill -TERM "$p"; wait "$p" || true; done
    kill -TERM "$reader" 2>/dev/null || true
    pkill -TERM -f "kcat -b $bs" 2>/dev/null || true
    wait "$reader" 2>/dev/null || true
    "$py" - "$work/l$n.arrivals" "$n" "$start_ms" <<'EOF'
import sys, json
path, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
lat = []
for line in open(path):
    at, _, doc = line.partition(" ")
    try:
        r = json.loads(doc)
    except ValueError:
        continue
    if r.get("kind") != "flow":
        continue
    if r["window_end"] < start + 2000:
        continue  # windows the generator began in the middle of
    lat.append(int(at) - (r["window_end"] + 200))
lat.sort()
def q(p):
    return lat[min(len(lat) - 1, max(0, -(-len(lat) * p // 100) - 1))] if lat else float("nan")
print(f"| {n} | {len(lat)} | {q(50)} | {q(90)} | {q(99)} | {lat[-1] if lat else 'nan'} |")
EOF
    kill -TERM "$broker" && wait "$broker" || true
  done
fi
