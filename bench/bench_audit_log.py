"""Response times of the audit log's list and export on a large log, SQLite and PostgreSQL.

Seeds a county of 4 townships × 5 villages and `ENTRIES` audit entries spread over them and over
90 days, then times (in-process, the median of 5 requests after one warm-up) the first page for the
county admin and for a township admin, a filtered page (one action, one week), a late page, and a
CSV export of one day. Usage: `.venv/bin/python bench/bench_audit_log.py [sqlite] [postgresql]`
(`BENCH_AUDIT_ENTRIES` to change the size; default 200,000).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import app_env, database, pg_available

ENTRIES = int(os.environ.get("BENCH_AUDIT_ENTRIES", "200000"))
ACTIONS = ("user.register", "deed.record", "deed.approve", "attendance.check_in", "redemption.create")


def seed(app) -> dict:
    from datetime import timedelta

    import sqlalchemy as sa

    from community import accounts, services
    from core.audit import AuditEntry
    from core.db import db, utcnow

    now = utcnow()
    with app.app_context():
        services.create_region(actor=None, code="4301", name="县", level="county", parent_code=None, now=now)
        villages = []
        for t in range(4):
            services.create_region(
                actor=None, code=f"4301{t:02d}", name=f"镇{t}", level="township", parent_code="4301", now=now
            )
            for v in range(5):
                code = f"4301{t:02d}{v:02d}"
                villages.append(
                    services.create_region(
                        actor=None, code=code, name=f"村{t}{v}", level="village", parent_code=f"4301{t:02d}", now=now
                    ).id
                )
        county_admin = accounts.register(
            phone="13910000001", name="县管理", password="Bench2026x", region_code="4301", now=now
        )
        township_admin = accounts.register(
            phone="13910000002", name="镇管理", password="Bench2026x", region_code="430100", now=now
        )
        services.grant_role(
            actor=None, user_id=county_admin.id, role="admin", scope_type="region", scope_id="4301", now=now
        )
        services.grant_role(
            actor=None, user_id=township_admin.id, role="admin", scope_type="region", scope_id="430100", now=now
        )
        rows = []
        for i in range(ENTRIES):
            rows.append(
                {
                    "at": now - timedelta(minutes=(i * 90 * 24 * 60) // ENTRIES),
                    "actor_id": county_admin.id,
                    "actor_name": "县管理",
                    "action": ACTIONS[i % len(ACTIONS)],
                    "object_type": "user",
                    "object_id": str(i),
                    "region_id": villages[i % len(villages)],
                    "after": {"phone": "13900001111", "n": i},
                }
            )
            if len(rows) == 5000:
                db.session.execute(sa.insert(AuditEntry), rows)
                rows.clear()
        if rows:
            db.session.execute(sa.insert(AuditEntry), rows)
        db.session.commit()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))  # as a live database's statistics would be
        return {"county": county_admin.id, "township": township_admin.id}


def timed(client, path: str, headers: dict) -> tuple[float, int]:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    times = []
    for _ in range(5):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        times.append(time.perf_counter() - start)
    total = (response.get_json() or {}).get("total", -1) if response.is_json else len(response.data)
    return statistics.median(times) * 1000, total


def main(kinds: list[str]) -> None:
    from datetime import timedelta

    print(f"moralcredit audit-log bench: {ENTRIES:,} entries over 90 days, 20 villages, in-process")
    for kind in kinds:
        if kind == "postgresql" and not pg_available():
            print("postgresql: not reachable, skipped")
            continue
        with database(kind) as url:
            os.environ.update(
                {k: v for k, v in app_env(url).items() if k.startswith(("MORALCREDIT", "SECRET", "DATABASE"))}
            )
            from core import clock
            from core.db import db, utcnow
            from moralcredit import create_app
            from tests import factories as f

            app = create_app("production", {"SQLALCHEMY_DATABASE_URI": url})
            ids = seed(app)
            today = clock.today(utcnow())
            week = f"&from={today - timedelta(days=10)}&to={today - timedelta(days=4)}"
            with app.app_context():
                from community.models import User

                county = f.bearer(db.session.get(User, ids["county"]))
                township = f.bearer(db.session.get(User, ids["township"]))
                client = app.test_client()
                cases = [
                    ("county admin, first page", "/api/v1/audit-log", county),
                    ("township admin, first page", "/api/v1/audit-log", township),
                    ("county, one action, one week", f"/api/v1/audit-log?action=deed.approve{week}", county),
                    ("county, page 500", "/api/v1/audit-log?page=500", county),
                    ("county, CSV export of one day", f"/api/v1/audit-log/export?from={today}&to={today}", county),
                ]
                for label, path, headers in cases:
                    ms, total = timed(client, path, headers)
                    unit = "rows" if "export" not in label else "bytes"
                    print(f"{kind}: {label:<34} {ms:8.1f} ms  ({total:,} {unit})")
                db.session.remove()
                db.engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1:] or ["sqlite", "postgresql"])
