"""The original Python service, kept as a benchmark baseline.

What each role of the earlier fleet ran (seeds 000 and 001): FastAPI + uvicorn +
prometheus_client, `/healthz` returning {"status":"ok"}, `/metrics` from a registry of its
own, and an HTTP middleware recording the three metrics the alert rules query:
hello_ai_requests_total, hello_ai_request_duration_seconds and hello_ai_up.

The labels are the ones obs-core uses ({route, method, code}; {route, method}), so both
sides do the same bookkeeping per request. Configured like the seeds: ROLE, HOST, PORT from
the environment. ACCESS_LOG=1 turns uvicorn's per-request access log on (the seeds' default);
the benchmark leaves it off, which flatters this baseline a little.
"""

import os
import time
from typing import Optional

import uvicorn
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

ROLE = os.environ.get("ROLE", "watcher")

registry = CollectorRegistry()
REQUESTS = Counter(
    "hello_ai_requests_total",
    "HTTP requests handled, by route, method and status code.",
    ["route", "method", "code"],
    registry=registry,
)
DURATION = Histogram(
    "hello_ai_request_duration_seconds",
    "Time spent handling HTTP requests, by route and method.",
    ["route", "method"],
    registry=registry,
)
UP = Gauge("hello_ai_up", "1 while the service is running.", registry=registry)
UP.set(1)

app = FastAPI(title=ROLE)


@app.middleware("http")
async def record_metrics(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    path = route.path if route is not None else "unmatched"
    DURATION.labels(path, request.method).observe(time.perf_counter() - started)
    REQUESTS.labels(path, request.method, str(response.status_code)).inc()
    return response


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


# --- The monitoring service's /heartbeat (seed 004), for the watcher's ingest benchmark.
# Its payload, its table of services, its two gauges; `async def`, so no threadpool hop
# (which would only slow the baseline down).

SERVICE_STATUS = Gauge(
    "monitoring_service_status",
    "1 while the service is up (heartbeats arriving), 0 when down.",
    ["service"],
    registry=registry,
)
SERVICE_LAST_SEEN = Gauge(
    "monitoring_service_last_seen_seconds",
    "Unix time of the service's last heartbeat.",
    ["service"],
    registry=registry,
)
DEFAULT_TIMEOUT = float(os.environ.get("MONITOR_HEARTBEAT_TIMEOUT", "30"))
services: dict[str, dict] = {}


class Heartbeat(BaseModel):
    service: str
    phase: Optional[str] = None
    timeout_seconds: Optional[float] = None


@app.post("/heartbeat")
async def heartbeat(beat: Heartbeat):
    now = time.time()
    entry = services.setdefault(beat.service, {"timeout": DEFAULT_TIMEOUT})
    entry["last_seen"] = now
    entry["status"] = "up"
    if beat.phase is not None:
        entry["phase"] = beat.phase
    if beat.timeout_seconds is not None:
        entry["timeout"] = beat.timeout_seconds
    SERVICE_STATUS.labels(beat.service).set(1)
    SERVICE_LAST_SEEN.labels(beat.service).set(now)
    return {"status": "ok"}


@app.get("/metrics")
def metrics():
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


if __name__ == "__main__":
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "8001")),
        access_log=os.environ.get("ACCESS_LOG", "0") == "1",
        log_level=os.environ.get("LOG_LEVEL", "warning").lower(),
    )
