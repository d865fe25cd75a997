#!/usr/bin/env python3
"""The live cluster page (/dashboard) in headless Chromium against a real three-node cluster.

Starts redis-server and three gateway nodes on free loopback ports, opens WebSocket clients
spread unevenly over the nodes, then drives the page with Selenium:

  1. an unauthenticated visit shows the sign-in form and no figure, and the data endpoint
     answers the page 401;
  2. a user token without the admin role is refused and shows nothing;
  3. an admin token shows each node's connection count;
  4. node n2 is sent SIGTERM: the page shows it `draining`, then its clients (which resume
     on n1, as the official clients do) counted on n1 and n2 gone, with the timeline saying so.

With --screenshot PATH it saves the page while n2 drains (docs/operations.md shows one).
Run with the Python of `bash .ci/pytools` (it has Selenium):

    "$(bash .ci/pytools)/python" cluster/dashboard-browser.py --bin .build/debug/airavata-gateway

Exit status: 0 when every check held, 1 when one failed, 2 on a set-up error.
"""
import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECRET = "dashboard-browser-test-secret-0123456789abcdef"

# The raw WebSocket client, token minting and port helpers of the hostile-clients driver.
_spec = importlib.util.spec_from_file_location("hostile_clients", os.path.join(HERE, "hostile-clients.py"))
hostile = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile)


def log(message):
    print(f"[dashboard-browser {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Failure(Exception):
    pass


def wait_for(what, condition, timeout):
    """Polls `condition` until it returns something truthy; raises Failure naming `what`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
        except Exception as error:  # a page mid-update, a node mid-restart
            last = error
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise Failure(f"{what}: not within {timeout}s (last seen: {last!r})")


class Node:
    def __init__(self, binary, name, redis_port, run_dir, extra=()):
        self.name = name
        self.port = hostile.free_port()
        self.log_path = os.path.join(run_dir, f"{name}.log")
        command = [
            binary, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--node-id", name,
            "--redis-url", f"redis://127.0.0.1:{redis_port}/0", "--jwt-secret", SECRET, "--stats-interval", "0",
            "--drain-delay", "3", "--drain-spread", "1", "--drain-timeout", "10", "--log-level", "notice", *extra,
        ]
        with open(self.log_path, "w") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)

    def ready(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Producer(threading.Thread):
    """System notices at a steady rate to one node, so that the page has traffic to show."""

    def __init__(self, node, per_second=20):
        super().__init__(daemon=True)
        self.node, self.interval = node, 1.0 / per_second
        self.token = hostile.mint_token(SECRET, "producer", roles=["service"])
        self.stopping = threading.Event()
        self.accepted = 0

    def run(self):
        sequence = 0
        while not self.stopping.wait(self.interval):
            sequence += 1
            event = {"type": "system_status", "data": {"notice": f"tick {sequence}"}}
            try:
                status, _ = hostile.post_events(self.node.port, self.token, [event])
                self.accepted += status == 202
            except OSError:
                pass


class Client(threading.Thread):
    """One user's WebSocket; when its node closes it, it resumes on `fallback`, as the
    official clients do (session id and cursor from its `connected` greeting)."""

    def __init__(self, user, node, fallback):
        super().__init__(daemon=True)
        self.token = hostile.mint_token(SECRET, user)
        self.node, self.fallback = node, fallback
        self.connected = threading.Event()
        self.resumed = threading.Event()
        self.stopping = threading.Event()
        self.error = None
        self.socket = None

    def open(self, port, query=""):
        socket = hostile.WebSocket(port, f"/ws?token={self.token}{query}")
        socket.sock.settimeout(0.5)
        return socket

    def greeting(self, socket):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                opcode, payload = socket.receive()
            except TimeoutError:
                continue
            if opcode == 1:
                message = json.loads(payload)
                if (message.get("data") or {}).get("action") == "connected":
                    return message
        raise ConnectionError("no connected greeting")

    def run(self):
        try:
            self.socket = self.open(self.node.port)
            hello = self.greeting(self.socket)
            session, cursor = hello["data"]["sessionId"], hello.get("cursor", "")
            self.connected.set()
            while not self.stopping.is_set():
                try:
                    opcode, _ = self.socket.receive()
                except TimeoutError:
                    continue
                except (ConnectionError, OSError):
                    opcode = 8
                if opcode == 8:  # closed by the node: resume elsewhere
                    self.socket.close()
                    self.socket = self.open(self.fallback.port, f"&session={session}&cursor={cursor}")
                    again = self.greeting(self.socket)
                    if again["data"].get("resumed"):
                        self.resumed.set()
                    self.node = self.fallback
        except Exception as error:
            self.error = error
        finally:
            if self.socket:
                self.socket.close()


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1100"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)


def row_counts(driver):
    """{node: (state, connections)} as the page shows them."""
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#nodes tbody tr')].map(r => [r.dataset.node,"
        " r.querySelector('.state').textContent, r.querySelector('.connections').textContent]);")
    return {node: (state, int(count.replace(",", ""))) for node, state, count in rows}


def sign_in(driver, token):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "token-input").send_keys(token)
    driver.find_element(By.ID, "login-button").click()


def run(arguments, run_dir):
    redis_port = hostile.free_port()
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes, clients, driver, producer = [], [], None, None
    try:
        nodes = [Node(arguments.bin, f"n{index}", redis_port, run_dir) for index in (1, 2, 3)]
        for node in nodes:
            wait_for(f"{node.name} ready", node.ready, 30)
        n1, n2, n3 = nodes
        # 4 on n1, 3 on n2, 2 on n3; n2's clients resume on n1.
        for index, node in enumerate([n1] * 4 + [n2] * 3 + [n3] * 2):
            clients.append(Client(f"user-{index}", node, n1 if node is n2 else node))
        for client in clients:
            client.start()
        for client in clients:
            if not client.connected.wait(10):
                raise Failure(f"a client did not connect: {client.error}")
        log("9 clients connected: n1 4, n2 3, n3 2")
        producer = Producer(n3)
        producer.start()

        driver = browser()
        driver.set_script_timeout(10)
        page = f"http://127.0.0.1:{n3.port}/dashboard"
        driver.get(page)
        # 1. no token: the form, no figure, and the data endpoint refuses the page.
        if driver.execute_script("return document.getElementById('cluster').hidden") is not True:
            raise Failure("the cluster section is visible without a token")
        if driver.execute_script("return document.querySelectorAll('#nodes tbody tr').length") != 0:
            raise Failure("node rows without a token")
        status = driver.execute_async_script(
            "const done = arguments[0]; fetch('/api/v1/cluster').then(r => r.text().then(t => done([r.status, t])));")
        if status[0] != 401 or "activeConnections" in status[1] or "n1" in status[1]:
            raise Failure(f"unauthenticated data request answered {status}")
        log("unauthenticated: empty page, data endpoint 401")

        # 2. a token without the admin role: refused, still nothing shown.
        sign_in(driver, hostile.mint_token(SECRET, "user-0"))
        wait_for("the refusal of a user token",
                 lambda: "Not allowed" in driver.execute_script("return document.getElementById('message').textContent"),
                 10)
        if driver.execute_script("return document.querySelectorAll('#nodes tbody tr').length") != 0:
            raise Failure("node rows for a token without the admin role")
        log("user token: refused, nothing shown")

        # 3. admin: each node's count.
        sign_in(driver, hostile.mint_token(SECRET, "ops", roles=["admin"]))
        expected = {"n1": ("ready", 4), "n2": ("ready", 3), "n3": ("ready", 2)}
        wait_for(f"rows {expected}", lambda: row_counts(driver) == expected, 15)
        total = driver.execute_script("return document.getElementById('total-connections').textContent")
        if total != "9":
            raise Failure(f"total connections shows {total!r}, expected 9")
        if driver.execute_script("return sessionStorage.getItem('airavata.dashboard.token')") is None:
            raise Failure("the token is not kept in sessionStorage")
        log(f"admin: {row_counts(driver)}")

        # 4. drain n2: draining, then its connections counted on n1 and n2 gone.
        n2.process.send_signal(signal.SIGTERM)
        wait_for("n2 shown draining", lambda: row_counts(driver).get("n2", ("", 0))[0] == "draining", 10)
        log(f"draining: {row_counts(driver)}")
        if arguments.screenshot:
            # Let the charts gather a few seconds of the drain before the picture.
            time.sleep(2)
            driver.save_screenshot(arguments.screenshot)
            log(f"screenshot: {arguments.screenshot}")
        moved = {"n1": ("ready", 7), "n3": ("ready", 2)}
        wait_for(f"rows {moved} after the drain", lambda: row_counts(driver) == moved, 25)
        for client in clients:
            if client.error:
                raise Failure(f"a client failed: {client.error!r}")
        resumed = sum(client.resumed.is_set() for client in clients)
        if resumed != 3:
            raise Failure(f"{resumed} of n2's 3 clients resumed")
        timeline = driver.execute_script("return document.getElementById('timeline').textContent")
        for note in ("n2: ready → draining", "n2 left"):
            if note not in timeline:
                raise Failure(f"timeline lacks {note!r}: {timeline!r}")
        if producer.accepted == 0:
            raise Failure("the producer's events were not accepted")
        if n2.process.wait(timeout=15) != 0:
            raise Failure(f"n2 exited with {n2.process.returncode}")
        log(f"after the drain: {row_counts(driver)}; timeline: {timeline}")
        return 0
    finally:
        if producer:
            producer.stopping.set()
        for client in clients:
            client.stopping.set()
        for client in clients:
            client.join(timeout=2)
        if driver:
            driver.quit()
        for node in nodes:
            node.stop()
        redis.terminate()
        redis.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/debug/airavata-gateway"))
    parser.add_argument("--screenshot", help="save a PNG of the page while a node drains")
    arguments = parser.parse_args()
    if not os.access(arguments.bin, os.X_OK):
        log(f"no gateway binary at {arguments.bin} (build it, or pass --bin)")
        return 2
    try:
        import selenium  # noqa: F401
    except ImportError:
        log('Selenium is missing: run with "$(bash .ci/pytools)/python"')
        return 2
    run_dir = tempfile.mkdtemp(prefix="dashboard-browser-")
    try:
        status = run(arguments, run_dir)
        log("PASS")
        return status
    except Failure as failure:
        log(f"FAIL: {failure}")
        for name in ("n1", "n2", "n3"):
            path = os.path.join(run_dir, f"{name}.log")
            if os.path.exists(path):
                with open(path, errors="replace") as handle:
                    log(f"{name} log tail:\n" + "".join(handle.readlines()[-10:]))
        return 1
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
