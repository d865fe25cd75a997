#!/usr/bin/env python3
"""Delivery latency of short bursts to one client, for each --tcp-nodelay setting: what a
portal sees when a handful of status events for its experiment arrive together.

One gateway node (release build, embedded bus) per setting; one WebSocket subscriber of a
project; a producer that POSTs BURSTS bursts of BURST_SIZE events, one request after
another on one keep-alive connection, GAP_MS apart. With `auto`, a gap longer than its
quiet spell (0.5 s; the default gap is 1 s) makes each burst start on TCP_NODELAY and go
to Nagle from its 8th send; a shorter gap keeps the connection streamed to throughout.
Loopback has almost no round-trip time and Linux clients acknowledge promptly, so what
Nagle costs across a network (a round trip, or another system's delayed ACK) shows here
only where the client holds its acknowledgements back (--client-ping-ms). Latency is from just before an event's
POST to the subscriber reading its frame, on this machine's monotonic clock. With
--client-ping-ms the subscriber also sends a WebSocket ping that often, which puts its
socket in the kernel's interactive mode (acknowledgements wait to ride on its own data).

    python3 bench/burst-latency.py [--bin PATH] [--settings true auto false] [--bursts 50]
        [--burst-size 16] [--gap-ms 1000] [--client-ping-ms 0]

Loopback only; every loop is bounded.
"""
import argparse
import base64
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time

SECRET = "burst-latency-secret-0123456789abcdef0123456789"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def token(binary, subject, role):
    return subprocess.check_output(
        [binary, "token", "--secret", SECRET, "--sub", subject, "--role", role, "--ttl", "1h"], text=True
    ).strip()


def recv_exact(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_frame(sock):
    head = recv_exact(sock, 2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack(">H", recv_exact(sock, 2))[0]
    elif length == 127:
        length = struct.unpack(">Q", recv_exact(sock, 8))[0]
    return opcode, recv_exact(sock, length)


def masked(opcode, payload):
    mask = os.urandom(4)
    body = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


def run_setting(args, setting):
    port = free_port()
    node = subprocess.Popen(
        [args.bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--jwt-secret", SECRET,
         "--tcp-nodelay", setting, "--stats-interval", "0", "--drain-delay", "0", "--log-level", "warning",
         "--rate-limit", "1000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise SystemExit(f"{setting}: the node did not listen on port {port} within 5 s")
        subscriber = token(args.bin, "burst-subscriber", "admin")
        producer = token(args.bin, "burst-producer", "service")

        ws = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        ws.sendall((f"GET /ws/projects/p1?token={subscriber} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += ws.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head[:80]

        sent_at = {}
        latencies = {}
        done = threading.Event()
        total = args.bursts * args.burst_size

        def reader():
            while len(latencies) < total:
                opcode, payload = read_frame(ws)
                now = time.monotonic()
                if opcode != 1:
                    continue
                message = json.loads(payload)
                sequence = message.get("data", {}).get("seq")
                if sequence is not None and sequence in sent_at:
                    latencies[sequence] = now - sent_at[sequence]
            done.set()

        def pinger():
            while not done.wait(args.client_ping_ms / 1000):
                ws.sendall(masked(0x9, b"p"))

        # The greeting comes once the node admitted the connection and its subscription.
        read_frame(ws)
        threading.Thread(target=reader, daemon=True).start()
        if args.client_ping_ms > 0:
            threading.Thread(target=pinger, daemon=True).start()

        http = socket.create_connection(("127.0.0.1", port))
        http.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for burst in range(args.bursts):
            for index in range(args.burst_size):
                sequence = burst * args.burst_size + index
                body = json.dumps({"type": "task_updated", "routing": {"projectId": "p1", "ownerId": "o"},
                                   "data": {"task": {"id": "task-1", "experimentId": "exp-1", "status": "RUNNING"},
                                            "seq": sequence}}).encode()
                request = (f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {producer}\r\n"
                           f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
                sent_at[sequence] = time.monotonic()
                http.sendall(request)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    answer += http.recv(4096)
                status = answer.split(b" ", 2)[1]
                assert status.startswith(b"2"), answer[:200]
                head, _, rest = answer.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), 0)
                while len(rest) < length:
                    rest += http.recv(4096)
            time.sleep(args.gap_ms / 1000)
        if not done.wait(10):
            raise SystemExit(f"{setting}: {total - len(latencies)} events not delivered within 10 s")
        ws.close()
        http.close()
        return [latencies[sequence] * 1000 for sequence in range(total)]
    finally:
        node.send_signal(signal.SIGTERM)
        node.wait(timeout=10)


def quantiles(values):
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(ordered)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--bin", default=os.path.join(root, ".build/release/airavata-gateway"))
    parser.add_argument("--settings", nargs="+", default=["true", "auto", "false"])
    parser.add_argument("--bursts", type=int, default=50)
    parser.add_argument("--burst-size", type=int, default=16)
    parser.add_argument("--gap-ms", type=float, default=1000)
    parser.add_argument("--client-ping-ms", type=float, default=0)
    args = parser.parse_args()
    # The reader thread takes its timestamps promptly even while the producer thread runs.
    sys.setswitchinterval(0.0002)
    if not (1 <= args.bursts <= 1000 and 1 <= args.burst_size <= 200):
        parser.error("--bursts 1..1000, --burst-size 1..200")
    print(f"{args.bursts} bursts of {args.burst_size} events, {args.gap_ms:g} ms apart; "
          f"client pings every {args.client_ping_ms:g} ms" if args.client_ping_ms else
          f"{args.bursts} bursts of {args.burst_size} events, {args.gap_ms:g} ms apart; client sends nothing")
    print("| --tcp-nodelay | events | p50 | p90 | p99 | max | mean (ms) | first 8 of a burst: p99 | the rest: p99 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for setting in args.settings:
        values = run_setting(args, setting)
        overall = quantiles(values)
        first = quantiles([v for i, v in enumerate(values) if i % args.burst_size < 8])
        rest = [v for i, v in enumerate(values) if i % args.burst_size >= 8]
        rest_p99 = f"{quantiles(rest)['p99']:.2f}" if rest else "—"
        print(f"| {setting} | {len(values)} | {overall['p50']:.2f} | {overall['p90']:.2f} | {overall['p99']:.2f} | "
              f"{overall['max']:.2f} | {overall['mean']:.2f} | {first['p99']:.2f} | {rest_p99} |")


if __name__ == "__main__":
    main()
