#!/usr/bin/env bash
# thread_determinism.sh -- replay output is byte-identical however it is run.
#
# README "Architecture": every aggregate is an integer, a fixed-point sum or
# a mergeable sketch, and workers cut their partials at the same watermark
# points, so the output must not depend on the thread count. Nor may it depend
# on how the same events are encoded (MessagePack or JSON lines) or read (a
# file, or stdin with --format). For each case below -- generated with
# disorder (inside and beyond the config's max_out_of_orderness, so late
# events are included) and 0.1 % malformed records -- it checks with cmp:
#   --threads 1 == 2 == 4 == 8   (msgpack file)
#   msgpack file == JSON-lines file of the same seed   (--threads 3)
#   file == stdin (`--input - --format F`), msgpack and JSON in turn
# and, where a case names one, that some output line matches a marker
# (grep -E; so a case meant for a feature -- the "(other)" cut, unordered or
# optional stages, issue 14 -- really produced records that use it).
#
# Usage (ctest sets the environment):
#   FS_BIN=build/funnelstream FS_SOURCE_DIR=. FS_TMP=/tmp bash tests/e2e/thread_determinism.sh
# On a mismatch it names the case and the two runs, shows the first differing
# line of each, keeps its scratch directory and exits 1.
set -euo pipefail

: "${FS_BIN:?FS_BIN must name the funnelstream binary}"
: "${FS_SOURCE_DIR:?FS_SOURCE_DIR must name the repository root}"
: "${FS_TMP:?FS_TMP must name a scratch directory}"

CFG="$FS_SOURCE_DIR/configs"
XCFG="$FS_SOURCE_DIR/tests/e2e/configs"

# name | config | events | customers | seed | rate | disorder_ms | marker (ERE, - = none)
CASES=(
    "default|$CFG/default.yaml|60000|3000|31|1000|3000|-"
    "default_late|$CFG/default.yaml|50000|2000|32|200|9000|-"
    "hopping|$XCFG/hopping.yaml|50000|2500|33|200|4000|-"
    "strict_10m|$XCFG/strict_10m.yaml|50000|2000|34|20|1500|-"
    "exclusions|$XCFG/exclusions.yaml|50000|2000|35|50|2000|-"
    "four_funnels|$XCFG/four_funnels.yaml|50000|3000|36|1000|15000|-"
    "tiny_ooo|$XCFG/tiny_ooo.yaml|50000|1500|37|1000|3000|-"
    "campaign_breakdown|$XCFG/campaign_breakdown.yaml|50000|2500|38|500|8000|\"by_campaign\":\\{\"\\(other\\)\":"
    "unordered|$XCFG/unordered.yaml|50000|2000|39|200|8000|\"funnel\":\"b2b_any\".*\"completed\":[1-9]"
    "optional_strict|$XCFG/optional_strict.yaml|50000|2000|40|100|8000|\"funnel\":\"b2b_trial\".*\"completed\":[1-9]"
)
MALFORMED=0.001

work=$(mktemp -d "$FS_TMP/thread_determinism.XXXXXX")
failures=0
case_no=0

# same CASE WHAT A B: cmp two outputs; on a difference report the first
# differing line of each.
same() {
    local case=$1 what=$2 a=$3 b=$4
    if cmp -s "$a" "$b"; then
        return 0
    fi
    failures=$((failures + 1))
    {
        echo "thread_determinism: FAIL [$case]: $what: outputs differ"
        echo "  $a ($(wc -l <"$a") lines) vs $b ($(wc -l <"$b") lines)"
        cmp "$a" "$b" || true
        diff <(cat "$a") <(cat "$b") | head -n 4 | cut -c 1-400 | sed 's/^/  /' || true
    } >&2
    return 1
}

# replay CASE OUT ARGS...: runs replay; a non-zero exit is a failure.
replay() {
    local case=$1 out=$2
    shift 2
    if ! "$FS_BIN" replay --quiet --output "$out" "$@" 2>"$out.err"; then
        failures=$((failures + 1))
        echo "thread_determinism: FAIL [$case]: replay $* exited non-zero:" >&2
        tail -n 5 "$out.err" >&2
        return 1
    fi
}

for c in "${CASES[@]}"; do
    IFS='|' read -r name config events customers seed rate disorder marker <<<"$c"
    dir="$work/$name"
    mkdir -p "$dir"
    start=$SECONDS
    gen=(--events "$events" --customers "$customers" --seed "$seed" --rate "$rate"
        --disorder "$disorder" --malformed-fraction "$MALFORMED")
    "$FS_BIN" generate "${gen[@]}" --format msgpack --output "$dir/events.msgpack"
    "$FS_BIN" generate "${gen[@]}" --format json --output "$dir/events.jsonl"
    echo "thread_determinism: [$name] config=$config generate ${gen[*]}"

    ok=1
    for t in 1 2 4 8; do
        replay "$name" "$dir/t$t.jsonl" --config "$config" --input "$dir/events.msgpack" \
            --threads "$t" || ok=0
    done
    [[ -s $dir/t1.jsonl ]] || {
        echo "thread_determinism: FAIL [$name]: --threads 1 produced no records" >&2
        failures=$((failures + 1))
        ok=0
    }
    for t in 2 4 8; do
        same "$name" "--threads 1 vs --threads $t" "$dir/t1.jsonl" "$dir/t$t.jsonl" || ok=0
    done
    if [[ $marker != - ]] && ! grep -qE -- "$marker" "$dir/t1.jsonl"; then
        echo "thread_determinism: FAIL [$name]: no record holds $marker" >&2
        failures=$((failures + 1))
        ok=0
    fi

    replay "$name" "$dir/json.jsonl" --config "$config" --input "$dir/events.jsonl" \
        --threads 3 || ok=0
    same "$name" "msgpack vs JSON input" "$dir/t1.jsonl" "$dir/json.jsonl" || ok=0

    # stdin: one encoding per case, alternating, to keep the test fast
    fmt=msgpack ext=msgpack from_file=t1
    if ((case_no % 2)); then
        fmt=json ext=jsonl from_file=json
    fi
    replay "$name" "$dir/stdin.jsonl" --config "$config" --input - --format "$fmt" \
        --threads 2 <"$dir/events.$ext" || ok=0
    same "$name" "$fmt file vs stdin" "$dir/$from_file.jsonl" "$dir/stdin.jsonl" || ok=0
    case_no=$((case_no + 1))

    if ((ok)); then
        echo "thread_determinism: ok   [$name] $(wc -l <"$dir/t1.jsonl") records identical" \
            "for threads 1/2/4/8, msgpack/JSON, file/stdin ($fmt) ($((SECONDS - start)) s)"
        rm -rf "$dir"
    fi
done

if ((failures > 0)); then
    echo "thread_determinism: $failures check(s) FAILED; scratch files kept in $work" >&2
    exit 1
fi
rm -rf "$work"
echo "thread_determinism: all ${#CASES[@]} cases byte-identical"
