"""The long schemathesis run: every operation of `/api/openapi.json`, valid and invalid requests,
with a bearer token of each role, in process through WSGI, on a fresh migrated database.

Prints the case count, the statuses seen, the requests per operation and every failure (a 5xx, an
undocumented status or content type, a body that breaks its schema); exits 1 when there is one.
The suite runs the same thing briefly (tests/test_api_fuzz.py).

Usage: `.venv/bin/python bench/fuzz_api.py [--examples N] [--seed S] [--backend sqlite|postgresql|both]`
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import database, pg_available
from core.db import db
from moralcredit import create_app
from tests.fuzz import fuzz_world, run


def fuzz(backend: str, examples: int, seed: int) -> int:
    with database(backend) as url:
        app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            tokens, known = fuzz_world()
            db.session.remove()
        started = time.perf_counter()
        report = run(app, tokens, known, examples=examples, seed=seed)
        seconds = time.perf_counter() - started
        with app.app_context():
            db.engine.dispose()
    print(f"\n== {backend}: {report.cases} cases over {len(report.by_operation)} operations in {seconds:.0f} s")
    print("statuses: " + ", ".join(f"{status}×{n}" for status, n in sorted(report.statuses.items())))
    for label, n in sorted(report.by_operation.items()):
        print(f"  {n:6d}  {label}")
    print(f"failures: {len(report.failures)}")
    for line in report.lines():
        print("  " + line[:2000])
    return len(report.failures)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="per operation and generation mode")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not pg_available():
        print("PostgreSQL is not reachable: fuzzing SQLite only")
        backends.remove("postgresql")
    print(f"seed {args.seed}, {args.examples} examples per operation and mode")
    failures = sum(fuzz(backend, args.examples, args.seed) for backend in backends)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
