"""Shared benchmark plumbing: a fresh database, gunicorn serving the app, and a closed-loop load.

Benchmarks print figures; they assert nothing and never run inside the test suite. Load goes only
to 127.0.0.1, bounded in requests and time.
"""

from __future__ import annotations

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
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_available() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@contextmanager
def database(kind: str) -> Iterator[str]:
    """A new, migrated database of `kind` ('sqlite' or 'postgresql'); dropped afterwards."""
    if kind == "sqlite":
        tmp = tempfile.mkdtemp(prefix="mcbench-")
        url = f"sqlite:///{tmp}/bench.db"
        try:
            migrate(url)
            yield url
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    import psycopg

    name = f"moralcredit_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "MORALCREDIT_ENV": "production",
        "SECRET_KEY": "bench-only-secret",
        "DATABASE_URL": url,
        "MORALCREDIT_SCHEDULER": "off",
        "MORALCREDIT_SECURE_COOKIES": "0",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def migrate(url: str) -> None:
    subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=app_env(url),
        check=True,
        capture_output=True,
    )


def run_in_app(url: str, code: str) -> str:
    """Run Python `code` inside an app context on `url` (seeding); returns its stdout."""
    script = "from wsgi import app\nwith app.app_context():\n" + "\n".join("    " + line for line in code.splitlines())
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=app_env(url), check=True, capture_output=True, text=True
    )
    return done.stdout


@dataclass
class Server:
    address: str  # host:port
    pid: int  # gunicorn's master
    log: str  # its stderr (tracebacks of failed requests)

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each worker (children of the master), in MB, from /proc."""
        sizes = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) != self.pid:
                    continue
                for line in (stat.parent / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) / 1024)
            except (OSError, IndexError, ValueError):
                continue  # a process that ended meanwhile
        return sorted(sizes)


@contextmanager
def serve(url: str, app: str = "wsgi:app", workers: int = 4, threads: int = 1, **env: str) -> Iterator[Server]:
    """gunicorn serving `app` (a module:variable or module:factory()) on a free local port."""
    port = free_port()
    # A file, not a pipe: a full pipe would stall the workers mid-run when they log much.
    log = tempfile.NamedTemporaryFile("w+", prefix="mcbench-gunicorn-", suffix=".log")  # noqa: SIM115
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env=app_env(url, **env),
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError("gunicorn did not start: " + Path(log.name).read_text()[-3000:])
        yield Server(f"127.0.0.1:{port}", process.pid, log.name)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@contextmanager
def gunicorn(url: str, workers: int = 4, threads: int = 1, **env: str) -> Iterator[str]:
    with serve(url, "wsgi:app", workers, threads, **env) as server:
        yield server.address


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def line(self, label: str) -> str:
        return (
            f"{label:44} {self.rate:8.1f} req/s   p50 {self.percentile(50):7.1f} ms   "
            f"p99 {self.percentile(99):7.1f} ms   n={self.requests} errors={self.errors}"
        )


Request = tuple[str, str, dict | None, dict[str, str]]


def load(
    address: str,
    make_request: Callable[[int, int], Request],
    *,
    clients: int,
    seconds: float = 5.0,
    max_requests: int = 200_000,
    ok: tuple[int, ...] = (200, 201),
) -> Result:
    """Closed loop: `clients` threads each send a request, wait for the answer, and send the next."""
    host, port = address.split(":")
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    sent = [0]

    def worker(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        i = 0
        while time.monotonic() < stop_at:
            with lock:
                if sent[0] >= max_requests:
                    return
                sent[0] += 1
            method, path, body, headers = make_request(n, i)
            i += 1
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json", **headers} if data else headers
            started = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=hdrs)
                response = conn.getresponse()
                response.read()
                good = response.status in ok
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                good = False
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if not good:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(len(latencies), errors[0], time.monotonic() - began, latencies)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")
