"""Bulk import speed and memory: 100,000 residents from a GBK .csv and from an .xlsx, on SQLite and
PostgreSQL, through `community.imports.run` as `flask import` runs it. Prints rows/s and the peak
resident memory of the importing process; asserts nothing.

Each database gets a county of 1,000 grids (imported as regions) and 30,000 households; then each
file is imported in a process of its own (so its peak memory is its own): 20,000 residents and
100,000 residents from .csv (the same peak for both means memory stays flat with the file's
length), the 100,000 again (nothing changes: every row skipped), and 100,000 others from .xlsx.
Half the residents carry an ID number, six in ten a household number.

Each line also gives the CPU time the import cost: the importing process's (on SQLite the
database works inside it) plus, on PostgreSQL, its server backend's (read from /proc), and the rate
per CPU-second, which is what one idle core would do; and the load average, since on a shared
machine the wall-clock rate says as much about the neighbours as about the import. Counts:
+created ~updated =skipped !errors.

Usage: `.venv/bin/python bench/bench_import.py [sqlite] [postgresql] [--residents N]`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import ROOT, app_env, database, pg_available

COUNTY = "430922"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国文辉力玉梅红春林云飞海燕"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)

CHILD = """
import json, resource, sys, time
from wsgi import app
from community import imports
from core.db import utcnow
kind, path, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "dry"

def server_ticks(pid):
    # The PostgreSQL backend's CPU time (utime + stime, in clock ticks) from /proc: same machine.
    if pid is None:
        return 0
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])

with app.app_context(), open(path, "rb") as stream:
    from core.db import db, is_postgresql
    import sqlalchemy as sa, os
    pid = db.session.scalar(sa.text("SELECT pg_backend_pid()")) if is_postgresql() else None
    db.session.commit()  # the import's unit of work takes the same pooled connection
    ticks = server_ticks(pid)
    start, cpu_start = time.perf_counter(), time.process_time()
    report = imports.run(kind, stream, actor=None, dry_run=dry, now=utcnow(), filename=path)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    server = (server_ticks(pid) - ticks) / os.sysconf("SC_CLK_TCK")
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": report.rows, "created": report.created, "updated": report.updated,
                  "skipped": report.skipped, "errors": report.error_count, "seconds": seconds, "cpu": cpu,
                  "server": server, "rss_mb": usage.ru_maxrss / 1024}))
"""


def id_number(serial: int) -> str:
    """A valid, distinct ID number for each serial (a birth date and a sequence number from it)."""
    born = date(1940, 1, 1) + timedelta(days=serial % 24_000)
    body = f"{COUNTY}{born:%Y%m%d}{serial // 24_000 % 1000:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def make_files(folder: Path, sizes: dict[str, int]) -> dict[str, Path]:
    rng = random.Random(2026)
    grids: list[str] = []
    regions = [("编码", "名称", "层级", "上级编码")]
    for t in range(1, 11):
        township = f"{COUNTY}{100 + t:03d}"
        regions.append((township, f"第{t}镇", "乡镇", COUNTY))
        for v in range(1, 21):
            village = f"{township}{v:03d}"
            regions.append((village, f"第{t}镇第{v}村", "村", township))
            for g in range(1, 6):
                grids.append(f"{village}{g:02d}")
                regions.append((grids[-1], f"第{t}镇第{v}村第{g}网格", "网格", village))
    households = [("户号", "网格编码", "户主姓名")]
    homes: list[tuple[str, str]] = []
    for h in range(30_000):
        grid = grids[h % len(grids)]
        homes.append((f"H{h:07d}", grid))
        households.append((homes[-1][0], grid, rng.choice(SURNAMES) + rng.choice(GIVEN)))
    files = {"regions": _csv(folder / "regions.csv", regions)}
    files["households"] = _csv(folder / "households.csv", households)
    for label, (count, first_phone) in sizes.items():
        rows = [("姓名", "手机号", "网格编码", "身份证号", "户号")]
        for i in range(count):
            home, grid = rng.choice(homes) if rng.random() < 0.6 else ("", rng.choice(grids))
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.6 else "")
            serial = first_phone - 13_000_000_000 + i
            rows.append((name, str(first_phone + i), grid, id_number(serial) if rng.random() < 0.5 else "", home))
        path = folder / f"{label}"
        files[label] = _xlsx(path, rows) if label.endswith(".xlsx") else _csv(path, rows)
    return files


def _csv(path: Path, rows: list[tuple]) -> Path:
    # As Excel in China saves "CSV": GBK.
    with open(path, "w", encoding="gbk", newline="") as out:
        csv.writer(out).writerows(rows)
    return path


def _xlsx(path: Path, rows: list[tuple]) -> Path:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def import_file(url: str, kind: str, path: Path, dry: bool = False) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path), "dry" if dry else "real"],
        cwd=ROOT,
        env=app_env(url),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    """The machine's 1-minute load average: wall-clock rates mean little on a busy machine."""
    return f"{os.getloadavg()[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kinds", nargs="*", metavar="sqlite|postgresql", help="databases (default both)")
    parser.add_argument("--residents", type=int, default=100_000)
    args = parser.parse_args()
    n = args.residents
    sizes = {"residents-20k.csv": (n // 5, 13_000_000_000), "residents.csv": (n, 13_001_000_000),
             "residents.xlsx": (n, 13_002_000_000)}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mcbench-import-") as tmp:
        files = make_files(Path(tmp), sizes)
        for kind in args.kinds or ["sqlite", "postgresql"]:
            if kind == "postgresql" and not pg_available():
                print("postgresql: not reachable, skipped")
                continue
            with database(kind) as url:
                admin = ["--phone", "13600000000", "--password", "Bench2026x", "--name", "管理员"]
                root = ["--region-code", COUNTY, "--region-name", "桃江县"]
                command = [sys.executable, "-m", "flask", "--app", "wsgi", "admin", "create", *admin, *root]
                subprocess.run(command, cwd=ROOT, env=app_env(url), check=True, capture_output=True)
                runs = [
                    ("regions", "regions", False),
                    ("households", "households", False),
                    ("residents", "residents-20k.csv", False),
                    ("residents", "residents.csv", True),
                    ("residents", "residents.csv", False),
                    ("residents", "residents.csv", False),
                    ("residents", "residents.xlsx", False),
                ]
                for what, label, dry in runs:
                    r = import_file(url, what, files[label], dry)
                    rate = r["rows"] / r["seconds"] if r["seconds"] else 0
                    cpu = r["cpu"] + r["server"]
                    mode = "dry run" if dry else "real run"
                    print(
                        f"{kind:10} {label:17} {mode:8} {r['rows']:6} rows {r['seconds']:5.1f} s {rate:6.0f} rows/s "
                        f"| CPU {r['cpu']:4.1f} s + server {r['server']:4.1f} s = {r['rows'] / cpu:6.0f} rows/CPU-s "
                        f"| peak RSS {r['rss_mb']:4.0f} MB | +{r['created']} ~{r['updated']} ={r['skipped']} "
                        f"!{r['errors']} | load {load()}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
