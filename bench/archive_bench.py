"""The archivist's benchmark scenario for bench/run.py: durable appends, single-record append
latency, filtered pages over a 1,000,000-record archive, and export — on SQLite and on a real
PostgreSQL started for the run, each beside a baseline measured in the same run.

    ./bench/run.sh --scenarios archive

Baselines: the same SQLite schema driven directly from Python's sqlite3 (WAL,
synchronous=FULL, one transaction per batch of 100: the durable append without HTTP, JSON
validation or group commit), the same page queries run directly against each database, and
the database's own bulk read (SQLite scan, PostgreSQL COPY) for export.

It lives beside run.py rather than in it, so the scenario's code has one owner; run.py
registers `scenario_archive` and hands over itself as `harness` (the Bench, the report types,
the core pinning). Standard library only, like run.py.
"""

from __future__ import annotations

import calendar
import contextlib
import glob
import http.client
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parent
WRK_APPEND = BENCH_DIR / "archive-append.lua"
WRK_QUERY = BENCH_DIR / "archive-query.lua"

APPEND_BATCH = 100
APPEND_CONNECTIONS = 16
ARCHIVE_RECORDS = 1_000_000
ARCHIVE_RECORDS_QUICK = 100_000
# 2024-05-01T00:00:00Z; records climb 1 ms apart from here (bench/archive-append.lua).
TS_BASE = 1_714_521_600
STORED = "archivist_records_stored_total"
DUPLICATES = "archivist_records_duplicates_total"
GROUP_SUM, GROUP_COUNT = "archivist_commit_batches_sum", "archivist_commit_batches_count"
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# ---------------------------------------------------------------------------------------------
# Small clients


def request(port: int, method: str, path: str, body: str | None = None,
            timeout: float = 60) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def get_json(port: int, path: str) -> dict:
    status, body = request(port, "GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    return json.loads(body)


def metrics(port: int) -> dict[str, float]:
    _, body = request(port, "GET", "/metrics")
    values = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            values[series] = float(value)
    return values


def salt() -> str:
    """A fresh 10-character ULID prefix (first character 0-7). bench/archive-append.lua keeps
    the first 3 characters and adds its own start time, so a round measured again does not
    repeat ids either."""
    n = time.time_ns() // 1000
    digits = [ULID_ALPHABET[(n >> (5 * i)) & 31] for i in range(9)]
    return "0" + "".join(reversed(digits))


def rfc3339(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


@contextlib.contextmanager
def environment(**values: str):
    """wrk inherits the harness's environment: set its script's inputs for a while."""
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


# ---------------------------------------------------------------------------------------------
# PostgreSQL for the run


class Postgres:
    """A throwaway PostgreSQL (Debian's `postgresql` package, as the tests use): initdb in a
    temporary folder, started on a free loopback port on the server core, stock durability
    settings (fsync, synchronous_commit on). As root it runs as the `postgres` user."""

    def __init__(self, harness: ModuleType, folder: str):
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                          key=lambda p: int(Path(p).parent.parent.name))
        if not binaries:
            raise RuntimeError("PostgreSQL is not installed (make test-deps installs it)")
        self.bin = Path(binaries[-1]).parent
        self.folder = folder
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(folder, self.user, self.user)
        data = os.path.join(folder, "data")
        initdb = subprocess.run(
            [str(self.bin / "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E",
             "UTF8", "--locale=C", "--no-sync"],
            capture_output=True, text=True, user=self.user, env={"LC_ALL": "C"})
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stdout}{initdb.stderr}")
        self.port = harness.free_port()
        self.log = open(os.path.join(folder, "postgres.log"), "w")
        with harness.spawning({harness.SERVER_CORE}, harness.LOAD_NICE):
            self.process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", data, "-p", str(self.port),
                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, user=self.user,
                env={"LC_ALL": "C"})
        deadline = time.time() + 30
        while subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                              str(self.port)], capture_output=True).returncode != 0:
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError("PostgreSQL did not start: "
                                   + Path(folder, "postgres.log").read_text()[-2000:])
            time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres", stdout=subprocess.PIPE) -> str:
        result = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database,
             "-c", sql], stdout=stdout, stderr=subprocess.PIPE, text=True, check=True)
        return result.stdout or ""

    def cpu_seconds(self) -> float:
        """utime + stime of every postgres process (the postmaster and its backends)."""
        total = 0.0
        for pid in [self.process.pid] + children(self.process.pid):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    return []


# ---------------------------------------------------------------------------------------------
# Measurements


def archivist_spec(harness: ModuleType, backend: str, url: str):
    return harness.ServerSpec(
        name=f"archivist ({backend})",
        argv=(str(harness.RELEASE_DIR / "archivist"),),
        # Production defaults otherwise (LOG_LEVEL=info, JSON logs).
        env=(("HOST", "127.0.0.1"), ("ARCHIVE_URL", url), ("ARCHIVE_RETENTION_DAYS", "0")),
        stop_timeout=30.0,
    )


def append_rounds(bench, server, postgres, *, rounds: int, duration: float,
                  batch: int, connections: int, state: dict) -> dict:
    """`rounds` wrk runs of POST /v1/records (batches of `batch` fresh records). A record
    counts once its 201 reached wrk: acknowledged, so durable. (bench.load measures a round
    again when other work disturbed it; the archivist's counters include such discarded
    rounds, so they serve only for shares: duplicates, batches per commit.)"""
    loads = []
    before = metrics(server.port)
    for _ in range(rounds):
        with environment(ARCHIVE_SALT=salt(), ARCHIVE_BATCH=str(batch),
                         ARCHIVE_TS_BASE=str(state["ts"])):
            loads.append(bench.load(server, "/v1/records", duration=duration,
                                    connections=connections, script=WRK_APPEND,
                                    companion_cpu=postgres.cpu_seconds if postgres else None))
        # The next round's records come after this round's (1 ms apart, generously bounded).
        state["ts"] += int(loads[-1].requests * batch / 1000) + 60
    after = metrics(server.port)
    seconds = sum(load.seconds for load in loads)
    stored = sum(load.requests - load.errors for load in loads) * batch
    groups = after[GROUP_COUNT] - before.get(GROUP_COUNT, 0.0)
    return {
        "records_per_s": stored / seconds,
        "requests": sum(load.requests for load in loads),
        "errors": sum(load.errors for load in loads),
        "duplicates": after.get(DUPLICATES, 0.0) - before.get(DUPLICATES, 0.0),
        "p50_us": statistics.median(load.latency_us["p50"] for load in loads),
        "p99_us": statistics.median(load.latency_us["p99"] for load in loads),
        "cpu_us_per_record": (sum(load.server_cpu + load.companion_cpu for load in loads)
                              / stored * 1e6),
        "batches_per_commit": (after[GROUP_SUM] - before.get(GROUP_SUM, 0.0)) / groups,
        "other_busy": max(load.other_busy for load in loads),
    }


def fill(bench, server, target: int, state: dict) -> float:
    """Append until the archive holds `target` records; returns seconds spent."""
    started = time.perf_counter()
    while metrics(server.port)[STORED] < target:
        with environment(ARCHIVE_SALT=salt(), ARCHIVE_BATCH="1000",
                         ARCHIVE_TS_BASE=str(state["ts"])):
            report = bench.wrk(server.url("/v1/records"), duration=5,
                               connections=APPEND_CONNECTIONS, script=WRK_APPEND)
        # 1000 records 1 ms apart per request: one second of timestamps each.
        state["ts"] += report["requests"] + 60
    return time.perf_counter() - started


def settle(server, timeout: float = 60) -> None:
    """Wait until batches still in flight when wrk stopped are committed (the stored
    counter holds still for half a second)."""
    deadline = time.time() + timeout
    last = -1.0
    while time.time() < deadline:
        stored = metrics(server.port).get(STORED, 0.0)
        if stored == last:
            return
        last = stored
        time.sleep(0.5)


def query_shapes(port: int) -> list[tuple[str, str]]:
    """(label, query) of the filtered pages measured. The window and the deep page start at
    the first record at or after the middle of the archive's time span."""
    stats = get_json(port, "/v1/stats")
    oldest, newest = (calendar.timegm(time.strptime(stats[end][:19], "%Y-%m-%dT%H:%M:%S"))
                      for end in ("oldest", "newest"))
    middle = get_json(port, f"/v1/records?limit=1&since={rfc3339((oldest + newest) // 2 * 1000)}")
    cursor = middle["next"]
    start = int(cursor.split("_")[0]) // 1_000_000  # ms
    window = f"since={rfc3339(start)}&until={rfc3339(start + 300_000)}"
    return [
        ("kind + service", "kind=incident&service=svc-7"),
        ("service in a 5-minute window", f"service=svc-3&{window}"),
        ("rare kind (2 % of records)", "kind=report"),
        ("kind + service, no match", "kind=report&service=svc-no-such"),
        ("5-minute window", window),
        ("unfiltered page halfway through (cursor)", f"after={cursor}"),
    ]


SQLITE_PAGE_SQL = {
    # The conditions store::page_query writes for each parameter.
    "kind": "kind = ?", "service": "service = ?", "since": "ts >= ?", "until": "ts < ?",
}


def page_sql(query: str) -> tuple[str, list, str]:
    """The SQL the archivist runs for `query` (see services/archivist/src/store/mod.rs), with
    SQLite and PostgreSQL parameters."""
    conditions, params = [], []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if name in ("since", "until"):
            # rfc3339() spells them: YYYY-MM-DDTHH:MM:SS.mmmZ
            seconds = calendar.timegm(time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S"))
            ns = (seconds * 1000 + int(value[20:23])) * 1_000_000
            conditions.append(SQLITE_PAGE_SQL[name])
            params.append(ns)
        elif name == "after":
            ts, _, record_id = value.rpartition("_")
            conditions.append("(ts, id) > (?, ?)")
            params += [int(ts), record_id]
        else:
            conditions.append(SQLITE_PAGE_SQL[name])
            params.append(value)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = f"SELECT ts, id, record FROM records{where} ORDER BY ts, id LIMIT 101"
    literal = sql
    for param in params:
        literal = literal.replace("?", str(param) if isinstance(param, int) else f"'{param}'", 1)
    return sql, params, literal


def sqlite_page_ms(path: str, query: str, runs: int = 200) -> float:
    """Median ms of the page's SQL run directly on the file (Python's sqlite3)."""
    sql, params, _ = page_sql(query)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute(sql, params).fetchall()
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            db.execute(sql, params).fetchall()
            times.append(time.perf_counter() - started)
    finally:
        db.close()
    return statistics.median(times) * 1000


def postgres_page_ms(postgres: Postgres, database: str, query: str, runs: int = 20) -> float:
    """Median execution time of the page's SQL as PostgreSQL reports it (EXPLAIN ANALYZE)."""
    _, _, literal = page_sql(query)
    times = []
    for _ in range(runs):
        plan = json.loads(postgres.psql(f"EXPLAIN (ANALYZE, FORMAT JSON) {literal}", database))
        times.append(plan[0]["Execution Time"])
    return statistics.median(times)


def export(server) -> dict:
    """Stream GET /v1/export to the end on a fresh connection; the archivist's peak RSS
    before (after warm-up) and after."""
    for _ in range(3):
        get_json(server.port, "/v1/records?limit=1000")
    status = server.status()
    hwm_before = int(status["VmHWM"].split()[0])
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    started = time.perf_counter()
    conn.request("GET", "/v1/export")
    response = conn.getresponse()
    size = lines = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    conn.close()
    hwm_after = int(server.status()["VmHWM"].split()[0])
    return {"records": lines, "bytes": size, "seconds": seconds,
            "records_per_s": lines / seconds, "mb_per_s": size / seconds / 1e6,
            "peak_rss_before_kib": hwm_before, "peak_rss_after_kib": hwm_after}


def sqlite_baseline_append(schema: list[str], folder: str, seconds: float) -> dict:
    """Python's sqlite3 on the archivist's own schema, WAL + synchronous=FULL, one transaction
    per batch of 100 fresh records: what durable appends cost without HTTP, validation or
    group commit. Only the database calls are timed."""
    path = os.path.join(folder, "baseline.sqlite3")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for statement in schema:
        db.execute(statement)
    prefix, counter, timed, records = salt(), 0, 0.0, 0
    insert = ("INSERT INTO records (id, kind, service, ts, record) VALUES (?, ?, ?, ?, ?) "
              "ON CONFLICT (id) DO NOTHING")
    kinds = ["event"] * 70 + ["issue"] * 15 + ["incident"] * 8 + ["plan"] * 5 + ["report"] * 2
    while timed < seconds:
        rows = []
        for _ in range(APPEND_BATCH):
            counter += 1
            record_id = prefix + "".join(ULID_ALPHABET[(counter >> (5 * i)) & 31]
                                         for i in reversed(range(16)))
            ms = TS_BASE * 1000 + counter
            record = json.dumps({"id": record_id, "kind": kinds[counter % 100],
                                 "service": f"svc-{counter % 47}", "ts": rfc3339(ms),
                                 "body": {"event_type": "restart", "component": "worker",
                                          "detail": "container restarted after exit 137",
                                          "n": counter}}, separators=(",", ":"))
            rows.append((record_id, kinds[counter % 100], f"svc-{counter % 47}",
                         ms * 1_000_000, record))
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(insert, rows)
        db.execute("COMMIT")
        timed += time.perf_counter() - started
        records += len(rows)
    db.close()
    return {"records_per_s": records / timed, "records": records}


def sqlite_baseline_export(path: str) -> dict:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    started = time.perf_counter()
    count = size = 0
    for (record,) in db.execute("SELECT record FROM records ORDER BY ts, id"):
        count += 1
        size += len(record) + 1
    seconds = time.perf_counter() - started
    db.close()
    return {"records_per_s": count / seconds, "mb_per_s": size / seconds / 1e6}


def postgres_baseline_export(postgres: Postgres, database: str) -> dict:
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        postgres.psql("COPY (SELECT record FROM records ORDER BY ts, id) TO STDOUT", database,
                      stdout=sink)
    seconds = time.perf_counter() - started
    count = int(postgres.psql("SELECT count(*) FROM records", database))
    size = int(postgres.psql("SELECT sum(length(record) + 1) FROM records", database))
    return {"records_per_s": count / seconds, "mb_per_s": size / seconds / 1e6}


def measure_backend(bench, harness, backend: str, folder: str,
                    postgres: Postgres | None) -> dict:
    opts = bench.options
    target = ARCHIVE_RECORDS_QUICK if opts.duration < 2 else ARCHIVE_RECORDS
    if postgres:
        postgres.psql("CREATE DATABASE archive")
        url = postgres.url("archive")
    else:
        url = f"sqlite:{os.path.join(folder, 'archive.sqlite3')}"
    spec = archivist_spec(harness, backend, url)
    state = {"ts": TS_BASE}
    figures: dict = {"quiet": bench.wait_quiet()}

    server = bench.start(spec, cores={harness.SERVER_CORE}, workers=1, nice=harness.LOAD_NICE)
    # Warm-up, then the measured rounds of durable appends in batches of 100.
    append_rounds(bench, server, postgres, rounds=1, duration=opts.warmup,
                  batch=APPEND_BATCH, connections=APPEND_CONNECTIONS, state=state)
    figures["append"] = append_rounds(bench, server, postgres, rounds=opts.rounds,
                                      duration=opts.duration, batch=APPEND_BATCH,
                                      connections=APPEND_CONNECTIONS, state=state)
    figures["single"] = append_rounds(bench, server, postgres, rounds=1,
                                      duration=opts.duration, batch=1, connections=1,
                                      state=state)
    figures["fill_seconds"] = fill(bench, server, target, state)
    settle(server)
    if postgres:
        # What autovacuum would have done by now in a long-running database.
        postgres.psql("ANALYZE records", "archive")
    stats = get_json(server.port, "/v1/stats")
    figures["records"] = stats["records"]
    figures["size_bytes"] = stats["size_bytes"]

    shapes = query_shapes(server.port)
    figures["queries"] = []
    for label, query in shapes:
        path = f"/v1/records?{query}&limit=100"
        with environment(ARCHIVE_PATHS=path):
            # Warm-up: the shape's index pages into the page caches, as in steady use.
            bench.wrk(server.url(path), duration=opts.warmup, connections=1, script=WRK_QUERY)
            load = bench.load(server, path, duration=opts.scrape_duration, connections=1,
                              script=WRK_QUERY,
                              companion_cpu=postgres.cpu_seconds if postgres else None)
        returned = len(get_json(server.port, path)["records"])
        direct = (postgres_page_ms(postgres, "archive", query) if postgres
                  else sqlite_page_ms(os.path.join(folder, "archive.sqlite3"), query))
        figures["queries"].append({"shape": label, "query": query, "records": returned,
                                   "p50_us": load.latency_us["p50"],
                                   "p99_us": load.latency_us["p99"],
                                   "requests": load.requests, "errors": load.errors,
                                   "database_ms": direct})
    bench.stop(server)

    # Export from a fresh process, so its peak memory reflects the export alone.
    server = bench.start(spec, cores={harness.SERVER_CORE}, workers=1, nice=harness.LOAD_NICE)
    figures["export"] = export(server)
    bench.stop(server)
    figures["export_baseline"] = (
        postgres_baseline_export(postgres, "archive") if postgres
        else sqlite_baseline_export(os.path.join(folder, "archive.sqlite3")))
    return figures


def scenario_archive(bench, harness: ModuleType):
    h = harness
    opts = bench.options
    folder = tempfile.mkdtemp(prefix="obs-bench-archive-")
    postgres = None
    try:
        sqlite_figures = measure_backend(bench, h, "sqlite", folder, None)
        schema_db = sqlite3.connect(os.path.join(folder, "archive.sqlite3"))
        schema = [sql for (sql,) in schema_db.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
        schema_db.close()
        baseline = sqlite_baseline_append(schema, folder, opts.duration * opts.rounds)
        os.remove(os.path.join(folder, "archive.sqlite3"))
        # A folder of its own: as root, the server runs as `postgres`, which must own it
        # (and could not enter the harness's private folder).
        postgres = Postgres(h, tempfile.mkdtemp(prefix="obs-bench-postgres-"))
        pg_figures = measure_backend(bench, h, "postgres", folder, postgres)
    finally:
        if postgres:
            postgres.stop()
            shutil.rmtree(postgres.folder, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    return report(h, opts, sqlite_figures, pg_figures, baseline)


def report(h, opts, sqlite_figures: dict, pg_figures: dict, baseline: dict):
    both = [("SQLite", sqlite_figures), ("PostgreSQL", pg_figures)]
    us_ms = lambda us: f"{us / 1000:.2f} ms"  # noqa: E731

    append = h.Table(
        ["archive", "records/s", "batch latency p50", "batch latency p99",
         "CPU µs/record (archivist + database)", "batches per commit", "errors"],
        [[name, h.fmt_int(f["append"]["records_per_s"]), us_ms(f["append"]["p50_us"]),
          us_ms(f["append"]["p99_us"]), f"{f['append']['cpu_us_per_record']:.1f}",
          f"{f['append']['batches_per_commit']:.1f}",
          h.fmt_int(f["append"]["errors"] + f["append"]["duplicates"])] for name, f in both]
        + [["baseline: Python sqlite3, 1 transaction per batch, no HTTP",
            h.fmt_int(baseline["records_per_s"]), "", "", "", "1.0", "0"]])
    single = h.Table(
        ["archive", "appends/s (one connection)", "latency p50", "latency p99"],
        [[name, h.fmt_int(f["single"]["records_per_s"]), us_ms(f["single"]["p50_us"]),
          us_ms(f["single"]["p99_us"])] for name, f in both])
    queries = h.Table(
        ["page (limit=100)", "records", "SQLite p50", "SQLite p99", "SQLite alone",
         "PostgreSQL p50", "PostgreSQL p99", "PostgreSQL alone"],
        [[s["shape"], str(s["records"]), us_ms(s["p50_us"]), us_ms(s["p99_us"]),
          f"{s['database_ms']:.2f} ms", us_ms(p["p50_us"]), us_ms(p["p99_us"]),
          f"{p['database_ms']:.2f} ms"]
         for s, p in zip(sqlite_figures["queries"], pg_figures["queries"])])
    exports = h.Table(
        ["archive", "records", "records/s", "MB/s", "peak RSS before → after",
         "database alone (records/s)"],
        [[name, h.fmt_int(f["export"]["records"]), h.fmt_int(f["export"]["records_per_s"]),
          f"{f['export']['mb_per_s']:.0f}",
          f"{h.fmt_mib(f['export']['peak_rss_before_kib'])} → "
          f"{h.fmt_mib(f['export']['peak_rss_after_kib'])}",
          h.fmt_int(f["export_baseline"]["records_per_s"])] for name, f in both])
    ratios = h.Table(["comparison", "ratio"], [
        ["SQLite archivist / Python sqlite3 baseline, durable append records/s",
         h.fmt_ratio(sqlite_figures["append"]["records_per_s"] / baseline["records_per_s"])],
        ["PostgreSQL / SQLite, durable append records/s",
         h.fmt_ratio(pg_figures["append"]["records_per_s"]
                     / sqlite_figures["append"]["records_per_s"])],
        ["PostgreSQL / SQLite, export records/s",
         h.fmt_ratio(pg_figures["export"]["records_per_s"]
                     / sqlite_figures["export"]["records_per_s"])],
        ["SQLite export / SQLite scan alone, records/s",
         h.fmt_ratio(sqlite_figures["export"]["records_per_s"]
                     / sqlite_figures["export_baseline"]["records_per_s"])],
    ])
    rate = sqlite_figures["append"]["records_per_s"]
    worst = max(sqlite_figures["queries"], key=lambda q: q["p99_us"])
    growth = (sqlite_figures["export"]["peak_rss_after_kib"]
              - sqlite_figures["export"]["peak_rss_before_kib"])
    exported = sqlite_figures["export"]["bytes"] / 1024
    checks = [
        h.Check("durable append ≥ 50,000 records/s, batches of 100, SQLite",
                f"{h.fmt_int(rate)} records/s", rate >= 50_000),
        h.Check(f"filtered page < 10 ms over {h.fmt_int(sqlite_figures['records'])} records, "
                "SQLite, p99 of every shape",
                f"{us_ms(worst['p99_us'])} ({worst['shape']})", worst["p99_us"] < 10_000),
        h.Check("export streams: archivist peak RSS grows < 10 % of the bytes exported",
                f"+{h.fmt_mib(growth)} for {h.fmt_mib(exported)} exported",
                growth < exported / 10),
    ]
    notes = [
        f"Archivist on core {h.SERVER_CORE} (`WORKERS=1`, and PostgreSQL with it), wrk and "
        f"this harness on core {h.CLIENT_CORE}. Appends: {opts.rounds} rounds of "
        f"{opts.duration:g} s after a {opts.warmup:g} s warm-up, wrk -c{APPEND_CONNECTIONS} "
        f"(bench/archive-append.lua: {APPEND_BATCH} fresh records per request, 70 % event, "
        "15 % issue, 8 % incident, 5 % plan, 2 % report, 47 services); records/s is the "
        "archivist's own `archivist_records_stored_total` over the rounds' time, so only "
        "acknowledged (durable) records count.",
        "Durable means: SQLite in WAL mode with synchronous=FULL (the WAL fsynced at every "
        "commit); PostgreSQL with fsync and synchronous_commit on. 'batches per commit' is the "
        "group commit at work (`archivist_commit_batches`).",
        f"The archive is then filled to {h.fmt_int(sqlite_figures['records'])} (SQLite, "
        f"{sqlite_figures['size_bytes'] / 1e6:.0f} MB on disk) and "
        f"{h.fmt_int(pg_figures['records'])} (PostgreSQL, "
        f"{pg_figures['size_bytes'] / 1e6:.0f} MB) records in batches of 1000 before the "
        f"queries: each page shape for {opts.scrape_duration:g} s after a {opts.warmup:g} s "
        "warm-up, wrk -c1. 'alone' is the "
        "same SQL run directly: Python's sqlite3 on the file (median of 200), PostgreSQL's "
        "EXPLAIN ANALYZE execution time (median of 20).",
        "Export: GET /v1/export of the whole archive read to the end by this harness, from a "
        "fresh archivist process (peak RSS = VmHWM, after three warm-up pages). 'Database "
        "alone': Python's sqlite3 iterating the same rows; psql COPY ... TO STDOUT.",
        f"Machine before SQLite: {sqlite_figures['quiet']}; before PostgreSQL: "
        f"{pg_figures['quiet']}. Other load during append rounds, at most: SQLite "
        f"{sqlite_figures['append']['other_busy'] * 100:.0f} %, PostgreSQL "
        f"{pg_figures['append']['other_busy'] * 100:.0f} % of a core.",
    ]
    return h.Section(
        title="Archivist: durable appends, queries over a large archive, export",
        text=("The archivist on its embedded SQLite and on a real PostgreSQL (Debian's, started "
              "for the run), beside the same SQLite schema driven directly from Python. A "
              "201 means the batch is durable, so every append figure includes the flush."),
        tables=[append, single, queries, exports, ratios], checks=checks, notes=notes,
        raw={"sqlite": sqlite_figures, "postgres": pg_figures, "sqlite_baseline": baseline},
    )
