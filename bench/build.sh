#!/usr/bin/env bash
# Builds the release binary the benchmarks measure, the way the container image builds it
# (Dockerfile): `-c release --static-swift-stdlib`, Swift's runtime linked into the binary.
# That is what operators run, and it spends less per call into the runtime than a build that
# loads it as shared libraries (no PLT hop for retain and release, no __tls_get_addr):
# servers' CPU per 1:1 event 2 to 7 % lower in three alternating rounds (docs/performance.md,
# session 24).
#
#   bash bench/build.sh            # builds, then prints the binary's path
#   bash bench/build.sh --path     # prints the path only
#
# Its own build directory (.build-image, git-ignored), so that `swift build -c release` and
# the micro-benchmarks (bench/micro.sh), which link the runtime as shared libraries, do not
# rebuild it each time. A clean build takes about 8 minutes on 2 cores.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SCRATCH="$ROOT/.build-image"
BIN="$SCRATCH/release/airavata-gateway"
case "${1:-}" in
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  --path) echo "$BIN"; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
cd "$ROOT"
swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product airavata-gateway >&2
echo "$BIN"
