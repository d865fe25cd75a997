#!/usr/bin/env python3
"""Prints the gateway-against-Nchan table of one bench/run-pair.sh run, or the medians of
several (bench/run-medians.sh writes one directory per round).

    python3 bench/compare.py bench/results/<stamp>-pair [--markdown]
    python3 bench/compare.py bench/results/<stamp>-medians/r* [--markdown] [--goals]

Reads gw_{idle,fanout,oneone}.json and nchan_{idle,fanout,oneone}.json (the load tool's
reports) and derives, for each target: RSS per idle connection, connects/s, fan-out server
CPU per delivery, deliveries/s and p99, 1:1 events/s, server CPU per event and Redis CPU
per event. Server CPU is every node plus Redis, from /proc as the load tool read it. A
ratio is gateway ÷ Nchan; for the figures where less is better it should be below 1.
The 1:1 server CPU is also given in units of the load tool's publisher CPU over the same
step: this machine's speed moves by ±20 % between runs, every process's cost per event
with it, and the quotient cancels most of that.
"""
import argparse
import json
import os
import statistics
import sys


def load(directory, name):
    path = os.path.join(directory, f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return json.load(handle)


def step(report):
    return report["steps"][-1] if report and report.get("steps") else None


def figures(directory, prefix):
    idle, fanout, oneone = (load(directory, f"{prefix}_{name}") for name in ("idle", "fanout", "oneone"))
    rows = {}
    if idle:
        rows["idle_rss_kb"] = idle["memory"]["per_conn_kb"]["rss_total"]
        rows["connects_per_s"] = idle["connections"]["connects_per_s"]
    if fanout and step(fanout):
        s = step(fanout)
        cores = sum(s["server_cores"].values())
        rows["fanout_us_per_delivery"] = cores / s["deliveries_per_s"] * 1e6
        rows["fanout_deliveries_per_s"] = s["deliveries_per_s"]
        rows["fanout_p99_ms"] = s["latency_ms"]["p99"]
        rows["fanout_lost"] = s["lost"]
    if oneone and step(oneone):
        s = step(oneone)
        rate = s["deliveries_per_s"]
        rows["oneone_events_per_s"] = rate
        rows["oneone_us_per_event"] = sum(s["server_cores"].values()) / rate * 1e6
        rows["oneone_redis_us_per_event"] = s["server_cores"].get("redis", 0) / rate * 1e6
        publisher = s.get("loadgen_cpu_s", {}).get("publisher")
        if publisher:
            # The machine's speed moves between runs (per-event CPU of every process rises and
            # falls together); the load tool's publisher does the same work per event against
            # either target, so in its units the servers' cost varies far less.
            rows["oneone_cpu_per_publisher_cpu"] = sum(s["server_cpu_s"].values()) / publisher
        rows["oneone_lost"] = s["lost"]
    return rows


ROWS = [
    ("idle, subscribers on own channels: server RSS per connection (KB)", "idle_rss_kb", "{:.2f}", True),
    ("connection set-up: connects/s", "connects_per_s", "{:,.0f}", False),
    ("fan-out 1 × 1,000 at 200 events/s: server CPU per delivery (µs)", "fanout_us_per_delivery", "{:.2f}", True),
    ("same: deliveries/s", "fanout_deliveries_per_s", "{:,.0f}", False),
    ("same: latency p99 (ms)", "fanout_p99_ms", "{:.0f}", True),
    ("1:1, 64 publishing connections, max rate: events/s", "oneone_events_per_s", "{:,.0f}", False),
    ("same: server CPU per event (µs)", "oneone_us_per_event", "{:.1f}", True),
    ("same: Redis CPU per event (µs)", "oneone_redis_us_per_event", "{:.1f}", True),
    ("same: server CPU ÷ the load tool's publisher CPU", "oneone_cpu_per_publisher_cpu", "{:.2f}", True),
    ("lost (fan-out + 1:1)", None, "{}", True),
]


def median_figures(directories, prefix):
    """Each figure's median over the runs that have it, and the values it came from."""
    runs = [figures(directory, prefix) for directory in directories]
    keys = {key for run in runs for key in run}
    return (
        {key: statistics.median(run[key] for run in runs if key in run) for key in keys},
        {key: [run[key] for run in runs if key in run] for key in keys},
    )


# Issue 10's point 1: each row's ratio (gateway ÷ Nchan) and the side of the bound it must be on.
GOALS = [
    ("fan-out CPU per delivery", "fanout_us_per_delivery", 1.0, "≤"),
    ("1:1 events/s", "oneone_events_per_s", 1.0, "≥"),
    ("connects/s", "connects_per_s", 1.0, "≥"),
    ("idle RSS per connection", "idle_rss_kb", 0.5, "≤"),
]


def misses(gateway, peer):
    """The goals a set of figures misses, as "name ratio" strings; None when a figure is absent."""
    missed = []
    for name, key, bound, side in GOALS:
        if key not in gateway or not peer.get(key):
            return None
        ratio = gateway[key] / peer[key]
        if (ratio > bound) if side == "≤" else (ratio < bound):
            missed.append(f"{name} {ratio:.3f}×")
    lost = sum(gateway.get(key, 0) for key in ("fanout_lost", "oneone_lost"))
    if lost:
        missed.append(f"{lost} lost")
    return missed


def goal_report(directories, gateway, peer, gateway_runs):
    """Round by round (paired: the gateway and Nchan of the same round), then at the medians."""
    lines = ["", "point 1 of issue 10: " + ", ".join(f"{name} {side} {bound}×" for name, _, bound, side in GOALS)
             + ", 0 lost"]
    held = 0
    counted = 0
    for directory in directories:
        missed = misses(figures(directory, "gw"), figures(directory, "nchan"))
        if missed is None:
            lines.append(f"  {directory}: incomplete (a scenario is missing)")
            continue
        counted += 1
        held += not missed
        lines.append(f"  {directory}: " + ("every row holds" if not missed else "misses " + ", ".join(missed)))
    if len(directories) > 1:
        lost = {key: sum(gateway_runs.get(key, [])) for key in ("fanout_lost", "oneone_lost")}
        missed = misses({**gateway, **lost}, peer)
        if missed is None:
            lines.append("  medians: incomplete (a scenario is missing)")
        else:
            lines.append("  medians: " + ("every row holds" if not missed else "miss " + ", ".join(missed)))
        lines.append(f"  rounds in which every row held: {held} of {counted}")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directories", nargs="+", metavar="directory")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument(
        "--goals", action="store_true",
        help="after the table, whether each round and the medians meet point 1 of issue 10")
    arguments = parser.parse_args()
    gateway, gateway_runs = median_figures(arguments.directories, "gw")
    peer, peer_runs = median_figures(arguments.directories, "nchan")
    if not gateway and not peer:
        print(f"no gw_*.json or nchan_*.json in {' '.join(arguments.directories)}", file=sys.stderr)
        return 2
    several = len(arguments.directories) > 1
    header = ["scenario", "Nchan", "gateway", "ratio"] + (["runs (Nchan; gateway)"] if several else [])
    if several:
        header[1:3] = [f"Nchan (median of {len(arguments.directories)})", "gateway (median)"]
    lines = []
    if arguments.markdown:
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for label, key, form, _ in ROWS:
        if key is None:
            # Lost events are summed over every run, not a median: one loss anywhere counts.
            ours = sum(sum(gateway_runs.get(name, [])) for name in ("fanout_lost", "oneone_lost"))
            theirs = sum(sum(peer_runs.get(name, [])) for name in ("fanout_lost", "oneone_lost"))
            cells = [str(theirs), str(ours), "—"] + ([""] if several else [])
        else:
            theirs, ours = peer.get(key), gateway.get(key)
            cells = [
                form.format(theirs) if theirs is not None else "—",
                form.format(ours) if ours is not None else "—",
                f"{ours / theirs:.2f}×" if ours is not None and theirs else "—",
            ]
            if several:
                listed = lambda values: " / ".join(form.format(value) for value in values) or "—"
                cells.append(f"{listed(peer_runs.get(key, []))}; {listed(gateway_runs.get(key, []))}")
        if arguments.markdown:
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        else:
            lines.append(f"{label:<72} " + " ".join(f"{cell:>10}" for cell in cells))
    if arguments.goals:
        lines += goal_report(arguments.directories, gateway, peer, gateway_runs)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
