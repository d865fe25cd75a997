#!/usr/bin/env bash
# Runs the micro-benchmarks of Benchmarks/GatewayBenchmarks (ordo-one/benchmark) on a release
# build and prints one table per benchmark: percentiles per operation of wall clock, process
# CPU, mallocs and, where the machine has hardware counters, instructions.
#
#   bash bench/micro.sh                  # every benchmark
#   bash bench/micro.sh Routing          # those whose name contains a match of a regular expression
#   bash bench/micro.sh Gateway.route --allocation-stacks   # the rest goes to the plugin: here,
#                                        # where each counted malloc comes from
#
# The first run builds the release configuration (several minutes on 2 cores). Figures of
# one run on the standard machine: bench/micro-results.md. CI only builds the target.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit 0
fi

filter=${1:-}
[[ $# -gt 0 ]] && shift
args=(--target GatewayBenchmarks --no-progress)
# The plugin matches the whole name; a filter here may match any part of it.
[[ -n $filter ]] && args+=(--filter ".*(${filter}).*")
exec swift package benchmark run "${args[@]}" "$@"
