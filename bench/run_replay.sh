#!/usr/bin/env bash
# run_replay.sh -- end-to-end replay benchmark (figures in bench/RESULTS.md).
#
# Generates EVENTS events of CUSTOMERS customers (msgpack and JSON, same
# seed), then replays each with configs/default.yaml (three funnels) on 1 and
# 2 threads, RUNS times each, and prints the best run as a Markdown row:
# events/s, MB/s, peak RSS, peak active journeys. A last run with a handful
# of customers measures the fixed base RSS, from which bytes per active
# journey = (peak RSS - base RSS) / peak active journeys.
#
# Usage: bench/run_replay.sh [BUILD_DIR]   (env: EVENTS, CUSTOMERS, RUNS, DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/funnelstream
events=${EVENTS:-10000000}
customers=${CUSTOMERS:-1000000}
runs=${RUNS:-3}
data=${DATA:-/tmp/fs-bench}
config=configs/default.yaml
mkdir -p "$data"

gen() { # format file customers
  [ -s "$2" ] || "$bin" generate --events "$events" --customers "$3" --seed 42 \
    --format "$1" --output "$2"
}
gen msgpack "$data/events.msgpack" "$customers"
gen json "$data/events.jsonl" "$customers"

field() { # name line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

# Prints "events_per_sec mb_per_sec max_rss_kb peak_active" of the fastest run.
best_run() { # file threads
  local best="" best_eps=0 line eps
  for _ in $(seq "$runs"); do
    line=$("$bin" replay --config "$config" --input "$1" --threads "$2" --output /dev/null \
      --quiet 2>&1 | grep 'msg="replay finished"')
    eps=$(field events_per_sec "$line")
    if [ "${eps%.*}" -gt "$best_eps" ]; then
      best_eps=${eps%.*}
      best="$eps $(field mb_per_sec "$line") $(field max_rss_kb "$line") $(field peak_active_journeys "$line")"
    fi
  done
  echo "$best"
}

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
echo "input: $events events, $customers customers, $config"
echo
echo "| input | threads | events/s | MB/s | peak RSS (MB) | peak active journeys |"
echo "|---|---|---|---|---|---|"
declare -A rss active
for fmt in msgpack jsonl; do
  for t in 1 2; do
    read -r eps mbs kb act < <(best_run "$data/events.$fmt" "$t")
    rss[$fmt$t]=$kb
    active[$fmt$t]=$act
    awk -v f="$fmt" -v t="$t" -v e="$eps" -v m="$mbs" -v k="$kb" -v a="$act" \
      'BEGIN { printf "| %s | %s | %.2fM | %s | %.0f | %s |\n", f, t, e / 1e6, m, k / 1024, a }'
  done
done

# Base: the same engine and batch ring with almost no journey state.
base_file="$data/base.msgpack"
[ -s "$base_file" ] || "$bin" generate --events 200000 --customers 10 --seed 42 --output "$base_file"
read -r _ _ base_kb base_act < <(best_run "$base_file" 2)
echo
awk -v b="$base_kb" -v ba="$base_act" -v r="${rss[msgpack2]}" -v a="${active[msgpack2]}" 'BEGIN {
  printf "base RSS (10 customers, %s active journeys): %.0f MB\n", ba, b / 1024
  printf "bytes per active journey (msgpack, 2 threads): %.0f\n", (r - b) * 1024 / a }'
