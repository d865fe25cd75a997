#!/usr/bin/env bash
# Runs the micro-benchmarks of Benchmarks/GatewayBenchmarks (ordo-one/benchmark) on a release
# build and prints one table per benchmark: percentiles of wall clock, CPU, instructions and
# mallocs, per operation (each iteration runs the operation 1,000 times).
#
#   bash bench/micro.sh                  # every benchmark
#   bash bench/micro.sh 'Routing'        # those whose name matches a regular expression
#   bash bench/micro.sh '' --format markdown   # anything after the filter goes to the plugin
#
# The first run builds the release configuration (several minutes on 2 cores). Figures of
# one run on the standard machine: bench/micro-results.md. CI only builds the target.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

filter=${1:-}
[[ $# -gt 0 ]] && shift
args=(--target GatewayBenchmarks --no-progress)
[[ -n $filter ]] && args+=(--filter "$filter")
exec swift package benchmark run "${args[@]}" "$@"
