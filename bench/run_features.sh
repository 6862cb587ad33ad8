#!/usr/bin/env bash
# run_features.sh -- what the issue 14 funnel options cost (figures in bench/RESULTS.md).
#
# Replays one msgpack input (EVENTS events of CUSTOMERS customers) with
# configs/default.yaml turned into variants, interleaved, RUNS rounds, and
# prints per variant the best and median events/s, the peak RSS and the
# peak active journeys:
#   off         every funnel `stage_time: false`, breakdowns as default
#   velocity    stage_time on (the default)
#   campaign    stage_time off, `breakdowns: [channel, segment, campaign]`
#   on          velocity and campaign (the issue's target: <= 15 % below off)
#   unordered   `off` with every funnel `mode: unordered`
# Bytes per active journey of each option: the record layout's exact
# figures (funnel.h) and, measured, (peak RSS - off's peak RSS) / peak
# active journeys of the same input.
#
# Usage: bench/run_features.sh [BUILD_DIR]   (env: EVENTS, CUSTOMERS, RUNS, DATA, THREADS)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin=$build/funnelstream
events=${EVENTS:-10000000}
customers=${CUSTOMERS:-1000000}
runs=${RUNS:-3}
threads=${THREADS:-2}
data=${DATA:-/tmp/fs-bench}
input="$data/features-$events-$customers.msgpack"
mkdir -p "$data"
[ -s "$input" ] || "$bin" generate --events "$events" --customers "$customers" --seed 42 \
  --output "$input"

# variant NAME SED-SCRIPT: configs/default.yaml edited after each funnel's
# conversion_window line.
variant() {
  sed "/^    conversion_window:/a\\
$2" configs/default.yaml >"$data/features-$1.yaml"
  [ "$(grep -c "^$(head -c 12 <<<"$2")" "$data/features-$1.yaml")" -ge 3 ] ||
    { echo "variant $1: not applied to every funnel" >&2; exit 1; }
}
variant off "    stage_time: false"
variant velocity "    stage_time: true"
variant campaign "    stage_time: false\\
    breakdowns: [channel, segment, campaign]"
variant on "    stage_time: true\\
    breakdowns: [channel, segment, campaign]"
variant unordered "    stage_time: false"
sed -i 's/^    mode: .*/    mode: unordered/' "$data/features-unordered.yaml"

field() { # name line
  sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"
}

names=(off velocity campaign on unordered)
declare -A eps rss act
for _ in $(seq "$runs"); do
  for v in "${names[@]}"; do
    line=$("$bin" replay --config "$data/features-$v.yaml" --input "$input" --threads "$threads" \
      --output /dev/null --quiet 2>&1 | grep 'msg="replay finished"')
    eps[$v]="${eps[$v]:-} $(field events_per_sec "$line")"
    rss[$v]=$(field max_rss_kb "$line")
    act[$v]=$(field peak_active_journeys "$line")
  done
done

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%F)"
echo "input: $events events, $customers customers, configs/default.yaml variants, $threads threads, $runs rounds"
echo
echo "| variant | best events/s | median events/s | median vs off | peak RSS (MB) | peak active journeys | bytes per journey vs off |"
echo "|---|---|---|---|---|---|---|"
median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
off_median=$(median <<<"${eps[off]}")
for v in "${names[@]}"; do
  best=$(tr ' ' '\n' <<<"${eps[$v]}" | sed '/^$/d' | sort -g | tail -n 1)
  med=$(median <<<"${eps[$v]}")
  awk -v v="$v" -v b="$best" -v m="$med" -v o="$off_median" -v r="${rss[$v]}" -v ro="${rss[off]}" \
    -v a="${act[$v]}" 'BEGIN { printf "| %s | %.2fM | %.2fM | %+.1f %% | %.0f | %s | %+.0f |\n",
      v, b / 1e6, m / 1e6, (m / o - 1) * 100, r / 1024, a, (r - ro) * 1024 / a }'
done
