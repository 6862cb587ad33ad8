#!/usr/bin/env bash
# run.sh -- funnelstream replay against embedded ClickHouse (chdb) and DuckDB on one 4-stage
# strict funnel over one JSON-lines file (issue 10; bench/peers/README.md says why the three
# compute the same counts).
#
#   1. installs the npm packages chdb and @duckdb/node-api (pinned) under $DATA/peers-node,
#      outside the source tree, with the machine's Node.js and npm (skipped when present);
#   2. generates $EVENTS events once with gen.js (cached under $DATA/peers, keyed by
#      events, seed and gen.js's hash) with their expected stage counts;
#   3. reads the file once (page cache), runs each engine once untimed, then RUNS rounds of
#      ClickHouse windowFunnel, DuckDB, funnelstream replay (interleaved, so load from the
#      rest of the machine hits them alike), each a whole process, wall time;
#   4. checks after every run that the engine's 4 stage counts equal the generator's, and
#      exits 1 at the first disagreement, printing all counts;
#   5. prints a Markdown table (best and all runs, events/s, replay's speed relative to the
#      fastest peer) and the machine; with UPDATE_RESULTS=1 it also writes them between the
#      markers of the "Against the databases" section of bench/RESULTS.md.
#
# Usage: bench/peers/run.sh [BUILD_DIR]     (BUILD_DIR default: build)
# Env:   DATA (/tmp/fs-bench), EVENTS (10000000), SEED (42), RUNS (3), THREADS (2),
#        CLICKHOUSE_SQL, DUCKDB_SQL (default: bench/peers/clickhouse.sql, duckdb.sql; point one
#        at bench/peers/wrong_duckdb.sql to see the check fail), UPDATE_RESULTS (0).
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/../.."
root=$PWD
here=bench/peers
build=${1:-build}
bin=$build/funnelstream
# A relative BUILD_DIR is the caller's (as the usage line suggests when run from the repo root).
[ "${1:-}" ] && [ "${1#/}" = "$1" ] && bin=$caller/$1/funnelstream
data=${DATA:-/tmp/fs-bench}
events=${EVENTS:-10000000}
seed=${SEED:-42}
runs=${RUNS:-3}
threads=${THREADS:-2}
ch_sql=${CLICKHOUSE_SQL:-$here/clickhouse.sql}
duck_sql=${DUCKDB_SQL:-$here/duckdb.sql}
config=$here/funnel.yaml
funnel=checkout
chdb_version=3.4.0
duckdb_version=1.5.6-r.1
nodedir=$data/peers-node
work=$data/peers
start_s=$SECONDS

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "run.sh: $*" >&2; }
load() { sed -n 's/.*load average: *//p' <(uptime); }

[ -x "$bin" ] || die "$bin not found: build first (cmake -S . -B $build && cmake --build $build -j2)"
command -v node >/dev/null || die "node not found (Node.js >= 18 is needed)"
command -v npm >/dev/null || die "npm not found"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "Node.js $(node --version) is too old: chdb and @duckdb/node-api need >= 18"
for f in "$ch_sql" "$duck_sql" "$config"; do [ -s "$f" ] || die "$f not found"; done
mkdir -p "$nodedir" "$work"

# ---- 1. the peers, outside the source tree --------------------------------------------------
installed() { # package version
  [ "$(node -p "try { require('$nodedir/node_modules/$1/package.json').version } catch (e) { '' }")" = "$2" ]
}
if ! installed chdb "$chdb_version" || ! installed @duckdb/node-api "$duckdb_version"; then
  say "npm install --prefix $nodedir chdb@$chdb_version @duckdb/node-api@$duckdb_version"
  npm install --prefix "$nodedir" --no-audit --no-fund --loglevel=error \
    "chdb@$chdb_version" "@duckdb/node-api@$duckdb_version" >&2 ||
    die "npm install failed (see above)"
fi
export NODE_PATH=$nodedir/node_modules
# shellcheck disable=SC2016 # JavaScript template strings, not shell
versions=$(node -e '
  const chdb = require("chdb"), duck = require("@duckdb/node-api/package.json");
  const ch = chdb.query("SELECT version()", "TSV").trim();
  process.stdout.write(`chdb ${require("chdb/package.json").version} (ClickHouse ${ch}), ` +
    `@duckdb/node-api ${duck.version}`);') || die "the peers do not load (see above)"
duck_engine=$(node -e '
  const { DuckDBInstance } = require("@duckdb/node-api");
  DuckDBInstance.create(":memory:").then((db) => db.connect()).then((c) => c.runAndReadAll(
    "SELECT version()")).then((r) => process.stdout.write(String(r.getRows()[0][0])));') ||
  die "DuckDB does not load (see above)"
# The engine's source: the last commit that changed it, and whether the tree differs from it.
src_commit=$(git log -1 --format=%h -- src include CMakeLists.txt)
git diff --quiet HEAD -- src include CMakeLists.txt || src_commit="$src_commit + local changes"
versions="$versions (DuckDB $duck_engine), $("$bin" --version) (source at $src_commit, $build)"

# ---- 2. the data, once ----------------------------------------------------------------------
gen_hash=$(sha256sum "$here/gen.js" | cut -c1-8)
file=$work/events-$events-seed$seed-gen$gen_hash.jsonl
if [ ! -s "$file" ] || [ ! -s "$file.expected" ]; then
  # Files of an older gen.js are never used again (1.2 GB for 10M events): remove them.
  find "$work" -maxdepth 1 -name 'events-*-gen*.jsonl*' ! -name "*-gen$gen_hash.jsonl*" -delete
  say "generating $file"
  node "$here/gen.js" "$file" "$events" "$seed"
fi
read -r -a expected <"$file.expected"
[ "${#expected[@]}" = 4 ] || die "$file.expected: expected 4 counts"
size_mb=$(( $(stat -c %s "$file") / 1000000 ))

# ---- 3. runs --------------------------------------------------------------------------------
declare -A label_of query_of
engines=(clickhouse duckdb replay)
label_of[clickhouse]="ClickHouse (chdb)"
label_of[duckdb]="DuckDB (node-api)"
label_of[replay]="funnelstream replay"
query_of=([clickhouse]=$ch_sql [duckdb]=$duck_sql [replay]=$config)
timefmt=()
[ -x /usr/bin/time ] && timefmt=(/usr/bin/time -f "%M %U %S" -o)

declare -A times rss cpu counts
check() { # engine counts
  if [ "$2" != "${expected[*]}" ]; then
    {
      echo
      echo "run.sh: DISAGREEMENT: $1 (${label_of[$1]}, ${query_of[$1]}) counts reached = [$2]"
      echo "run.sh:   expected (gen.js, strict rules) = [${expected[*]}]"
      for e in "${engines[@]}"; do
        [ -n "${counts[$e]:-}" ] && echo "run.sh:   $e (last run) = [${counts[$e]}]"
      done
      echo "run.sh: the engines do not compute the same funnel: no figures. See bench/peers/README.md."
    } >&2
    exit 1
  fi
}

# Runs a command with stdout to $1, stderr to $1.err; sets elapsed (wall s) and, with
# /usr/bin/time, rusage ("peak_KB user_s sys_s"). Dies with the command's stderr if it fails.
clock() { # out_file command...
  local out=$1 t0 t1
  shift
  rm -f "$out.rss"
  t0=$EPOCHREALTIME
  "${timefmt[@]}" ${timefmt:+"$out.rss"} "$@" >"$out" 2>"$out.err" ||
    { cat "$out.err" >&2; die "failed: $*"; }
  t1=$EPOCHREALTIME
  elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  rusage=""
  [ -s "$out.rss" ] && rusage=$(tail -n 1 "$out.rss")
  return 0
}

# One timed run of an engine over the file: its whole process (node + engine load + query, or
# funnelstream replay), then the check of its counts.
timed() { # engine
  local e=$1 out=$work/out-$1 kb user sys
  case $e in
  clickhouse) clock "$out" node "$here/query.js" clickhouse "$ch_sql" "$file" "$threads" ;;
  duckdb) clock "$out" node "$here/query.js" duckdb "$duck_sql" "$file" "$threads" ;;
  replay)
    clock "$out.records" "$bin" replay --config "$config" --input "$file" --threads "$threads" \
      --quiet --output - # stdout: the records
    # Every event valid and none late (README: each count lands in exactly one flow record).
    grep -q 'msg="replay finished" events='"$events"' valid='"$events"' rejected=0 late=0 ' \
      "$out.records.err" || { cat "$out.records.err" >&2; die "replay: rejected or late events"; }
    node "$here/reached.js" "$funnel" "$out.records" >"$out" || die "reached.js failed"
    ;;
  esac
  counts[$e]=$(cat "$out")
  check "$e" "${counts[$e]}"
  times[$e]="${times[$e]:-} $elapsed"
  if [ -n "$rusage" ]; then # peak RSS (KB), user and system CPU seconds
    read -r kb user sys <<<"$rusage"
    rss[$e]=$(( kb > ${rss[$e]:-0} ? kb : ${rss[$e]:-0} ))
    cpu[$e]="${cpu[$e]:-} $(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
  fi
}

# The same process doing no work: node + loading the engine + a constant query, or replay of an
# empty file. Part of every timed run above; shown apart in the table.
printf 'SELECT 0, 0, 0, 0 SETTINGS max_threads = {threads} FORMAT TSV\n' >"$work/zero-clickhouse.sql"
printf 'SET threads = {threads};\nSELECT 0, 0, 0, 0;\n' >"$work/zero-duckdb.sql"
: >"$work/empty.jsonl"
declare -A idle
idle_run() { # engine
  local e=$1 out=$work/idle-$1
  case $e in
  clickhouse | duckdb) clock "$out" node "$here/query.js" "$e" "$work/zero-$e.sql" /dev/null "$threads" ;;
  replay) clock "$out" "$bin" replay --config "$config" --input "$work/empty.jsonl" \
    --threads "$threads" --quiet --output /dev/null ;;
  esac
  idle[$e]="${idle[$e]:-} $elapsed"
}

load_before=$(load)
say "$events events ($size_mb MB) in $file; expected reached = ${expected[*]}; load $load_before"
say "warming: page cache and one untimed run of each engine"
cat "$file" >/dev/null
for e in "${engines[@]}"; do
  timed "$e"
  times[$e]=""
  rss[$e]=0
  cpu[$e]=""
done
loads=()
for r in $(seq "$runs"); do
  loads+=("$(load | cut -d, -f1)")
  for e in "${engines[@]}"; do
    timed "$e"
    idle_run "$e"
  done
  say "round $r/$runs:$(for e in "${engines[@]}"; do printf ' %s %ss' "$e" "${times[$e]##* }"; done) (load ${loads[-1]})"
done
load_after=$(load)

# ---- 5. the table ---------------------------------------------------------------------------
best() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | head -n 1; }
declare -A best_of
declare -A best_idle
for e in "${engines[@]}"; do
  best_of[$e]=$(best "${times[$e]}")
  best_idle[$e]=$(best "${idle[$e]}")
done
fastest_peer=clickhouse
awk -v a="${best_of[duckdb]}" -v b="${best_of[clickhouse]}" 'BEGIN { exit !(a < b) }' &&
  fastest_peer=duckdb
model=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
ratio=$(awk -v p="${best_of[$fastest_peer]}" -v r="${best_of[replay]}" 'BEGIN { printf "%.2f", p / r }')

{
  echo "Command: \`bench/peers/run.sh $build\` (EVENTS=$events SEED=$seed RUNS=$runs THREADS=$threads), $(date -u '+%F %H:%M') UTC"
  echo
  echo "Machine: \`nproc\` = $(nproc), $model; load average $load_before before, $load_after after (1-min load at each round: ${loads[*]})."
  echo "Engines: $versions; $threads threads each."
  echo "Input: $events events, $size_mb MB of JSON lines (bench/peers/gen.js, seed $seed), in the page cache; stage counts reached = ${expected[*]}, equal for all three engines in every run."
  echo
  echo "| engine | query | seconds, best of $runs | all runs (s) | events/s | CPU s (user+sys), all runs | peak RSS (MB) | of which start-up (s) | replay speed ÷ this |"
  echo "|---|---|---:|---|---:|---|---:|---:|---:|"
  for e in "${engines[@]}"; do
    q=$(basename "${query_of[$e]}")
    mb=-
    [ "${rss[$e]:-0}" -gt 0 ] && mb=$(( rss[$e] / 1024 ))
    awk -v l="${label_of[$e]}" -v q="$q" -v b="${best_of[$e]}" -v all="${times[$e]# }" \
      -v n="$events" -v mb="$mb" -v r="${best_of[replay]}" -v cpu="${cpu[$e]# }" -v idle="${best_idle[$e]}" 'BEGIN {
        gsub(/ /, ", ", all)
        gsub(/ /, ", ", cpu)
        if (cpu == "") cpu = "-"
        printf "| %s | %s | %.2f | %s | %.2fM | %s | %s | %.2f | %.2f× |\n", l, q, b, all, n / b / 1e6, cpu, mb, idle, b / r }'
  done
  echo
  echo "Replay's speed relative to the fastest peer (${label_of[$fastest_peer]}): **${ratio}×** (issue 10's target: ≥ 2×)."
} >"$work/results.md"
echo
cat "$work/results.md"

if [ "${UPDATE_RESULTS:-0}" = 1 ]; then
  # shellcheck disable=SC2016 # JavaScript template strings, not shell
  node -e '
    const fs = require("fs");
    const [res, block] = [process.argv[1], fs.readFileSync(process.argv[2], "utf8")];
    const begin = "<!-- bench/peers/run.sh begin -->", end = "<!-- bench/peers/run.sh end -->";
    let text = fs.readFileSync(res, "utf8");
    const marked = `${begin}\n${block}${end}`;
    const i = text.indexOf(begin), j = text.indexOf(end);
    if (i >= 0 && j > i) text = text.slice(0, i) + marked + text.slice(j + end.length);
    else text = text.replace(/\n*$/, "\n\n## Against the databases (issue 10)\n\n" + marked + "\n");
    fs.writeFileSync(res, text);' "$root/bench/RESULTS.md" "$work/results.md"
  say "updated bench/RESULTS.md"
fi
say "done in $((SECONDS - start_s)) s"
