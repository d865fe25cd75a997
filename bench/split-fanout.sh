#!/usr/bin/env bash
# User and kernel CPU per delivery of one delivering process in the fan-out scenario: where
# the load tool reports user + system together, this splits them.
#   bench/split-fanout.sh            our second node (it only delivers; the producer posts to the first)
#   bench/split-fanout.sh peer       the busier Nchan worker
# Environment as for run-pair.sh (BIN, GATEWAY_ARGS, OUT ...). Samples /proc/<pid>/stat every
# half second, takes the busiest 10 s, divides by that process's share of the deliveries (half).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="${BIN:-$HERE/../.build-image/release/airavata-gateway}"  # bash bench/build.sh
OUT="${OUT:-$HERE/results/$(date -u +%Y%m%dT%H%M%SZ)-split}"
mkdir -p "$OUT"
if [ "${1:-}" = peer ]; then
  pattern="nginx: worker process"; scenario=peer-fanout; report="$OUT/nchan_fanout.json"
else
  pattern="$(basename "$BIN") serve .*pair-2"; scenario=fanout; report="$OUT/gw_fanout.json"
fi
samples="$OUT/cpu-samples.txt"
python3 - "$samples" "$pattern" <<'EOF' &
import os, subprocess, sys, time
out = open(sys.argv[1], "w", buffering=1)
tick = os.sysconf("SC_CLK_TCK")
start = time.monotonic()
while True:
    for pid in subprocess.run(["pgrep", "-f", sys.argv[2]], capture_output=True, text=True).stdout.split():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            out.write(f"{time.monotonic() - start:.2f} {pid} {int(fields[11]) / tick} {int(fields[12]) / tick}\n")
        except OSError:
            pass
    time.sleep(0.5)
EOF
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
OUT="$OUT" bash "$HERE/run-pair.sh" "$scenario" >"$OUT/split.log" 2>&1
kill $sampler 2>/dev/null || true
python3 - "$samples" "$report" <<'EOF'
import json, sys
series = {}
for line in open(sys.argv[1]):
    t, pid, user, system = line.split()
    series.setdefault(pid, []).append((float(t), float(user), float(system)))
best = None
for points in series.values():
    for i, (t0, u0, s0) in enumerate(points):
        later = [p for p in points[i:] if p[0] - t0 >= 9.9]
        if not later:
            break
        t1, u1, s1 = later[0]
        if best is None or (u1 - u0) + (s1 - s0) > best[0] + best[1]:
            best = (u1 - u0, s1 - s0, t1 - t0)
step = json.load(open(sys.argv[2]))["steps"][0]
user, system, window = best
deliveries = step["deliveries_per_s"] / 2 * window
print(f"per own delivery: user {user / deliveries * 1e6:.2f} µs, system {system / deliveries * 1e6:.2f} µs, "
      f"total {(user + system) / deliveries * 1e6:.2f} µs ({window:.1f} s window)")
EOF
