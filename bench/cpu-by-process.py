#!/usr/bin/env python3
"""Cores used per process name, every quarter second, for a while: what a scenario costs each
party (gateway nodes, Redis, the load tool, Nchan) in a window the load tool does not report,
such as the connect storm.

    python3 bench/cpu-by-process.py SECONDS [--min CORES] &
    bash bench/run-pair.sh idle peer-idle

Prints one line per interval in which user-space processes used more than --min cores (0.5
by default): seconds since start, total, then the busiest names. Kernel threads are left out
(their names change as they work, which would show as bogus deltas).
"""
import argparse
import collections
import os
import time

TICK = os.sysconf("SC_CLK_TCK")


def snapshot():
    """CPU seconds (user + system) per process name, user-space processes only."""
    seconds = collections.Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as handle:
                stat = handle.read()
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if not handle.read(1):
                    continue  # a kernel thread
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds[(pid, name)] += (int(fields[11]) + int(fields[12])) / TICK
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--min", type=float, default=0.5, help="print intervals busier than this (cores)")
    parser.add_argument("--interval", type=float, default=0.25)
    arguments = parser.parse_args()
    start = time.monotonic()
    previous, before = snapshot(), start
    while time.monotonic() - start < arguments.seconds:
        time.sleep(arguments.interval)
        current, now = snapshot(), time.monotonic()
        cores = collections.Counter()
        for key, value in current.items():
            # A process born in the interval counts from zero.
            cores[key[1]] += (value - previous.get(key, 0)) / (now - before)
        previous, before = current, now
        busy = sum(cores.values())
        if busy > arguments.min:
            top = ", ".join(f"{name} {value:.2f}" for name, value in cores.most_common(5) if value > 0.01)
            print(f"{now - start:6.2f}s {busy:5.2f} cores: {top}", flush=True)


if __name__ == "__main__":
    main()
