#!/usr/bin/env bash
# Rounds of bench/run-pair.sh scenarios, gateway and peer alternating within each round, for
# medians: Nchan's own figures move between runs by more than most changes we measure
# (connects/s 3.9k–4.9k in one evening), so a single run is no comparison.
#   bench/run-medians.sh [ROUNDS] [scenario ...]
# ROUNDS defaults to 3; scenarios default to every gateway scenario, each followed by the
# peer's (see bench/run-pair.sh). Environment as for run-pair.sh (BIN, IDLE, DUR, ...).
# Results: bench/results/<stamp>-medians/r1 … rN; the table of medians, with each run's
# figures beside them:
#   python3 bench/compare.py bench/results/<stamp>-medians/r* --markdown
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROUNDS=3
if [ $# -gt 0 ] && [[ "$1" =~ ^[0-9]+$ ]]; then ROUNDS="$1"; shift; fi
[ "$ROUNDS" -ge 1 ] && [ "$ROUNDS" -le 20 ] || { echo "ROUNDS must be 1 to 20, got $ROUNDS" >&2; exit 2; }
[ $# -eq 0 ] && set -- idle peer-idle fanout peer-fanout oneone peer-oneone
BASE="${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-medians}"
for round in $(seq 1 "$ROUNDS"); do
  echo "=== round $round of $ROUNDS: $*"
  OUT="$BASE/r$round" bash "$HERE/run-pair.sh" "$@"
done
echo "results in $BASE; python3 bench/compare.py $BASE/r* --markdown"
