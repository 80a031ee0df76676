"""How the statistics hold at city size: a synthetic city straight into PostgreSQL, then timings.

One city, 10 counties, 150 townships, 1,950 villages, 5,850 grids; 1.2M residents in 400k
households; 300 departments; 100k activities over the past year; 1M attendances with their service
credits, 100k redemptions, and an archive entry per resident transfer — inserted by set-based SQL
(generate_series) in a minute or two, not through the services (the figures are what is measured,
not the check-in). Then: the first full refresh, a refresh with nothing new, a refresh after a few
hundred new check-outs, the figures the API serves (summary, by-region, monthly, rankings, flags,
an export), and the archive root. Prints one line per measurement.

    BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/moralcredit_statsbench \
        .venv/bin/python bench/stats_rollups.py

Never run by the test suite. The database named in the URL is dropped and created again.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/moralcredit_statsbench")
RESIDENTS, ACTIVITIES, ATTENDANCES, REDEMPTIONS = 1_200_000, 100_000, 1_000_000, 100_000

SEED = [
    # The region tree: ids 1 (city), 2-11 (counties), 12-161 (townships), 162-2111 (villages), 2112-7961 (grids).
    """INSERT INTO region (id, code, name, level, parent_id, path, depth, created_at)
       SELECT 1, '430900', '益阳市', 'city', NULL, '/1/', 0, now() - interval '2 years'""",
    """INSERT INTO region (id, code, name, level, parent_id, path, depth, created_at)
       SELECT 1 + c, '4309' || lpad(c::text, 2, '0'), '县' || c, 'county', 1, '/1/' || (1 + c) || '/', 1,
              now() - interval '2 years' FROM generate_series(1, 10) c""",
    """INSERT INTO region (id, code, name, level, parent_id, path, depth, created_at)
       SELECT 11 + t, 'T' || t, '镇' || t, 'township', 2 + (t - 1) / 15,
              '/1/' || (2 + (t - 1) / 15) || '/' || (11 + t) || '/', 2, now() - interval '2 years'
       FROM generate_series(1, 150) t""",
    """INSERT INTO region (id, code, name, level, parent_id, path, depth, created_at)
       SELECT 161 + v, 'V' || v, '村' || v, 'village', 12 + (v - 1) / 13,
              p.path || (161 + v) || '/', 3, now() - interval '2 years'
       FROM generate_series(1, 1950) v JOIN region p ON p.id = 12 + (v - 1) / 13""",
    """INSERT INTO region (id, code, name, level, parent_id, path, depth, created_at)
       SELECT 2111 + g, 'G' || g, '网格' || g, 'grid', 162 + (g - 1) / 3,
              p.path || (2111 + g) || '/', 4, now() - interval '2 years'
       FROM generate_series(1, 5850) g JOIN region p ON p.id = 162 + (g - 1) / 3""",
    "SELECT setval(pg_get_serial_sequence('region', 'id'), 8000)",
    """INSERT INTO department (id, name, region_id, created_at)
       SELECT d, '部门' || d, 12 + (d - 1) / 2, now() - interval '2 years' FROM generate_series(1, 300) d""",
    """INSERT INTO household (id, number, region_id, created_at)
       SELECT h, 'H' || h, 2112 + ((h - 1) * 3) % 5850, now() - interval '2 years'
       FROM generate_series(1, 400000) h""",
    f"""INSERT INTO users (id, phone, name, password_hash, volunteer_no, region_id, household_id,
                          consent_public_name, guardian_consent, active, token_version, failed_logins,
                          lockouts, created_at)
       SELECT u, '139' || lpad(u::text, 8, '0'), '居民' || u, 'x', 'V' || u, 2112 + (u - 1) % 5850,
              1 + (u - 1) / 3, u % 4 = 0, false, true, 0, 0, 0,
              now() - interval '700 days' + (u % 700) * interval '1 day'
       FROM generate_series(1, {RESIDENTS}) u""",
    f"""INSERT INTO account (id, kind, owner_type, owner_id, balance, debt, archive_count, archive_head, created_at)
       SELECT u, 'resident', 'user', u, 0, 0, 0, repeat('0', 64), now() FROM generate_series(1, {RESIDENTS}) u""",
    f"""INSERT INTO account (id, kind, owner_type, owner_id, balance, debt, archive_count, archive_head, created_at)
       SELECT {RESIDENTS} + d, 'issuer', 'department', d, 0, 0, 0, repeat('0', 64), now()
       FROM generate_series(1, 300) d""",
    """INSERT INTO store (id, name, region_id, active, created_at)
       SELECT s, '超市' || s, 161 + s, true, now() FROM generate_series(1, 1950) s""",
    f"""INSERT INTO account (id, kind, owner_type, owner_id, balance, debt, archive_count, archive_head, created_at)
       SELECT {RESIDENTS} + 1000 + s, 'store', 'store', s, 0, 0, 0, repeat('0', 64), now()
       FROM generate_series(1, 1950) s""",
    """INSERT INTO item (id, store_id, name, unit, points_price, stock, low_stock_threshold, active, created_at)
       SELECT s, s, '大米', '袋', 20, 100000, 5, true, now() FROM generate_series(1, 1950) s""",
    f"""INSERT INTO activity (id, title, description, category, department_id, region_id, address, starts_at,
                             ends_at, requires_approval, allow_walk_in, status, secret, created_by_id, created_at)
       SELECT a, '活动' || a, '', '环境整治', 1 + ((a - 1) % 1950) / 13 * 2 + a % 2, 162 + (a - 1) % 1950, '村委会',
              date_trunc('hour', now()) - interval '365 days' + (a % 8760) * interval '1 hour',
              date_trunc('hour', now()) - interval '365 days' + (a % 8760) * interval '1 hour' + interval '4 hours',
              false, true, CASE WHEN a % 50 = 0 THEN 'cancelled' ELSE 'finished' END, md5(a::text), 1, now()
       FROM generate_series(1, {ACTIVITIES}) a""",
    f"""INSERT INTO attendance (id, activity_id, user_id, checked_in_at, checked_out_at, status, method_in, method_out,
                               operator_id, manual, credited_minutes, points, version, credit_key, updated_at,
                               scanned_in_at, scanned_out_at, scanned_minutes, scanned_points, makeup_minutes, review,
                               recorded_by_id)
       SELECT k + 1, a.id, 1 + ((a.id - 1) * 12 + k / {ACTIVITIES}) % {RESIDENTS}, a.starts_at,
              a.starts_at + ((k % 4 + 1) * 60) * interval '1 minute',
              CASE WHEN k % 97 = 0 THEN 'auto' ELSE 'closed' END, CASE WHEN k % 3 = 0 THEN 'kiosk' ELSE 'venue' END,
              CASE WHEN k % 97 = 0 THEN 'auto' ELSE 'venue' END, CASE WHEN k % 3 = 0 THEN 2 ELSE NULL END,
              k % 20 = 0, (k % 4 + 1) * 60, (k % 4 + 1) * 10, 0, 'attendance:' || (k + 1) || ':0', a.starts_at,
              a.starts_at, a.starts_at + ((k % 4 + 1) * 60) * interval '1 minute', (k % 4 + 1) * 60,
              (k % 4 + 1) * 10, CASE WHEN k % 20 = 0 THEN 30 ELSE 0 END,
              CASE WHEN k % 20 = 0 THEN 'approved' ELSE NULL END, CASE WHEN k % 20 = 0 THEN 3 ELSE NULL END
       FROM generate_series(0, {ATTENDANCES} - 1) k JOIN activity a ON a.id = 1 + k % {ACTIVITIES}
       WHERE a.status = 'finished'""",
    f"""INSERT INTO transfer (id, amount, from_account_id, to_account_id, kind, idempotency_key, fingerprint,
                             cause_type, cause_id, created_at)
       SELECT t.id, t.points, {RESIDENTS} + a.department_id, t.user_id, 'service', t.credit_key, 'bench',
              'attendance', t.id::text, t.checked_out_at
       FROM attendance t JOIN activity a ON a.id = t.activity_id""",
    f"""INSERT INTO transfer (id, amount, from_account_id, to_account_id, kind, idempotency_key, fingerprint,
                             cause_type, cause_id, created_at)
       SELECT 2000000 + r, 20, 1 + (r * 7) % {RESIDENTS}, {RESIDENTS} + 1000 + 1 + r % 1950, 'redemption',
              'redeem:' || r, 'bench', 'store', (1 + r % 1950)::text,
              now() - interval '300 days' + (r % 300) * interval '1 day' + interval '10 hours'
       FROM generate_series(1, {REDEMPTIONS}) r""",
    "SELECT setval(pg_get_serial_sequence('transfer', 'id'), 3000000)",
    f"""INSERT INTO redemption (id, store_id, resident_id, clerk_id, idempotency_key, total_points, balance_after,
                               status, transfer_id, created_at, flagged)
       SELECT r, 1 + r % 1950, 1 + (r * 7) % {RESIDENTS}, 5, 'redeem:' || r, 20, 0,
              CASE WHEN r % 40 = 0 THEN 'voided' ELSE 'completed' END, 2000000 + r,
              now() - interval '300 days' + (r % 300) * interval '1 day' + interval '10 hours', false
       FROM generate_series(1, {REDEMPTIONS}) r""",
    """INSERT INTO redemption_line (id, redemption_id, item_id, name, unit, qty, unit_points)
       SELECT r.id, r.id, r.store_id, '大米', '袋', 1, 20 FROM redemption r""",
    """INSERT INTO archive_entry (user_id, seq, kind, occurred_at, recorded_at, summary, points, service_minutes,
                                 manual, transfer_id, prev_hash, hash)
       SELECT owner, row_number() OVER (PARTITION BY owner ORDER BY id), kind, created_at, created_at, '记录',
              points, 0, false, id, repeat('0', 64), md5(id::text) || md5(owner::text)
       FROM (SELECT t.id, t.created_at, CASE WHEN t.kind = 'service' THEN 'service' ELSE 'redemption' END AS kind,
                    CASE WHEN t.kind = 'service' THEN t.to_account_id ELSE t.from_account_id END AS owner,
                    CASE WHEN t.kind = 'service' THEN t.amount ELSE -t.amount END AS points
             FROM transfer t) x""",
    *(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in ("department", "household", "users", "account", "store", "item", "activity", "attendance")
    ),
    "SELECT setval(pg_get_serial_sequence('redemption', 'id'), (SELECT max(id) FROM redemption))",
    "SELECT setval(pg_get_serial_sequence('redemption_line', 'id'), (SELECT max(id) FROM redemption_line))",
    "ANALYZE",
]


def timed(label: str, func, *args, **kwargs):
    started = time.perf_counter()
    result = func(*args, **kwargs)
    print(f"{label:58} {1000 * (time.perf_counter() - started):9.0f} ms", flush=True)
    return result


def main() -> None:
    import sqlalchemy as sa

    from core import clock
    from core.db import db, utcnow
    from moralcredit import create_app
    from tests.conftest import migrate, recreate_pg_database

    reuse = os.environ.get("BENCH_REUSE") == "1"  # measure again on the city a previous run left
    if not reuse:
        recreate_pg_database(URL)
    app = create_app("production", {"SQLALCHEMY_DATABASE_URI": URL, "SECRET_KEY": "bench", "SCHEDULER": "off"})
    if not reuse:
        migrate(app)
    with app.app_context():
        started = time.perf_counter()
        with db.engine.begin() as connection:
            cursor = connection.connection.cursor()  # the driver's own: no parameters, so '%' is modulo
            for statement in [] if reuse else SEED:
                cursor.execute(statement)
        print(f"{'seed (set-based SQL)':58} {time.perf_counter() - started:9.0f} s", flush=True)
        counts = {
            t: db.session.scalar(sa.text(f"SELECT count(*) FROM {t}"))
            for t in ("users", "activity", "attendance", "transfer", "archive_entry")
        }
        print("rows:", counts, flush=True)
        db.session.rollback()

        from community.models import Region
        from points import roots
        from stats import export, flags, queries, rankings, refresh

        full = os.environ.get("BENCH_FULL") == "1"  # with BENCH_REUSE: time the nightly rebuild again
        print(timed("stats-refresh, first run (everything)", refresh.refresh, now=utcnow(), full=full))
        print(timed("stats-refresh, nothing new", refresh.refresh, now=utcnow()))
        with db.engine.begin() as connection:  # 500 new check-outs today, as a busy morning would bring
            connection.connection.cursor().execute(
                f"""INSERT INTO attendance (activity_id, user_id, checked_in_at, checked_out_at, status, method_in,
                        method_out, manual, credited_minutes, points, version, updated_at, scanned_minutes,
                        scanned_points, makeup_minutes)
                    SELECT a.id, 1 + floor(random() * {RESIDENTS})::int, now() - interval '2 hours', now(), 'closed',
                           'venue', 'venue', false, 120, 20, 0, now(), 120, 20, 0
                    FROM activity a WHERE a.status = 'finished' ORDER BY a.id LIMIT 500
                    ON CONFLICT DO NOTHING"""
            )
            connection.connection.cursor().execute(
                "UPDATE activity SET starts_at = now() - interval '3 hours', ends_at = now() + interval '1 hour' "
                "WHERE id <= 600"
            )
        print(timed("stats-refresh, after 500 check-outs", refresh.refresh, now=utcnow()))

        city = db.session.scalar(sa.select(Region).where(Region.level == "city"))
        county = db.session.scalar(sa.select(Region).where(Region.level == "county").order_by(Region.id))
        township = db.session.scalar(sa.select(Region).where(Region.level == "township").order_by(Region.id))
        today = clock.today()
        year, month = today - timedelta(days=364), today.replace(day=1)
        for label, region in (("city", city), ("county", county), ("township", township)):
            timed(f"summary, {label}, last 365 days", queries.summary, region, year, today)
        timed("summary, city, this month", queries.summary, city, month, today)
        timed("summary, city, last 365 days, again (cached until the next refresh)", queries.summary, city, year, today)
        timed("by-region, city (10 counties), 365 days", queries.by_region, city, year, today)
        timed("by-region, county (15 townships), 365 days", queries.by_region, county, year, today)
        timed("by-department, city (300), 365 days", queries.by_department, city, year, today)
        timed("monthly, city, 12 months", queries.monthly, city, year, today)
        for kind in rankings.KINDS:
            timed(f"ranking {kind}, city, 365 days", rankings.ranking, kind, city, year, today, limit=10)
        timed("ranking volunteers, city, this month", rankings.ranking, "volunteers", city, month, today, limit=10)
        timed("flags, county, this month", flags.flags, county, month, today)
        timed("flags, city, last 30 days", flags.flags, city, today - timedelta(days=30), today)
        table = timed("export by-region, county (build)", export.table, "by-region", county, year, today, {})
        timed("export by-region, county (xlsx bytes)", export.xlsx_bytes, table)
        mark = roots.take_mark(db.session)
        root = timed("archive root over every head", roots.compute, db.session, mark)
        print(f"  {root.leaves} leaves, root {root.root[:16]}…")
        size = db.session.execute(
            sa.text("SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname LIKE 'stats_%' ORDER BY relname")
        ).all()
        print("rollup rows:", dict(size))


if __name__ == "__main__":
    main()
