#!/usr/bin/env bash
# run_replay.sh -- end-to-end replay benchmark (figures in bench/RESULTS.md).
#
# Generates EVENTS events of CUSTOMERS customers (msgpack and JSON, same
# seed), then replays each with configs/default.yaml (three funnels) on 1 and
# 2 threads, RUNS times each, and prints the best run as a Markdown row:
# events/s, MB/s, peak RSS, peak active journeys, and the CPU time of the
# worker threads per event: all of them, and the busiest one's (which must
# fall as threads grow: each worker applies only its own customers' events).
# Then the same msgpack input with hopping windows (1 h every minute: each
# instant in 60 windows) against the tumbling config, and THREADS_MAX threads
# for the scaling curve. A last run with a handful of customers measures the
# fixed base RSS, from which bytes per active journey = (peak RSS - base RSS)
# / peak active journeys.
#
# Usage: bench/run_replay.sh [BUILD_DIR]   (env: EVENTS, CUSTOMERS, RUNS, DATA, THREADS_MAX)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/funnelstream
events=${EVENTS:-10000000}
customers=${CUSTOMERS:-1000000}
runs=${RUNS:-3}
data=${DATA:-/tmp/fs-bench}
config=configs/default.yaml
threads_max=${THREADS_MAX:-4}
mkdir -p "$data"
hopping="$data/hopping.yaml"
sed 's/^window: {size: 1m,/window: {size: 1h, hop: 1m,/' "$config" >"$hopping"
grep -q '^window: {size: 1h, hop: 1m,' "$hopping" || { echo "no window line in $config" >&2; exit 1; }

gen() { # format file customers
  [ -s "$2" ] || "$bin" generate --events "$events" --customers "$3" --seed 42 \
    --format "$1" --output "$2"
}
gen msgpack "$data/events.msgpack" "$customers"
gen json "$data/events.jsonl" "$customers"

field() { # name line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# Prints "events_per_sec mb_per_sec max_rss_kb peak_active worker_ns busiest_ns" of
# the fastest run (worker CPU time per event, all workers and the busiest one).
best_run() { # file threads [config]
  local best="" best_eps=0 line eps events
  for _ in $(seq "$runs"); do
    line=$("$bin" replay --config "${3:-$config}" --input "$1" --threads "$2" --output /dev/null \
      --quiet 2>&1 | grep 'msg="replay finished"')
    eps=$(field events_per_sec "$line")
    events=$(field events "$line")
    if [ "${eps%.*}" -gt "$best_eps" ]; then
      best_eps=${eps%.*}
      best="$eps $(field mb_per_sec "$line") $(field max_rss_kb "$line") $(field peak_active_journeys "$line")"
      best="$best $(awk -v w="$(field worker_cpu_s "$line")" -v b="$(field busiest_worker_cpu_s "$line")" \
        -v n="$events" 'BEGIN { printf "%.0f %.0f", w * 1e9 / n, b * 1e9 / n }')"
    fi
  done
  echo "$best"
}

row() { # label threads file [config]
  local eps mbs kb act wns bns
  read -r eps mbs kb act wns bns < <(best_run "$3" "$2" "${4:-}")
  awk -v f="$1" -v t="$2" -v e="$eps" -v m="$mbs" -v k="$kb" -v a="$act" -v w="$wns" -v b="$bns" \
    'BEGIN { printf "| %s | %s | %.2fM | %s | %.0f | %s | %s | %s |\n", f, t, e / 1e6, m, k / 1024, a, w, b }'
  last_kb=$kb last_act=$act
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
echo "input: $events events, $customers customers, $config"
echo
echo "| input | threads | events/s | MB/s | peak RSS (MB) | peak active journeys | worker CPU ns/event | busiest worker ns/event |"
echo "|---|---|---|---|---|---|---|---|"
declare -A rss active
for fmt in msgpack jsonl; do
  for t in 1 2; do
    row "$fmt" "$t" "$data/events.$fmt"
    rss[$fmt$t]=$last_kb
    active[$fmt$t]=$last_act
  done
done
for t in 1 2; do
  row "msgpack, hopping 1h/1m" "$t" "$data/events.msgpack" "$hopping"
done
for t in $(seq 3 "$threads_max"); do
  row "msgpack" "$t" "$data/events.msgpack"
done

# Base: the same engine and batch ring with almost no journey state.
base_file="$data/base.msgpack"
[ -s "$base_file" ] || "$bin" generate --events 200000 --customers 10 --seed 42 --output "$base_file"
read -r _ _ base_kb base_act _ _ < <(best_run "$base_file" 2)
echo
awk -v b="$base_kb" -v ba="$base_act" -v r="${rss[msgpack2]}" -v a="${active[msgpack2]}" 'BEGIN {
  printf "base RSS (10 customers, %s active journeys): %.0f MB\n", ba, b / 1024
  printf "bytes per active journey (msgpack, 2 threads): %.0f\n", (r - b) * 1024 / a }'
