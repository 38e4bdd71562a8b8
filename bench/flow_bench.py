"""The whole flow's benchmark scenario for bench/run.py: how long from a missed heartbeat to
the webhook notification, through obs-stack's five roles (watcher → curator → planner →
synthesizer → webhook), with the production defaults.

    ./bench/run.sh --scenarios flow

The issue's target is a latency under one MONITOR_HEARTBEAT_CHECK_INTERVAL plus 1 s. The
clock starts at the heartbeat's deadline (the moment the service is overdue: when its last
beat was sent plus its `timeout_seconds`; sent, not received, so the figure errs long) and
stops when the webhook receiver here has the notification. The notification's incident
carries the watcher's `down_since`, which splits the time into detection (deadline → the
watcher calls it down) and delivery (down → webhook, including NOTIFY_GROUP_SECONDS).

It lives beside run.py like archive_bench.py; standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import http.server
import json
import threading
import time
from types import ModuleType

ROUNDS = 8
BEAT_TIMEOUT_SECONDS = 2.0
CHECK_INTERVAL_SECONDS = 5.0  # MONITOR_HEARTBEAT_CHECK_INTERVAL's default
WAIT_SECONDS = 30.0


class WebhookReceiver:
    """A real HTTP server on loopback that notes when each notification arrived."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                arrived = time.time()
                with receiver.lock:
                    receiver.arrivals.append((arrived, json.loads(body or b"{}")))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def opened(self, service: str) -> tuple[float, dict] | None:
        """When the first notification of `service` opening arrived, and that change."""
        with self.lock:
            for arrived, body in self.arrivals:
                for change in body.get("changes", []):
                    incident = change.get("incident", {})
                    if incident.get("service") == service and change.get("change") == "opened":
                        return arrived, incident
        return None

    def close(self) -> None:
        self.server.shutdown()


def post_heartbeat(port: int, service: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    body = json.dumps({"service": service, "timeout_seconds": BEAT_TIMEOUT_SECONDS})
    connection.request("POST", "/heartbeat", body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    response.read()
    connection.close()
    if response.status != 200:
        raise RuntimeError(f"POST /heartbeat answered {response.status}")


def unix_time(rfc3339: str) -> float:
    # Python 3.11 reads the offset but not nanoseconds: cut the fraction to microseconds.
    head, _, rest = rfc3339.partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())
    offset = rest[len(digits):] or "+00:00"
    text = f"{head}.{digits[:6] or '0'}{'+00:00' if offset == 'Z' else offset}"
    return datetime.datetime.fromisoformat(text).timestamp()


def scenario_flow(bench, harness: ModuleType):
    receiver = WebhookReceiver()
    spec = dataclasses.replace(
        harness.obs_stack(),
        env=(("HOST", "127.0.0.1"), ("DOCKER_WATCH", "off"),
             ("NOTIFY_WEBHOOKS", f"http://127.0.0.1:{receiver.port}/hook")),
    )
    stack = bench.start(spec, nice=0)
    watcher_port = stack.ports[0]
    rounds: list[dict] = []
    try:
        for round_number in range(ROUNDS):
            service = f"bench-flow-{round_number}-{int(time.time())}"
            sent = time.time()
            post_heartbeat(watcher_port, service)
            deadline = sent + BEAT_TIMEOUT_SECONDS
            give_up = deadline + WAIT_SECONDS
            while (found := receiver.opened(service)) is None:
                if time.time() > give_up:
                    raise RuntimeError(f"no notification for {service} within {WAIT_SECONDS} s")
                time.sleep(0.01)
            arrived, incident = found
            down = unix_time(incident["facts"]["down_since"])
            rounds.append({"service": service, "latency": arrived - deadline,
                           "detection": down - deadline, "delivery": arrived - down})
    finally:
        bench.stop(stack)
        receiver.close()

    latencies = [r["latency"] for r in rounds]
    detection = [r["detection"] for r in rounds]
    delivery = [r["delivery"] for r in rounds]
    target = CHECK_INTERVAL_SECONDS + 1.0
    fmt = lambda seconds: f"{seconds:.2f} s"  # noqa: E731
    table = harness.Table(["part", "median", "max"], [
        ["deadline → watcher calls it down (detection)", fmt(harness.median(detection)),
         fmt(max(detection))],
        ["down → webhook has the notification (curator, planner, synthesizer, grouping)",
         fmt(harness.median(delivery)), fmt(max(delivery))],
        ["deadline → webhook (end to end)", fmt(harness.median(latencies)), fmt(max(latencies))],
    ])
    checks = [harness.Check(
        f"missed heartbeat → webhook under one check interval + 1 s "
        f"({CHECK_INTERVAL_SECONDS:g} + 1 s), every round",
        f"max {fmt(max(latencies))}", max(latencies) < target)]
    notes = [
        f"{ROUNDS} rounds, one after another, each a new service that beats once with "
        f"`timeout_seconds: {BEAT_TIMEOUT_SECONDS:g}` and then stops. obs-stack with the "
        "production defaults (MONITOR_HEARTBEAT_CHECK_INTERVAL=5, NOTIFY_GROUP_SECONDS=2, "
        "NOTIFY_MIN_SEVERITY=warning, outboxes between every hop), DOCKER_WATCH=off, a "
        "Python webhook receiver on loopback; not pinned to a core.",
        "The checker sleeps until the earliest deadline but runs at most one pass per check "
        "interval (the roles' own heartbeats have deadlines too), so detection takes from 0 "
        "to one check interval; nearly all of the delivery time is the synthesizer's grouping "
        "window (NOTIFY_GROUP_SECONDS), which waits for more changes to send in one message.",
    ]
    return harness.Section(
        title="End to end: missed heartbeat → webhook notification",
        text=("From the moment a service is overdue to the notification at a webhook, "
              "through all five roles of obs-stack, each hop through an obs-core outbox."),
        tables=[table], checks=checks, notes=notes,
        raw={"rounds": rounds, "target_seconds": target},
    )


# --- the same with three replicas of every role on PostgreSQL, the checker's holder killed ---

REPLICA_ROUNDS = 6
LEASE_TTL_SECONDS = 10.0  # LEASE_TTL's default
ROLES = ["watcher", "curator", "planner", "synthesizer", "archivist"]


def http_status(port: int, path: str) -> int:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return 0


def start_haproxy(fronts: dict, replica_ports: dict, folder: str):
    import subprocess
    config = ("global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n"
              "  timeout client 30s\n  timeout server 30s\n  retries 3\n  option redispatch\n")
    for role, port in fronts.items():
        config += (f"frontend {role}\n  bind 127.0.0.1:{port}\n  default_backend {role}\n"
                   f"backend {role}\n  balance roundrobin\n  option httpchk GET /readyz\n"
                   "  default-server inter 300ms fall 1 rise 1\n")
        for index, replica_port in enumerate(replica_ports[role]):
            config += f"  server {role}{index} 127.0.0.1:{replica_port} check\n"
    path = f"{folder}/haproxy.cfg"
    with open(path, "w") as out:
        out.write(config)
    return subprocess.Popen(["haproxy", "-db", "-f", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def scenario_flow_replicas(bench, harness: ModuleType):
    import os
    import shutil
    import signal
    import tempfile

    import archive_bench

    h = harness
    receiver = WebhookReceiver()
    postgres = archive_bench.Postgres(h, tempfile.mkdtemp(prefix="obs-bench-postgres-"))
    postgres.psql("CREATE DATABASE flow")
    url = postgres.url("flow")
    fronts = {role: h.free_port() for role in ROLES}
    ports = {role: [h.free_port() for _ in range(3)] for role in ROLES}
    folder = tempfile.mkdtemp(prefix="obs-bench-flow-")
    haproxy = start_haproxy(fronts, ports, folder)
    replicas: dict[tuple[str, int], object] = {}

    def launch(role: str, index: int):
        env = [("HOST", "127.0.0.1"), ("PORT", str(ports[role][index])),
               ("DATABASE_URL", url), ("DOCKER_WATCH", "off"),
               ("NOTIFY_WEBHOOKS", f"http://127.0.0.1:{receiver.port}/hook")]
        env += [(f"{other.upper()}_URL", f"http://127.0.0.1:{fronts[other]}") for other in ROLES]
        spec = h.ServerSpec(name=f"{role} replica {index}",
                            argv=(str(h.RELEASE_DIR / role),), env=tuple(env), port_envs=())
        replicas[(role, index)] = bench.start(spec, nice=0)

    def wait_ready(timeout: float = 60.0):
        deadline = time.time() + timeout
        for role in ROLES:
            for port in ports[role] + [fronts[role]]:
                while http_status(port, "/readyz") != 200:
                    if time.time() > deadline:
                        raise RuntimeError(f"{role} on {port} not ready")
                    time.sleep(0.05)

    rounds: list[dict] = []
    try:
        for role in ROLES:
            for index in range(3):
                launch(role, index)
        wait_ready()
        for round_number in range(REPLICA_ROUNDS):
            service = f"bench-failover-{round_number}-{int(time.time())}"
            sent = time.time()
            post_heartbeat(fronts["watcher"], service)
            deadline = sent + BEAT_TIMEOUT_SECONDS
            time.sleep(max(0.0, deadline - time.time()))
            # At the deadline, SIGKILL the watcher replica holding the checker's lease (its
            # holder is "<pid>-<ulid>") and start a fresh pod in its place, as a scheduler would.
            holder = postgres.psql(
                "SELECT holder FROM leases WHERE name = 'watcher-checker'", "flow").strip()
            pid = int(holder.split("-", 1)[0]) if holder else -1
            victim = next((key for key, server in replicas.items()
                           if key[0] == "watcher" and server.pid == pid), None)
            if victim is None:
                raise RuntimeError(f"no watcher replica holds the checker lease ({holder!r})")
            killed_at = time.time()
            os.kill(pid, signal.SIGKILL)
            bench.stop(replicas.pop(victim))
            launch(*victim)
            give_up = deadline + WAIT_SECONDS + LEASE_TTL_SECONDS
            while (found := receiver.opened(service)) is None:
                if time.time() > give_up:
                    raise RuntimeError(f"no notification for {service} after the failover")
                time.sleep(0.01)
            arrived, incident = found
            down = unix_time(incident["facts"]["down_since"])
            rounds.append({"service": service, "latency": arrived - deadline,
                           "detection": down - deadline, "delivery": arrived - down,
                           "killed_after_deadline": killed_at - deadline,
                           "killed": f"{victim[0]} replica {victim[1]}"})
            wait_ready()
        notifications = sum(1 for _, body in receiver.arrivals
                            for change in body.get("changes", [])
                            if change.get("change") == "opened"
                            and str(change.get("incident", {}).get("service", "")).startswith(
                                "bench-failover-"))
    finally:
        for server in list(replicas.values()):
            with contextlib_suppress():
                bench.stop(server)
        haproxy.terminate()
        haproxy.wait()
        postgres.stop()
        shutil.rmtree(postgres.folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        receiver.close()

    latencies = [r["latency"] for r in rounds]
    detection = [r["detection"] for r in rounds]
    delivery = [r["delivery"] for r in rounds]
    target = CHECK_INTERVAL_SECONDS + LEASE_TTL_SECONDS + 1.0
    fmt = lambda seconds: f"{seconds:.2f} s"  # noqa: E731
    table = h.Table(["part", "median", "max"], [
        ["deadline → a surviving watcher calls it down (lease failover + detection)",
         fmt(h.median(detection)), fmt(max(detection))],
        ["down → webhook has the notification", fmt(h.median(delivery)), fmt(max(delivery))],
        ["deadline → webhook (end to end)", fmt(h.median(latencies)), fmt(max(latencies))],
    ])
    per_round = h.Table(["round", "killed at the deadline", "deadline → down", "down → webhook",
                         "deadline → webhook"],
                        [[str(i + 1), r["killed"], fmt(r["detection"]), fmt(r["delivery"]),
                          fmt(r["latency"])] for i, r in enumerate(rounds)])
    checks = [
        h.Check(f"missed heartbeat → webhook with the checker's holder killed, 3 replicas per "
                f"role on PostgreSQL: under check interval + lease failover + 1 s "
                f"({CHECK_INTERVAL_SECONDS:g} + {LEASE_TTL_SECONDS:g} + 1 s), every round",
                f"max {fmt(max(latencies))}", max(latencies) < target),
        h.Check("one 'opened' notification per incident with the failover",
                f"{notifications} for {len(rounds)} incidents", notifications == len(rounds)),
    ]
    notes = [
        f"Three replicas of each of the five roles (15 processes, `LOG_LEVEL` info, production "
        f"defaults: MONITOR_HEARTBEAT_CHECK_INTERVAL=5, LEASE_TTL=10, NOTIFY_GROUP_SECONDS=2, "
        "STATE_SAVE_INTERVAL=0.5) on one PostgreSQL database, each role behind Debian's "
        "haproxy (round robin, `option httpchk GET /readyz` every 300 ms), as in "
        "services/obs-stack/tests/replicas.rs; DOCKER_WATCH=off; not pinned to a core.",
        f"{REPLICA_ROUNDS} rounds: a new service beats once through haproxy with "
        f"`timeout_seconds: {BEAT_TIMEOUT_SECONDS:g}`; at its deadline the watcher replica "
        "holding the `watcher-checker` lease (its holder names its pid, read from the `leases` "
        "table) is SIGKILLed and a fresh replica (empty STATE_DIR) started on its port. The "
        "clock runs from the deadline to the webhook receiver's arrival.",
        "The dead holder's lease is taken over once it expires: up to LEASE_TTL after its last "
        "renewal (renewed every third of it). With PostgreSQL a service is called down 1.5 s "
        "past its deadline at the earliest (beats are written behind; docs/watcher.md).",
    ]
    return h.Section(
        title="End to end with replicas: missed heartbeat → webhook while the checker's holder is killed",
        text=("The flow above with three replicas of every role on PostgreSQL, the watcher "
              "replica that runs the checker SIGKILLed at the moment the service becomes "
              "overdue."),
        tables=[table, per_round], checks=checks, notes=notes,
        raw={"rounds": rounds, "target_seconds": target, "notifications": notifications},
    )


def contextlib_suppress():
    import contextlib
    return contextlib.suppress(Exception)
