#!/usr/bin/env python3
"""Redis's own CPU per event for the publish scripts, without gateway nodes around them.

Starts a private redis-server on a free loopback port with two pub/sub subscribers on the
event channels (two nodes' worth of fan-out), then sends the v2 script (one stream entry per
event) and the v3 script (one entry per call) exactly as Sources/AiravataCluster/
ClusterScripts.swift holds them, one call at a time as a node's publish queue does, with
EVENTS events of BYTES bytes per call. Redis's CPU comes from /proc/<pid>/stat; the rounds
alternate the scripts, and the medians are printed.

    python3 bench/redis-publish.py                      # 14 events of 600 bytes, 5 rounds
    python3 bench/redis-publish.py --events 1 --calls 4000
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "Sources/AiravataCluster/ClusterScripts.swift")


def script(name):
    """The Lua text of the named RedisScript in ClusterScripts.swift, as Swift hands it to Redis."""
    source = open(SCRIPTS).read()
    match = re.search(r'static let %s = RedisScript\(\s*"""\n(.*?)\n\s*"""\)' % name, source, re.S)
    if not match:
        sys.exit(f"no script {name} in {SCRIPTS}")
    lines = [line[8:] if line.startswith("        ") else line for line in match.group(1).split("\n")]
    return "\n".join(lines).replace("\\\\", "\\")


def command(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def reply(sock, buffer):
    """Reads one RESP reply (enough for this tool's answers); returns (reply line, rest)."""
    while True:
        if b"\r\n" in buffer:
            line, rest = buffer.split(b"\r\n", 1)
            kind = line[:1]
            if kind in (b"+", b"-", b":"):
                return line, rest
            if kind == b"$":
                length = int(line[1:])
                if length < 0:
                    return line, rest
                if len(rest) >= length + 2:
                    return line + b" " + rest[:length], rest[length + 2 :]
            if kind == b"*":
                # Arrays here are of bulk strings (v2's cursors): read them whole.
                count, body, items = int(line[1:]), rest, []
                while len(items) < count:
                    item, body = reply(sock, body)
                    items.append(item)
                return line, body
        data = sock.recv(1 << 20)
        if not data:
            raise ConnectionError("redis closed the connection")
        buffer += data


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def subscriber(port, channels, stop):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(command("SUBSCRIBE", *channels))
    sock.settimeout(0.5)
    while not stop.is_set():
        try:
            if not sock.recv(1 << 20):
                return
        except socket.timeout:
            pass


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=14, help="events per call (default 14, the 1:1 bench's)")
    parser.add_argument("--bytes", type=int, default=600, help="bytes per event body (default 600)")
    parser.add_argument("--calls", type=int, default=8000, help="calls per round and script")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    port = free_port()
    directory = tempfile.mkdtemp(prefix="redis-publish-")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", directory, "--loglevel", "warning"],
        stdout=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        for _ in range(100):
            try:
                sock = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        else:
            sys.exit("redis-server did not start")
        for _ in range(2):
            threading.Thread(
                target=subscriber, args=(port, ["b:events:v2", "b:events:v3"], stop), daemon=True).start()

        bodies = []
        for index in range(args.events):
            head = b"2\ttask_updated\t1795713253458000\texp-%04d\ttask-1\t\tproj-1\towner\tuser\n" % index
            envelope = b'{"type":"task_updated","id":"m-%06d","data":{"note":"' % index
            bodies.append(head + envelope + b"x" * max(0, args.bytes - len(head) - len(envelope) - 2) + b'"}')
        block = b"".join(b"%d\n" % len(body) + body for body in bodies)
        calls = {}
        buffer = b""
        for name, keys, argv in [
            ("publishBatch", ["b:events", "b:events:v2", "b:accepted"], ["100000"] + bodies),
            ("publishBlock", ["b:events", "b:events:v3", "b:accepted", "b:events:blocks", "b:events:held"],
             ["100000", str(args.events), block]),
        ]:
            sock.sendall(command("SCRIPT", "LOAD", script(name)))
            line, buffer = reply(sock, buffer)
            digest = line.split(b" ", 1)[1]
            calls[name] = command("EVALSHA", digest, str(len(keys)), *keys, *argv)

        figures = {name: [] for name in calls}
        for _ in range(args.rounds):
            for name, call in calls.items():
                sock.sendall(command("FLUSHALL"))
                _, buffer = reply(sock, buffer)
                before = cpu_seconds(server.pid)
                for _ in range(args.calls):
                    sock.sendall(call)
                    line, buffer = reply(sock, buffer)
                    if line.startswith(b"-"):
                        sys.exit(f"{name}: {line.decode(errors='replace')}")
                used = cpu_seconds(server.pid) - before
                figures[name].append(used * 1e6 / (args.calls * args.events))
        print(f"{args.events} events of {args.bytes} bytes per call, {args.calls} calls a round, "
              f"{args.rounds} rounds; Redis CPU per event (µs):")
        for name, values in figures.items():
            shown = " / ".join(f"{value:.2f}" for value in values)
            print(f"  {name:13} median {statistics.median(values):6.2f}   rounds {shown}")
        v2, v3 = (statistics.median(figures[name]) for name in ("publishBatch", "publishBlock"))
        print(f"  v3 / v2: {v3 / v2:.2f}x")
    finally:
        stop.set()
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
