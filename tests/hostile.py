"""The hostile client of tests/test_hostile.py: raw HTTP over loopback sockets (no client
library between the test and the bytes it means to send), the case generator that reads a
role's /openapi.json, and the watch kept on the roles while it runs (/healthz latency from
another process, RSS from /proc, panics in the logs).
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import re
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

# Every stable code a 4xx may carry: obs-core's error.rs (ApiError::code and the framework
# statuses it re-dresses) and the roles' own (the archivist's batch_too_large).
CLIENT_ERROR_CODES = frozenset(
    {
        "invalid_field",
        "invalid_json",
        "invalid_encoding",
        "invalid_body",
        "invalid_query",
        "invalid_path",
        "batch_too_large",
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "conflict",
        "payload_too_large",
        "body_timeout",
        "unsupported_media_type",
        "bad_request",
        "request_timeout",
        "length_required",
        "uri_too_long",
        "headers_too_large",
        "client_error",
    }
)
STATE_CHANGING = ("post", "put", "patch", "delete")


# ---- raw HTTP ---------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


class NoReply(Exception):
    """The connection closed (or timed out) before a whole response head arrived."""


def _read_reply(sock: socket.socket, started: float) -> Reply:
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout) as error:
            raise NoReply(f"{error!r} after {len(data)} bytes: {data[:200]!r}") from error
        if not chunk:
            raise NoReply(f"closed after {len(data)} bytes: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = headers.get("content-length")
    body = rest
    try:
        if length is not None:
            while len(body) < int(length):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
            body = body[: int(length)]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = _read_chunked(sock, body)
        else:
            while chunk := sock.recv(65536):
                body += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return Reply(status, headers, body, time.monotonic() - started)


def _read_chunked(sock: socket.socket, data: bytes) -> bytes:
    body = b""
    while True:
        while b"\r\n" not in data:
            data += sock.recv(65536) or b"\r\n0\r\n"
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return body
        while len(data) < size + 2:
            chunk = sock.recv(65536)
            if not chunk:
                return body + data
            data += chunk
        body += data[:size]
        data = data[size + 2 :]


def exchange(
    port: int,
    method: str,
    target: str,
    body: bytes | Iterable[bytes] = b"",
    headers: dict[str, str] | None = None,
    timeout: float = 15,
) -> Reply:
    """One request on a fresh connection (`Connection: close`); `target` is sent as given.
    A bytes body gets a Content-Length unless `headers` sets one; an iterable is sent
    chunked, from a thread, so the answer is read even while the server refuses the rest."""
    head = {"Host": "127.0.0.1", "Connection": "close"}
    if isinstance(body, (bytes, bytearray)):
        if body or method not in ("GET", "HEAD"):
            head["Content-Length"] = str(len(body))
        if body:
            head["Content-Type"] = "application/json"
        pieces: Iterable[bytes] = [bytes(body)]
    else:
        head["Content-Type"] = "application/json"
        head["Transfer-Encoding"] = "chunked"
        pieces = (b"%x\r\n%s\r\n" % (len(piece), piece) for piece in body)
        pieces = _then(pieces, b"0\r\n\r\n")
    head.update(headers or {})
    head = {name: value for name, value in head.items() if value is not None}
    request = f"{method} {target} HTTP/1.1\r\n".encode("latin-1", "surrogateescape")
    request += b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in head.items()) + b"\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    started = time.monotonic()
    try:
        writer = threading.Thread(target=_send_all, args=(sock, request, pieces), daemon=True)
        writer.start()
        return _read_reply(sock, started)
    finally:
        sock.close()


def _then(pieces: Iterable[bytes], last: bytes) -> Iterator[bytes]:
    yield from pieces
    yield last


def _send_all(sock: socket.socket, head: bytes, pieces: Iterable[bytes]) -> None:
    try:
        sock.sendall(head)
        for piece in pieces:
            sock.sendall(piece)
    except OSError:
        pass  # refused mid-body: the answer is what the reader is for


def pipelined(port: int, requests: list[bytes], timeout: float = 60) -> list[int]:
    """Send many requests down one keep-alive connection without waiting (HTTP/1.1
    pipelining: a burst costs the client almost nothing), and return every status."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    statuses: list[int] = []
    try:
        writer = threading.Thread(target=_send_all, args=(sock, b"", requests), daemon=True)
        writer.start()
        buffer = b""
        while len(statuses) < len(requests):
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buffer += chunk
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buffer[:end].decode("latin-1")
                match = re.search(r"(?im)^content-length:\s*(\d+)", head)
                length = int(match.group(1)) if match else 0
                if len(buffer) < end + 4 + length:
                    break
                statuses.append(int(head.split(" ", 2)[1]))
                buffer = buffer[end + 4 + length :]
        writer.join(timeout=timeout)
    finally:
        sock.close()
    return statuses


# ---- bodies -----------------------------------------------------------------------------


def bomb(megabytes: int, wrap: str) -> bytes:
    """`megabytes` MiB of JSON-looking text that compresses to about a thousandth of it."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS if wrap == "gzip" else zlib.MAX_WBITS)
    piece = b" " * (1 << 20)
    out = [compressor.compress(b'{"service": "')]
    for _ in range(megabytes):
        out.append(compressor.compress(piece))
    out.append(compressor.compress(b'"}'))
    out.append(compressor.flush())
    return b"".join(out)


def compressed(body: bytes, wrap: str) -> bytes:
    return gzip.compress(body) if wrap == "gzip" else zlib.compress(body)


# ---- the generator ----------------------------------------------------------------------


@dataclass
class Operation:
    role: str
    method: str
    template: str
    spec: dict
    body_shape: str | None  # "object", "array", or None when the operation takes no body
    example: Any = None
    # An optional body (described "optional: …", as ack/resolve are) is taken whatever its
    # content type, as curl -d sends it; a required one must say it is JSON.
    body_optional: bool = False

    @property
    def documented_503(self) -> bool:
        return "503" in self.spec.get("responses", {})

    def path(self, **overrides: str) -> str:
        """The template with every path parameter filled: `overrides`, else a sane value."""

        def value(match: re.Match) -> str:
            name = match.group(1)
            return overrides.get(name, PATH_VALUES.get(name, "hostile-suite"))

        return re.sub(r"\{([^}]+)\}", value, self.template)

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"\{([^}]+)\}", self.template)

    def __str__(self) -> str:
        return f"{self.role} {self.method.upper()} {self.template}"


# A path parameter's sane value by its name: ids are ULIDs nobody has (a 404 is the answer
# the rest of the request is checked against), names are plain.
PATH_VALUES = {"id": "01JC3Z8Q2J6W7V2N5Y4M1K0P9R", "name": "hostile-suite", "service": "hostile-suite"}


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def operations(role: str, spec: dict) -> list[Operation]:
    """Every state-changing operation the description lists, with its body's shape taken
    from the body's schema or example (so the wrong shape can be sent)."""
    found = []
    for template, item in sorted(spec["paths"].items()):
        for method in STATE_CHANGING:
            if method not in item:
                continue
            operation = item[method]
            body = operation.get("requestBody")
            shape = None
            example = None
            if body is not None:
                content = body.get("content", {}).get("application/json", {})
                schema = _resolve(spec, content.get("schema", {}))
                example = content.get("example")
                shape = schema.get("type") if schema.get("type") in ("object", "array") else None
                if shape is None and example is not None:
                    shape = "array" if isinstance(example, list) else "object" if isinstance(example, dict) else None
            found.append(
                Operation(
                    role,
                    method,
                    template,
                    operation,
                    shape if body is not None else None,
                    example,
                    bool(body and body.get("description", "").lower().startswith("optional")),
                )
            )
    return found


@dataclass
class Case:
    name: str
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    # The answer must be a 4xx (the body is wrong for an operation that reads one).
    refused: bool = False
    # The exact status expected, when the case is about one (413, 408).
    status: int | None = None
    target: str | None = None


def _wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, (int, float)):
        return "not a number"
    if isinstance(value, str):
        return 12345
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, dict):
        return ["not", "an", "object"]
    return [[]]


def body_cases(operation: Operation) -> list[Case]:
    """Malformed JSON, wrong types, deep nesting, invalid UTF-8: each a 4xx for an operation
    that reads a body (ack/resolve read an optional one: present, it must be valid)."""
    takes_body = operation.body_shape is not None
    cases = [
        Case("malformed JSON", b'{"service": "a",', refused=takes_body),
        Case("trailing garbage", b'{"service": "a"} }{', refused=takes_body),
        Case("NUL byte", b"\x00", refused=takes_body),
        Case("number too large", b"1e999999", refused=takes_body),
        Case("invalid UTF-8", b'{"service": "\xff\xfe\xc3\x28"}', refused=takes_body),
        Case("lone surrogate", b'{"service": "\\ud800"}', refused=takes_body),
        Case("10,000 nested arrays", b"[" * 10_000 + b"]" * 10_000, refused=takes_body),
        Case("10,000 nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, refused=takes_body),
        Case("not JSON media type", b"{}", headers={"Content-Type": "text/plain"}, refused=takes_body and not operation.body_optional),
    ]
    if operation.body_shape == "object":
        for wrong in (b"[]", b'["hostile-suite"]', b'"text"', b"17", b"null", b"true"):
            cases.append(Case(f"{wrong.decode()} for an object", wrong, refused=True))
        for key, value in (operation.example or {}).items():
            body = dict(operation.example)
            body[key] = _wrong_type(value)
            cases.append(Case(f"{key} of the wrong type", json.dumps(body).encode(), refused=True))
        nested = dict(operation.example or {})
        key = next(iter(nested), "service")
        nested[key] = json.loads("[" * 100 + "]" * 100)
        deep = json.dumps(nested).encode().replace(b"[" * 100 + b"]" * 100, b"[" * 5_000 + b"]" * 5_000)
        cases.append(Case(f"{key} nested 5,000 deep", deep, refused=True))
    elif operation.body_shape == "array":
        for wrong in (b"{}", b'"text"', b"17", b"null", b"[1, 2, 3]", b'[["hostile-suite"]]'):
            cases.append(Case(f"{wrong.decode()} for an array", wrong, refused=True))
        item = (operation.example or [{}])[0] if operation.example else {}
        for key, value in item.items():
            wrong_item = dict(item)
            wrong_item[key] = _wrong_type(value)
            cases.append(Case(f"[0].{key} of the wrong type", json.dumps([wrong_item]).encode(), refused=True))
    return cases


def size_cases(operation: Operation, max_body: int, bombs: dict[str, bytes]) -> list[Case]:
    """Bodies over MAX_BODY_BYTES however they come: declared, chunked, compressed."""
    ten_mb = 10 * 1024 * 1024
    # An operation that reads no body answers without reading it: only "no 5xx" holds.
    too_large = 413 if operation.body_shape is not None else None
    return [
        # Declared: refused from the head, before a byte of it is read.
        Case("10 MB declared", b"", headers={"Content-Length": str(ten_mb), "Content-Type": "application/json"}, status=too_large),
        Case("10 MB chunked", (b" " * 65536 for _ in range(ten_mb // 65536)), status=too_large),
        Case("gzip bomb", bombs["gzip"], headers={"Content-Encoding": "gzip"}, status=too_large),
        Case("deflate bomb", bombs["deflate"], headers={"Content-Encoding": "deflate"}, status=too_large),
        Case("gzip bomb chunked", _pieces(bombs["gzip"], 4096), headers={"Content-Encoding": "gzip"}, status=too_large),
        Case("corrupt gzip", b"\x1f\x8b\x08\x00garbage-garbage", headers={"Content-Encoding": "gzip"}, refused=operation.body_shape is not None),
        Case("gzip of malformed JSON", compressed(b'{"a":', "gzip"), headers={"Content-Encoding": "gzip"}, refused=operation.body_shape is not None),
    ]


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def path_cases(operation: Operation) -> list[Case]:
    """Oddities in each path parameter (or appended to a path that has none)."""
    oddities = {
        "NUL": "%00",
        "dot-dot": "..%2F..%2Fetc%2Fpasswd",
        "raw dot-dot": "../../etc/passwd",
        "4,000-char segment": "a" * 4000,
        "unicode": "%C3%BCn%C3%AFc%C3%B6d%C3%A9-%E2%9C%93",
        "invalid UTF-8": "%FF%FE",
        "control characters": "%0D%0Aset-cookie:x",
        "empty": "",
    }
    cases = []
    for name, oddity in oddities.items():
        if operation.parameters:
            for parameter in operation.parameters:
                target = operation.path(**{parameter: oddity})
                cases.append(Case(f"{parameter}={name}", _minimal_body(operation), target=target))
        else:
            cases.append(Case(f"path + {name}", _minimal_body(operation), target=operation.path() + "/" + oddity))
    return cases


def _minimal_body(operation: Operation) -> bytes:
    if operation.example is not None:
        return json.dumps(operation.example).encode()
    return b"{}" if operation.body_shape == "object" else b"[]" if operation.body_shape == "array" else b""


# ---- the checks -------------------------------------------------------------------------


def problems(reply: Reply, operation: Operation, case: Case) -> list[str]:
    """What is wrong with an answer to a hostile request (an empty list: nothing)."""
    found = []
    where = f"{operation} [{case.name}] -> {reply.status}"
    if reply.status >= 500 and not (reply.status == 503 and operation.documented_503):
        found.append(f"{where}: a server error: {reply.body[:300]!r}")
    if case.refused and not 400 <= reply.status < 500:
        found.append(f"{where}: accepted, should have been refused: {reply.body[:300]!r}")
    if case.status is not None and reply.status != case.status:
        found.append(f"{where}: expected {case.status}: {reply.body[:300]!r}")
    if 400 <= reply.status < 500:
        found.extend(f"{where}: {why}" for why in error_shape_problems(reply))
    return found


def error_shape_problems(reply: Reply) -> list[str]:
    if not reply.headers.get("content-type", "").startswith("application/json"):
        return [f"error without a JSON content type: {reply.headers.get('content-type')!r} {reply.body[:200]!r}"]
    try:
        body = reply.json()
    except ValueError:
        return [f"error body is not JSON: {reply.body[:200]!r}"]
    if not isinstance(body, dict) or set(body) != {"error", "message"}:
        return [f"error body is not {{error, message}}: {body!r}"[:300]]
    if body["error"] not in CLIENT_ERROR_CODES:
        return [f"unknown error code {body['error']!r}: {body['message']!r}"[:300]]
    if not isinstance(body["message"], str) or not body["message"]:
        return [f"error without a message: {body!r}"]
    return []


# ---- watching the roles -----------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in KiB."""
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            figures[name] = int(value.split()[0])
    return figures


class HealthWatch:
    """GET /healthz on every role every ~20 ms from a process of its own (the test's own
    threads, compressing bombs or writing bursts, must not hold up the measurement), each
    role on a kept-alive connection; the slowest answer per role is what it reports."""

    def __init__(self, ports: dict[str, int]):
        self.ports = ports
        self._stop = multiprocessing.Event()
        self._results, sender = multiprocessing.Pipe(duplex=False)
        self._process = multiprocessing.get_context("fork").Process(
            target=_watch_health, args=(ports, self._stop, sender), daemon=True
        )

    def start(self) -> "HealthWatch":
        self._process.start()
        return self

    def stop(self) -> dict[str, dict]:
        self._stop.set()
        if not self._results.poll(30):
            self._process.kill()
            raise AssertionError("the /healthz watcher did not report")
        results = self._results.recv()
        self._process.join(5)
        return results


def _watch_health(ports: dict[str, int], stop, sender) -> None:
    import http.client

    stats = {role: {"polls": 0, "failures": [], "max_ms": 0.0, "slow": [], "all_ms": []} for role in ports}
    began = time.monotonic()
    connections: dict[str, Any] = {}
    while not stop.is_set():
        for role, port in ports.items():
            connection = connections.get(role)
            if connection is None:
                connection = connections[role] = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            started = time.monotonic()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
                if response.getheader("connection", "").lower() == "close":
                    connection.close()
                    connections.pop(role)
            except OSError as error:  # includes http.client's exceptions
                ok = False
                connection.close()
                connections.pop(role, None)
                stats[role]["failures"].append(repr(error))
            elapsed_ms = (time.monotonic() - started) * 1000
            record = stats[role]
            record["polls"] += 1
            if ok:
                record["max_ms"] = max(record["max_ms"], elapsed_ms)
                record["all_ms"].append(elapsed_ms)
                if elapsed_ms > 50:
                    record["slow"].append((round(time.monotonic() - began, 1), round(elapsed_ms, 1)))
        time.sleep(0.02)
    sender.send(stats)
