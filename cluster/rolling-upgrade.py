#!/usr/bin/env python3
"""Rolling upgrade of a local 3-node cluster under load, counting every event at every client.

Starts Redis + 3 gateway nodes + HAProxy (cluster/start.sh), connects the clients and the
producer (the airavata-load tool, built on the Swift client library), then replaces every
node one by one the way a Kubernetes rolling update does:

  1. start the new node and wait until HAProxy's /readyz checks see it UP (maxSurge 1);
  2. stop routing new clients to the old node (endpoint removal; HAProxy `drain` state) and
     wait the preStop time;
  3. SIGTERM the old node (it drains: /readyz 503, drain delay, reconnect notice + close 1012
     spread over the drain spread) and wait for it to exit within the grace period.

With --new-bin the replacements run another binary than the first nodes: an upgrade
across releases (for example from a release before the v2 bus messages to this one).

The drain timings come from the Helm chart's values (helm/airavata-gateway/values.yaml,
`drain:`), so this test runs with exactly the timings the chart renders.

With --signal KILL a node is killed outright instead (a crash: no preStop, no drain). With
--no-resume the clients reconnect without resuming. --expect-fail inverts the verdict: the
negative control (SIGKILL, no resume) must show loss, or the test could not see any.

A run passes only when it also tested something: events were published, the producer gave
up on none (an event never offered cannot be missed), every client was moved (reconnected at
least once), and every old node exited within the grace period; a node that overruns it is
SIGKILLed, as the kubelet would, and fails the run. These hold for the negative control too.

Exit status: 0 when the verdict is as expected, 1 otherwise, 2 on a set-up error.
"""
import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(message):
    print(f"[rolling-upgrade {time.strftime('%H:%M:%S')}] {message}", flush=True)


def drain_values(path):
    """The four drain numbers under `drain:` in the chart's values file."""
    wanted = ("preStopSeconds", "delaySeconds", "spreadSeconds", "timeoutSeconds", "marginSeconds")
    values, inside = {}, False
    with open(path) as handle:
        for line in handle:
            if re.match(r"^drain:\s*(#.*)?$", line):
                inside = True
                continue
            if inside and re.match(r"^\S", line):
                break
            match = re.match(r"^\s+(\w+):\s*(\d+)\s*(#.*)?$", line) if inside else None
            if match and match.group(1) in wanted:
                values[match.group(1)] = int(match.group(2))
    missing = [key for key in wanted[:4] if key not in values]
    if missing:
        raise SystemExit(f"{path}: no drain.{', drain.'.join(missing)}")
    values.setdefault("marginSeconds", 5)
    return values


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Where free_ports looks for consecutive ports: below Linux's ephemeral range (32768 and up),
# so that outgoing connections do not take them meanwhile; and how many bases it tries.
CONSECUTIVE_PORT_RANGE = (20000, 32000)
CONSECUTIVE_PORT_ATTEMPTS = 100


def free_ports(count):
    """The first of `count` consecutive loopback ports that were all free a moment ago
    (start.sh numbers its nodes' ports from a base)."""
    def free(port):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False

    for _ in range(CONSECUTIVE_PORT_ATTEMPTS):
        base = random.randrange(CONSECUTIVE_PORT_RANGE[0], CONSECUTIVE_PORT_RANGE[1] - count)
        if all(free(port) for port in range(base, base + count)):
            return base
    raise SystemExit(f"no {count} consecutive free loopback ports in {CONSECUTIVE_PORT_RANGE}")


def problems_with(summary, overruns):
    """Why a run proves nothing or broke the drain contract, whatever its loss counts say."""
    problems = [f"{name} overran the {grace}s grace period and was killed" for name, grace in overruns]
    for key in ("published", "clients", "producerGaveUp", "clientsReconnected"):
        if key not in summary:
            problems.append(f"the load tool's summary has no {key!r}: rebuild airavata-load")
    if problems:
        return problems
    if summary["published"] == 0:
        problems.append("no events were published")
    if summary["producerGaveUp"] > 0:
        problems.append(f"the producer gave up on {summary['producerGaveUp']} events: never offered, so never missed")
    if summary["clientsReconnected"] < summary["clients"]:
        problems.append(
            f"only {summary['clientsReconnected']} of {summary['clients']} clients reconnected: "
            "the others were never moved off a replaced node")
    return problems


class HAProxy:
    """The runtime API on the admin socket."""

    def __init__(self, path):
        self.path = path

    def command(self, text):
        with socket.socket(socket.AF_UNIX) as connection:
            connection.connect(self.path)
            connection.sendall(text.encode() + b"\n")
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        return data.decode()

    def status(self, server):
        for line in self.command("show stat").splitlines():
            fields = line.split(",")
            if len(fields) > 36 and fields[0] == "nodes" and fields[1] == server:
                return fields[17], fields[36]
        return None, None

    def wait_up(self, server, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, check = self.status(server)
            if status == "UP" and check.startswith("L7OK"):
                return True
            time.sleep(0.1)
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100, help="events per second")
    parser.add_argument("--experiments", type=int, default=20)
    parser.add_argument("--signal", choices=["TERM", "KILL"], default="TERM")
    parser.add_argument("--no-resume", action="store_true", help="clients reconnect without resuming")
    parser.add_argument("--expect-fail", action="store_true", help="negative control: loss must be seen")
    parser.add_argument("--bin", default=os.environ.get("BIN", os.path.join(ROOT, ".build/release/airavata-gateway")))
    parser.add_argument(
        "--new-bin", default=None,
        help="binary of the replacement nodes (default: --bin); with an older --bin this upgrades across releases")
    parser.add_argument("--load-bin", default=os.environ.get("LOAD_BIN", os.path.join(ROOT, ".build/release/airavata-load")))
    parser.add_argument("--values", default=os.path.join(ROOT, "helm/airavata-gateway/values.yaml"))
    parser.add_argument("--warmup", type=float, default=2, help="seconds of load before the first replacement")
    parser.add_argument("--settle", type=float, default=30, help="seconds the clients get to catch up at the end")
    parser.add_argument("--keep-logs", action="store_true", help="keep the nodes' logs even when the run passes")
    parser.add_argument("--node-args", default="", help="extra flags for every node")
    arguments = parser.parse_args()
    # A parent (a test runner, say) may have blocked SIGTERM; our children must not inherit that.
    signal.pthread_sigmask(signal.SIG_SETMASK, [])

    arguments.new_bin = arguments.new_bin or arguments.bin
    for path in (arguments.bin, arguments.new_bin, arguments.load_bin):
        if not os.access(path, os.X_OK):
            print(f"no executable at {path}: build it (swift build -c release) or pass --bin/--load-bin", file=sys.stderr)
            return 2
    drain = drain_values(arguments.values)
    grace = sum(drain[key] for key in ("preStopSeconds", "delaySeconds", "spreadSeconds", "timeoutSeconds", "marginSeconds"))
    log(f"drain timings from {os.path.relpath(arguments.values, ROOT)}: {drain}; grace period {grace}s")

    run_dir = tempfile.mkdtemp(prefix="airavata-rollout-")
    secret = os.urandom(32).hex()
    front = free_port()
    base = free_ports(3)
    # The nodes flags: the chart's drain timings, limits high enough for the load, and a
    # ping interval below every idle timeout on the path.
    node_args = (
        f"--drain-delay {drain['delaySeconds']}s --drain-spread {drain['spreadSeconds']}s "
        f"--drain-timeout {drain['timeoutSeconds']}s --max-connections 100000 "
        f"--max-connections-per-ip 100000 --max-connections-per-user 100 --ping-interval 10s "
        f"--log-level notice {arguments.node_args}"
    ).strip()
    environment = dict(
        os.environ, RUN_DIR=run_dir, FRONT_PORT=str(front), NODE_BASE_PORT=str(base),
        REDIS_PORT=str(free_port()), BIN=arguments.bin, AIRAVATA_JWT_SECRET=secret, NODE_ARGS=node_args,
    )
    # Output to a file, not a pipe: the daemons it leaves behind must not hold our pipe open.
    start_log = os.path.join(run_dir, "start.log")
    with open(start_log, "w") as output:
        started = subprocess.run(
            ["bash", os.path.join(HERE, "start.sh"), "3"], env=environment, stdin=subprocess.DEVNULL,
            stdout=output, stderr=subprocess.STDOUT, timeout=120,
        )
    if started.returncode != 0:
        with open(start_log) as output:
            print(output.read(), file=sys.stderr)
        subprocess.run(["bash", os.path.join(HERE, "stop.sh")], env=environment, stdout=subprocess.DEVNULL)
        return 2
    haproxy = HAProxy(os.path.join(run_dir, "haproxy.sock"))
    load = None
    replacements = []  # the new nodes: our children, so we stop and reap them ourselves
    verdict = 2
    try:
        command = [
            arguments.load_bin, "--url", f"ws://127.0.0.1:{front}", "--http", f"http://127.0.0.1:{front}",
            "--clients", str(arguments.clients), "--rate", str(arguments.rate),
            "--experiments", str(arguments.experiments), "--settle", str(arguments.settle),
        ]
        if arguments.no_resume:
            command.append("--no-resume")
        load = subprocess.Popen(
            command, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        started_at = time.time()
        for line in load.stdout:
            print("  load: " + line.rstrip(), flush=True)
            if line.startswith("READY"):
                break
        else:
            log("the load tool ended before its clients were ready")
            return 2
        log(f"{arguments.clients} clients subscribed in {time.time() - started_at:.1f}s; producing at {arguments.rate}/s")
        time.sleep(arguments.warmup)

        slots = {f"node-{i}": os.path.join(run_dir, f"node-{i}.pid") for i in (1, 2, 3)}
        spares = ["spare-1", "spare-2"]
        new_ports = []
        overruns = []
        generation = 1
        for old in list(slots):
            generation += 1
            new_slot = spares.pop(0)
            port = free_port()
            pid_file = os.path.join(run_dir, f"{old}-v{generation}.pid")
            log(f"replacing {old}: new node on port {port} in slot {new_slot}")
            with open(os.path.join(run_dir, f"{old}-v{generation}.log"), "w") as output:
                process = subprocess.Popen(
                    [arguments.new_bin, "serve", "--host", "127.0.0.1", "--port", str(port), "--node-id",
                     f"{old}-v{generation}", "--redis-url", f"redis://127.0.0.1:{environment['REDIS_PORT']}/0",
                     "--trusted-proxies", "127.0.0.1", *node_args.split()],
                    env=environment, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            replacements.append(process)
            with open(pid_file, "w") as handle:
                handle.write(str(process.pid))
            new_ports.append(port)
            haproxy.command(f"set server nodes/{new_slot} addr 127.0.0.1 port {port}")
            haproxy.command(f"set server nodes/{new_slot} state ready")
            if not haproxy.wait_up(new_slot, 30):
                log(f"the new node never became ready in HAProxy: {haproxy.status(new_slot)}")
                return 2
            with open(slots[old]) as handle:
                old_pid = int(handle.read().strip())
            began = time.time()
            if arguments.signal == "TERM":
                # Endpoint removal, then the preStop sleep, then SIGTERM: Kubernetes' order.
                haproxy.command(f"set server nodes/{old} state drain")
                time.sleep(drain["preStopSeconds"])
                os.kill(old_pid, signal.SIGTERM)
            else:
                os.kill(old_pid, signal.SIGKILL)
            # The kubelet's clock: the grace period runs from the start of termination, preStop included.
            while time.time() - began < grace:
                try:
                    os.kill(old_pid, 0)
                except ProcessLookupError:
                    break
                # Reap it if it is our child (start.sh's nodes are not).
                try:
                    os.waitpid(old_pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
            else:
                log(f"FAIL: {old} did not exit within the {grace}s grace period; killing it as the kubelet would")
                overruns.append((old, grace))
                os.kill(old_pid, signal.SIGKILL)
            log(f"{old} gone {time.time() - began:.1f}s after the stop began")
            haproxy.command(f"set server nodes/{old} state maint")
            os.remove(slots[old])
            spares.append(old)
            slots[old] = pid_file

        time.sleep(2)
        log("every node replaced; stopping the producer")
        load.stdin.write("stop\n")
        load.stdin.flush()
        summary = None
        for line in load.stdout:
            print("  load: " + line.rstrip(), flush=True)
            if line.startswith("{"):
                summary = json.loads(line)
        load.wait(timeout=120)
        # What resuming cost the new nodes: one log read serves every client resuming meanwhile.
        reads = replays = 0
        for port in new_ports:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                    for line in response.read().decode().splitlines():
                        if line.startswith("airavata_replay_log_reads_total "):
                            reads += int(float(line.split()[1]))
                        elif line.startswith("airavata_replays_total "):
                            replays += int(float(line.split()[1]))
            except OSError:
                pass
        log(f"replay log reads on the new nodes: {reads} for {replays} resuming clients")
        if summary is None:
            log("no summary from the load tool")
            return 2
        passed = summary["passed"]
        problems = problems_with(summary, overruns)
        for problem in problems:
            log(f"FAIL: {problem}")
        if arguments.expect_fail:
            saw_loss = not passed and summary["lost"] > 0
            verdict = 0 if saw_loss and not problems else 1
            log("negative control " + ("saw the loss it must see" if saw_loss else "did NOT see loss"))
        else:
            verdict = 0 if passed and not problems else 1
            log("PASS" if verdict == 0 else "FAIL")
        return verdict
    finally:
        if load and load.poll() is None:
            load.kill()
            load.wait()
        # stop.sh waits for each pid to vanish; an unreaped child of ours never would.
        for process in replacements:
            if process.poll() is None:
                process.terminate()
        for process in replacements:
            try:
                process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        subprocess.run(
            ["bash", os.path.join(HERE, "stop.sh")], env=environment, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
        )
        if verdict != 0 or arguments.keep_logs:
            log(f"logs kept in {run_dir}")
        else:
            subprocess.run(["rm", "-rf", run_dir])


if __name__ == "__main__":
    sys.exit(main())
