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
