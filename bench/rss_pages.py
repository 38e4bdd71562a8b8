#!/usr/bin/env python3
"""Where a role's idle RssFile comes from: which 64 KiB windows of its binary's code are
resident, and how much code it actually ran.

    python3 bench/rss_pages.py [--callgrind] BINARY [NAME=VALUE ...]

Starts BINARY as bench/run.py's idle-memory scenario does (HOST=127.0.0.1, a fresh
STATE_DIR, a free PORT; 20 × /healthz, 5 × /metrics, 1 s idle) and prints VmRSS, RssAnon,
RssFile, the threads by name, and the binary's resident pages by section (from
/proc/<pid>/pagemap: run as root). The kernel maps file pages in windows of 64 KiB around
each fault (fault-around), so RssFile follows the number of windows touched, not the bytes
of code run.

With --callgrind it starts BINARY a second time under `valgrind --tool=callgrind`, with the
same requests, and prints the functions it ran: how many, their total size, how many
64 KiB windows of .text they fall in, and the windows they would need packed together. The
gap between the last two is what a startup-first link order could save. Needs a release
binary with symbols (`make release` keeps them; the images strip them).
"""

import argparse
import collections
import http.client
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

WINDOW = 64 * 1024
PAGE = 4096


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, times: int) -> None:
    for _ in range(times):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path)
        connection.getresponse().read()
        connection.close()


def start(argv: list[str], extra_env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """Start as bench/run.py does and return once /healthz answers, requests made, 1 s idle."""
    state_dir = tempfile.mkdtemp(prefix="obs-rss-")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "HOST": "127.0.0.1", "STATE_DIR": state_dir, "PORT": str(port), **extra_env}
    process = subprocess.Popen(argv, env=env, cwd=state_dir, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            http_get(port, "/healthz", 1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{argv[-1]} did not become ready")
            time.sleep(0.005)
    http_get(port, "/healthz", 20)
    http_get(port, "/metrics", 5)
    time.sleep(1.0)
    return process, port


def sections(binary: str) -> list[tuple[int, int, str]]:
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True,
                         check=True).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)",
                         line)
        if match and int(match.group(2), 16):
            found.append((int(match.group(2), 16), int(match.group(4), 16), match.group(1)))
    return sorted(found)


def load_segments(binary: str) -> list[tuple[int, int, int]]:
    """(file offset, virtual address, file size) of each LOAD segment."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                         check=True).stdout
    return [(int(f[1], 16), int(f[2], 16), int(f[4], 16))
            for f in (line.split() for line in out.splitlines()) if f and f[0] == "LOAD"]


def resident(pid: int, binary: str) -> list[int]:
    """Virtual addresses (as linked) of the binary's resident pages."""
    real = os.path.realpath(binary)
    segments = load_segments(binary)
    addresses = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or fields[5] != real:
                continue
            low, high = (int(x, 16) for x in fields[0].split("-"))
            offset = int(fields[2], 16)
            pages = (high - low) // PAGE
            pagemap.seek(low // PAGE * 8)
            entries = pagemap.read(pages * 8)
            for i in range(pages):
                if struct.unpack_from("<Q", entries, i * 8)[0] >> 63:
                    file_offset = offset + i * PAGE
                    for seg_offset, vaddr, size in segments:
                        if seg_offset <= file_offset < seg_offset + size:
                            addresses.append(vaddr + file_offset - seg_offset)
    return addresses


def report_resident(binary: str, env: dict[str, str]) -> None:
    process, _ = start([binary], env)
    try:
        with open(f"/proc/{process.pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status)
        threads = collections.Counter(
            open(f"/proc/{process.pid}/task/{task}/comm").read().strip()
            for task in os.listdir(f"/proc/{process.pid}/task"))
        pages = resident(process.pid, binary)
    finally:
        process.terminate()
        process.wait(30)
    print(" ".join(f"{key} {fields[key].strip()}" for key in
                   ("VmRSS", "RssAnon", "RssFile", "Threads")))
    print("threads:", ", ".join(f"{name} ×{n}" for name, n in threads.most_common()))
    table = sections(binary)
    by_section = collections.Counter()
    text_windows = set()
    for address in pages:
        name = next((n for a, size, n in table if a <= address < a + size), "?")
        by_section[name] += PAGE // 1024
        if name == ".text":
            text_windows.add(address // WINDOW)
    print("resident KiB by section:", ", ".join(f"{n} {k}" for n, k in by_section.most_common()))
    print(f".text windows resident: {len(text_windows)} ({len(text_windows) * 64} KiB)")


def functions_run(binary: str, env: dict[str, str]) -> set[str]:
    """Demangled names of the functions callgrind saw run."""
    out_file = tempfile.mktemp(prefix="obs-rss-callgrind-")
    process, _ = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                        binary], env)
    process.terminate()
    process.wait(120)
    try:
        annotated = subprocess.run(["callgrind_annotate", "--threshold=100", out_file],
                                   capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(out_file)
    names = set()
    for line in annotated.splitlines():
        match = re.match(r"\s*[\d,]+\s+\([^)]*\)\s+\S*?:(?!:)(.*?)( \[.*\])?$", line)
        if match:
            names.add(re.sub(r"'\d+$", "", match.group(1).strip()))
    return names


def report_run(binary: str, env: dict[str, str]) -> None:
    names = functions_run(binary, env)
    symbols = collections.defaultdict(list)
    out = subprocess.run(["nm", "-C", "-S", binary], capture_output=True, text=True,
                         check=True).stdout
    for line in out.splitlines():
        fields = line.split(" ", 3)
        if len(fields) == 4 and fields[2] in ("t", "T") and fields[0] and fields[1]:
            symbols[fields[3]].append((int(fields[0], 16), int(fields[1], 16)))
    ranges = sorted({r for name in names for r in symbols.get(name, ())})
    size = sum(length for _, length in ranges)
    windows = {w for start_, length in ranges
               for w in range(start_ // WINDOW, (start_ + max(length, 1) - 1) // WINDOW + 1)}
    print(f"functions run: {len(names)} names, {len(ranges)} symbols, {size // 1024} KiB of code")
    print(f".text windows they fall in: {len(windows)} ({len(windows) * 64} KiB); "
          f"packed together: {-(-size // WINDOW)} ({-(-size // WINDOW) * 64} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", action="store_true",
                        help="also list the code run, under valgrind")
    parser.add_argument("binary")
    parser.add_argument("env", nargs="*", help="NAME=VALUE for the role's environment")
    args = parser.parse_args()
    env = dict(item.split("=", 1) for item in args.env)
    report_resident(args.binary, env)
    if args.callgrind:
        report_run(args.binary, env)


if __name__ == "__main__":
    sys.exit(main())
