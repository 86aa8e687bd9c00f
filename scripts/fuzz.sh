#!/bin/bash
# libFuzzer over the wire path (see Fuzz/main.swift). Usage: scripts/fuzz.sh [SECONDS] [regress]
#   SECONDS  how long to fuzz (default 60); the corpus grows in .build/fuzz/corpus
#   regress  instead of fuzzing, run every committed input once (seeds and crash cases)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
out=.build/fuzz
mkdir -p "$out/corpus"
sources=(Fuzz/main.swift Sources/QMPWire/*.swift Sources/QMPSessions/ClientSession.swift
         Sources/QMPSessions/UpstreamLine.swift
         Sources/BrokerTesting/WireExercise.swift)
if [[ ! -x "$out/qmp-fuzz" ]] || [[ -n "$(find "${sources[@]}" -newer "$out/qmp-fuzz")" ]]; then
    # One module for the fuzzer: the imports of the package's own modules are dropped.
    rm -rf "$out/src" && mkdir -p "$out/src"
    for file in "${sources[@]}"; do
        sed -E '/^import (QMPWire|QMPSessions)$/d' "$file" > "$out/src/$(basename "$file")"
    done
    swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name QMPFuzz \
        -use-ld=lld -I Sources/CJansson -ljansson "$out/src"/*.swift -o "$out/qmp-fuzz"
fi
if [[ "${2:-}" == regress ]]; then
    exec "$out/qmp-fuzz" -runs=0 Fuzz/seeds Fuzz/crashes
fi
# New finds go to .build/fuzz/corpus; crash inputs land in Fuzz/crashes to be kept as regressions.
exec "$out/qmp-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
    -artifact_prefix=Fuzz/crashes/ -print_final_stats=1 "$out/corpus" Fuzz/seeds
