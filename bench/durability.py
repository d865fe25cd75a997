#!/usr/bin/env python3
"""What durable ingestion costs: one gateway node (release build) over a Redis primary with
one replica, producers posting one event per request as fast as they are answered, first
without --durable-replicas, then with --durable-replicas 1. Prints events/s and the
request latency's median and p99 for each, and their ratio.

    python3 bench/durability.py [--bin .build/release/airavata-gateway] [--seconds 10] [--producers 16]

Loopback only; every process it starts is stopped at the end.
"""
import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import importlib.util

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECRET = "durability-bench-secret-0123456789abcdef"
_spec = importlib.util.spec_from_file_location("hostile", os.path.join(ROOT, "cluster", "hostile-clients.py"))
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def redis(port, directory, replica_of=None):
    command = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
               "--save", "", "--appendonly", "no", "--dir", directory, "--dbfilename", f"{port}.rdb"]
    if replica_of:
        command += ["--replicaof", "127.0.0.1", str(replica_of)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def cli(port, *arguments):
    return subprocess.run([shutil.which("redis-cli") or "redis-cli", "-p", str(port), *arguments],
                          capture_output=True, text=True, timeout=10).stdout


def run(binary, primary, durable, seconds, producers):
    port = hostile.free_port()
    extra = ["--durable-replicas", "1", "--durable-timeout", "1s"] if durable else []
    node = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--jwt-secret", SECRET,
         "--redis-url", f"redis://127.0.0.1:{primary}/0", "--stats-interval", "0", "--log-level", "warning",
         "--dedup-window", "0", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for(lambda: hostile.healthz(port)[0]):
            sys.exit("the node did not start")
        token = hostile.mint_token(SECRET, "bench-producer", roles=["service"])
        body = json.dumps([{"type": "task_updated", "data": {"task": {"id": "t-1", "experimentId": "e-1"}}}])
        latencies, statuses, lock = [], {}, threading.Lock()
        stop = time.monotonic() + seconds

        def producer():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine, seen = [], {}
            while time.monotonic() < stop:
                started = time.perf_counter()
                connection.request("POST", "/api/v1/events", body=body,
                                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                mine.append(time.perf_counter() - started)
                seen[response.status] = seen.get(response.status, 0) + 1
            with lock:
                latencies.extend(mine)
                for status, count in seen.items():
                    statuses[status] = statuses.get(status, 0) + count

        threads = [threading.Thread(target=producer) for _ in range(producers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies.sort()
        return {
            "durable": durable, "events_per_second": statuses.get(202, 0) / seconds, "statuses": statuses,
            "median_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        }
    finally:
        node.terminate()
        node.wait(timeout=20)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/release/airavata-gateway"))
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--producers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs of each; medians are reported")
    arguments = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="durability-")
    primary_port, replica_port = hostile.free_port(), hostile.free_port()
    primary = redis(primary_port, directory)
    replica = None
    try:
        wait_for(lambda: "PONG" in cli(primary_port, "PING"))
        replica = redis(replica_port, directory, replica_of=primary_port)
        if not wait_for(lambda: "master_link_status:up" in cli(replica_port, "INFO", "replication")):
            sys.exit("the replica did not sync")
        results = {False: [], True: []}
        for _ in range(arguments.rounds):
            for durable in (False, True):
                result = run(arguments.bin, primary_port, durable, arguments.seconds, arguments.producers)
                results[durable].append(result)
                print(json.dumps(result), flush=True)
        summary = {}
        for durable, runs in results.items():
            summary[durable] = {key: statistics.median(r[key] for r in runs)
                                for key in ("events_per_second", "median_ms", "p99_ms")}
        plain, durable = summary[False], summary[True]
        print("\n| mode | events/s | median latency | p99 latency |\n| --- | --- | --- | --- |")
        for name, row in (("plain", plain), ("--durable-replicas 1", durable)):
            print(f"| {name} | {row['events_per_second']:,.0f} | {row['median_ms']:.2f} ms | {row['p99_ms']:.2f} ms |")
        print(f"\ndurable / plain: events/s {durable['events_per_second'] / plain['events_per_second']:.2f}x, "
              f"median latency {durable['median_ms'] / plain['median_ms']:.2f}x, "
              f"p99 {durable['p99_ms'] / plain['p99_ms']:.2f}x ({arguments.rounds} rounds, medians)")
    finally:
        for process in (replica, primary):
            if process:
                process.terminate()
                process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
