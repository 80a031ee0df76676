"""The hot paths against their limit: check-in, check-out and redemption through the real app and
through a bare Flask + SQLAlchemy app doing only the minimal work (bench/bare_app.py), with the
same gunicorn command (4 sync workers), the same database and the same load client (wrk, a
compiled client that shares no interpreter with the server), at 8 and 32 connections, on SQLite
and PostgreSQL. Prints one table per database, then each project worker's RSS and the invariant
checks. Targets are printed, not asserted (issue 10): at 8 connections check-in and redemption
≥ 0.6 × bare, check-out ≥ 0.4 × bare; p99 ≤ 50 ms at 8 connections and ≤ 150 ms at 32; no error
and no non-2xx answer; a worker under 120 MB.

Every request does real work: each check-in is a different volunteer's first scan of the venue's
poster code, each check-out a different volunteer's scan 90 minutes after checking in (the
attendance closes and points move through the ledger), each redemption a new basket with its own
Idempotency-Key for one of 200 funded residents. The requests are written to a file beforehand;
bench/wrk/requests.lua gives each wrk thread its own slice, so none is sent twice (a figure that
ran past its pool is flagged). One crowded venue: all scans of the activity queue on its row.
Project and bare figures alternate so that other load on the machine falls on both alike; the
1-minute load average at the start of each figure is printed beside it.

Usage: `.venv/bin/python bench/bench_hotpaths.py [sqlite] [postgresql] [--seconds N]`.
Needs wrk (`apt-get install wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import bare_app
from bench.harness import ROOT, Server, app_env, database, pg_available, run_in_app, serve

WORKERS = 4  # gunicorn sync workers, for the project and the bare app alike
WRK_THREADS = 2  # the machine's cores
CONNECTIONS = (8, 32)
PATHS = ("check-in", "check-out", "redemption")
RATIO_TARGET = {"check-in": 0.6, "check-out": 0.4, "redemption": 0.6}  # at 8 connections
P99_TARGET_MS = {8: 50.0, 32: 150.0}
RSS_TARGET_MB = 120.0
WARM_SECONDS = 1  # per path, to warm each worker before the figures
RESIDENTS = 200
SECRET = app_env("")["SECRET_KEY"]
LUA = ROOT / "bench" / "wrk" / "requests.lua"


@dataclass
class Figure:
    requests: int
    seconds: float
    p50: float  # ms
    p99: float
    ok: int
    non2xx: int
    socket_errors: int
    reused: int
    first_bad: str
    load: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def wrk(address: str, requests: Path, connections: int, seconds: float) -> Figure:
    load = os.getloadavg()[0]
    threads = min(WRK_THREADS, connections)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://{address}",
        "--",
        str(requests),
        str(threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk said nothing usable:\n{done.stdout}\n{done.stderr}")
    values = dict(part.split("=", 1) for part in line.split()[1:])
    number = {k: int(float(v)) for k, v in values.items() if k != "first_bad"}
    return Figure(
        requests=number["requests"],
        seconds=number["duration_us"] / 1e6,
        p50=number["p50_us"] / 1000,
        p99=number["p99_us"] / 1000,
        ok=number["ok"],
        non2xx=number["non2xx"],
        socket_errors=number["connect"] + number["read"] + number["write"] + number["timeout"],
        reused=number["reused"],
        first_bad=values.get("first_bad", ""),
        load=load,
    )


def write(path: Path, lines: list[tuple[str, str, str, str, dict]]) -> Path:
    with path.open("w") as out:
        for method, target, bearer, key, body in lines:
            out.write(f"{method}\t{target}\t{'Bearer ' + bearer if bearer else ''}\t{key}\t{json.dumps(body)}\n")
    return path


def pool_sizes(seconds: float, rate: int) -> dict[str, int]:
    """Requests each pool needs at up to `rate` req/s, so that no figure runs out."""
    return {"warm": int(rate * WARM_SECONDS) + 300, **{str(c): int(rate * seconds) + 500 for c in CONNECTIONS}}


SEED = """
import json
from bench.seed import seed
world = seed(checkin=CHECKIN, checkout=CHECKOUT, residents=RESIDENTS)
print(json.dumps(world.as_dict()))
"""

CHECK = """
import json
import sqlalchemy as sa
from core.db import db
from exchange import inventory
from exchange.models import Redemption
from points import ledger
from volunteer.models import Attendance
rows = db.session.execute(sa.select(Attendance.status, sa.func.count()).group_by(Attendance.status)).all()
print(json.dumps({
    "ledger": ledger.invariant_problems(db.session),
    "stock": inventory.invariant_problems(db.session),
    "attendances": {status: n for status, n in rows},
    "redemptions": db.session.scalar(sa.select(sa.func.count()).select_from(Redemption)),
}, ensure_ascii=False))
"""


def project_requests(url: str, folder: Path, seconds: float, rate: int) -> dict[tuple[str, str], Path]:
    sizes = pool_sizes(seconds, rate)
    code = SEED.replace("CHECKIN", repr(sizes)).replace("CHECKOUT", repr(sizes))
    world = json.loads(run_in_app(url, code.replace("RESIDENTS", str(RESIDENTS))).splitlines()[-1])
    rng = random.Random(1)
    scan = {"token": world["venue_token"]}
    files = {}
    for pool in sizes:
        files["check-in", pool] = write(
            folder / f"project-checkin-{pool}",
            [("POST", "/api/v1/checkins", b, "", scan) for b in world["checkin"][pool]],
        )
        files["check-out", pool] = write(
            folder / f"project-checkout-{pool}",
            [("POST", "/api/v1/checkins", b, "", scan) for b in world["checkout"][pool]],
        )
        files["redemption", pool] = write(
            folder / f"project-redemption-{pool}",
            [
                (
                    "POST",
                    f"/api/v1/stores/{world['store_id']}/redemptions",
                    world["clerk_bearer"],
                    uuid.uuid4().hex,
                    {"resident_id": rng.choice(world["residents"]), "lines": [{"item_id": world["item_id"], "qty": 1}]},
                )
                for _ in range(sizes[pool])
            ],
        )
    return files


def bare_requests(url: str, folder: Path, seconds: float, rate: int) -> dict[tuple[str, str], Path]:
    sizes = pool_sizes(seconds, rate)
    # Bare user ids: check-in volunteers from 1, those inside from 10⁶, residents from 2·10⁶.
    checkin, inside, start = {}, {}, 0
    for pool, size in sizes.items():
        checkin[pool] = range(1 + start, 1 + start + size)
        inside[pool] = range(1_000_000 + start, 1_000_000 + start + size)
        start += size
    residents = list(range(2_000_000, 2_000_000 + RESIDENTS))
    inside_ids = [u for r in inside.values() for u in r]
    bare_app.prepare(url, inside=inside_ids, accounts=[*residents, *inside_ids])
    rng = random.Random(1)
    scan = {"token": bare_app.venue_token(SECRET)}
    files = {}
    clerk = bare_app.bearer(SECRET, 3_000_000)
    for pool in sizes:
        files["check-in", pool] = write(
            folder / f"bare-checkin-{pool}",
            [("POST", "/api/v1/checkins", bare_app.bearer(SECRET, u), "", scan) for u in checkin[pool]],
        )
        files["check-out", pool] = write(
            folder / f"bare-checkout-{pool}",
            [("POST", "/api/v1/checkouts", bare_app.bearer(SECRET, u), "", scan) for u in inside[pool]],
        )
        files["redemption", pool] = write(
            folder / f"bare-redemption-{pool}",
            [
                (
                    "POST",
                    "/api/v1/stores/1/redemptions",
                    clerk,
                    uuid.uuid4().hex,
                    {"resident_id": rng.choice(residents), "lines": [{"item_id": 1, "qty": 1}]},
                )
                for _ in range(sizes[pool])
            ],
        )
    return files


def warm(server: Server, files: dict[tuple[str, str], Path]) -> None:
    for path in PATHS:
        figure = wrk(server.address, files[path, "warm"], WORKERS, WARM_SECONDS)
        if figure.errors:
            log = Path(server.log).read_text()[-3000:]
            raise RuntimeError(f"warm-up of {path} failed: {figure.first_bad}\nserver log:\n{log}")


def verdict(path: str, connections: int, project: Figure, ratio: float) -> str:
    missed = []
    if connections == 8 and ratio < RATIO_TARGET[path]:
        missed.append(f"ratio<{RATIO_TARGET[path]}")
    if project.p99 > P99_TARGET_MS[connections]:
        missed.append(f"p99>{P99_TARGET_MS[connections]:.0f}")
    if project.errors:
        missed.append("errors")
    if project.reused:
        missed.append("pool ran out")
    return "yes" if not missed else "NO: " + ", ".join(missed)


def run(kind: str, seconds: float, project_rate: int, bare_rate: int) -> None:
    started = time.monotonic()
    with database(kind) as url, tempfile.TemporaryDirectory(prefix="mcbench-wrk-") as tmp:
        folder = Path(tmp)
        project_files = project_requests(url, folder, seconds, project_rate)
        bare_files = bare_requests(url, folder, seconds, bare_rate)
        print(f"{kind}: seeded in {time.monotonic() - started:.0f} s")
        results: dict[tuple[str, int], tuple[Figure, Figure]] = {}
        with (
            serve(url, "wsgi:app", workers=WORKERS) as project,
            serve(url, "bench.bare_app:create_app()", workers=WORKERS) as bare,
        ):
            warm(project, project_files)
            warm(bare, bare_files)
            for path in PATHS:
                for connections in CONNECTIONS:
                    mine = wrk(project.address, project_files[path, str(connections)], connections, seconds)
                    floor = wrk(bare.address, bare_files[path, str(connections)], connections, seconds)
                    results[path, connections] = (mine, floor)
            rss = project.worker_rss_mb()
            bare_rss = bare.worker_rss_mb()
            failures = [
                f"  {path} ×{c}: {'project' if side is mine else 'bare'} first non-2xx {side.first_bad}"
                for (path, c), (mine, floor) in results.items()
                for side in (mine, floor)
                if side.first_bad
            ]
            log_tail = Path(project.log).read_text()[-1500:] if failures else ""
        checked = json.loads(run_in_app(url, CHECK).splitlines()[-1])
        bare_problems = bare_app.problems(url)

    print(
        f"\n{kind}: gunicorn -w {WORKERS} (sync), wrk -t{WRK_THREADS}, {seconds:g} s per figure, "
        f"{os.cpu_count()} cores; load = 1-min load average at the figure's start"
    )
    header = (
        f"{'path':<11}{'conns':>5}{'load':>6} | {'project req/s':>13}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7} | "
        f"{'bare req/s':>10}{'p50':>7}{'p99':>7} | {'ratio':>5}  target met?"
    )
    print(header)
    print("-" * len(header))
    for (path, connections), (mine, floor) in results.items():
        ratio = mine.rate / floor.rate if floor.rate else float("nan")
        errors = f"{mine.errors}" + (f"+{mine.reused}r" if mine.reused else "")
        print(
            f"{path:<11}{connections:>5}{mine.load:>6.2f} | {mine.rate:>13.1f}{mine.p50:>8.1f}{mine.p99:>8.1f}"
            f"{errors:>7} | {floor.rate:>10.1f}{floor.p50:>7.1f}{floor.p99:>7.1f} | {ratio:>5.2f}  "
            f"{verdict(path, connections, mine, ratio)}"
            + (f"  (bare errors {floor.errors}, reused {floor.reused})" if floor.errors or floor.reused else "")
        )
    print("\n".join(failures))
    if log_tail:
        print(f"  project log tail:\n{log_tail}")
    worst = max(rss, default=float("nan"))
    print(
        f"{kind}: RSS per project worker after the run: {', '.join(f'{r:.0f}' for r in rss)} MB "
        f"(target < {RSS_TARGET_MB:.0f}: {'met' if worst < RSS_TARGET_MB else 'NOT met'}); "
        f"bare workers: {', '.join(f'{r:.0f}' for r in bare_rss)} MB"
    )
    print(
        f"{kind}: ledger check: {len(checked['ledger'])} ledger problems, {len(checked['stock'])} stock problems "
        f"({'clean' if not checked['ledger'] and not checked['stock'] else 'UNSOUND'}); "
        f"attendances {checked['attendances']}, redemptions {checked['redemptions']}; "
        f"bare tables: {bare_problems or 'clean'}"
    )
    for problem in [*checked["ledger"], *checked["stock"]][:10]:
        print(f"  - {problem}")
    print(f"{kind}: {time.monotonic() - started:.0f} s in all")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kinds", nargs="*", metavar="sqlite|postgresql", help="databases (default both)")
    parser.add_argument("--seconds", type=int, default=6, help="length of each figure (default 6)")
    parser.add_argument(
        "--project-rate", type=int, default=1000, help="req/s the project's pools are sized for (default 1000)"
    )
    parser.add_argument("--bare-rate", type=int, default=2500, help="req/s the bare pools are sized for (default 2500)")
    args = parser.parse_args()
    if unknown := set(args.kinds) - {"sqlite", "postgresql"}:
        parser.error(f"unknown database {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None:
        sys.exit("bench_hotpaths needs wrk: apt-get install wrk")
    for kind in args.kinds or ["sqlite", "postgresql"]:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        run(kind, args.seconds, args.project_rate, args.bare_rate)


if __name__ == "__main__":
    main()
