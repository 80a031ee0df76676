"""Crash safety, the long run (issue 13): many SIGKILLs of gunicorn under mixed load from 2 client
processes × 8 threads, each followed by a restart and a replay of every unanswered request with its
Idempotency-Key; then `flask ledger check` and the exactly-once audit (tests/crash_load.py).

    .venv/bin/python -m bench.bench_crash [--db sqlite|postgresql|both] [--kills 20] [--seed N]

Prints operations, acknowledged, replayed, kills and the result per database; exit status 1 if any
database ends with a break. The bounded run is tests/test_crash_safety.py.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from bench.harness import database, pg_available
from tests import crash_load

SECRET = "bench-crash-secret"


def one(kind: str, kills: int, seed: int, kill_after: tuple[float, float]) -> bool:
    with database(kind) as url:
        started = time.monotonic()
        with crash_load.app_on(url, SECRET):
            world = crash_load.seed(kills, secret=SECRET)
        seeded = time.monotonic()
        print(f"[{kind}] seeded in {seeded - started:.1f} s; {kills} rounds, seed {seed}", flush=True)
        run = crash_load.run(
            url, world, kills, seed=seed, kill_after=kill_after, log=lambda line: print(f"[{kind}] {line}", flush=True)
        )
        ran = time.monotonic()
        checked = crash_load.ledger_check(url, SECRET)
        with crash_load.app_on(url, SECRET):
            problems = crash_load.audit(run.ops, world)
        print(f"[{kind}] load, kills and replays {ran - seeded:.1f} s, check and audit {time.monotonic() - ran:.1f} s")
        print(f"[{kind}] {crash_load.summary(run, problems, checked)}")
        for line in (checked.stdout + checked.stderr).strip().splitlines()[:20]:
            print(f"[{kind}]   ledger check: {line}")
        for problem in (problems + run.mismatches)[:20]:
            print(f"[{kind}]   audit: {problem}")
        if run.figures["server_errors"]:
            print(f"[{kind}]   server log tail:\n{run.server_log}")
        return checked.returncode == 0 and not problems and not run.mismatches and not run.figures["server_errors"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--kill-after", type=float, nargs=2, default=(1.0, 6.0), metavar=("MIN", "MAX"))
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    kinds = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    ok = True
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("[postgresql] not reachable: skipped")
            continue
        ok = one(kind, args.kills, seed, tuple(args.kill_after)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
