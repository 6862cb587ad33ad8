#!/usr/bin/env bash
# reference_check.sh -- the engine against the independent Python reference.
#
# For each combination below (config, input format, generator options, thread
# count) it generates traffic with `funnelstream generate`, runs
# `funnelstream replay` and tests/reference/funnel_ref.py on the same file and
# compares them with tests/reference/compare.py. The combinations spread the
# traffic shape: event-time rates from 0.2 to 20000 events/s (windows with a
# handful of events to windows with hundreds of thousands), few and many
# customers, disorder inside and beyond the config's max_out_of_orderness (so
# late events and late expiries occur), malformed records, tumbling and
# hopping windows, strict and open funnels, several funnels at once; and the
# funnel options of issue 14 (unordered mode, optional stages, campaign
# breakdowns with the "(other)" cut, stage_time_ms), in fixed configs and in
# random ones.
#
# A combination whose config is `random:<seed>` runs on the config that
# tests/reference/random_config.py --seed <seed> writes into its scratch
# directory (every funnel option at random: modes, optional stages,
# breakdowns, small max_breakdown_values, stage_time, windows, excludes).
#
# Usage (ctest sets the environment):
#   FS_BIN=build/funnelstream FS_SOURCE_DIR=. FS_TMP=/tmp bash tests/e2e/reference_check.sh [NAME...]
# With NAMEs only those combinations run (a NAME ending in * selects every
# combination starting with what precedes it, e.g. 'random_*'). A combination
# named *late* must produce late events, one with malformed records
# rejections. On a mismatch it prints the combination, the commands that
# reproduce it and the differing records, keeps its scratch directory, goes on
# with the other combinations, and exits 1.
#
# An engine that prints no stage_time_ms yet (before issue 14) can be checked
# with FUNNEL_REF_OMIT_STAGE_TIME=1 in the environment: the reference then
# leaves that field out too.
set -euo pipefail

: "${FS_BIN:?FS_BIN must name the funnelstream binary}"
: "${FS_SOURCE_DIR:?FS_SOURCE_DIR must name the repository root}"
: "${FS_TMP:?FS_TMP must name a scratch directory}"

PY=/usr/bin/python3
REF="$FS_SOURCE_DIR/tests/reference"
CFG="$FS_SOURCE_DIR/configs"
XCFG="$FS_SOURCE_DIR/tests/e2e/configs"

# name | config | format | events | customers | seed | rate | disorder_ms | malformed | threads
COMBOS=(
    "default_r1000|$CFG/default.yaml|msgpack|60000|2000|1|1000|0|0|2"
    "default_r50_ooo_inside|$CFG/default.yaml|json|50000|3000|2|50|4000|0.001|3"
    "default_r10000_late|$CFG/default.yaml|msgpack|70000|5000|3|10000|8000|0.002|4"
    "default_r0.2_sparse|$CFG/default.yaml|json|12000|300|4|0.2|0|0.001|2"
    "aida_r20000_many_customers|$CFG/aida.yaml|json|60000|20000|5|20000|0|0|1"
    "product_strict_r1000_late|$CFG/product_strict.yaml|msgpack|60000|1000|6|1000|9000|0|2"
    "b2b_r2_malformed|$CFG/b2b_pipeline.yaml|msgpack|40000|800|7|2|3000|0.05|2"
    "hopping_r200|$XCFG/hopping.yaml|msgpack|50000|2000|8|200|3000|0.001|2"
    "hopping_r1000_late|$XCFG/hopping.yaml|json|50000|4000|9|1000|20000|0|3"
    "strict10m_r10|$XCFG/strict_10m.yaml|msgpack|50000|1500|10|10|1000|0.001|2"
    "strict10m_r20000_late|$XCFG/strict_10m.yaml|json|60000|3000|11|20000|5000|0|4"
    "exclusions_r50_malformed|$XCFG/exclusions.yaml|json|50000|2000|12|50|2000|0.01|2"
    "four_funnels_r1000_late|$XCFG/four_funnels.yaml|msgpack|50000|3000|13|1000|15000|0.001|3"
    "four_funnels_r5|$XCFG/four_funnels.yaml|json|30000|500|14|5|0|0|2"
    "tiny_ooo_r1000|$XCFG/tiny_ooo.yaml|msgpack|50000|2000|15|1000|3000|0.001|2"
    "tiny_ooo_r50_few_customers|$XCFG/tiny_ooo.yaml|json|40000|500|16|50|30000|0.002|4"
    # Disorder beyond the conversion window: journeys started by late events
    # expire into closed windows; such an expiry adds to late_events of the
    # earliest window open before the watermark advance (README decisions 1, 6).
    "tiny_ooo_disorder_beyond_cw|$XCFG/tiny_ooo.yaml|json|20000|700|17|10|120000|0.01|1"
    # The bundled examples of issue 14's options, on generate's campaigns,
    # coupon step and onboarding traffic.
    "bundled_b2b_velocity_r200|$CFG/b2b_velocity.yaml|msgpack|60000|3000|41|200|3000|0.001|2"
    "bundled_campaigns_r1000_late|$CFG/campaigns.yaml|json|60000|4000|42|1000|12000|0|3"
    "bundled_onboarding_r100|$CFG/onboarding_unordered.yaml|msgpack|80000|2000|43|100|2000|0.001|2"
    "bundled_checkout_optional_r1000_late|$CFG/checkout_optional.yaml|json|60000|3000|44|1000|9000|0|2"
    # Issue 14: unordered mode, optional stages, campaign breakdowns.
    "unordered_r200|$XCFG/unordered.yaml|msgpack|50000|2000|21|200|3000|0.001|2"
    "unordered_r2000_late|$XCFG/unordered.yaml|json|50000|3000|22|2000|15000|0|3"
    "optional_strict_r100|$XCFG/optional_strict.yaml|msgpack|50000|2000|23|100|2000|0.001|2"
    "optional_strict_r5000_late|$XCFG/optional_strict.yaml|json|50000|1500|24|5000|12000|0|3"
    "campaign_r500|$XCFG/campaign_breakdown.yaml|json|50000|3000|25|500|2000|0.001|2"
    "campaign_r2000_late|$XCFG/campaign_breakdown.yaml|msgpack|60000|5000|26|2000|15000|0|4"
    # Random configs (tests/reference/random_config.py), random:<seed>.
    "random_101|random:101|msgpack|30000|1500|31|200|2000|0|2"
    "random_102|random:102|json|30000|3000|32|1000|5000|0.001|3"
    "random_103|random:103|msgpack|30000|800|33|20|1000|0|2"
    "random_104|random:104|json|40000|5000|34|5000|20000|0.002|4"
    "random_105|random:105|msgpack|20000|400|35|2|3000|0|1"
    "random_106|random:106|json|30000|2000|36|500|0|0.001|2"
)

work=$(mktemp -d "$FS_TMP/reference_check.XXXXXX")
failed=()

fail() {
    echo "reference_check: FAIL [$1]: $2" >&2
    failed+=("$1")
}

# run_combo NAME CONFIG FORMAT EVENTS CUSTOMERS SEED RATE DISORDER MALFORMED THREADS
run_combo() {
    local name=$1 config=$2 fmt=$3 events=$4 customers=$5 seed=$6 rate=$7 disorder=$8
    local malformed=$9 threads=${10}
    local ext=msgpack
    [[ $fmt == json ]] && ext=jsonl
    local dir="$work/$name"
    mkdir -p "$dir"
    local input="$dir/events.$ext"
    local make_config=()
    if [[ $config == random:* ]]; then
        make_config=("$PY" "$REF/random_config.py" --seed "${config#random:}"
            --output "$dir/config.yaml")
        config="$dir/config.yaml"
        if ! "${make_config[@]}" 2>"$dir/random_config.err"; then
            fail "$name" "random_config.py failed: $(cat "$dir/random_config.err")"
            return
        fi
    fi
    local gen=("$FS_BIN" generate --events "$events" --customers "$customers" --seed "$seed"
        --rate "$rate" --disorder "$disorder" --malformed-fraction "$malformed"
        --format "$fmt" --output "$input")
    local rep=("$FS_BIN" replay --config "$config" --input "$input" --format "$fmt"
        --threads "$threads" --quiet --output "$dir/actual.jsonl")
    local ref=("$PY" "$REF/funnel_ref.py" --config "$config" --input "$input" --format "$fmt")
    local start=$SECONDS
    if ! "${gen[@]}" 2>"$dir/generate.err"; then
        fail "$name" "generate failed: $(cat "$dir/generate.err")"
        return
    fi
    if ! "${rep[@]}" 2>"$dir/replay.err"; then
        fail "$name" "replay failed: $(tail -n 5 "$dir/replay.err")"
        return
    fi
    if ! "${ref[@]}" >"$dir/expected.jsonl" 2>"$dir/ref.err"; then
        fail "$name" "funnel_ref.py failed: $(tail -n 5 "$dir/ref.err")"
        return
    fi
    if ! "$PY" "$REF/compare.py" "$dir/expected.jsonl" "$dir/actual.jsonl" >"$dir/compare.out" 2>&1; then
        fail "$name" "engine and reference differ"
        {
            echo "  combination: config=$config format=$fmt events=$events customers=$customers" \
                "seed=$seed rate=$rate disorder=$disorder malformed=$malformed threads=$threads"
            echo "  reproduce:"
            ((${#make_config[@]} == 0)) || echo "    ${make_config[*]}"
            echo "    ${gen[*]}"
            echo "    ${rep[*]}"
            echo "    ${ref[*]} > $dir/expected.jsonl"
            echo "    $PY $REF/compare.py $dir/expected.jsonl $dir/actual.jsonl"
            echo "  compare.py says:"
            head -n 40 "$dir/compare.out" | sed 's/^/    /'
        } >&2
        return
    fi
    # The combination must exercise what its name promises: a match on
    # traffic without late events or rejections would prove less than it seems.
    if [[ $name == *late* ]] && ! grep -q '"late_events":[1-9]' "$dir/expected.jsonl"; then
        fail "$name" "meant to produce late events, but no record has late_events > 0"
        return
    fi
    if [[ $malformed != 0 ]] && ! grep -q '"rejected_events":[1-9]' "$dir/expected.jsonl"; then
        fail "$name" "meant to contain malformed records, but no record has rejected_events > 0"
        return
    fi
    local summary
    summary=$(grep -o 'valid=[0-9]* rejected=[0-9]* late=[0-9]*' "$dir/replay.err" | head -n 1 || true)
    echo "reference_check: ok   [$name] $(tail -n 1 "$dir/compare.out") $summary ($((SECONDS - start)) s)"
    rm -f "$input"
}

selected=0
for combo in "${COMBOS[@]}"; do
    IFS='|' read -r name config fmt events customers seed rate disorder malformed threads <<<"$combo"
    if (($# > 0)); then
        want=0
        for arg in "$@"; do
            if [[ $arg == *'*' ]]; then
                [[ $name == "${arg%'*'}"* ]] && want=1
            else
                [[ $arg == "$name" ]] && want=1
            fi
        done
        ((want)) || continue
    fi
    selected=$((selected + 1))
    run_combo "$name" "$config" "$fmt" "$events" "$customers" "$seed" "$rate" "$disorder" \
        "$malformed" "$threads"
done

if ((selected == 0)); then
    echo "reference_check: no combination selected by: $*" >&2
    exit 2
fi
if ((${#failed[@]} > 0)); then
    echo "reference_check: ${#failed[@]} of $selected combinations FAILED: ${failed[*]}" >&2
    echo "reference_check: scratch files kept in $work" >&2
    exit 1
fi
rm -rf "$work"
echo "reference_check: all $selected combinations match the reference"
