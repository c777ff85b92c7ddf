#!/usr/bin/env bash
# Builds the libFuzzer harness and fuzzes the checkpoint readers.
#
#   Tools/Fuzz/run.sh [SECONDS] [MODE ...]
#
# SECONDS (default 60) is per mode; MODEs are raw pickle legacy zip safetensors npy hdf5 zipdir keras index dcp (default: all of them).
# Crash / timeout / OOM inputs go to Tools/Fuzz/crashes/<mode>-*, "soft" findings (error descriptions that are
# not one printable line) to Tools/Fuzz/crashes/soft/, the growing corpus to Tools/Fuzz/corpus/<mode>/ (all
# git-ignored), logs to Tools/Fuzz/logs/. Exit status 1 if any crash file was written. Tools/Fuzz/dicts/<mode>.dict
# is passed as the libFuzzer dictionary where there is one.
#
# Environment: FUZZ_CONFIG=debug builds without optimisation (default release: -O keeps Swift's bounds and
# overflow traps and runs ~2x faster under ASan); FUZZ_KEEP_GOING=1 keeps fuzzing after a crash (libFuzzer -fork=1 -ignore_*); FUZZ_ARGS adds
# libFuzzer flags; FUZZ_STRICT=0 turns off the harness's API invariants (see Sources/CheckpointFuzz/Fuzz.swift).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SECONDS_PER_MODE="${1:-60}"
shift || true
MODES=("$@")
[ ${#MODES[@]} -eq 0 ] && MODES=(raw pickle legacy zip safetensors npy hdf5 zipdir keras index dcp)

CONFIG="${FUZZ_CONFIG:-release}"

cd "$HERE"
echo "== building ($CONFIG, -sanitize=fuzzer,address)"
# One -sanitize=fuzzer,address for the compiler: swift-driver keeps only the *last* -sanitize= option, and
# `--sanitize=fuzzer --sanitize=address` passes two (in no fixed order), so each build would silently get either
# coverage or ASan, not both. `--sanitize=fuzzer` stays so that SwiftPM links the executable for libFuzzer's main.
BUILD=(swift build -c "$CONFIG" --package-path "$HERE" --scratch-path "$HERE/.build-fuzz"
       --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)
"${BUILD[@]}" 2>&1 | grep -vE "^\[[0-9]+/[0-9]+\]" || true
BIN="$("${BUILD[@]}" --show-bin-path)/CheckpointFuzz"
[ -x "$BIN" ] || { echo "build failed: $BIN missing" >&2; exit 1; }
# Both instrumentations must be in the readers' objects: coverage counters and ASan checks.
OBJ="$(dirname "$BIN")/Checkpoints.build/PickleMachine.swift.o"
if [ "$(readelf -S "$OBJ" | grep -c __sancov_cntrs)" = 0 ] || [ "$(nm -u "$OBJ" | grep -c __asan_)" = 0 ]; then
    echo "WARNING: $OBJ lacks coverage counters or ASan checks; the fuzzer would run blind or unchecked" >&2
fi

python3 "$HERE/seeds.py" "$HERE/seeds" >/dev/null
mkdir -p "$HERE/crashes/soft" "$HERE/logs"

# The Swift runtime's own crash backtracer would race libFuzzer's and ASan's handlers (and can hang).
export SWIFT_BACKTRACE=enable=no
# A small quarantine keeps ASan's own memory well under -rss_limit_mb (its default 256 MB alone would use half).
# Single allocations above 512 MB are ASan errors (max_allocation_size_mb) rather than libFuzzer's malloc-limit
# OOMs (-malloc_limit_mb is raised out of the way): an ASan error in the HDF5 reader's forked child is contained by
# the harness (see ForkedChild in Fuzz.swift), a libFuzzer malloc-limit report there would be a false finding.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64:max_allocation_size_mb=512:detect_leaks=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$HERE/lsan.supp:print_suppressions=0}"
export FUZZ_SOFT_DIR="$HERE/crashes/soft"
# The harness's per-process scratch files (and those of fork-mode jobs that died) stay in here.
export TMPDIR="$HERE/.build-fuzz/tmp"
mkdir -p "$TMPDIR"

before=$(find "$HERE/crashes" -maxdepth 1 -type f | wc -l)
for mode in "${MODES[@]}"; do
    mkdir -p "$HERE/corpus/$mode"
    log="$HERE/logs/$mode-$(date +%Y%m%d-%H%M%S).log"
    extra=()
    dict="$HERE/dicts/$mode.dict"; [ "$mode" = legacy ] && dict="$HERE/dicts/pickle.dict"
    [ -f "$dict" ] && extra+=(-dict="$dict")
    if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
        extra+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    # ASan's shadow memory and allocator caches grow with the zip directory mode's many small members (a run was
    # stopped at 512 MB RSS with 29 MB live heap): that mode gets more room. FUZZ_RSS_MB overrides every mode.
    rss=512; [ "$mode" = zipdir ] && rss=2048
    rss="${FUZZ_RSS_MB:-$rss}"
    echo "== $mode: ${SECONDS_PER_MODE}s, -rss_limit_mb=$rss, log $log"
    set +e
    # shellcheck disable=SC2086
    FUZZ_MODE="$mode" "$BIN" "$HERE/corpus/$mode" "$HERE/seeds/$mode" \
        -max_total_time="$SECONDS_PER_MODE" -rss_limit_mb="$rss" -malloc_limit_mb=1048576 -timeout=10 -max_len=262144 \
        -artifact_prefix="$HERE/crashes/$mode-" -print_final_stats=1 "${extra[@]}" ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|Test unit written|SUMMARY|fuzz invariant" "$log" | sort -u || true
    soft=$(grep -c "^soft finding" "$log" || true)
    [ "$soft" != 0 ] && echo "   $soft soft finding(s) recorded in $FUZZ_SOFT_DIR (see the .txt files)"
    # fork mode (FUZZ_KEEP_GOING=1) prints no stat:: lines; its last progress line has the totals.
    grep -E "^#[0-9]+: cov:" "$log" | tail -1 || true
    grep -qE "cov: [1-9]" "$log" || echo "   WARNING: no coverage feedback in $log (uninstrumented build? see the -sanitize note above)"
    if [ $rc -ne 0 ]; then echo "   libFuzzer exited with $rc"; fi
done

rm -rf "$TMPDIR"
after=$(find "$HERE/crashes" -maxdepth 1 -type f | wc -l)
if [ "$after" -gt "$before" ]; then
    echo "== $((after - before)) new crash file(s) in $HERE/crashes (see README.md: minimise, then replay)"
    exit 1
fi
echo "== no crashes"
