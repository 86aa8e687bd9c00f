#!/usr/bin/env bash
# Runs the whole suite under AddressSanitizer (with LeakSanitizer) and then under
# ThreadSanitizer: `make sanitize`. Not part of `make test` (each build takes ~10 min).
#
#   scripts/sanitize.sh [address|thread]...        (default: address thread)
#   SANITIZE_FILTER=QMPBrokerTests scripts/sanitize.sh thread   one target or suite only
#
# Each sanitizer builds into its own scratch path (.build-asan, .build-tsan, git-ignored
# by `.build*/`), and the suite's `qmp-broker run` children are that sanitized binary too
# (QMP_BROKER_BIN), so the daemon is checked as a separate process, not only in-process.
# Every sanitized process writes its reports to .build-X/reports/X.PID, whether it is the
# test runner or a broker child a test started, so that a report from a child whose exit
# code no test looks at is not lost. The run fails when the suite fails or any report
# file exists. Known false positives (stacks inside the toolchain's own libraries) are
# suppressed in scripts/sanitizers/, each with the frame that shows it.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
sanitizers=("$@")
[ ${#sanitizers[@]} -gt 0 ] || sanitizers=(address thread)
filter=()
[ -n "${SANITIZE_FILTER:-}" ] && filter=(--filter "$SANITIZE_FILTER")

status=0
for sanitizer in "${sanitizers[@]}"; do
    case $sanitizer in
        address) scratch=.build-asan ;;
        thread) scratch=.build-tsan ;;
        *) echo "sanitize.sh: unknown sanitizer '$sanitizer' (address or thread)" >&2; exit 2 ;;
    esac
    reports=$repo/$scratch/reports
    rm -rf "$reports"
    mkdir -p "$reports"
    export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
    export LSAN_OPTIONS="suppressions=$repo/scripts/sanitizers/lsan.supp:print_suppressions=0"
    export TSAN_OPTIONS="log_path=$reports/tsan:suppressions=$repo/scripts/sanitizers/tsan.supp:print_suppressions=0:halt_on_error=0"
    export QMP_BROKER_BIN=$repo/$scratch/debug/qmp-broker
    echo "== swift test --sanitize=$sanitizer --scratch-path $scratch ${filter[*]}"
    start=$(date +%s)
    nice -n 10 swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" || { status=1; continue; }
    nice -n 10 swift test --sanitize="$sanitizer" --scratch-path "$scratch" "${filter[@]}" 2>&1 \
        | tee "$scratch/sanitize-test.log"
    suite=${PIPESTATUS[0]}
    echo "== $sanitizer: suite exit $suite, $(( $(date +%s) - start )) s including the build"
    [ "$suite" -eq 0 ] || status=1
    if compgen -G "$reports/*" > /dev/null; then
        status=1
        for report in "$reports"/*; do
            echo "== $sanitizer report $report:"
            cat "$report"
        done
    else
        echo "== $sanitizer: no reports"
    fi
done
exit $status
