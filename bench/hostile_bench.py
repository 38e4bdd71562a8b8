"""Hostile clients, measured (issue 18) for bench/run.py: what one client can make a role
spend, on the release binaries, on loopback, in bounded loops.

    ./bench/run.sh --scenarios hostile

- 100,000 heartbeat names (what anyone can post while API_TOKEN is unset), then the
  synthesizer's status page `GET /`: its size and the time to answer, the watcher asked for
  only the pages the page shows.
- Heartbeat latency (p99, wrk) at 100,000 services alone, while two clients loop the watcher's
  `GET /status`, and while two loop its `GET /metrics`.
- The curator under 20 silences of 32 `\\w{20}` regex matchers (refused: MAX_REGEX_BYTES) and
  20 silences at the whole regex budget (taken): peak RSS and request latency.
- 300 connections that send `Content-Length: 1000` and then 6 bytes: every one answered 408
  within CLIENT_BODY_TIMEOUT, `/healthz` latency meanwhile, peak RSS.

It lives beside run.py like archive_bench.py; standard library only.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import json
import socket
import threading
import time
from types import ModuleType

SERVICES = 100_000
PAGE_RUNS = 11
READERS = 2
SLOW_BODIES = 300
# Shorter than the default 30 s so the scenario is bounded; the mechanism is the same.
BODY_TIMEOUT_SECONDS = 5


def peak_rss_kib(server) -> int:
    return int(server.status()["VmHWM"].split()[0])


def rss_kib(server) -> int:
    return int(server.status()["VmRSS"].split()[0])


def timed_get(port: int, path: str, timeout: float = 30) -> tuple[int, int, float]:
    """One GET on a fresh connection: status, body bytes, seconds to the last byte."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        return response.status, len(body), time.perf_counter() - started
    finally:
        conn.close()


def timed_post(port: int, path: str, body: dict, timeout: float = 30) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.perf_counter()
        conn.request("POST", path, body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started
    finally:
        conn.close()


class Readers:
    """`count` threads each looping GET `path` over one keep-alive connection until stopped."""

    def __init__(self, port: int, path: str, count: int) -> None:
        self.stop = threading.Event()
        self.reads = 0
        self.bytes = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.loop, args=(port, path), daemon=True)
                        for _ in range(count)]

    def loop(self, port: int, path: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            while not self.stop.is_set():
                conn.request("GET", path)
                response = conn.getresponse()
                body = response.read()
                with self.lock:
                    self.reads += 1
                    self.bytes += len(body)
        except OSError as error:
            self.errors.append(str(error))
        finally:
            conn.close()

    def __enter__(self) -> "Readers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=35)


def heartbeats_under(bench, h: ModuleType, watcher, readers: str | None) -> dict:
    """wrk POST /heartbeat over the 100,000 known names, with two clients looping `readers`
    (a path on the watcher) meanwhile, or none."""
    duration = max(bench.options.duration * 2, 3.0)

    def run() -> dict:
        with h.heartbeat_names(SERVICES):
            return bench.wrk(watcher.url("/heartbeat"), duration=duration, connections=8,
                             script=h.WRK_HEARTBEAT)

    if readers is None:
        report = run()
        return {"report": report, "reads": 0, "read_bytes": 0}
    with Readers(watcher.port, readers, READERS) as loop:
        report = run()
    return {"report": report, "reads": loop.reads, "read_bytes": loop.bytes,
            "read_errors": loop.errors[:3]}


def silences(bench, h: ModuleType) -> dict:
    """The curator: 20 hostile silences (refused), then 20 at the regex budget (taken)."""
    curator = bench.start(h.role("curator"), cores={h.SERVER_CORE}, workers=1, nice=h.LOAD_NICE)
    ends_at = (datetime.datetime.now(datetime.timezone.utc)
               + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def silence(value: str, count: int, comment: str) -> dict:
        return {"matchers": [{"name": "service", "isRegex": True, "value": value}] * count,
                "ends_at": ends_at, "comment": comment}

    patterns = [
        ("32 matchers of \\w{20} (refused: MAX_REGEX_BYTES)", silence("\\w{20}", 32, "hostile"),
         400),
        ("3 matchers of \\w{5} (the whole 1 MiB budget; taken)",
         silence("\\w{5}", 3, "at the budget"), 201),
    ]
    figures = {"idle_rss_kib": rss_kib(curator)}
    for name, body, want in patterns:
        latencies, statuses = [], []
        for _ in range(20):
            status, seconds = timed_post(curator.port, "/v1/silences", body)
            statuses.append(status)
            latencies.append(seconds)
        figures[name] = {"statuses": sorted(set(statuses)), "want": want,
                         "p99_s": h.percentile(latencies, 99), "max_s": max(latencies),
                         "peak_rss_kib": peak_rss_kib(curator), "rss_kib": rss_kib(curator)}
    bench.stop(curator)
    return figures


def slow_bodies(bench, h: ModuleType) -> dict:
    """300 stalled bodies against the watcher's POST /heartbeat; /healthz timed meanwhile."""
    spec = h.watcher(("CLIENT_BODY_TIMEOUT", str(BODY_TIMEOUT_SECONDS)))
    watcher = bench.start(spec, cores={h.SERVER_CORE}, workers=1, nice=h.LOAD_NICE)
    before = rss_kib(watcher)
    head = ("POST /heartbeat HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{\"nam").encode()
    sockets = []
    started = time.perf_counter()
    for _ in range(SLOW_BODIES):
        sock = socket.create_connection(("127.0.0.1", watcher.port), timeout=5)
        sock.sendall(head)
        sockets.append(sock)
    healthz = []
    answers: dict[int, str] = {}
    closed_at: dict[int, float] = {}
    deadline = started + BODY_TIMEOUT_SECONDS + 15
    for sock in sockets:
        sock.setblocking(False)
    while len(answers) < len(sockets) and time.perf_counter() < deadline:
        status, _, seconds = timed_get(watcher.port, "/healthz", timeout=5)
        healthz.append(seconds if status == 200 else float("inf"))
        for index, sock in enumerate(sockets):
            if index in answers:
                continue
            try:
                data = sock.recv(64)
            except BlockingIOError:
                continue
            except OSError as error:
                data = f"error {error}".encode()
            answers[index] = data.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
            closed_at[index] = time.perf_counter() - started
        time.sleep(0.02)
    for sock in sockets:
        sock.close()
    timed_out = sum(1 for line in answers.values() if " 408 " in line + " ")
    figures = {
        "connections": SLOW_BODIES, "answered_408": timed_out,
        "other_answers": sorted({line for line in answers.values() if " 408" not in line}),
        "unanswered": SLOW_BODIES - len(answers),
        "last_closed_s": max(closed_at.values(), default=float("nan")),
        "healthz_p99_s": h.percentile(healthz, 99) if healthz else float("nan"),
        "healthz_max_s": max(healthz, default=float("nan")),
        "healthz_requests": len(healthz),
        "rss_before_kib": before, "peak_rss_kib": peak_rss_kib(watcher),
    }
    bench.stop(watcher)
    return figures


def scenario_hostile(bench, h: ModuleType):
    # The fleet a client can make: 100,000 names on one watcher, the synthesizer in front.
    watcher = bench.start(h.watcher(("MAX_SERVICES", "200000")), cores={h.SERVER_CORE},
                          workers=2, nice=h.LOAD_NICE)
    h.load_services(bench, watcher, SERVICES)
    synthesizer_spec = h.role("synthesizer")
    synthesizer_spec = dataclasses.replace(
        synthesizer_spec, env=synthesizer_spec.env + (
            ("WATCHER_URL", f"http://127.0.0.1:{watcher.port}"),))
    synthesizer = bench.start(synthesizer_spec, cores={h.SERVER_CORE}, workers=1,
                              nice=h.LOAD_NICE)
    pages = [timed_get(synthesizer.port, "/") for _ in range(PAGE_RUNS)]
    page_status = sorted({status for status, _, _ in pages})
    page_bytes = max(size for _, size, _ in pages)
    page_times = [seconds for _, _, seconds in pages]
    _, status_bytes, status_seconds = timed_get(watcher.port, "/status")
    synthesizer_peak = peak_rss_kib(synthesizer)
    bench.stop(synthesizer)

    quiet = heartbeats_under(bench, h, watcher, None)
    under_status = heartbeats_under(bench, h, watcher, "/status")
    under_metrics = heartbeats_under(bench, h, watcher, "/metrics")
    watcher_peak = peak_rss_kib(watcher)
    bench.stop(watcher)

    curator = silences(bench, h)
    slow = slow_bodies(bench, h)

    def p99(run: dict) -> float:
        return run["report"]["latency_us"]["p99"] / 1e6

    def reads(run: dict) -> str:
        if not run["reads"]:
            return "-"
        return (f"{h.fmt_int(run['reads'])} reads, "
                f"{run['read_bytes'] / max(run['reads'], 1) / 1024:.0f} KiB each")

    beats = h.Table(["heartbeats at 100,000 services, while", "latency p50", "latency p99",
                     "heartbeats/s", "the readers did"], [
        [label, f"{run['report']['latency_us']['p50'] / 1000:.2f} ms", h.fmt_ms(p99(run)),
         h.fmt_int(run["report"]["requests"] / (run["report"]["duration_us"] / 1e6)),
         reads(run)]
        for label, run in [("nothing else", quiet),
                           (f"{READERS} clients loop GET /status", under_status),
                           (f"{READERS} clients loop GET /metrics", under_metrics)]])
    page = h.Table(["measure", "value"], [
        ["synthesizer GET / (100,000 services): answer, median / max of "
         f"{PAGE_RUNS}", f"{h.fmt_ms(h.median(page_times))} / {h.fmt_ms(max(page_times))}"],
        ["synthesizer GET /: size", f"{page_bytes / 1024:.0f} KiB"],
        ["synthesizer peak RSS", h.fmt_mib(synthesizer_peak)],
        ["watcher GET /status (default page of 1,000): size, time",
         f"{status_bytes / 1024:.0f} KiB, {h.fmt_ms(status_seconds)}"],
        ["watcher peak RSS (100,000 services, all of the above)", h.fmt_mib(watcher_peak)],
    ])
    rows = []
    for name, figures in curator.items():
        if not isinstance(figures, dict):
            continue
        rows.append([f"curator: 20 × POST /v1/silences, {name}",
                     ", ".join(map(str, figures["statuses"])),
                     h.fmt_ms(figures["p99_s"]), h.fmt_mib(figures["peak_rss_kib"])])
    rows.append([f"watcher: {SLOW_BODIES} bodies that stall after 6 of 1000 bytes "
                 f"(CLIENT_BODY_TIMEOUT={BODY_TIMEOUT_SECONDS})",
                 f"{slow['answered_408']} × 408 in {slow['last_closed_s']:.1f} s"
                 + (f", {slow['unanswered']} unanswered" if slow["unanswered"] else ""),
                 f"/healthz meanwhile: {h.fmt_ms(slow['healthz_p99_s'])} "
                 f"(max {h.fmt_ms(slow['healthz_max_s'])})",
                 h.fmt_mib(slow["peak_rss_kib"])])
    patterns = h.Table(["pattern", "answers", "latency p99", "peak RSS"], rows)
    budget = next(v for k, v in curator.items() if isinstance(v, dict) and v["want"] == 201)
    hostile = next(v for k, v in curator.items() if isinstance(v, dict) and v["want"] == 400)
    checks = [
        h.Check("status page at 100,000 services < 100 ms", h.fmt_ms(h.median(page_times)),
                h.median(page_times) < 0.1 and page_status == [200]),
        h.Check("status page at 100,000 services < 1 MB", f"{page_bytes / 1e6:.2f} MB",
                page_bytes < 1_000_000),
        h.Check("heartbeat p99 < 10 ms while 2 clients loop /status", h.fmt_ms(p99(under_status)),
                p99(under_status) < 0.010),
        h.Check("heartbeat p99 < 10 ms while 2 clients loop /metrics",
                h.fmt_ms(p99(under_metrics)), p99(under_metrics) < 0.010),
        h.Check("hostile silences refused (400), budget-sized ones taken (201)",
                f"{hostile['statuses']} / {budget['statuses']}",
                hostile["statuses"] == [400] and budget["statuses"] == [201]),
        h.Check("every stalled body answered 408 and /healthz < 50 ms meanwhile",
                f"{slow['answered_408']}/{SLOW_BODIES}, /healthz p99 "
                f"{h.fmt_ms(slow['healthz_p99_s'])}",
                slow["answered_408"] == SLOW_BODIES and slow["healthz_p99_s"] < 0.05),
    ]
    notes = [
        "Release binaries, loopback. The watcher runs on core 0 with 2 workers (DOCKER_WATCH=off, "
        "HOST_METRICS_INTERVAL=0); wrk (8 connections, cycling through the 100,000 names) and the "
        "Python readers share core 1.",
        "The synthesizer has no ARCHIVIST_URL: uptime bars are grey, so GET / is the watcher's "
        "facts and the render.",
        f"Curator idle RSS before the silences: {h.fmt_mib(curator['idle_rss_kib'])}.",
    ]
    return h.Section(
        title="Hostile clients (issue 18)",
        text=("What one client can make a role spend, each pattern bounded in count and time: "
              "100,000 heartbeat names and the status page built over them, readers looping "
              "the watcher's biggest answers while heartbeats arrive, regex-heavy silences, "
              "and bodies that never finish."),
        tables=[page, beats, patterns], checks=checks, notes=notes,
        raw={"page_seconds": page_times, "page_bytes": page_bytes,
             "status_bytes": status_bytes, "heartbeats": {
                 "quiet": quiet, "status": under_status, "metrics": under_metrics},
             "curator": curator, "slow_bodies": slow,
             "peak_rss_kib": {"watcher": watcher_peak, "synthesizer": synthesizer_peak}},
    )
