#!/usr/bin/env bash
# run.sh -- build the libFuzzer targets and run each for SECONDS (default 60),
# or minimise what the runs found into the kept corpus (--merge).
#
# Usage: tests/fuzz/run.sh [SECONDS]     fuzz every target for SECONDS
#        tests/fuzz/run.sh --merge       minimise into tests/fuzz/corpus/<target>/
#   FS_FUZZ_DIR      where binaries, run corpora and crash artifacts go
#                    (default: <repo>/build-fuzz)
#   FS_FUZZ_TARGETS  space-separated subset of targets (default: all below)
#   FS_FUZZ_JOBS     targets fuzzed at once (default 2: one per core of CI)
#
# The targets are the table below: one line each, its name (tests/fuzz/<name>.c),
# the sources it is compiled with, and the pkg-config modules it links. Adding a
# target is adding a line. Each is compiled directly with clang
# (-fsanitize=fuzzer,address,undefined), so no CMake configuration is involved.
#
# Corpora. A run reads three directories: $FS_FUZZ_DIR/corpus-<target>/ (kept
# between runs; what libFuzzer finds is written there), the hand-written
# seeds/<target>/ and the committed corpus/<target>/, which is what earlier
# runs found, minimised. `--merge` minimises corpus/<target>/ together with
# the run corpus (libFuzzer -merge=1: a small set reaching the same edges),
# drops what duplicates a seed, and replaces corpus/<target>/ with
# the result, ready to commit; it refuses a result over MAX_FILES files or
# MAX_BYTES bytes per target, which would mean the inputs grew too big.
#
# Exits non-zero when any target crashes, leaks, runs out of memory, times out
# or fails a check; the failing input is left in $FS_FUZZ_DIR/artifacts-<target>/.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FS_FUZZ_DIR:-$root/build-fuzz}
jobs=${FS_FUZZ_JOBS:-2}
MAX_FILES=300
MAX_BYTES=150000 # per target: six targets' corpora stay under 1 MB

# ---- the targets: name, sources (under src/), pkg-config modules ----------
codec="codec/decode.c codec/frame.c codec/event.c base/utf8.c base/util.c"
declare -A t_srcs t_pkgs
declare -a all_targets=()
target() { all_targets+=("$1"); t_srcs[$1]=$2; t_pkgs[$1]=$3; }
target fuzz_decode_msgpack "$codec" "msgpack libxxhash"
target fuzz_decode_json "$codec" "msgpack libxxhash"
target fuzz_frame "$codec" "msgpack libxxhash"
target fuzz_state "core/state.c core/aggregate.c core/pane.c base/sketch.c base/buf.c base/dict.c
                   base/i64map.c base/utf8.c base/util.c" "msgpack libxxhash"
target fuzz_config "core/config.c base/dict.c base/utf8.c base/util.c" "msgpack libxxhash libfyaml"
# /api/journeys' request path and what a lookup reads, a live engine: the
# sources of base, codec and core (not TSan's shim, nor the embedding API)
engine=$(cd "$root/src" && ls base/*.c codec/*.c core/*.c | grep -v -e tsan_threads.c -e pipeline.c)
target fuzz_http "http/request.c http/lookup.c $(echo $engine)" \
    "msgpack libxxhash libfyaml liburcu-memb liburcu-cds"

mode=fuzz
if [ "${1:-}" = --merge ]; then mode=merge; shift; fi
secs=${1:-60}
targets=${FS_FUZZ_TARGETS:-${all_targets[*]}}
for t in $targets; do
    [ -n "${t_srcs[$t]+set}" ] || { echo "run.sh: unknown target $t" >&2; exit 2; }
done

command -v clang >/dev/null || { echo "run.sh: clang not found (run scripts/setup)" >&2; exit 2; }
# shellcheck disable=SC2054  # the commas are clang's, inside one flag
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -Wall -Wextra -I"$root/src/base" -I"$root/src/codec" -I"$root/src/core"
        -I"$root/src/http")

build() { # target
    local t=$1 deps srcs=()
    # shellcheck disable=SC2086  # a list of module names
    deps=$(pkg-config --cflags --libs ${t_pkgs[$t]}) ||
        { echo "run.sh: pkg-config cannot find ${t_pkgs[$t]} (run scripts/setup)" >&2; return 2; }
    for s in ${t_srcs[$t]}; do srcs+=("$root/src/$s"); done
    # shellcheck disable=SC2086  # $deps is a list of flags
    clang "${cflags[@]}" "$here/$t.c" "${srcs[@]}" $deps -lm -lpthread -o "$out/$t"
}

# The read-only corpus directories of a target that exist.
inputs() { # target
    local d
    for d in "$here/seeds/$1" "$here/corpus/$1"; do [ -d "$d" ] && echo "$d"; done
    return 0
}

fuzz() { # target: runs it, leaves $out/$t.log and $out/$t.rc
    local t=$1 dict=() dirs=() rc=0
    mkdir -p "$out/corpus-$t" "$out/artifacts-$t"
    [ -f "$here/seeds/$t.dict" ] && dict=(-dict="$here/seeds/$t.dict")
    mapfile -t dirs < <(inputs "$t")
    "$out/$t" "$out/corpus-$t" "${dirs[@]}" "${dict[@]}" -max_total_time="$secs" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/artifacts-$t/" \
        >"$out/$t.log" 2>&1 || rc=$?
    echo "$rc" >"$out/$t.rc"
}

merge() { # target: minimises the kept corpus and the run corpus into corpus/$t
    local t=$1 files bytes
    local new="$out/merge-$t" kept="$here/corpus/$t"
    rm -rf "$new"
    mkdir -p "$new" "$kept" "$out/corpus-$t"
    # -use_counters=0: edges only, not how often each ran, which keeps a
    # few hundred files instead of a thousand for the same code reached
    "$out/$t" -merge=1 -use_counters=0 "$new" "$kept" "$out/corpus-$t" >"$out/$t.merge.log" 2>&1 ||
        { tail -n 20 "$out/$t.merge.log" >&2; return 1; }
    if [ -d "$here/seeds/$t" ]; then # a seed is committed already
        declare -A seed_sum=()
        while read -r sum _; do seed_sum[$sum]=1; done < <(sha1sum "$here/seeds/$t/"*)
        while read -r sum f; do
            [ -n "${seed_sum[$sum]+set}" ] && rm -f "$f"
        done < <(sha1sum "$new"/* 2>/dev/null)
    fi
    files=$(find "$new" -type f | wc -l)
    bytes=$(find "$new" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}')
    if [ "$files" -gt "$MAX_FILES" ] || [ "$bytes" -gt "$MAX_BYTES" ]; then
        echo "run.sh: $t: the merged corpus has $files files, $bytes bytes" \
             "(at most $MAX_FILES, $MAX_BYTES): not kept" >&2
        return 1
    fi
    rm -rf "$kept"
    mv "$new" "$kept"
    echo "== $t: corpus/$t: $files files, $bytes bytes" >&2
}

mkdir -p "$out"
for t in $targets; do
    echo "== $t: building" >&2
    build "$t"
done

failed=()
if [ "$mode" = merge ]; then
    for t in $targets; do merge "$t" || failed+=("$t"); done
    [ ${#failed[@]} -eq 0 ] || { echo "run.sh: merge FAILED: ${failed[*]}" >&2; exit 1; }
    echo "run.sh: corpora minimised into tests/fuzz/corpus/ (git add tests/fuzz/corpus)" >&2
    exit 0
fi

# $jobs targets at a time: a slot frees when any of them ends (wait -n).
running=0
for t in $targets; do
    if [ "$running" -ge "$jobs" ]; then wait -n || true; running=$((running - 1)); fi
    echo "== $t: fuzzing for ${secs}s" >&2
    fuzz "$t" &
    running=$((running + 1))
done
wait

for t in $targets; do
    if [ "$(cat "$out/$t.rc")" != 0 ]; then
        failed+=("$t")
        echo "== $t: FAILED" >&2
        tail -n 60 "$out/$t.log" >&2
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' \
        "$out/$t.log" | sed "s/^/   $t /" >&2 || true
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: FAILED: ${failed[*]} (inputs in $out/artifacts-*/)" >&2
    exit 1
fi
echo "run.sh: all targets ran ${secs}s without findings" >&2
