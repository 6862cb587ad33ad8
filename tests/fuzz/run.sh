#!/usr/bin/env bash
# run.sh -- build the libFuzzer targets and run each for SECONDS (default 20).
#
# Usage: tests/fuzz/run.sh [SECONDS]
#   FS_FUZZ_DIR  where binaries, corpora and crash artifacts go
#                (default: <repo>/build-fuzz)
#   FS_FUZZ_TARGETS  space-separated subset of targets to run (default: all)
#
# Each target is compiled directly with clang (-fsanitize=fuzzer,address,
# undefined) from the sources it needs (the input decoders', for fuzz_state
# the state codec's, for fuzz_http the request helpers and the journey
# lookup with the engine under it), so no CMake configuration is involved. The
# committed seeds are copied into a corpus directory that is kept between
# runs, so repeated runs keep what earlier runs found. Exits
# non-zero when any target crashes, leaks, times out or fails a check; the
# crashing input is left in $FS_FUZZ_DIR/artifacts-<target>/.
set -euo pipefail

secs=${1:-20}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${FS_FUZZ_DIR:-$root/build-fuzz}
targets=${FS_FUZZ_TARGETS:-"fuzz_decode_msgpack fuzz_decode_json fuzz_frame fuzz_state fuzz_http"}

command -v clang >/dev/null || { echo "run.sh: clang not found (run scripts/setup)" >&2; exit 2; }
deps=$(pkg-config --cflags --libs msgpack libxxhash) ||
    { echo "run.sh: pkg-config cannot find msgpack/libxxhash (run scripts/setup)" >&2; exit 2; }
engine_deps=$(pkg-config --cflags --libs msgpack libxxhash libfyaml liburcu-memb liburcu-cds) ||
    { echo "run.sh: pkg-config cannot find the engine's libraries (run scripts/setup)" >&2; exit 2; }

srcs=("$root/src/codec/decode.c" "$root/src/codec/frame.c" "$root/src/base/utf8.c" "$root/src/codec/event.c"
      "$root/src/base/util.c")
state_srcs=("$root/src/core/state.c" "$root/src/core/aggregate.c" "$root/src/core/pane.c"
            "$root/src/base/sketch.c" "$root/src/base/buf.c" "$root/src/base/dict.c"
            "$root/src/base/i64map.c" "$root/src/base/utf8.c" "$root/src/base/util.c")
# fuzz_http: /api/journeys' request path (src/http/request.c, lookup.c) and
# what a lookup reads, a live engine: the sources of base, codec and core
# (not TSan's shim, nor the embedding API).
http_srcs=("$root/src/http/request.c" "$root/src/http/lookup.c")
for f in "$root"/src/base/*.c "$root"/src/codec/*.c "$root"/src/core/*.c; do
    case $(basename "$f") in tsan_threads.c | pipeline.c) ;; *) http_srcs+=("$f") ;; esac
done
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
        -Wall -Wextra -I"$root/src/base" -I"$root/src/codec" -I"$root/src/core"
        -I"$root/src/http")

mkdir -p "$out"
failed=()
for t in $targets; do
    echo "== $t: building" >&2
    t_srcs=("${srcs[@]}")
    t_deps=$deps
    if [ "$t" = fuzz_state ]; then t_srcs=("${state_srcs[@]}"); fi
    if [ "$t" = fuzz_http ]; then t_srcs=("${http_srcs[@]}"); t_deps=$engine_deps; fi
    # shellcheck disable=SC2086  # $t_deps is a list of flags
    clang "${cflags[@]}" "$here/$t.c" "${t_srcs[@]}" $t_deps -lm -lpthread -o "$out/$t"

    corpus="$out/corpus-$t"
    artifacts="$out/artifacts-$t"
    mkdir -p "$corpus" "$artifacts"
    cp "$here/seeds/$t/"* "$corpus/"
    dict=()
    [ -f "$here/seeds/$t.dict" ] && dict=(-dict="$here/seeds/$t.dict")

    echo "== $t: fuzzing for ${secs}s" >&2
    if ! "$out/$t" "$corpus" "${dict[@]}" -max_total_time="$secs" -max_len=4096 -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        2>"$out/$t.log"; then
        failed+=("$t")
        tail -n 60 "$out/$t.log" >&2
    fi
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$out/$t.log" \
        | sed "s/^/   $t /" >&2 || true
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: FAILED: ${failed[*]} (inputs in $out/artifacts-*/)" >&2
    exit 1
fi
echo "run.sh: all targets ran ${secs}s without findings" >&2
