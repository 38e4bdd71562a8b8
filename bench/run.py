#!/usr/bin/env python3
"""obs-fleet benchmarks: obs-core roles against baselines, measured in one run on one machine.

    ./bench/run.sh                 # what `make bench` runs; writes docs/BENCHMARKS.md
    ./bench/run.sh --quick -o /tmp/b.md --scenarios startup,memory
    ./bench/run.sh --scenarios alertmanager,postgres,flow-replicas   # need PostgreSQL,
                   # prometheus-alertmanager and haproxy (make test-deps installs them)

Every figure is a ratio against a baseline measured in the same run (DESIGN §8): a bare
actix-web app with no middleware (bench/bare-actix) and the original Python service
(bench/python-baseline). The harness pins itself and the load generator (wrk) to one core and
the server under load to the other, so the two never compete for a core.

A scenario is a function `(Bench) -> Section`: it starts what it needs, measures, and returns
its tables and the targets it checks. To add one (say heartbeat ingest), write the function
and add it to SCENARIOS; the report writer needs nothing new.

Standard library only: it runs under any Python 3.11.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
RELEASE_DIR = ROOT / "target" / "x86_64-unknown-linux-gnu" / "release"
PYTHON_VENV = ROOT / "bench" / ".venv-python-baseline"
PYTHON_APP = ROOT / "bench" / "python-baseline" / "app.py"
WRK_REPORT = ROOT / "bench" / "wrk-report.lua"
RESULTS_DIR = ROOT / "bench" / "results"
DEFAULT_OUTPUT = ROOT / "docs" / "BENCHMARKS.md"

ROLES = ["watcher", "curator", "planner", "synthesizer", "archivist"]
# The role measured under load; all five share the same obs-core code path for /healthz.
LOAD_ROLE = "watcher"

SERVER_CORE = 0  # the server under load
CLIENT_CORE = 1  # this harness and wrk
# The harness, the servers and wrk all run at nice -20 (when root), so a compile elsewhere on
# the machine takes only what they leave; a load round during which other work still took
# more than OTHER_LOAD_LIMIT of a core is measured again (within the run's retry budget).
LOAD_NICE = -20
OTHER_LOAD_LIMIT = 0.25
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------
# What is measured: servers


@dataclasses.dataclass(frozen=True)
class ServerSpec:
    """How to start one server. `port_envs` names the env variables that take its ports
    (one per listener); the harness picks free ports and waits for /healthz on each."""

    name: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    port_envs: tuple[str, ...] = ("PORT",)
    has_metrics: bool = True
    # Rust servers take WORKERS; the Python baseline is one uvicorn worker (one process).
    takes_workers: bool = True
    # Seconds from SIGTERM to SIGKILL.
    stop_timeout: float = 5.0


def bare_actix() -> ServerSpec:
    return ServerSpec(
        name="bare actix-web",
        argv=(str(RELEASE_DIR / "bare-actix"),),
        has_metrics=False,
    )


def role(name: str) -> ServerSpec:
    return ServerSpec(
        name=f"obs-core {name}",
        argv=(str(RELEASE_DIR / name),),
        # Production defaults (LOG_LEVEL=info, JSON logs); only where state goes is ours.
        env=(("HOST", "127.0.0.1"),),
    )


def obs_stack() -> ServerSpec:
    return ServerSpec(
        name="obs-stack (5 roles, 1 process)",
        argv=(str(RELEASE_DIR / "obs-stack"),),
        env=(("HOST", "127.0.0.1"),),
        port_envs=tuple(f"{r.upper()}_PORT" for r in ROLES),
    )


def python_baseline() -> ServerSpec:
    return ServerSpec(
        name="Python original",
        argv=(str(PYTHON_VENV / "bin" / "python"), str(PYTHON_APP)),
        env=(("HOST", "127.0.0.1"), ("ROLE", "watcher")),
        takes_workers=False,
    )


class ServerFailed(RuntimeError):
    pass


class Server:
    """One running server process. Always stopped by `Bench.close()`, whatever happens."""

    def __init__(self, spec: ServerSpec, process: subprocess.Popen, ports: list[int],
                 state_dir: str, stderr_path: str):
        self.spec = spec
        self.process = process
        self.ports = ports
        self.state_dir = state_dir
        self.stderr_path = stderr_path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def port(self) -> int:
        return self.ports[0]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_times(self) -> tuple[float, float]:
        """(utime, stime) of the whole process (all threads, live and exited), in seconds."""
        with open(f"/proc/{self.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        # Fields 14 and 15 of proc(5); index 0 here is field 3 (state).
        return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK

    def cpu_seconds(self) -> float:
        """utime + stime of the whole process."""
        return sum(self.cpu_times())

    def status(self) -> dict[str, str]:
        with open(f"/proc/{self.pid}/status") as status:
            return dict(line.split(":", 1) for line in status if ":" in line)

    def stderr_tail(self) -> str:
        try:
            return Path(self.stderr_path).read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.state_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_path)


def free_port() -> int:
    """A port the kernel says is free now (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def spawning(cores: set[int], nice: int = 0):
    """Children inherit the spawning thread's CPU affinity and nice value: set both around a
    spawn. Raising priority needs root; without it the nice value stays as it is."""
    cores_before = os.sched_getaffinity(0)
    nice_before = os.getpriority(os.PRIO_PROCESS, 0)
    os.sched_setaffinity(0, cores)
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    try:
        yield
    finally:
        os.sched_setaffinity(0, cores_before)
        with contextlib.suppress(PermissionError):
            os.setpriority(os.PRIO_PROCESS, 0, nice_before)


def healthz_ok(port: int, timeout: float = 1.0) -> bool:
    """One GET /healthz on a fresh connection; True on 200. Refused/reset counts as not yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            head = conn.recv(16)
    except OSError:
        return False
    return head.startswith(b"HTTP/1.") and head[9:12] == b"200"


def http_get(port: int, path: str, count: int = 1) -> None:
    """`count` GETs over one keep-alive connection, each answer read in full."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for _ in range(count):
            conn.request("GET", path)
            conn.getresponse().read()
    finally:
        conn.close()


# ---------------------------------------------------------------------------------------------
# The harness


@dataclasses.dataclass
class Options:
    duration: float
    rounds: int
    connections: int
    warmup: float
    scrape_duration: float
    startup_runs: int
    startup_runs_python: int
    settle: float
    max_quiet_wait: float
    max_retries: int
    instruction_requests: tuple[int, int]


@dataclasses.dataclass
class Load:
    """One wrk run against one server."""

    requests: int
    seconds: float
    server_cpu: float  # seconds, utime + stime
    server_user: float  # seconds, utime
    wrk_cpu: float  # seconds
    other_busy: float  # cores used by everything else on the machine meanwhile
    errors: int
    latency_us: dict
    companion_cpu: float = 0.0  # seconds, processes serving with the server (its database)


@dataclasses.dataclass
class Check:
    """One target of the issue, checked against a measured figure."""

    target: str
    measured: str
    passed: bool


@dataclasses.dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]


@dataclasses.dataclass
class Section:
    title: str
    text: str
    tables: list[Table]
    checks: list[Check] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    raw: dict = dataclasses.field(default_factory=dict)


class Bench:
    def __init__(self, options: Options):
        self.options = options
        self.servers: list[Server] = []
        self.all_cores = set(range(os.cpu_count() or 1))
        self.quiet_budget = options.max_quiet_wait
        self.retry_budget = options.max_retries
        self.discarded = 0
        self.quiet_log: list[str] = []

    def start(self, spec: ServerSpec, *, cores: set[int] | None = None,
              workers: int | None = None, nice: int = LOAD_NICE, wait: bool = True,
              timeout: float = 30.0) -> Server:
        """Start `spec` on free ports, restricted to `cores` (default: all) at `nice`, and
        wait until /healthz answers 200 on every port."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env.update(dict(spec.env))
        ports = [free_port() for _ in spec.port_envs]
        env.update({name: str(port) for name, port in zip(spec.port_envs, ports)})
        state_dir = tempfile.mkdtemp(prefix="obs-bench-")
        env["STATE_DIR"] = state_dir
        if workers is not None and spec.takes_workers:
            env["WORKERS"] = str(workers)
        stderr_fd, stderr_path = tempfile.mkstemp(prefix="obs-bench-", suffix=".log")
        with spawning(cores or self.all_cores, nice):
            process = subprocess.Popen(spec.argv, env=env, cwd=state_dir,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=stderr_fd)
        os.close(stderr_fd)
        server = Server(spec, process, ports, state_dir, stderr_path)
        self.servers.append(server)
        if wait:
            self.wait_ready(server, timeout)
        return server

    def wait_ready(self, server: Server, timeout: float = 30.0) -> float:
        """Poll every port with GET /healthz until 200; the perf_counter() of the last 200."""
        deadline = time.perf_counter() + timeout
        pending = list(server.ports)
        while pending:
            if healthz_ok(pending[0]):
                pending.pop(0)
                continue
            if server.process.poll() is not None:
                raise ServerFailed(f"{server.spec.name} exited with {server.process.returncode}:"
                                   f"\n{server.stderr_tail()}")
            if time.perf_counter() > deadline:
                raise ServerFailed(f"{server.spec.name} not healthy after {timeout} s")
            time.sleep(0.0002)
        return time.perf_counter()

    def wait_quiet(self) -> str:
        """The cores are shared with whatever else runs here (a compile, another test run).
        Before a scenario, wait until the rest of the machine uses under a quarter of a core,
        sampling for a second at a time, but never more than the run's remaining quiet budget.
        Returns what happened, for the report."""
        waited = 0.0
        while True:
            before = cpu_busy_seconds()
            time.sleep(1.0)
            after = cpu_busy_seconds()
            busy = sum(after[c] - before[c] for c in after)
            if busy < 0.25:
                return (f"machine quiet ({busy * 100:.0f} % of a core busy) after waiting "
                        f"{waited:.0f} s")
            waited += 1.0
            self.quiet_budget -= 1.0
            if self.quiet_budget <= 0:
                return (f"machine still busy ({busy * 100:.0f} % of a core) after waiting "
                        f"{waited:.0f} s; measured anyway")

    def load(self, server: Server, path: str, *, duration: float, connections: int,
             script: Path = WRK_REPORT,
             companion_cpu: Callable[[], float] | None = None) -> Load:
        """wrk against `server` with its CPU time read around it; measured again while other
        work on the machine took more than OTHER_LOAD_LIMIT of a core (retry budget allowing).
        `companion_cpu` reads the CPU seconds of processes that serve with the server (its
        PostgreSQL): part of the system measured, not other load."""
        companion = companion_cpu or (lambda: 0.0)
        while True:
            companion_before = companion()
            user_before, system_before = server.cpu_times()
            busy_before = cpu_busy_seconds()
            wrk_before = children_cpu_seconds()
            report = self.wrk(server.url(path), duration=duration, connections=connections,
                              script=script)
            user_after, system_after = server.cpu_times()
            user = user_after - user_before
            cpu = user + system_after - system_before
            wrk_cpu = children_cpu_seconds() - wrk_before
            companion_used = companion() - companion_before
            busy_after = cpu_busy_seconds()
            seconds = report["duration_us"] / 1e6
            busy = sum(busy_after[c] - busy_before[c] for c in busy_after)
            load = Load(requests=report["requests"], seconds=seconds, server_cpu=cpu,
                        server_user=user, wrk_cpu=wrk_cpu,
                        other_busy=max(0.0, busy - cpu - wrk_cpu - companion_used) / seconds,
                        errors=sum(report["errors"].values()), latency_us=report["latency_us"],
                        companion_cpu=companion_used)
            if load.other_busy <= OTHER_LOAD_LIMIT or self.retry_budget <= 0:
                return load
            self.retry_budget -= 1
            self.discarded += 1
            print(f"bench: other load {load.other_busy * 100:.0f} % of a core during a "
                  f"{server.spec.name} round; measuring it again", flush=True)

    def stop(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def close(self) -> None:
        for server in list(self.servers):
            with contextlib.suppress(Exception):
                self.stop(server)

    def wrk(self, url: str, *, duration: float, connections: int,
            script: Path = WRK_REPORT) -> dict:
        """wrk on CLIENT_CORE (one thread), keep-alive. Returns the report of wrk-report.lua
        plus wrk's own CPU time."""
        # wrk takes whole seconds only.
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "5s",
                "-s", str(script), url]
        with spawning({CLIENT_CORE}, LOAD_NICE):
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       stdin=subprocess.DEVNULL, text=True)
        try:
            stdout, stderr = process.communicate(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        # The process is reaped by communicate(); its CPU time is in the children's rusage.
        lines = [line for line in stdout.splitlines() if line.startswith("WRK_JSON ")]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"wrk failed ({process.returncode}): {stderr}{stdout}")
        return json.loads(lines[-1].split(" ", 1)[1])


def cpu_busy_seconds() -> dict[str, float]:
    """Seconds per core since boot that processes ran (user, nice, system in /proc/stat).
    Interrupt and softirq time is left out: loopback TCP under our own load lands there,
    charged to no process, and would read as someone else's work."""
    busy = {}
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("cpu") and line[3].isdigit():
                name, *values = line.split()
                busy[name] = sum(int(v) for v in values[:3]) / CLK_TCK
    return busy


def children_cpu_seconds() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def fmt_pct(value: float) -> str:
    return f"{value:+.1f} %"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB"


# ---------------------------------------------------------------------------------------------
# Scenarios


def scenario_healthz_throughput(bench: Bench) -> Section:
    """GET /healthz under keep-alive load: requests/s and server CPU per request."""
    opts = bench.options
    specs = [bare_actix(), role(LOAD_ROLE), python_baseline()]
    servers = [bench.start(spec, cores={SERVER_CORE}, workers=1, nice=LOAD_NICE)
               for spec in specs]
    for server in servers:
        http_get(server.port, "/healthz", 100)
        bench.wrk(server.url("/healthz"), duration=opts.warmup, connections=opts.connections)

    loads: dict[str, list[Load]] = {server.spec.name: [] for server in servers}
    # Rounds interleave the servers, in turn forwards and backwards, so a drift of the machine
    # hits all of them alike.
    for index in range(opts.rounds):
        for server in (servers if index % 2 == 0 else servers[::-1]):
            loads[server.spec.name].append(bench.load(
                server, "/healthz", duration=opts.duration, connections=opts.connections))
    for server in servers:
        bench.stop(server)

    figures = {}
    for name, runs in loads.items():
        requests = sum(run.requests for run in runs)
        seconds = sum(run.seconds for run in runs)
        cpu = sum(run.server_cpu for run in runs)
        figures[name] = {
            "rps": requests / seconds,
            "cpu_us": cpu / requests * 1e6,
            "user_us": sum(run.server_user for run in runs) / requests * 1e6,
            "server_busy": cpu / seconds,
            "wrk_busy": sum(run.wrk_cpu for run in runs) / seconds,
            "p50_us": median([run.latency_us["p50"] for run in runs]),
            "p99_us": median([run.latency_us["p99"] for run in runs]),
            "requests": requests,
            "errors": sum(run.errors for run in runs),
            "rounds": [dataclasses.asdict(run) for run in runs],
        }
    other_busy = [run.other_busy for runs in loads.values() for run in runs]
    bare, ours, python = (figures[spec.name] for spec in specs)
    rows = []
    for spec in specs:
        f = figures[spec.name]
        rows.append([
            spec.name, fmt_int(f["rps"]), f"{f['cpu_us']:.2f}",
            f"{f['user_us']:.2f} / {f['cpu_us'] - f['user_us']:.2f}",
            f"{f['server_busy'] * 100:.0f} %", f"{f['wrk_busy'] * 100:.0f} %",
            f"{f['p50_us'] / 1000:.2f} ms", f"{f['p99_us'] / 1000:.2f} ms",
            fmt_int(f["requests"]), fmt_int(f["errors"]),
        ])
    table = Table(["server", "requests/s", "server CPU µs/request", "user / system µs",
                   "server CPU busy", "wrk CPU busy",
                   "latency p50", "latency p99", "requests", "errors"], rows)

    # Each round measures bare and ours back to back. The machine's speed moves between rounds
    # by more than the middleware costs (steal, frequency), so the targets are checked on the
    # median of the per-round pairs, which such swings move least; the totals are shown too.
    bare_rounds, our_rounds = loads[specs[0].name], loads[specs[1].name]
    paired_cpu = [(o.server_cpu / o.requests) / (b.server_cpu / b.requests) - 1
                  for b, o in zip(bare_rounds, our_rounds)]
    paired_rps = [1 - (o.requests / o.seconds) / (b.requests / b.seconds)
                  for b, o in zip(bare_rounds, our_rounds)]
    cpu_overhead, rps_loss = median(paired_cpu), median(paired_rps)
    total_cpu_overhead = ours["cpu_us"] / bare["cpu_us"] - 1
    total_rps_loss = 1 - ours["rps"] / bare["rps"]
    ratios = Table(["comparison", "requests/s", "CPU µs/request"], [
        [f"obs-core {LOAD_ROLE} / bare actix-web, all rounds", fmt_ratio(ours["rps"] / bare["rps"]),
         fmt_ratio(ours["cpu_us"] / bare["cpu_us"])],
        ["middleware overhead (vs bare), median of the paired rounds",
         fmt_pct(-rps_loss * 100), fmt_pct(cpu_overhead * 100)],
        ["middleware overhead (vs bare), all rounds", fmt_pct(-total_rps_loss * 100),
         fmt_pct(total_cpu_overhead * 100)],
        [f"obs-core {LOAD_ROLE} vs Python original", fmt_ratio(ours["rps"] / python["rps"])
         + " the throughput", fmt_ratio(python["cpu_us"] / ours["cpu_us"]) + " less CPU"],
    ])
    checks = [
        Check("middleware CPU per request < 5 % over bare actix-web",
              fmt_pct(cpu_overhead * 100), cpu_overhead < 0.05),
        Check("middleware requests/s cost < 5 % under bare actix-web",
              fmt_pct(-rps_loss * 100), rps_loss < 0.05),
    ]
    mean_other = statistics.mean(other_busy)
    notes = [
        f"{opts.rounds} rounds of {opts.duration:g} s per server, interleaved (in turn forwards "
        f"and backwards), after a {opts.warmup:g} s warm-up; wrk -t1 -c{opts.connections} "
        "(keep-alive, no pipelining).",
        f"Servers on core {SERVER_CORE} (Rust `WORKERS=1`, uvicorn one worker), wrk and the "
        f"harness on core {CLIENT_CORE}; server and wrk at nice {LOAD_NICE}.",
        "CPU µs/request = the server's utime+stime delta (/proc/<pid>/stat, all threads) / "
        "requests completed. 'busy' is CPU seconds per second of load: where the server is "
        "below 100 % and wrk near it, wrk (and the loopback TCP work the kernel charges to "
        "it) was the limit, so requests/s compares round-trip cost rather than the server's "
        "capacity on its core, and CPU µs/request is the better measure of the server.",
        f"Middleware CPU overhead per round (bare and {LOAD_ROLE} back to back), in order: "
        + ", ".join(fmt_pct(r * 100) for r in paired_cpu) + ".",
        f"Other load on the machine while wrk ran (busy CPU not used by the server or wrk): "
        f"mean {mean_other * 100:.0f} % of a core, max {max(other_busy) * 100:.0f} %; "
        f"rounds above {OTHER_LOAD_LIMIT * 100:.0f} % are measured again while the retry "
        "budget lasts.",
    ]
    if mean_other > OTHER_LOAD_LIMIT:
        notes.append("WARNING: other processes were busy during the load runs; figures are "
                     "noisier than usual. Re-run on an idle machine to confirm.")
    return Section(
        title="GET /healthz throughput and CPU per request",
        text=("The same `/healthz` (`{\"status\":\"ok\"}`) from three servers: bare actix-web "
              f"(no middleware), an obs-core role ({LOAD_ROLE}: metrics, request id, role "
              "span, JSON errors), and the original Python service."),
        tables=[table, ratios], checks=checks, notes=notes,
        raw={"figures": figures, "other_busy_cores": other_busy,
             "paired_cpu_overhead": paired_cpu, "paired_rps_loss": paired_rps},
    )


def scenario_metrics_scrape(bench: Bench) -> Section:
    """GET /metrics latency, one scrape at a time, after traffic has created series."""
    opts = bench.options
    specs = [role(LOAD_ROLE), python_baseline()]
    rows, raw = [], {}
    for spec in specs:
        server = bench.start(spec, cores={SERVER_CORE}, workers=1, nice=LOAD_NICE)
        # Series for a matched route, a 404 and /metrics itself, as a real scrape finds them.
        http_get(server.port, "/healthz", 500)
        http_get(server.port, "/no-such-path", 50)
        http_get(server.port, "/metrics", 20)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        conn.close()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        load = bench.load(server, "/metrics", duration=opts.scrape_duration, connections=1)
        bench.stop(server)
        latency = load.latency_us
        raw[spec.name] = {"load": dataclasses.asdict(load), "bytes": len(body), "series": series}
        rows.append([spec.name, f"{latency['p50'] / 1000:.3f} ms",
                     f"{latency['p99'] / 1000:.3f} ms", fmt_int(load.requests),
                     f"{load.server_cpu / load.requests * 1e6:.0f}", fmt_int(len(body)),
                     str(series)])
    ours, python = (raw[spec.name]["load"]["latency_us"] for spec in specs)
    ratio = Table(["comparison", "p50", "p99"], [[
        f"Python original / obs-core {LOAD_ROLE}", fmt_ratio(python["p50"] / ours["p50"]),
        fmt_ratio(python["p99"] / ours["p99"])]])
    return Section(
        title="GET /metrics scrape latency",
        text=("One scrape at a time (wrk -t1 -c1, keep-alive) for "
              f"{opts.scrape_duration:g} s, server on core {SERVER_CORE} with one worker, after 500 × /healthz, 50 × 404 and 20 scrapes, so "
              "the registry holds the series a real scrape finds. The obs-core registry also "
              "carries `process_*`, `build_info` and the in-flight gauge, and finer "
              "(sub-millisecond) histogram buckets, so it serves more series than the Python "
              "original."),
        tables=[Table(["server", "latency p50", "latency p99", "scrapes", "server CPU µs/scrape",
                       "bytes", "series"], rows), ratio],
        raw=raw,
    )


def scenario_startup(bench: Bench) -> Section:
    """Exec-to-ready: from spawning the process until GET /healthz answers 200."""
    opts = bench.options
    specs = [(bare_actix(), opts.startup_runs)]
    specs += [(role(name), opts.startup_runs) for name in ROLES]
    specs += [(obs_stack(), opts.startup_runs), (python_baseline(), opts.startup_runs_python)]
    rows, raw = [], {}
    for spec, runs in specs:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            server = bench.start(spec, wait=False)
            ready = bench.wait_ready(server)
            times.append(ready - started)
            bench.stop(server)
        raw[spec.name] = times
        rows.append([spec.name, str(runs), fmt_ms(median(times)), fmt_ms(min(times)),
                     fmt_ms(percentile(times, 90)), fmt_ms(max(times))])
    bare = median(raw[bare_actix().name])
    python = median(raw[python_baseline().name])
    role_medians = {name: median(raw[role(name).name]) for name in ROLES}
    worst = max(role_medians, key=role_medians.get)
    ratios = Table(["comparison", "median"], [
        [f"slowest role ({worst}) / bare actix-web", fmt_ratio(role_medians[worst] / bare)],
        [f"Python original / slowest role ({worst})", fmt_ratio(python / role_medians[worst])],
    ])
    checks = [Check("exec-to-ready median < 10 ms, every role",
                    f"{fmt_ms(role_medians[worst])} ({worst}, slowest)",
                    role_medians[worst] < 0.010)]
    return Section(
        title="Startup: exec to ready",
        text=("Time from spawning the process until `GET /healthz` answers 200, polled on fresh "
              "connections every 0.2 ms by the harness (on core 1); servers get both cores and "
              "their default worker count, a fresh STATE_DIR and free ports. obs-stack is ready "
              "when all five of its ports answer."),
        tables=[Table(["server", "runs", "median", "min", "p90", "max"], rows), ratios],
        checks=checks, raw=raw,
    )


def scenario_idle_memory(bench: Bench) -> Section:
    """VmRSS after startup, a few requests and a short settle, default workers."""
    opts = bench.options
    specs = [bare_actix()] + [role(name) for name in ROLES] + [obs_stack(), python_baseline()]
    servers = [bench.start(spec) for spec in specs]
    for server in servers:
        for port in server.ports:
            http_get(port, "/healthz", 20)
            if server.spec.has_metrics:
                http_get(port, "/metrics", 5)
    time.sleep(opts.settle)
    rows, raw = [], {}
    for server in servers:
        status = server.status()
        kib = {key: int(status[key].split()[0]) for key in ("VmRSS", "RssAnon", "RssFile")}
        kib["Threads"] = int(status["Threads"])
        raw[server.spec.name] = kib
        rows.append([server.spec.name, fmt_mib(kib["VmRSS"]), fmt_mib(kib["RssAnon"]),
                     fmt_mib(kib["RssFile"]), str(kib["Threads"])])
    for server in servers:
        bench.stop(server)
    bare = raw[bare_actix().name]["VmRSS"]
    python = raw[python_baseline().name]["VmRSS"]
    role_rss = {name: raw[role(name).name]["VmRSS"] for name in ROLES}
    worst = max(role_rss, key=role_rss.get)
    ratios = Table(["comparison", "VmRSS"], [
        [f"largest role ({worst}) / bare actix-web", fmt_ratio(role_rss[worst] / bare)],
        [f"Python original / largest role ({worst})", fmt_ratio(python / role_rss[worst])],
    ])
    checks = [Check("idle resident memory < 8 MiB, every role",
                    f"{fmt_mib(role_rss[worst])} ({worst}, largest)",
                    role_rss[worst] < 8 * 1024)]
    return Section(
        title="Idle resident memory",
        text=(f"VmRSS from /proc/<pid>/status after startup, 20 × /healthz and 5 × /metrics per "
              f"port, and {opts.settle:g} s idle. Default worker count (one per core, so 2 "
              "here), all cores."),
        tables=[Table(["server", "VmRSS", "RssAnon", "RssFile", "threads"], rows), ratios],
        checks=checks, raw=raw,
    )


def scenario_instructions(bench: Bench) -> Section:
    """User-space instructions per GET /healthz under callgrind: a count that other load on
    the machine cannot disturb, to tell the middleware's own cost from noise."""
    title = "GET /healthz instructions per request (callgrind)"
    if shutil.which("valgrind") is None:
        return Section(title=title, text="Skipped: valgrind is not installed "
                       "(`apt-get install valgrind`).", tables=[])
    few, many = bench.options.instruction_requests
    specs = [bare_actix(), role(LOAD_ROLE)]
    rows, raw = [], {}
    for spec in specs:
        counts = []
        for requests in (few, many):
            out = tempfile.mktemp(prefix="obs-bench-callgrind-")
            wrapped = dataclasses.replace(
                spec, argv=("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            *spec.argv), stop_timeout=60.0)
            server = bench.start(wrapped, cores={SERVER_CORE}, workers=1, timeout=120.0)
            http_get(server.port, "/healthz", requests)
            bench.stop(server)
            try:
                counts.append(callgrind_total(out))
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(out)
        per_request = (counts[1] - counts[0]) / (many - few)
        raw[spec.name] = {"totals": counts, "per_request": per_request}
        rows.append([spec.name, fmt_int(per_request)])
    bare, ours = (raw[spec.name]["per_request"] for spec in specs)
    rows.append([f"obs-core {LOAD_ROLE} − bare", f"{ours - bare:+,.0f} ({fmt_pct((ours / bare - 1) * 100)})"])
    return Section(
        title=title,
        text=(f"Each server runs twice under `valgrind --tool=callgrind` (`WORKERS=1`), serving "
              f"{few:,} and then {many:,} sequential GETs over one keep-alive connection; the "
              "difference of the two totals over the difference of the counts is the "
              "instructions one request costs, start-up and shutdown cancelled out. Only "
              "user-space instructions count: the kernel's socket work, most of the CPU time "
              "per request above, is not in them, so this percentage is larger than the CPU "
              "overhead. Unlike CPU time it is the same however busy the machine is."),
        tables=[Table(["server", "instructions/request"], rows)], raw=raw,
    )


def callgrind_total(path: str) -> int:
    with open(path) as profile:
        for line in profile:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


# --- curator scenarios -------------------------------------------------------------------------

WRK_CURATOR_ISSUES = ROOT / "bench" / "wrk-curator-issues.lua"
CURATOR_OPEN_INCIDENTS = 10_000
CURATOR_BATCH = 500
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_text(salt: str, counter: int) -> str:
    """A valid ULID: a 10-character salt (first character 0-7) and a 16-character counter."""
    digits = []
    for _ in range(16):
        counter, digit = divmod(counter, 32)
        digits.append(ULID_ALPHABET[digit])
    return salt + "".join(reversed(digits))


def curator_issue_prefixes(salt: str, count: int) -> list[str]:
    """`count` watcher issues of distinct fingerprints, each cut just before its count."""
    kinds = ["crashed", "oom_killed", "unhealthy", "probe_failed", "restart_loop"]
    return [
        '{"id":"%s","kind":"%s","service":"svc-%d","subject":"svc-%d-1","severity":"critical",'
        '"state":"open","message":"svc-%d-1 exited with code 137 (out of memory)",'
        '"recommendation":"Raise the memory limit or find the leak",'
        '"first_seen":"2026-01-02T03:04:05Z","last_seen":"2026-01-02T03:04:05Z",'
        '"facts":{"exit_code":137,"memory_limit_bytes":268435456},"count":'
        % (ulid_text(salt, index), kinds[index % len(kinds)], index, index, index)
        for index in range(count)
    ]


@contextlib.contextmanager
def environment(**values: str):
    """Set variables for wrk (it inherits the harness's environment) for a while."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def http_post_json(port: int, path: str, body: str) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {path}: {response.status} {text[:300]!r}")
        return json.loads(text)
    finally:
        conn.close()


def metric_values(port: int, names: list[str]) -> dict[str, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    values = {}
    for line in text.splitlines():
        series, _, value = line.rpartition(" ")
        if series in names:
            values[series] = float(value)
    return values


def scenario_curator_ingest(bench: Bench) -> Section:
    """Issues/s through the curator's POST /v1/issues with dedup, against a bare actix-web
    /healthz measured in the same run."""
    opts = bench.options
    curator = dataclasses.replace(role("curator"), name="obs-core curator")
    bare = bench.start(bare_actix(), cores={SERVER_CORE}, workers=1, nice=LOAD_NICE)
    server = bench.start(curator, cores={SERVER_CORE}, workers=1, nice=LOAD_NICE)
    salt = "0" + ulid_text("", int(time.time() * 1000))[-9:]
    prefixes = curator_issue_prefixes(salt, CURATOR_OPEN_INCIDENTS)
    # Priming: every fingerprint opens its incident (count 1).
    for start in range(0, len(prefixes), CURATOR_BATCH):
        batch = ",".join(prefix + "1}" for prefix in prefixes[start:start + CURATOR_BATCH])
        http_post_json(server.port, "/v1/issues", f"[{batch}]")
    items = tempfile.NamedTemporaryFile("w", prefix="obs-bench-curator-", suffix=".txt",
                                        delete=False)
    with items:
        items.write("\n".join(prefixes) + "\n")
    counters = ["curator_issues_received_total", "curator_issues_deduplicated_total",
                'curator_incidents_open{severity="critical"}',
                'curator_incidents_open{severity="warning"}']
    loads: dict[str, list[Load]] = {bare.spec.name: [], server.spec.name: []}
    try:
        with environment(CURATOR_ITEMS=items.name, CURATOR_SALT=salt,
                         CURATOR_BATCH=str(CURATOR_BATCH), CURATOR_T0=str(int(time.time()))):
            bench.wrk(bare.url("/healthz"), duration=opts.warmup, connections=opts.connections)
            bench.wrk(server.url("/v1/issues"), duration=opts.warmup,
                      connections=opts.connections, script=WRK_CURATOR_ISSUES)
            before = metric_values(server.port, counters)
            for _ in range(opts.rounds):
                loads[bare.spec.name].append(bench.load(
                    bare, "/healthz", duration=opts.duration, connections=opts.connections))
                loads[server.spec.name].append(bench.load(
                    server, "/v1/issues", duration=opts.duration, connections=opts.connections,
                    script=WRK_CURATOR_ISSUES))
            after = metric_values(server.port, counters)
    finally:
        os.unlink(items.name)
    bench.stop(bare)
    bench.stop(server)

    def totals(runs: list[Load]) -> dict:
        requests = sum(run.requests for run in runs)
        seconds = sum(run.seconds for run in runs)
        cpu = sum(run.server_cpu for run in runs)
        return {"rps": requests / seconds, "cpu_us": cpu / requests * 1e6,
                "server_busy": cpu / seconds, "requests": requests,
                "errors": sum(run.errors for run in runs),
                "p50_us": median([run.latency_us["p50"] for run in runs]),
                "p99_us": median([run.latency_us["p99"] for run in runs]),
                "rounds": [dataclasses.asdict(run) for run in runs]}

    bare_figures, ours = totals(loads[bare.spec.name]), totals(loads[server.spec.name])
    issues_per_s = ours["rps"] * CURATOR_BATCH
    cpu_per_issue = ours["cpu_us"] / CURATOR_BATCH
    # The counters cover the measured rounds and any warm-up leftovers in flight: close enough
    # for a share, exact enough to show nothing was refused.
    received = after[counters[0]] - before.get(counters[0], 0.0)
    deduplicated = after[counters[1]] - before.get(counters[1], 0.0)
    open_incidents = after.get(counters[2], 0.0) + after.get(counters[3], 0.0)
    table = Table(["server", "request", "requests/s", "issues/s", "server CPU µs/request",
                   "server CPU µs/issue", "server CPU busy", "latency p50", "latency p99",
                   "errors"], [
        [bare.spec.name, "GET /healthz", fmt_int(bare_figures["rps"]), "–",
         f"{bare_figures['cpu_us']:.1f}", "–", f"{bare_figures['server_busy'] * 100:.0f} %",
         f"{bare_figures['p50_us'] / 1000:.2f} ms", f"{bare_figures['p99_us'] / 1000:.2f} ms",
         fmt_int(bare_figures["errors"])],
        [server.spec.name, f"POST /v1/issues ({CURATOR_BATCH} issues)", fmt_int(ours["rps"]),
         fmt_int(issues_per_s), f"{ours['cpu_us']:.1f}", f"{cpu_per_issue:.2f}",
         f"{ours['server_busy'] * 100:.0f} %", f"{ours['p50_us'] / 1000:.2f} ms",
         f"{ours['p99_us'] / 1000:.2f} ms", fmt_int(ours["errors"])],
    ])
    ratios = Table(["comparison", "value"], [
        ["curator issues/s ÷ bare actix-web /healthz requests/s",
         fmt_ratio(issues_per_s / bare_figures["rps"])],
        ["curator CPU per issue ÷ bare actix-web CPU per /healthz request",
         f"{cpu_per_issue / bare_figures['cpu_us']:.2f}"],
        ["issues folded into existing incidents (deduplicated ÷ received)",
         f"{deduplicated / received * 100:.1f} %" if received else "–"],
        ["unresolved incidents at the end", fmt_int(open_incidents)],
    ])
    checks = [
        Check("curator ingest ≥ 50,000 issues/s with dedup (one core, one worker)",
              f"{fmt_int(issues_per_s)} issues/s", issues_per_s >= 50_000),
        Check("curator ingest: no failed requests", fmt_int(ours["errors"]),
              ours["errors"] == 0),
    ]
    other_busy = [run.other_busy for runs in loads.values() for run in runs]
    notes = [
        f"{opts.rounds} rounds of {opts.duration:g} s per server, interleaved, after a "
        f"{opts.warmup:g} s warm-up; wrk -t1 -c{opts.connections} (keep-alive). Both servers "
        f"on core {SERVER_CORE} with `WORKERS=1`, wrk on core {CLIENT_CORE}.",
        f"The curator first holds {CURATOR_OPEN_INCIDENTS:,} open incidents (one priming issue "
        f"each). Each request is a batch of {CURATOR_BATCH} watcher issues "
        "(`bench/wrk-curator-issues.lua`): "
        f"{CURATOR_BATCH - 1} are those issues seen again (their count one higher, so each is "
        "a new sighting folded into its incident, not a replay) and one is a new fingerprint "
        "that opens an incident, committed to the curator's SQLite database (WAL, "
        "synchronous=FULL: an fsync) before the answer "
        "(PLANNER_URL and ARCHIVIST_URL are not set, so nothing is forwarded).",
        "Production settings otherwise (JSON logs at info, state under a temporary "
        "STATE_DIR); repeats reach the database behind, in one transaction every "
        "STATE_FLUSH_INTERVAL (1 s).",
        f"Other load while wrk ran: mean {statistics.mean(other_busy) * 100:.0f} % of a core.",
    ]
    return Section(
        title="Curator ingest: POST /v1/issues with dedup",
        text=("Issues per second through the curator: JSON batch parsing with per-field error "
              "paths, validation, one fingerprint lookup per issue, count/last_seen updates and "
              "the SQL commit, against a bare actix-web `/healthz` measured in the same run."),
        tables=[table, ratios], checks=checks, notes=notes,
        raw={"bare": bare_figures, "curator": ours, "issues_per_s": issues_per_s,
             "received": received, "deduplicated": deduplicated,
             "open_incidents": open_incidents},
    )


# --- watcher scenarios -------------------------------------------------------------------------

WRK_HEARTBEAT = ROOT / "bench" / "wrk-heartbeat.lua"
# The Makefile's RELEASE_RUSTFLAGS: the same flags, so the example reuses `make release`'s build.
RELEASE_RUSTFLAGS = "-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs"
CHECKER_BENCH = RELEASE_DIR / "examples" / "checker_bench"
# wrk-heartbeat.lua loads the reporter from here.
os.environ.setdefault("WRK_REPORT", str(WRK_REPORT))


def watcher(*env: tuple[str, str]) -> ServerSpec:
    """The watcher role as a heartbeat sink: no Docker engine to follow, no host sampling,
    so the figures are the heartbeat path's alone."""
    spec = role("watcher")
    return dataclasses.replace(
        spec, name="obs-core watcher",
        env=spec.env + (("DOCKER_WATCH", "off"), ("HOST_METRICS_INTERVAL", "0")) + env)


@contextlib.contextmanager
def heartbeat_names(count: int, start: int = 0):
    """How many distinct service names wrk-heartbeat.lua cycles through, from which one."""
    before = {name: os.environ.get(name) for name in ("BENCH_SERVICES", "BENCH_START")}
    os.environ["BENCH_SERVICES"] = str(count)
    os.environ["BENCH_START"] = str(start)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_services(bench: Bench, server: Server, count: int, chunk: float = 5.0,
                  max_chunks: int = 30) -> None:
    """Heartbeats from `count` distinct services (wrk, keep-alive), in chunks of `chunk`
    seconds, each chunk going on where the last stopped, until every one has beaten."""
    sent = 0
    for _ in range(max_chunks):
        with heartbeat_names(count, start=sent):
            report = bench.wrk(server.url("/heartbeat"), duration=chunk, connections=8,
                               script=WRK_HEARTBEAT)
        sent += report["requests"]
        if sent >= count:
            return
    raise RuntimeError(f"{server.spec.name}: only {sent} heartbeats for {count} services")


def scenario_heartbeat_ingest(bench: Bench) -> Section:
    """POST /heartbeat under keep-alive load: server CPU per heartbeat, against a bare
    actix-web /healthz and the Python original's /heartbeat."""
    opts = bench.options
    cases = [(bare_actix(), "/healthz", WRK_REPORT), (watcher(), "/heartbeat", WRK_HEARTBEAT),
             (python_baseline(), "/heartbeat", WRK_HEARTBEAT)]
    servers = [(bench.start(spec, cores={SERVER_CORE}, workers=1, nice=LOAD_NICE), path, script)
               for spec, path, script in cases]
    loads: dict[str, list[Load]] = {server.spec.name: [] for server, _, _ in servers}
    with heartbeat_names(1000):
        for server, path, script in servers:
            bench.wrk(server.url(path), duration=opts.warmup, connections=opts.connections,
                      script=script)
        for index in range(opts.rounds):
            for server, path, script in (servers if index % 2 == 0 else servers[::-1]):
                loads[server.spec.name].append(bench.load(
                    server, path, duration=opts.duration, connections=opts.connections,
                    script=script))
    for server, _, _ in servers:
        bench.stop(server)

    figures = {}
    for name, runs in loads.items():
        requests = sum(run.requests for run in runs)
        seconds = sum(run.seconds for run in runs)
        cpu = sum(run.server_cpu for run in runs)
        figures[name] = {
            "rps": requests / seconds, "cpu_us": cpu / requests * 1e6,
            "server_busy": cpu / seconds,
            "p50_us": median([run.latency_us["p50"] for run in runs]),
            "p99_us": median([run.latency_us["p99"] for run in runs]),
            "requests": requests, "errors": sum(run.errors for run in runs),
            "rounds": [dataclasses.asdict(run) for run in runs],
        }
    bare, ours, python = (figures[spec.name] for spec, _, _ in cases)
    # Per-round pairs, as in the /healthz scenario: the median is what the targets check.
    per_request = {name: [run.server_cpu / run.requests for run in runs]
                   for name, runs in loads.items()}
    bare_runs, our_runs, python_runs = (per_request[spec.name] for spec, _, _ in cases)
    rows = [[spec.name, path, fmt_int(figures[spec.name]["rps"]),
             f"{figures[spec.name]['cpu_us']:.1f}",
             f"{figures[spec.name]['server_busy'] * 100:.0f} %",
             f"{figures[spec.name]['p50_us'] / 1000:.2f} ms",
             f"{figures[spec.name]['p99_us'] / 1000:.2f} ms",
             fmt_int(figures[spec.name]["requests"]), fmt_int(figures[spec.name]["errors"])]
            for spec, path, _ in cases]
    table = Table(["server", "request", "requests/s", "server CPU µs/request", "server CPU busy",
                   "latency p50", "latency p99", "requests", "errors"], rows)
    vs_bare = median([o / b for b, o in zip(bare_runs, our_runs)])
    vs_python = median([p / o for o, p in zip(our_runs, python_runs)])
    ratios = Table(["comparison", "CPU µs/request, median of the paired rounds",
                    "all rounds"], [
        ["watcher POST /heartbeat / bare actix-web GET /healthz", fmt_ratio(vs_bare),
         fmt_ratio(ours["cpu_us"] / bare["cpu_us"])],
        ["Python original POST /heartbeat / watcher POST /heartbeat",
         fmt_ratio(vs_python) + " (the watcher is that much cheaper)",
         fmt_ratio(python["cpu_us"] / ours["cpu_us"])],
    ])
    checks = [
        Check("heartbeat CPU within 1.5× of bare actix-web /healthz", fmt_ratio(vs_bare),
              vs_bare <= 1.5),
        Check("heartbeat ≥ 50× cheaper in CPU than the Python original's /heartbeat",
              fmt_ratio(vs_python), vs_python >= 50),
    ]
    other_busy = [run.other_busy for runs in loads.values() for run in runs]
    notes = [
        f"{opts.rounds} rounds of {opts.duration:g} s per server, interleaved (in turn "
        f"forwards and backwards), after a {opts.warmup:g} s warm-up; wrk -t1 "
        f"-c{opts.connections} (keep-alive). The targets are checked on the median of the "
        "per-round ratios (each round runs the servers back to back), which the machine's "
        "swings in speed between rounds move least.",
        "Heartbeats are the seed's payload with a `timeout_seconds`, cycling through 1,000 "
        "service names (`bench/wrk-heartbeat.lua`); the Python original's `/heartbeat` "
        "(`bench/python-baseline/app.py`) keeps the same table and the same two gauges.",
        "The watcher runs with DOCKER_WATCH=off and HOST_METRICS_INTERVAL=0 (nothing else "
        "running in it); servers on core 0, wrk on core 1, as in the /healthz scenario.",
        f"Other load while wrk ran: mean {statistics.mean(other_busy) * 100:.0f} % of a core.",
    ]
    return Section(
        title="Heartbeat ingest: POST /heartbeat",
        text=("Server CPU time per heartbeat over HTTP: the watcher's `POST /heartbeat` (JSON "
              "parse, validation, table update, deadline) against a bare actix-web `/healthz` "
              "measured in the same run, and the Python original's `/heartbeat`."),
        tables=[table, ratios], checks=checks, notes=notes, raw={"figures": figures},
    )


def checker_bench() -> dict:
    """Build (unless BENCH_SKIP_BUILD=1) and run services/watcher/examples/checker_bench."""
    if os.environ.get("BENCH_SKIP_BUILD") != "1" or not CHECKER_BENCH.exists():
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "watcher", "--example",
                        "checker_bench", "--target", "x86_64-unknown-linux-gnu"],
                       cwd=ROOT, check=True,
                       env={**os.environ, "RUSTFLAGS": RELEASE_RUSTFLAGS})
    with spawning({SERVER_CORE}, LOAD_NICE):
        process = subprocess.run([str(CHECKER_BENCH), "100000"], capture_output=True,
                                 text=True, check=True)
    return json.loads(process.stdout.strip().splitlines()[-1])


def rss_kib(server: Server) -> int:
    return int(server.status()["VmRSS"].split()[0])


def scenario_watcher_scale(bench: Bench) -> Section:
    """100,000 tracked services (memory, check pass) and /metrics with 10,000."""
    opts = bench.options
    inproc = checker_bench()

    # The same over HTTP: resident memory of the real binary before and after 100,000
    # services have beaten (everything counted: table, deadlines, allocator slack).
    server = bench.start(watcher(("MAX_SERVICES", "200000")), cores={SERVER_CORE}, workers=1,
                         nice=LOAD_NICE)
    http_get(server.port, "/healthz", 100)
    time.sleep(opts.settle)
    before = rss_kib(server)
    load_services(bench, server, 100_000)
    time.sleep(opts.settle)
    after = rss_kib(server)
    bench.stop(server)
    rss_per_service = (after - before) * 1024 / 100_000

    # /metrics with 10,000 services, one scrape at a time, against the Python original with
    # the same 10,000 services.
    scrape = {}
    for spec in [watcher(), python_baseline()]:
        server = bench.start(spec, cores={SERVER_CORE}, workers=1, nice=LOAD_NICE)
        load_services(bench, server, 10_000, chunk=2.0)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", "/metrics")
        body = conn.getresponse().read()
        conn.close()
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        run = bench.load(server, "/metrics", duration=max(opts.scrape_duration, 2),
                         connections=1)
        bench.stop(server)
        scrape[spec.name] = {"load": dataclasses.asdict(run), "bytes": len(body),
                             "series": series, "cpu_ms": run.server_cpu / run.requests * 1e3}
    ours, python = scrape[watcher().name], scrape[python_baseline().name]

    idle = inproc["idle_pass_seconds"]
    memory = Table(["measure", "value"], [
        ["tracked services", fmt_int(inproc["services"])],
        ["heap per tracked service (in-process, counted by the allocator)",
         f"{inproc['bytes_per_service']:.0f} bytes"],
        ["resident memory per tracked service (the binary over HTTP, VmRSS delta)",
         f"{rss_per_service:.0f} bytes"],
        ["check pass that finds nothing due, p50 / p99 / max",
         f"{idle['p50'] * 1e9:.0f} ns / {idle['p99'] * 1e9:.0f} ns / {idle['max'] * 1e6:.1f} µs"],
        ["heartbeat from a known service, table part only", f"{inproc['beat_known_service_ns']:.0f} ns"],
        ["pass re-queuing all 100,000 (each beat since queued; normally spread over a timeout)",
         fmt_ms(inproc["requeue_all_seconds"])],
        ["pass finding all 100,000 silent (all go down at once)",
         fmt_ms(inproc["expire_all_seconds"])],
        ["state save: the table locked to copy every status (each STATE_SAVE_INTERVAL)",
         fmt_ms(inproc["snapshot_copy_seconds"])],
        ["state save: sort and serialize, lock released, on a blocking thread",
         f"{fmt_ms(inproc['snapshot_sort_seconds'])} + "
         f"{fmt_ms(inproc['snapshot_serialize_seconds'])} "
         f"({inproc['snapshot_bytes'] / 2**20:.1f} MiB of services)"],
    ])
    rows = []
    for name, figures in scrape.items():
        latency = figures["load"]["latency_us"]
        rows.append([name, f"{latency['p50'] / 1000:.2f} ms", f"{latency['p99'] / 1000:.2f} ms",
                     f"{figures['cpu_ms']:.2f}", fmt_int(figures["bytes"]),
                     fmt_int(figures["series"])])
    scrapes = Table(["server (10,000 services)", "latency p50", "latency p99",
                     "server CPU ms/scrape", "bytes", "series"], rows)
    ratio = python["load"]["latency_us"]["p50"] / ours["load"]["latency_us"]["p50"]
    checks = [
        Check("check pass finding nothing due, 100,000 services: < 1 ms",
              f"p99 {idle['p99'] * 1e9:.0f} ns", idle["p99"] < 0.001),
        Check("memory per tracked service < 1 KiB (heap)",
              f"{inproc['bytes_per_service']:.0f} bytes", inproc["bytes_per_service"] < 1024),
        Check("memory per tracked service < 1 KiB (resident, whole process)",
              f"{rss_per_service:.0f} bytes", rss_per_service < 1024),
    ]
    return Section(
        title="Heartbeat checker at 100,000 services, /metrics at 10,000",
        text=("The checker keeps deadlines ordered (`BTreeSet<(Instant, service)>`, lazily "
              "invalidated) and sleeps until the earliest, so a pass costs only what is due. "
              "Measured in-process by `services/watcher/examples/checker_bench.rs` (one core, "
              "a counting allocator) and, for resident memory, on the release binary after "
              "100,000 services beat over HTTP. The `/metrics` render reads the heartbeat "
              "table at scrape time; it is compared with the Python original holding the same "
              f"10,000 services (Python / watcher p50: {fmt_ratio(ratio)})."),
        tables=[memory, scrapes], checks=checks,
        raw={"checker": inproc, "rss_per_service_bytes": rss_per_service,
             "rss_kib": [before, after], "scrape": scrape},
    )


import archive_bench  # noqa: E402  (beside this file; takes the harness as an argument)
import flow_bench  # noqa: E402  (likewise)
import hostile_bench  # noqa: E402  (likewise)
import replica_bench  # noqa: E402  (likewise)

SCENARIOS: dict[str, Callable[[Bench], Section]] = {
    "throughput": scenario_healthz_throughput,
    "scrape": scenario_metrics_scrape,
    "startup": scenario_startup,
    "memory": scenario_idle_memory,
    "instructions": scenario_instructions,
    "curator": scenario_curator_ingest,
    "heartbeat": scenario_heartbeat_ingest,
    "watcher-scale": scenario_watcher_scale,
    # bench/archive_bench.py: the archivist (durable appends, queries, export).
    "archive": lambda bench: archive_bench.scenario_archive(bench, sys.modules[__name__]),
    # bench/flow_bench.py: a missed heartbeat to the webhook, through all five roles.
    "flow": lambda bench: flow_bench.scenario_flow(bench, sys.modules[__name__]),
    # bench/replica_bench.py: the curator against Prometheus Alertmanager, and the SQL state
    # on PostgreSQL with one and three replicas.
    "alertmanager": lambda bench: replica_bench.scenario_alertmanager(bench, sys.modules[__name__]),
    "postgres": lambda bench: replica_bench.scenario_postgres(bench, sys.modules[__name__]),
    # bench/flow_bench.py: the flow with 3 replicas per role, the checker's holder killed.
    "flow-replicas": lambda bench: flow_bench.scenario_flow_replicas(bench, sys.modules[__name__]),
    # bench/hostile_bench.py: issue 18's hostile patterns at 100,000 heartbeat names.
    "hostile": lambda bench: hostile_bench.scenario_hostile(bench, sys.modules[__name__]),
}


# ---------------------------------------------------------------------------------------------
# The report


def machine() -> dict[str, str]:
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        mem_kib = int(meminfo.readline().split()[1])

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    uname = os.uname()
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "kernel": f"{uname.sysname} {uname.release}",
        "revision": git("rev-parse", "--short=12", "HEAD") + (" (with uncommitted changes)"
                                                             if dirty else ""),
        "rustc": subprocess.run(["rustc", "--version"], capture_output=True,
                                text=True).stdout.strip() or "unknown",
        "python": sys.version.split()[0],
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True,
                              text=True).stdout.split(" [")[0].strip(),
    }


def markdown_table(table: Table) -> str:
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "|".join("---" for _ in table.columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def write_report(path: Path, sections: list[Section], info: dict[str, str], started: float,
                 loadavg: tuple[str, str], argv: list[str], bench: Bench) -> None:
    elapsed = time.time() - started
    when = datetime.datetime.fromtimestamp(started, datetime.timezone.utc)
    out = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`bench/run.sh` → `bench/run.py`); do not edit by hand, "
        "re-run it. Each section was measured in one run (its date and revision are under "
        "its title; a run of some scenarios rewrites those and keeps the others), and each "
        "obs-core figure is read as a ratio against the baselines measured beside it: "
        "a bare actix-web app with no middleware (`bench/bare-actix`) and the original Python "
        "service, FastAPI + uvicorn + prometheus_client (`bench/python-baseline`).",
        "",
        "## How to run",
        "",
        "    make bench                               # builds release binaries, writes this file",
        "    ./bench/run.sh --quick -o /tmp/bench.md  # a short smoke run, elsewhere",
        "    ./bench/run.sh --scenarios startup,memory",
        "",
        "`bench/run.sh` builds the static release binaries (`make release`), installs the Python "
        "baseline into `bench/.venv-python-baseline` (pinned in "
        "`bench/python-baseline/requirements.txt`) and runs the scenarios; raw figures go to "
        "`bench/results/` as JSON. Load is generated with Debian's `wrk` against 127.0.0.1 only.",
        "",
        "## Machine and run",
        "",
        f"- {info['cores']} cores ({info['cpu']}), {info['memory']} memory, {info['kernel']}",
        f"- run at {when:%Y-%m-%d %H:%M} UTC, git revision {info['revision']}, "
        f"took {elapsed:.0f} s (`{' '.join(argv) or 'default options'}`)",
        f"- {info['rustc']}; Python {info['python']}; {info['wrk']}",
        f"- load average before / after: {loadavg[0]} / {loadavg[1]}",
        "- other load: the cores are shared with anything else running here, so before each "
        "scenario the harness waits (bounded) for the rest of the machine to go quiet: "
        + "; ".join(bench.quiet_log) + f". Load rounds measured again because other work "
        f"took over {OTHER_LOAD_LIMIT * 100:.0f} % of a core meanwhile: {bench.discarded}.",
        f"- cores: servers under load are restricted to core {SERVER_CORE} "
        f"(`sched_setaffinity`, as `taskset -c {SERVER_CORE}`); wrk and the harness to core "
        f"{CLIENT_CORE}. Startup and memory runs give the server both cores. The harness, "
        f"the servers and wrk run at nice {os.getpriority(os.PRIO_PROCESS, 0)}.",
        "",
        "## Targets",
        "",
    ]
    checks = [check for section in sections for check in section.checks]
    kept = kept_sections(path, {section.title for section in sections})
    target_rows = [[c.target, c.measured, "PASS" if c.passed else "MISS"] for c in checks]
    for _, body in kept:
        target_rows += section_target_rows(body)
    # Reports written before sections had their own targets table: keep the summary's rows
    # this run did not measure again.
    known = {row[0] for row in target_rows}
    target_rows += [row for row in earlier_summary_rows(path, kept) if row[0] not in known]
    out.append(markdown_table(Table(["target", "measured", "result"], target_rows)))
    for section in sections:
        out += ["", f"## {section.title}", "",
                f"_Measured at {when:%Y-%m-%d %H:%M} UTC, git revision {info['revision']}._",
                "", section.text, ""]
        if section.checks:
            out += [markdown_table(Table(
                ["target", "measured", "result"],
                [[c.target, c.measured, "PASS" if c.passed else "MISS"]
                 for c in section.checks])), ""]
        for table in section.tables:
            out += [markdown_table(table), ""]
        out += [f"- {note}" for note in section.notes]
        if section.notes:
            out.append("")
    for title, body in kept:
        out += ["", f"## {title}", "", body.strip(), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out).rstrip() + "\n")


# The report's own sections, rewritten by every run.
REPORT_HEADINGS = {"How to run", "Machine and run", "Targets"}


def kept_sections(path: Path, rerun: set[str]) -> list[tuple[str, str]]:
    """The scenario sections of an earlier report at `path` that this run did not measure
    again, as (title, body): a run of some scenarios (`--scenarios …`) updates those and
    keeps the rest, each with the date and revision it was measured at."""
    try:
        text = path.read_text()
    except OSError:
        return []
    kept = []
    for chunk in text.split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        if title not in REPORT_HEADINGS and title not in rerun:
            kept.append((title, body))
    return kept


def earlier_summary_rows(path: Path, kept: list[tuple[str, str]]) -> list[list[str]]:
    """The earlier report's summary rows that no section's own table holds, when sections
    were kept from it (rows of sections rerun now are dropped by the caller by target)."""
    if not kept:
        return []
    try:
        text = path.read_text()
    except OSError:
        return []
    summary = text.split("\n## Targets\n", 1)[-1].split("\n## ", 1)[0] if "\n## Targets\n" in text else ""
    owned = {row[0] for _, body in kept for row in section_target_rows(body)}
    return [row for row in section_target_rows(summary) if row[0] not in owned]


def section_target_rows(body: str) -> list[list[str]]:
    """The rows of a section's own targets table (target | measured | result)."""
    rows, inside = [], False
    for line in body.splitlines():
        if line.startswith("| target | measured | result |"):
            inside = True
        elif inside and line.startswith("|") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif inside and not line.startswith("|"):
            break
    return rows


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, from: {', '.join(SCENARIOS)}")
    parser.add_argument("--quick", action="store_true",
                        help="short runs, to check the harness (figures not meaningful)")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per wrk round")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-quiet-wait", type=float, default=60.0,
                        help="seconds, over the whole run, to wait for other load to stop")
    parser.add_argument("--max-retries", type=int, default=6,
                        help="load rounds, over the whole run, measured again for other load")
    args = parser.parse_args(argv)
    options = Options(duration=args.duration, rounds=args.rounds, connections=args.connections,
                      warmup=2.0, scrape_duration=3.0, startup_runs=20, startup_runs_python=5,
                      settle=1.0, max_quiet_wait=args.max_quiet_wait,
                      max_retries=args.max_retries, instruction_requests=(1000, 11000))
    if args.quick:
        options = dataclasses.replace(options, duration=1.0, rounds=1, warmup=1.0,
                                      scrape_duration=1.0, startup_runs=3,
                                      startup_runs_python=1, settle=0.2,
                                      max_quiet_wait=min(10.0, args.max_quiet_wait),
                                      max_retries=min(1, args.max_retries),
                                      instruction_requests=(100, 600))
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if (os.cpu_count() or 1) < 2:
        print("bench: needs at least 2 cores (server and load generator apart)", file=sys.stderr)
        return 2

    os.sched_setaffinity(0, {CLIENT_CORE})
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, LOAD_NICE)
    # SIGTERM (e.g. make interrupted) unwinds like Ctrl-C, so `finally` stops every server.
    signal.signal(signal.SIGTERM, interrupted)
    started = time.time()
    load_before = open("/proc/loadavg").read().split()[:3]
    bench = Bench(options)
    sections = []
    try:
        for name in names:
            print(f"bench: {name} ...", flush=True)
            quiet = bench.wait_quiet()
            bench.quiet_log.append(f"{name}: {quiet}")
            print(f"bench: {quiet}", flush=True)
            t0 = time.perf_counter()
            sections.append(SCENARIOS[name](bench))
            print(f"bench: {name} done in {time.perf_counter() - t0:.0f} s", flush=True)
    finally:
        bench.close()
    load_after = open("/proc/loadavg").read().split()[:3]
    info = machine()
    write_report(args.output, sections, info, started,
                 (" ".join(load_before), " ".join(load_after)), argv, bench)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    (RESULTS_DIR / f"{stamp}.json").write_text(json.dumps(
        {"machine": info, "options": dataclasses.asdict(options), "argv": argv,
         "sections": [{"title": s.title, "checks": [dataclasses.asdict(c) for c in s.checks],
                       "raw": s.raw} for s in sections]}, indent=1))
    for section in sections:
        for check in section.checks:
            print(f"  {'PASS' if check.passed else 'MISS'}  {check.target}: {check.measured}")
    print(f"bench: wrote {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output} "
          f"in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
