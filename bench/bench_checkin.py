"""Check-ins per second and p50/p99 through gunicorn, on SQLite and PostgreSQL, at 8 and 32
concurrent clients; then check-outs (which settle points through the ledger) the same way, and the
invariant check. Prints figures.

One activity running now at one venue, with thousands of confirmed volunteers. Each request is a
different volunteer's first scan of the venue's poster code (`POST /api/v1/checkins`), so every
request does real work: no debounced repeats. For the check-out figures, volunteers checked in 90
minutes earlier scan again: the attendance closes and 1.5 hours are turned into points.
All scans of one activity serialize on its row lock (by design: it orders first scans); this is the
busiest case, one crowded venue. 4 gunicorn workers, 2 threads each.
Usage: `.venv/bin/python bench/bench_checkin.py [sqlite] [postgresql]`.
"""

from __future__ import annotations

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import database, gunicorn, load, pg_available, run_in_app

PER_FIGURE = 1500  # volunteers available to each figure: more than a figure's 6 s can use here

SEED = f"""
from datetime import timedelta
import sqlalchemy as sa
from community import services, accounts
from community.models import User
from core.db import db, unit_of_work, utcnow
from core.security import hash_password
from volunteer import activities, tokens
from volunteer.models import Attendance, Signup
now = utcnow().replace(microsecond=0)
services.create_region(actor=None, code="4301", name="桃江县", level="county", parent_code=None, now=now)
dept = services.create_department(actor=None, name="城关派出所", region_code="4301", now=now)
h = hash_password("Bench2026x")
organizer = accounts.register(phone="13800009998", name="组织者", password="", password_hash=h, region_code="4301",
                              now=now)
services.grant_role(actor=None, user_id=organizer.id, role="organizer", scope_type="department", scope_id=dept.id,
                    now=now)
organizer = db.session.get(User, organizer.id)
activity = activities.create(actor=organizer, department_id=dept.id, region_code="4301", now=now, title="压测巡逻",
                             description="", category="平安巡逻", address="县城广场",
                             starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=3))
activities.publish(actor=organizer, activity_id=activity.id, now=now)
total = {4 * PER_FIGURE}
with unit_of_work() as session:
    session.execute(sa.insert(User), [
        dict(phone=f"139{{i:08d}}", name="志愿者", password_hash=h, region_id=organizer.region_id,
             volunteer_no=f"B{{i:08d}}", created_at=now) for i in range(total)])
ids = db.session.scalars(sa.select(User.id).where(User.phone.like("139%")).order_by(User.id)).all()
with unit_of_work() as session:
    session.execute(sa.insert(Signup), [
        dict(activity_id=activity.id, user_id=i, status="confirmed", created_at=now, updated_at=now) for i in ids])
    earlier = now - timedelta(minutes=90)
    session.execute(sa.insert(Attendance), [
        dict(activity_id=activity.id, user_id=i, checked_in_at=earlier, status="open", method_in="venue",
             updated_at=earlier) for i in ids[2 * {PER_FIGURE}:]])
activity = db.session.get(activities.Activity, activity.id)
token, _ = tokens.poster(activity)
users = db.session.scalars(sa.select(User).where(User.id.in_(ids)).order_by(User.id)).all()
print(token)
for u in users:
    print(accounts.api_token(u, now)[0])
"""

CHECK = """
import sqlalchemy as sa
from core.db import db
from points import ledger
from volunteer.models import Attendance
rows = db.session.execute(sa.select(Attendance.status, sa.func.count(), sa.func.sum(Attendance.points))
                          .group_by(Attendance.status)).all()
print(len(ledger.invariant_problems(db.session)), " ".join(f"{s}={n}/{p or 0}" for s, n, p in rows))
"""


def scans(bearers: list[str], venue_token: str):
    """Each request is the next unused volunteer's scan of the venue code."""
    pool = iter(bearers)
    lock = threading.Lock()

    def scan(n: int, i: int):
        with lock:
            bearer = next(pool)
        return "POST", "/api/v1/checkins", {"token": venue_token}, {"Authorization": f"Bearer {bearer}"}

    return scan


def main(kinds: list[str]) -> None:
    print(f"moralcredit check-in bench: gunicorn -w 4 --threads 2, {os.cpu_count()} cores, 6 s per figure")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            lines = run_in_app(url, SEED.replace("PER_FIGURE", str(PER_FIGURE))).split()
            venue_token, bearers = lines[0], lines[1:]
            fresh = [bearers[:PER_FIGURE], bearers[PER_FIGURE : 2 * PER_FIGURE]]
            inside = [bearers[2 * PER_FIGURE : 3 * PER_FIGURE], bearers[3 * PER_FIGURE :]]
            with gunicorn(url, workers=4, threads=2) as address:
                warm = scans(fresh[0][-20:], venue_token)
                load(address, warm, clients=4, seconds=1, max_requests=20)
                for label, groups in (("check-in", fresh), ("check-out", inside)):
                    for clients, group in zip((8, 32), groups, strict=True):
                        pool = group[:-20] if group is fresh[0] else group
                        result = load(
                            address,
                            scans(pool, venue_token),
                            clients=clients,
                            seconds=6,
                            max_requests=len(pool),
                        )
                        print(result.line(f"{kind}: {label}, {clients} clients"))
            problems, states = run_in_app(url, CHECK).split(maxsplit=1)
            print(f"{kind}: after the run: ledger problems {problems}; attendances status=count/points: {states}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
