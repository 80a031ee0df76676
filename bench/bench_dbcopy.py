"""Moving up and backing up at size: a bulk demo (`flask demo seed --scale pct1`: 12,000 residents)
on SQLite, copied into a new PostgreSQL database with `flask db copy`, then `db backup` and
`db restore` on both. Each command runs as an operator runs it (its own process, its ledger check
included) and prints rows, seconds and the command's peak memory; asserts nothing.

Usage: `.venv/bin/python bench/bench_dbcopy.py [--scale pct1|test|county]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import BIN, PG_ADMIN, ROOT, app_env, migrate, pg_available


def flask(url: str, *args: str) -> tuple[float, int, str]:
    """Run `flask ARGS` on `url`: seconds, peak RSS in MB (time -v), last line of its output."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=app_env(url),
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"flask {' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    peak = int(done.stderr.strip().splitlines()[-1]) // 1024
    return seconds, peak, done.stdout.strip().splitlines()[-1]


def pg_database(name: str) -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="pct1")
    scale = parser.parse_args().scale
    if not pg_available() or not shutil.which("/usr/bin/time"):
        sys.exit("needs PostgreSQL at 127.0.0.1 and /usr/bin/time (apt-get install time)")
    tmp = Path(tempfile.mkdtemp(prefix="mcbench-copy-"))
    names = [f"moralcredit_bench_copy_{os.getpid()}", f"moralcredit_bench_restore_{os.getpid()}"]
    try:
        source = f"sqlite:///{tmp}/source.db"
        migrate(source)
        seconds, _, _ = flask(source, "demo", "seed", "--scale", scale)
        print(f"seeded the {scale} demo on SQLite in {seconds:.0f} s; {(tmp / 'source.db').stat().st_size >> 20} MB")

        target = pg_database(names[0])
        seconds, peak, last = flask(source, "db", "copy", "--to", target)
        rows = int(
            subprocess.run(
                [
                    str(BIN / "python"),
                    "-c",
                    "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                    "print(sum(c.execute(f'SELECT count(*) FROM \"{t}\"').fetchone()[0] for (t,) in "
                    "c.execute(\"SELECT name FROM sqlite_master WHERE type='table'\")))",
                    str(tmp / "source.db"),
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        print(
            f"db copy SQLite → PostgreSQL: {rows} rows in {seconds:.1f} s ({rows / seconds:.0f} rows/s, "
            f"ledger check included), peak {peak} MB; {last}"
        )

        for kind, url, file in (("SQLite", source, tmp / "b.db"), ("PostgreSQL", target, tmp / "b.dump")):
            seconds, peak, _ = flask(url, "db", "backup", str(file))
            print(f"db backup {kind}: {file.stat().st_size >> 10} kB in {seconds:.1f} s, peak {peak} MB")
        seconds, peak, last = flask(f"sqlite:///{tmp}/restored.db", "db", "restore", str(tmp / "b.db"))
        print(f"db restore SQLite into a new file: {seconds:.1f} s (ledger check included), peak {peak} MB; {last}")
        seconds, peak, last = flask(pg_database(names[1]), "db", "restore", str(tmp / "b.dump"))
        print(f"db restore PostgreSQL into a new database: {seconds:.1f} s, peak {peak} MB; {last}")
        seconds, peak, last = flask(target, "db", "restore", "--force", str(tmp / "b.dump"))
        print(f"db restore --force over the full PostgreSQL database: {seconds:.1f} s, peak {peak} MB; {last}")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (the machine is shared)")
    finally:
        for name in names:
            drop(name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
