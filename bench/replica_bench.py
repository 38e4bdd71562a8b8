"""Scenarios for bench/run.py on the SQL state (issue 12): the curator against Prometheus
Alertmanager ingesting the same alerts, and curator intake / heartbeat ingest on PostgreSQL
with one and three replicas beside the embedded SQLite default.

    ./bench/run.sh --scenarios alertmanager,postgres

`alertmanager`: the same distinct alerts, then the same alerts again (repeats, deduplicated),
in the same batches, to the curator (POST /v1/alertmanager, Alertmanager's webhook payload
version 4) and to Debian's `prometheus-alertmanager` (POST /api/v2/alerts), both on the server
core, in turn, in one run; CPU seconds of each process (/proc/<pid>/stat utime + stime) per
alert.

`postgres`: wrk load of POST /v1/issues (curator) and POST /heartbeat (watcher) against the
SQLite default, one replica on PostgreSQL and three replicas on the same PostgreSQL database
(one wrk per replica, run at once), interleaved round by round; server and PostgreSQL CPU per
request.

It lives beside run.py like archive_bench.py and takes the harness as an argument; standard
library only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from types import ModuleType

import archive_bench

# --- curator vs Alertmanager ------------------------------------------------------------------

AM_DISTINCT = 20_000  # distinct alerts (fingerprints)
AM_BATCH = 100  # alerts per request, to both
AM_REPEATS = 4  # cycles of the same alerts after the first
AM_SETTLE = 0.5  # seconds after a cycle before CPU is read (deferred work counts)

ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname, service]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: blackhole
"""


def alert_set(count: int, starts_at: str) -> list[dict]:
    """`count` distinct firing alerts as Prometheus sends them (labels, annotations)."""
    names = ["HighErrorRate", "HighLatency", "DiskAlmostFull", "TargetDown", "MemoryPressure"]
    alerts = []
    for index in range(count):
        labels = {"alertname": names[index % len(names)], "service": f"svc-{index}",
                  "instance": f"10.0.{index // 250 % 256}.{index % 250}:9100", "job": "node",
                  "severity": "critical" if index % 3 == 0 else "warning"}
        alerts.append({
            "labels": labels,
            "annotations": {"summary": f"{labels['alertname']} on svc-{index}",
                            "description": "error ratio 7.3 % over 5 m (threshold 5 %)"},
            "startsAt": starts_at,
            "generatorURL": f"http://prometheus:9090/graph?g0.expr=up%7Bservice%3D%22svc-{index}%22%7D",
            # What Alertmanager computes from the labels: 64 bits, 16 hex digits.
            "fingerprint": hashlib.blake2b(json.dumps(labels, sort_keys=True).encode(),
                                           digest_size=8).hexdigest(),
        })
    return alerts


def webhook_body(batch: list[dict]) -> bytes:
    alerts = [{"status": "firing", "labels": a["labels"], "annotations": a["annotations"],
               "startsAt": a["startsAt"], "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": a["generatorURL"], "fingerprint": a["fingerprint"]}
              for a in batch]
    return json.dumps({
        "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0, "status": "firing",
        "receiver": "curator", "groupLabels": {}, "commonLabels": {"job": "node"},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": alerts}).encode()


def postable_body(batch: list[dict]) -> bytes:
    return json.dumps([{"labels": a["labels"], "annotations": a["annotations"],
                        "startsAt": a["startsAt"], "generatorURL": a["generatorURL"]}
                       for a in batch]).encode()


def post_all(port: int, path: str, bodies: list[bytes]) -> tuple[int, float]:
    """Every body in turn over one keep-alive connection; (errors, seconds)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    errors = 0
    started = time.perf_counter()
    try:
        for body in bodies:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status // 100 != 2:
                errors += 1
    finally:
        conn.close()
    return errors, time.perf_counter() - started


def start_alertmanager(bench, h: ModuleType):
    folder = tempfile.mkdtemp(prefix="obs-bench-alertmanager-")
    config = os.path.join(folder, "alertmanager.yml")
    with open(config, "w") as out:
        out.write(ALERTMANAGER_CONFIG)
    port = h.free_port()
    argv = ("prometheus-alertmanager", f"--config.file={config}",
            f"--storage.path={os.path.join(folder, 'data')}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
            "--log.level=warn")
    spec = h.ServerSpec(name="Prometheus Alertmanager", argv=argv, has_metrics=True,
                        takes_workers=False)
    stderr_fd, stderr_path = tempfile.mkstemp(prefix="obs-bench-", suffix=".log")
    # One OS thread running Go code, as the curator runs one worker: both on the server core.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GOMAXPROCS": "1"}
    with h.spawning({h.SERVER_CORE}, h.LOAD_NICE):
        process = subprocess.Popen(argv, env=env, cwd=folder, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=stderr_fd)
    os.close(stderr_fd)
    server = h.Server(spec, process, [port], folder, stderr_path)
    bench.servers.append(server)
    deadline = time.time() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/-/ready")
            if conn.getresponse().status == 200:
                conn.close()
                break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            raise h.ServerFailed(f"Alertmanager did not start:\n{server.stderr_tail()}")
        time.sleep(0.05)
    version = subprocess.run(["prometheus-alertmanager", "--version"], capture_output=True,
                             text=True)
    return server, ((version.stdout + version.stderr).splitlines() or ["alertmanager"])[0]


def scenario_alertmanager(bench, h: ModuleType):
    opts = bench.options
    distinct = AM_DISTINCT if opts.rounds > 1 else 2_000
    repeats = AM_REPEATS if opts.rounds > 1 else 1
    curator = bench.start(dataclasses.replace(h.role("curator"), name="obs-core curator"),
                          cores={h.SERVER_CORE}, workers=1, nice=h.LOAD_NICE)
    alertmanager, am_version = start_alertmanager(bench, h)
    starts_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    alerts = alert_set(distinct, starts_at)
    batches = [alerts[i:i + AM_BATCH] for i in range(0, len(alerts), AM_BATCH)]
    targets = [(curator, "/v1/alertmanager", [webhook_body(b) for b in batches]),
               (alertmanager, "/api/v2/alerts", [postable_body(b) for b in batches])]
    # Warm both up on alerts of their own (not counted, not among the measured ones).
    warm = alert_set(AM_BATCH, starts_at)
    for alert in warm:
        alert["labels"] = {**alert["labels"], "service": "warm-" + alert["labels"]["service"]}
        alert["fingerprint"] = "f" + alert["fingerprint"][1:]
    post_all(curator.port, "/v1/alertmanager", [webhook_body(warm)] * 5)
    post_all(alertmanager.port, "/api/v2/alerts", [postable_body(warm)] * 5)
    time.sleep(AM_SETTLE)

    cycles: dict[str, list[dict]] = {server.spec.name: [] for server, _, _ in targets}
    for cycle in range(1 + repeats):
        order = targets if cycle % 2 == 0 else targets[::-1]
        for server, path, bodies in order:
            before = server.cpu_times()
            busy_before = h.cpu_busy_seconds()
            errors, seconds = post_all(server.port, path, bodies)
            time.sleep(AM_SETTLE)
            after = server.cpu_times()
            busy_after = h.cpu_busy_seconds()
            cpu = sum(after) - sum(before)
            busy = sum(busy_after[c] - busy_before[c] for c in busy_after)
            cycles[server.spec.name].append({
                "cycle": cycle, "alerts": distinct, "requests": len(bodies), "errors": errors,
                "seconds": seconds, "cpu": cpu, "user": after[0] - before[0],
                "other_busy": max(0.0, busy - cpu) / (seconds + AM_SETTLE)})
    curator_rss = h.rss_kib(curator)
    am_rss = h.rss_kib(alertmanager)
    open_incidents = h.metric_values(curator.port, [
        'curator_incidents_open{severity="critical"}',
        'curator_incidents_open{severity="warning"}'])
    conn = http.client.HTTPConnection("127.0.0.1", alertmanager.port, timeout=30)
    conn.request("GET", "/api/v2/alerts?silenced=false&inhibited=false")
    am_held = len(json.loads(conn.getresponse().read()))
    conn.close()
    bench.stop(curator)
    bench.stop(alertmanager)

    names = [server.spec.name for server, _, _ in targets]

    def per_alert(runs: list[dict]) -> float:
        return sum(r["cpu"] for r in runs) / sum(r["alerts"] for r in runs)

    rows = []
    for name in names:
        runs = cycles[name]
        first, again = runs[:1], runs[1:]
        alerts_sent = sum(r["alerts"] for r in runs)
        rows.append([
            name, fmt_int(alerts_sent), fmt_int(sum(r["requests"] for r in runs)),
            f"{per_alert(first) * 1e6:.1f}", f"{per_alert(again) * 1e6:.1f}",
            f"{per_alert(runs) * 1e6:.1f}",
            fmt_int(alerts_sent / sum(r["seconds"] for r in runs)),
            h.fmt_mib(curator_rss if name == names[0] else am_rss),
            fmt_int(sum(r["errors"] for r in runs))])
    table = h.Table(["server", "alerts sent", "requests", "CPU µs/alert, first sight",
                     "CPU µs/alert, repeats", "CPU µs/alert, all", "alerts/s (one client)",
                     "RSS after", "errors"], rows)
    paired = [a["cpu"] / c["cpu"] for c, a in zip(cycles[names[0]], cycles[names[1]])]
    overall = per_alert(cycles[names[1]]) / per_alert(cycles[names[0]])
    ratios = h.Table(["comparison", "value"], [
        ["Alertmanager CPU per alert ÷ curator CPU per alert, all alerts", h.fmt_ratio(overall)],
        ["the same, per cycle (first sight, then each repeat)",
         ", ".join(h.fmt_ratio(r) for r in paired)],
        ["the same, median of the cycles", h.fmt_ratio(statistics.median(paired))],
    ])
    checks = [h.Check("curator CPU per alert ≥ 3× less than Alertmanager's, same alerts",
                      f"Alertmanager ÷ curator = {h.fmt_ratio(overall)}", overall >= 3),
              h.Check("curator vs Alertmanager: no failed requests",
                      str(sum(r["errors"] for runs in cycles.values() for r in runs)),
                      all(r["errors"] == 0 for runs in cycles.values() for r in runs))]
    held = sum(open_incidents.values())
    other = [r["other_busy"] for runs in cycles.values() for r in runs]
    notes = [
        f"{distinct:,} distinct firing alerts (5 alert names, `service`/`instance`/`job`/"
        f"`severity` labels, two annotations), sent in batches of {AM_BATCH}, then the same "
        f"alerts {repeats} more times (same labels and `startsAt`: repeats, deduplicated): "
        f"{distinct * (1 + repeats):,} alerts to each server. One client connection "
        "(keep-alive), one request at a time; both servers on core "
        f"{h.SERVER_CORE} at nice {h.LOAD_NICE}, the client on core {h.CLIENT_CORE}; cycles "
        "alternate which server goes first.",
        "Curator: `POST /v1/alertmanager`, Alertmanager's webhook payload version 4 as "
        "Alertmanager sends it (with its `fingerprint`), `WORKERS=1`, the SQLite default in a "
        "temporary STATE_DIR (each batch committed durably before the answer), nothing "
        f"forwarded. It held {held:,.0f} open incidents afterwards.",
        f"Alertmanager: `{am_version}`, `POST /api/v2/alerts` (the same alerts as "
        "Prometheus posts them), `--cluster.listen-address=` (no gossip), GOMAXPROCS=1, one "
        "route to a receiver with no integrations (group_wait 30 s, so no notification is "
        f"built during the run); it held {am_held:,} alerts afterwards. It keeps alerts in "
        "memory only (its data directory holds silences and the notification log), so the "
        "curator does more per alert: it stores each change durably.",
        f"CPU = utime + stime of the process (all threads, /proc/<pid>/stat) from before a "
        f"cycle's first request to {AM_SETTLE:g} s after its last answer (deferred work such as "
        "Go's garbage collection counts); 5 warm-up batches of other alerts first.",
        f"Other load while measuring: mean {statistics.mean(other) * 100:.0f} % of a core.",
    ]
    return h.Section(
        title="Curator vs Prometheus Alertmanager: CPU per alert",
        text=("The same alerts into the curator (as Alertmanager's webhook) and into a real "
              "Alertmanager (as Prometheus posts them), side by side in one run: CPU seconds "
              "each process spent per alert, on first sight and on repeats."),
        tables=[table, ratios], checks=checks, notes=notes,
        raw={"cycles": cycles, "paired": paired, "overall": overall,
             "curator_open_incidents": held, "alertmanager_alerts": am_held})


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


# --- PostgreSQL: one and three replicas -------------------------------------------------------

PG_CONNECTIONS = 9  # wrk connections in all: 9 for one server, 3 per replica for three


def cpu_of(servers) -> float:
    return sum(server.cpu_seconds() for server in servers)


def multi_load(bench, h: ModuleType, servers, path: str, script, envs: list[dict],
               duration: float, postgres) -> dict:
    """One wrk per server, all at once (each on the client core, connections split), the
    servers' and PostgreSQL's CPU read around them."""
    connections = max(1, PG_CONNECTIONS // len(servers))
    while True:
        pg_before = postgres.cpu_seconds() if postgres else 0.0
        cpu_before = cpu_of(servers)
        busy_before = h.cpu_busy_seconds()
        wrk_before = h.children_cpu_seconds()
        processes = []
        for server, env in zip(servers, envs):
            argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s",
                    "--timeout", "5s", "-s", str(script), server.url(path)]
            with h.spawning({h.CLIENT_CORE}, h.LOAD_NICE):
                processes.append(subprocess.Popen(
                    argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    stdin=subprocess.DEVNULL, text=True, env={**os.environ, **env}))
        reports = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=duration + 30)
            lines = [line for line in stdout.splitlines() if line.startswith("WRK_JSON ")]
            if process.returncode != 0 or not lines:
                raise RuntimeError(f"wrk failed ({process.returncode}): {stderr}{stdout}")
            reports.append(json.loads(lines[-1].split(" ", 1)[1]))
        cpu = cpu_of(servers) - cpu_before
        pg = (postgres.cpu_seconds() if postgres else 0.0) - pg_before
        wrk_cpu = h.children_cpu_seconds() - wrk_before
        busy_after = h.cpu_busy_seconds()
        seconds = max(r["duration_us"] for r in reports) / 1e6
        busy = sum(busy_after[c] - busy_before[c] for c in busy_after)
        result = {
            "requests": sum(r["requests"] for r in reports), "seconds": seconds,
            "server_cpu": cpu, "pg_cpu": pg,
            "errors": sum(sum(r["errors"].values()) for r in reports),
            "p50_us": statistics.median(r["latency_us"]["p50"] for r in reports),
            "p99_us": max(r["latency_us"]["p99"] for r in reports),
            "other_busy": max(0.0, busy - cpu - pg - wrk_cpu) / seconds,
        }
        if result["other_busy"] <= h.OTHER_LOAD_LIMIT or bench.retry_budget <= 0:
            return result
        bench.retry_budget -= 1
        bench.discarded += 1
        print(f"bench: other load {result['other_busy'] * 100:.0f} % of a core during a "
              f"{servers[0].spec.name} round; measuring it again", flush=True)


def with_env(spec, *env: tuple[str, str]):
    return dataclasses.replace(spec, env=spec.env + env)


def scenario_postgres(bench, h: ModuleType):
    opts = bench.options
    postgres = archive_bench.Postgres(h, tempfile.mkdtemp(prefix="obs-bench-postgres-"))
    items_files: list[str] = []
    try:
        for database in ("curator1", "curator3", "watcher1", "watcher3"):
            postgres.psql(f"CREATE DATABASE {database}")
        pg_version = postgres.psql("SHOW server_version").strip()
        curator = dataclasses.replace(h.role("curator"), name="obs-core curator")
        watcher = h.watcher()

        def setups(spec, database):
            url = ("DATABASE_URL", postgres.url(database + "1"))
            url3 = ("DATABASE_URL", postgres.url(database + "3"))
            return [
                ("SQLite (default), 1 process", [spec]),
                ("PostgreSQL, 1 replica", [with_env(spec, url)]),
                ("PostgreSQL, 3 replicas", [with_env(spec, url3)] * 3),
            ]

        figures = {}
        # --- curator intake ---
        curator_setups = []
        for label, specs in setups(curator, "curator"):
            servers = [bench.start(spec, cores={h.SERVER_CORE}, workers=1, nice=h.LOAD_NICE)
                       for spec in specs]
            curator_setups.append((label, servers))
        salt_base = h.ulid_text("", int(time.time() * 1000))[-8:]
        prefixes = h.curator_issue_prefixes("0" + salt_base + "0", h.CURATOR_OPEN_INCIDENTS)
        # Each setup primes its own open incidents (the same fingerprints; setups do not share
        # a database); with three replicas, each replica's wrk takes a third of them.
        envs_by_setup = []
        for label, servers in curator_setups:
            port = servers[0].port
            for start in range(0, len(prefixes), h.CURATOR_BATCH):
                batch = ",".join(p + "1}" for p in prefixes[start:start + h.CURATOR_BATCH])
                h.http_post_json(port, "/v1/issues", f"[{batch}]")
            envs = []
            for index, _ in enumerate(servers):
                share = prefixes[index::len(servers)]
                items = tempfile.NamedTemporaryFile("w", prefix="obs-bench-curator-",
                                                    suffix=".txt", delete=False)
                with items:
                    items.write("\n".join(share) + "\n")
                items_files.append(items.name)
                envs.append({"CURATOR_ITEMS": items.name,
                             "CURATOR_SALT": "0" + salt_base + str(index + 1),
                             "CURATOR_BATCH": str(h.CURATOR_BATCH),
                             "CURATOR_T0": str(int(time.time()))})
            envs_by_setup.append(envs)
        figures["curator"] = measure(bench, h, curator_setups, envs_by_setup, "/v1/issues",
                                     h.WRK_CURATOR_ISSUES, postgres, opts)
        for _, servers in curator_setups:
            for server in servers:
                bench.stop(server)

        # --- heartbeat ingest ---
        watcher_setups = []
        for label, specs in setups(watcher, "watcher"):
            servers = [bench.start(spec, cores={h.SERVER_CORE}, workers=1, nice=h.LOAD_NICE)
                       for spec in specs]
            watcher_setups.append((label, servers))
        envs_by_setup = [[{"BENCH_SERVICES": "1000", "BENCH_START": str(i * 333)}
                          for i in range(len(servers))] for _, servers in watcher_setups]
        figures["heartbeat"] = measure(bench, h, watcher_setups, envs_by_setup, "/heartbeat",
                                       h.WRK_HEARTBEAT, postgres, opts)
        for _, servers in watcher_setups:
            for server in servers:
                bench.stop(server)
    finally:
        postgres.stop()
        shutil.rmtree(postgres.folder, ignore_errors=True)
        for name in items_files:
            with contextlib.suppress(OSError):
                os.unlink(name)
    return report_postgres(h, opts, figures, pg_version)


def measure(bench, h, setups, envs_by_setup, path, script, postgres, opts) -> dict:
    for (label, servers), envs in zip(setups, envs_by_setup):
        multi_load(bench, h, servers, path, script, envs, opts.warmup,
                   postgres if "PostgreSQL" in label else None)
    rounds: dict[str, list[dict]] = {label: [] for label, _ in setups}
    for index in range(opts.rounds):
        order = list(zip(setups, envs_by_setup))
        if index % 2:
            order.reverse()
        for (label, servers), envs in order:
            rounds[label].append(multi_load(bench, h, servers, path, script, envs,
                                            opts.duration,
                                            postgres if "PostgreSQL" in label else None))
    out = {}
    for label, runs in rounds.items():
        requests = max(1, sum(r["requests"] for r in runs))
        seconds = sum(r["seconds"] for r in runs)
        out[label] = {
            "rps": requests / seconds, "requests": requests,
            "server_us": sum(r["server_cpu"] for r in runs) / requests * 1e6,
            "pg_us": sum(r["pg_cpu"] for r in runs) / requests * 1e6,
            "busy": sum(r["server_cpu"] + r["pg_cpu"] for r in runs) / seconds,
            "p50_us": statistics.median(r["p50_us"] for r in runs),
            "p99_us": statistics.median(r["p99_us"] for r in runs),
            "errors": sum(r["errors"] for r in runs),
            "other_busy": statistics.mean(r["other_busy"] for r in runs),
            "rounds": runs,
        }
    return out


def report_postgres(h, opts, figures: dict, pg_version: str):
    tables = []
    for kind, unit, per in (("curator", "issues", h.CURATOR_BATCH), ("heartbeat", "heartbeats", 1)):
        rows = []
        base = figures[kind]["SQLite (default), 1 process"]
        for label, f in figures[kind].items():
            total = f["server_us"] + f["pg_us"]
            rows.append([
                label, fmt_int(f["rps"]), fmt_int(f["rps"] * per),
                f"{f['server_us'] / per:.2f}", f"{f['pg_us'] / per:.2f}", f"{total / per:.2f}",
                h.fmt_ratio(total / (base["server_us"] + base["pg_us"])),
                f"{f['busy'] * 100:.0f} %",
                f"{f['p50_us'] / 1000:.2f} ms", f"{f['p99_us'] / 1000:.2f} ms",
                fmt_int(f["errors"])])
        what = (f"curator POST /v1/issues ({h.CURATOR_BATCH} issues/request)"
                if kind == "curator" else "watcher POST /heartbeat")
        tables.append(h.Table([what, "requests/s", f"{unit}/s", f"role CPU µs/{unit[:-1]}",
                               f"PostgreSQL CPU µs/{unit[:-1]}", f"total CPU µs/{unit[:-1]}",
                               "total CPU vs SQLite", "CPU busy (core 0)", "latency p50",
                               "latency p99", "errors"], rows))
    checks = [h.Check("curator and heartbeat on PostgreSQL: no failed requests",
                      str(sum(f["errors"] for kind in figures.values() for f in kind.values())),
                      all(f["errors"] == 0 for kind in figures.values() for f in kind.values()))]
    other = [f["other_busy"] for kind in figures.values() for f in kind.values()]
    notes = [
        f"PostgreSQL {pg_version} (Debian's server binaries), initdb with trust auth on "
        "127.0.0.1, a fresh data directory, stock durability (fsync, synchronous_commit on); "
        f"one database per setup. PostgreSQL, every role process (`WORKERS=1` each) on core "
        f"{h.SERVER_CORE}; wrk on core {h.CLIENT_CORE}. With three replicas all three and "
        "PostgreSQL share that one core, so requests/s cannot grow with replicas here: the "
        "figures to compare are CPU per request (what a replica and the database spend) and "
        "what three writers on one database cost over one.",
        f"{opts.rounds} rounds of {opts.duration:g} s per setup, interleaved (in turn forwards "
        f"and backwards), after a {opts.warmup:g} s warm-up each; {PG_CONNECTIONS} wrk "
        f"connections for one process, {PG_CONNECTIONS // 3} per replica for three (one wrk "
        "process per replica, all at once).",
        f"Curator: the priming and the batches of the curator scenario above "
        f"({h.CURATOR_OPEN_INCIDENTS:,} open incidents, {h.CURATOR_BATCH - 1} repeats and one "
        "new fingerprint per request); with three replicas each replica's wrk takes its own "
        "third of the open incidents (and its own ids for the new ones), as watchers each "
        "sending to one replica would.",
        "Heartbeats: the heartbeat scenario's payload over 1,000 service names; with three "
        "replicas every replica's wrk cycles through the same 1,000 names from another start "
        "(a load balancer spreads one service's beats over replicas). The watcher writes beats "
        "behind (each replica's pending beats at its next pass), so a heartbeat's own path "
        "does not wait for PostgreSQL.",
        "CPU per request = role processes' utime + stime and every PostgreSQL process's "
        "(postmaster and backends), / requests answered; 'CPU busy' is both per second of load.",
        f"Other load while wrk ran: mean {statistics.mean(other) * 100:.0f} % of a core.",
    ]
    return h.Section(
        title="Curator intake and heartbeat ingest on PostgreSQL: 1 and 3 replicas",
        text=("The curator's `POST /v1/issues` (with dedup) and the watcher's `POST /heartbeat` "
              "with their state on PostgreSQL (`DATABASE_URL`), one replica and three "
              "replicas on one database, beside the embedded SQLite default measured in the "
              "same rounds."),
        tables=tables, checks=checks, notes=notes, raw={"figures": figures})
