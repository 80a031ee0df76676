"""Crash-safety load (issue 13): mixed point- and stock-moving traffic from 2 client processes × 8
threads against gunicorn, SIGKILLed (master and workers at once) at a random moment, restarted, and
every unanswered request replayed with its Idempotency-Key; then `flask ledger check` and an
exactly-once audit of every operation. tests/test_crash_safety.py runs it bounded, bench/bench_crash.py
long.

Seeding and the audit run in-process (an app context on the same database); the clients speak only
HTTP (the API.md paths) and import nothing of the app. Each client thread owns its residents, so the
expected end state follows from the answers alone.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROCESSES, THREADS = 2, 8
FUNDS = 1000  # each general resident's starting points: a redemption is never refused
PRICE = 1
DEED_POINTS = 10  # the catalogue's haorenhaoshi
STOCK = 100_000
RETRIES = 3
RESEND = 6  # acknowledged requests sent again after each restart
KEYED = ("redeem", "stock", "adjust", "deed", "void")  # the routes that take an Idempotency-Key

# Seeding (in an app context) ---------------------------------------------------------------------


def seed(rounds: int, *, general: int = 2, secret: str) -> dict:
    """The world the load runs in, as plain JSON for the clients: staff and resident tokens, the
    store's item, a running activity, and per round and client thread a pack of residents: to check
    out (in since two hours) and to correct (60 scanned minutes) on even threads, to check in (signed
    up) on odd ones."""
    from core.db import unit_of_work, utcnow
    from exchange import stores
    from points import awards
    from tests import factories as f
    from tests.authz import build_world
    from volunteer import attendance, signups, tokens
    from volunteer.models import Activity

    w = build_world()
    now = utcnow().replace(microsecond=0)
    item = stores.add_item(
        actor=None, store_id=w.stores["s1"].id, name="毛巾", unit="条", points_price=PRICE, stock=STOCK, now=now
    )
    from volunteer import activities

    activity = activities.create(
        actor=w.users["organizer"],
        department_id=w.departments["d1"].id,
        region_code="43010101",
        now=now,
        title="村道清扫",
        description="带好扫帚",
        category="环境整治",
        address="花果山村村道",
        starts_at=now - timedelta(hours=3),
        ends_at=now + timedelta(hours=3),
        points_per_hour=10,
    )
    activities.publish(actor=w.users["organizer"], activity_id=activity.id, now=now)
    from core.db import db

    poster = tokens.poster(db.session.get(Activity, activity.id))[0]
    threads = PROCESSES * THREADS

    def resident(name: str):
        return f.user("4301010101", name=name)

    people = []
    for g in range(threads):
        mine = []
        for n in range(general):
            person = resident(f"居民{g}-{n}")
            with unit_of_work() as session:
                awards.adjust(
                    session,
                    user_id=person.id,
                    region_id=person.region_id,
                    points=FUNDS,
                    key=f"crash-seed:{person.id}",
                    now=now,
                    actor_id=w.users["admin"].id,
                    reason="期初积分",
                    details={},
                )
            mine.append(person.id)
        people.append(mine)
    packs = []
    for r in range(rounds):
        row = []
        for g in range(threads):
            if g % 2:  # odd threads check a volunteer in
                come = resident(f"签到{r}-{g}")
                signups.sign_up(user=come, activity_id=activity.id, now=now - timedelta(hours=4))
                row.append({"in": [come.id, f.token(come)]})
                continue
            # even threads check one out (in since two hours) and correct another's 60 scanned minutes
            out, fix = resident(f"签退{r}-{g}"), resident(f"更正{r}-{g}")
            for person in (out, fix):
                signups.sign_up(user=person, activity_id=activity.id, now=now - timedelta(hours=4))
            attendance.scan_venue_code(user=out, token=poster, now=now - timedelta(hours=2))
            attendance.scan_venue_code(user=fix, token=poster, now=now - timedelta(minutes=150))
            attendance.scan_venue_code(user=fix, token=poster, now=now - timedelta(minutes=90))
            row.append({"out": [out.id, f.token(out)], "fix": fix.id})
        packs.append(row)
    from core import clock

    return {
        "secret": secret,
        "store": w.stores["s1"].id,
        "item": item.id,
        "activity": activity.id,
        "poster": poster,
        "today": clock.today(now).isoformat(),
        "fix_in": (now - timedelta(minutes=150)).isoformat(),
        "fix_out": (now - timedelta(minutes=120)).isoformat(),
        "staff": {role: f.token(w.users[role]) for role in ("clerk", "admin", "grid_worker", "reviewer", "organizer")},
        "people": people,
        "packs": packs,
    }


# The server ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(url: str, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MORALCREDIT_", "FLASK_"))}
    return {
        **env,
        "MORALCREDIT_ENV": "production",
        "SECRET_KEY": secret,
        "DATABASE_URL": url,
        "MORALCREDIT_SCHEDULER": "off",
        "MORALCREDIT_SECURE_COOKIES": "0",
        "PYTHONPATH": str(ROOT),
    }


class Server:
    """gunicorn (2 workers × 4 threads; the app is loaded once, before they fork) in a session of
    its own, so that a kill takes the master and every worker at the same instant, as a crashed host
    or an OOM kill would."""

    def __init__(self, url: str, secret: str, port: int):
        self.url, self.secret, self.port = url, secret, port
        self.process: subprocess.Popen | None = None
        self.log = tempfile.NamedTemporaryFile("w+", prefix="mccrash-", suffix=".log")  # noqa: SIM115

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                *("-w", "2", "--threads", "4", "--preload", "-b", f"127.0.0.1:{self.port}"),
                *("--log-level", "warning", "--graceful-timeout", "5", "wsgi:app"),
            ],
            cwd=ROOT,
            env=server_env(self.url, self.secret),
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                conn.close()
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("gunicorn did not start: " + self.errors())

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def errors(self) -> str:
        return Path(self.log.name).read_text()[-4000:]


# The clients --------------------------------------------------------------------------------------


def send(conn: http.client.HTTPConnection, op: dict, world: dict) -> tuple[int, object, bool]:
    """One request; returns the status, the JSON body and whether the server said it was a repeat."""
    token = world["staff"][op["as"]] if op["as"] in world["staff"] else op["as"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Idempotency-Key": op["key"]}
    conn.request(op["method"], "/api/v1" + op["path"], body=json.dumps(op["body"]).encode(), headers=headers)
    response = conn.getresponse()
    raw = response.read()
    repeat = response.getheader("Idempotent-Replayed") == "true"
    try:
        return response.status, json.loads(raw), repeat
    except ValueError:
        return response.status, raw.decode(errors="replace")[:200], repeat


class Plan:
    """One client thread's operations: its pack first among general ones, then follow-ups (a void
    of a redemption, the review of a deed) once their first step was answered."""

    def __init__(self, world: dict, round_no: int, g: int, run: str, seed: int):
        self.world, self.g = world, g
        self.rng = random.Random(f"{seed}-{round_no}-{g}")
        self.prefix = f"{run}-{round_no}-{g}"
        self.n = 0
        pack = world["packs"][round_no][g]
        first = []
        if "out" in pack:
            first.append(
                self.op("checkout", "POST", "/checkins", {"token": world["poster"]}, pack["out"][1], who=pack["out"][0])
            )
        if "in" in pack:
            first.append(
                self.op("checkin", "POST", "/checkins", {"token": world["poster"]}, pack["in"][1], who=pack["in"][0])
            )
        if "fix" in pack:
            first.append(
                self.op(
                    "correction",
                    "PUT",
                    f"/activities/{world['activity']}/attendances/{pack['fix']}",
                    {
                        "checked_in_at": world["fix_in"],
                        "checked_out_at": world["fix_out"],
                        "reason": "签退晚扫了半小时",
                    },
                    "organizer",
                    who=pack["fix"],
                )
            )
        self.queue = first + [self.general() for _ in range(4)]
        self.rng.shuffle(self.queue)

    def op(self, kind: str, method: str, path: str, body: dict, as_: str, **meta) -> dict:
        self.n += 1
        return {
            "kind": kind,
            "method": method,
            "path": path,
            "body": body,
            "as": as_,
            "key": f"{self.prefix}-{self.n}",
            **meta,
        }

    def general(self) -> dict:
        w, who = self.world, self.rng.choice(self.world["people"][self.g])
        kind = self.rng.choices(["redeem", "stock", "adjust", "deed"], [3, 2, 2, 2])[0]
        if kind == "redeem":
            body = {"resident_id": who, "lines": [{"item_id": w["item"], "qty": 1}]}
            return self.op(kind, "POST", f"/stores/{w['store']}/redemptions", body, "clerk", who=who)
        if kind == "stock":
            body = {"delta": self.rng.randint(1, 5), "reason": "purchase", "note": "乡贤捐购"}
            return self.op(kind, "POST", f"/items/{w['item']}/stock", body, "clerk")
        if kind == "adjust":
            body = {"points": self.rng.randint(1, 3), "reason": "补发上月积分"}
            return self.op(kind, "POST", f"/residents/{who}/adjustments", body, "admin", who=who)
        body = {
            "resident_id": who,
            "deed_type": "haorenhaoshi",
            "description": "帮邻居收稻谷",
            "occurred_on": w["today"],
        }
        return self.op(kind, "POST", "/deeds", body, "grid_worker", who=who)

    def next(self) -> dict:
        return self.queue.pop(0) if self.queue else self.general()

    def answered(self, op: dict, status: int, body: object) -> None:
        if not isinstance(body, dict) or "id" not in body:
            return
        if op["kind"] == "redeem" and status == 201 and self.rng.random() < 0.3:
            self.queue.append(
                self.op("void", "POST", f"/redemptions/{body['id']}/void", {"reason": "拿错了"}, "admin", who=op["who"])
            )
        if op["kind"] == "deed" and status == 201:
            roll = self.rng.random()
            if roll < 0.6:
                self.queue.append(self.op("approve", "POST", f"/deeds/{body['id']}/approve", {}, "reviewer"))
            elif roll < 0.8:
                self.queue.append(
                    self.op("reject", "POST", f"/deeds/{body['id']}/reject", {"note": "证据不足"}, "reviewer")
                )


def client(world_file: str, index: int, round_no: int, port: int, run: str, seed: int, out: str) -> None:
    """One client process: THREADS threads in a closed loop until the server dies. Each request is
    retried on a broken connection; one still unanswered is written down as unacknowledged."""
    world = json.loads(Path(world_file).read_text())
    lock = threading.Lock()
    acked: list[dict] = []
    unacked: list[dict] = []
    retries = [0]

    def worker(g: int) -> None:
        plan = Plan(world, round_no, g, run, seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            op = plan.next()
            for attempt in range(RETRIES + 1):
                try:
                    status, body, _ = send(conn, op, world)
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    if attempt < RETRIES:
                        with lock:
                            retries[0] += 1
                        time.sleep(0.2)
            else:
                with lock:
                    unacked.append(op)
                return  # the server is gone: this thread's round is over
            with lock:
                acked.append({**op, "status": status, "response": body})
            plan.answered(op, status, body)

    threads = [threading.Thread(target=worker, args=(index * THREADS + t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    print("go", flush=True)
    for t in threads:
        t.join()
    Path(out).write_text(json.dumps({"acked": acked, "unacked": unacked, "retries": retries[0]}, ensure_ascii=False))


# The run ------------------------------------------------------------------------------------------


def replay(port: int, world: dict, ops: list[dict]) -> list[dict]:
    """Send every unacknowledged request again, with its Idempotency-Key, to the restarted server."""
    done = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for op in ops:
        status, body, repeat = send(conn, op, world)
        done.append({**op, "status": status, "response": body, "replayed": True, "repeat": repeat})
    conn.close()
    return done


@dataclass
class Run:
    ops: list[dict]  # every operation with its final answer: the first, or the replay's
    figures: Counter
    mismatches: list[str]  # acknowledged requests sent again that did not get their first answer
    server_log: str


def run(
    url: str, world: dict, rounds: int, *, seed: int, kill_after: tuple[float, float] = (1.5, 3.5), log=print
) -> Run:
    """`rounds` rounds of load, each ended by a SIGKILL at a random moment. After each restart every
    unacknowledged request is replayed, and some acknowledged ones are sent again (a lost answer):
    those must get their first answer back, from the stored response."""
    rng = random.Random(seed)
    run_id = uuid.uuid4().hex[:6]
    port = free_port()
    server = Server(url, world["secret"], port)
    work = Path(tempfile.mkdtemp(prefix="mccrash-"))
    world_file = work / "world.json"
    world_file.write_text(json.dumps(world, ensure_ascii=False))
    ops: list[dict] = []
    mismatches: list[str] = []
    figures = Counter()
    try:
        server.start()
        for round_no in range(rounds):
            began = time.monotonic()
            outs = [work / f"r{round_no}-p{p}.json" for p in range(PROCESSES)]
            clients = [
                subprocess.Popen(
                    [
                        *(sys.executable, "-m", "tests.crash_load", str(world_file), str(p), str(round_no)),
                        *(str(port), run_id, str(seed), str(outs[p])),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for p in range(PROCESSES)
            ]
            for c in clients:
                c.stdout.readline()  # "go": its threads are sending
            time.sleep(rng.uniform(*kill_after))
            server.kill()
            killed = time.monotonic()
            figures["kills"] += 1
            for c in clients:
                _, err = c.communicate(timeout=120)
                if c.returncode != 0:
                    raise RuntimeError("a client failed: " + err[-3000:])
            unacked, acked = [], []
            for out in outs:
                result = json.loads(out.read_text())
                acked += result["acked"]
                unacked += result["unacked"]
                figures["retries"] += result["retries"]
            ops += acked
            restarting = time.monotonic()
            server.start()
            restarted = time.monotonic()
            replayed = replay(port, world, unacked)
            ops += replayed
            figures["replayed"] += len(replayed)
            figures["replays_answered_from_store"] += sum(1 for op in replayed if op["repeat"])
            # A response lost on its way back: the client sends an acknowledged request again.
            keyed = [op for op in acked if op["kind"] in KEYED]
            sample = rng.sample(keyed, min(len(keyed), RESEND))
            again = replay(port, world, sample)
            figures["resent"] += len(again)
            for first, repeat in zip(sample, again, strict=True):
                if (repeat["status"], repeat["response"], repeat["repeat"]) != (
                    first["status"],
                    first["response"],
                    True,
                ):
                    mismatches.append(
                        f"{first['kind']} {first['key']} sent again: {repeat['status']} {str(repeat['response'])[:150]}"
                        f" (stored: {repeat['repeat']}), first {first['status']} {str(first['response'])[:150]}"
                    )
            log(
                f"round {round_no + 1}: {len(acked)} acknowledged in {killed - began:.1f} s, killed; "
                f"restarted in {restarted - restarting:.1f} s, {len(replayed)} replayed, {len(again)} sent again"
            )
        server.stop()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    figures["operations"] = len(ops)
    figures["acknowledged"] = sum(1 for op in ops if not op.get("replayed"))
    figures["server_errors"] = sum(1 for op in ops if op["status"] >= 500)
    for op in ops:
        figures[f"op:{op['kind']}"] += 1
    return Run(ops, figures, mismatches, server.errors())


def ledger_check(url: str, secret: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", "ledger", "check"],
        cwd=ROOT,
        env=server_env(url, secret),
        capture_output=True,
        text=True,
        timeout=300,
    )


# The audit (in an app context) --------------------------------------------------------------------


def audit(ops: list[dict], world: dict) -> list[str]:
    """Every operation present exactly once, and the end state exactly what the answers add up to.
    Returns what is wrong (empty when all is well)."""
    import sqlalchemy as sa

    from core.db import db, utcnow
    from exchange.models import Item, Redemption, StockMovement
    from points import deeds as deed_service
    from points import ledger
    from points.models import Adjustment, Deed, Transfer
    from volunteer.models import Attendance

    problems: list[str] = []
    bad = [op for op in ops if not _answer_ok(op)]
    problems += [f"{op['kind']} {op['key']} answered {op['status']}: {str(op['response'])[:200]}" for op in bad]
    by_kind: dict[str, list[dict]] = {}
    for op in ops:
        by_kind.setdefault(op["kind"], []).append(op)
    deed_service.post_due(now=utcnow() + timedelta(days=60))  # the notice ends: approved deeds post
    db.session.rollback()

    def count(model, *where) -> int:
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))

    # Redemptions: each answered id exists, once per key; nothing else was made.
    redeemed = [op for op in by_kind.get("redeem", []) if op["status"] == 201]
    ids = {op["response"]["id"] for op in redeemed}
    stored = set(db.session.scalars(sa.select(Redemption.id)))
    if len(ids) != len(redeemed) or ids != stored:
        problems.append(f"redemptions: {len(redeemed)} answered, {len(ids)} ids, {len(stored)} stored")
    voided = [op for op in by_kind.get("void", []) if op["status"] == 200]
    for op in voided:
        rid = int(op["path"].split("/")[2])
        if count(Transfer, Transfer.idempotency_key == f"void:{rid}") != 1:
            problems.append(f"void of redemption {rid} not refunded exactly once")
    if count(Redemption, Redemption.status == "voided") != len(voided):
        problems.append(f"{len(voided)} voids answered, {count(Redemption, Redemption.status == 'voided')} stored")
    # Stock receipts: one movement per key; stock = start + receipts − baskets + voids.
    received = [op for op in by_kind.get("stock", []) if op["status"] == 200]
    for op in received:
        if count(StockMovement, StockMovement.idempotency_key.like(f"stock:%:{op['key']}")) != 1:
            problems.append(f"stock receipt {op['key']} not applied exactly once")
    stock = db.session.get(Item, world["item"]).stock
    expected = STOCK + sum(op["body"]["delta"] for op in received) - len(redeemed) + len(voided)
    if stock != expected:
        problems.append(f"stock {stock}, expected {expected}")
    # Adjustments: one row per key.
    adjusted = [op for op in by_kind.get("adjust", []) if op["status"] in (201, 202)]
    for op in adjusted:
        if count(Adjustment, Adjustment.key == f"adjustment:{op['who']}:{op['key']}") != 1:
            problems.append(f"adjustment {op['key']} not present exactly once")
    if count(Adjustment) != len(adjusted):
        problems.append(f"{len(adjusted)} adjustments answered, {count(Adjustment)} stored")
    # Deeds: each answered id exists; reviewed ones as decided; posted ones credited once.
    recorded = {op["response"]["id"] for op in by_kind.get("deed", []) if op["status"] == 201}
    if len(recorded) != len(by_kind.get("deed", [])) or recorded != set(db.session.scalars(sa.select(Deed.id))):
        problems.append(f"deeds: {len(by_kind.get('deed', []))} recorded, {count(Deed)} stored")
    approved = {int(op["path"].split("/")[2]) for op in by_kind.get("approve", [])}
    rejected = {int(op["path"].split("/")[2]) for op in by_kind.get("reject", [])}
    for deed in db.session.scalars(sa.select(Deed)):
        want = "posted" if deed.id in approved else "rejected" if deed.id in rejected else "pending"
        if deed.status != want:
            problems.append(f"deed {deed.id} is {deed.status}, expected {want}")
        if deed.status == "posted" and count(Transfer, Transfer.idempotency_key == f"deed:{deed.id}") != 1:
            problems.append(f"deed {deed.id} not credited exactly once")
    # General residents: the balance is exactly what the answers add up to.
    delta: Counter[int] = Counter()
    for op in redeemed:
        delta[op["who"]] -= PRICE
    for op in voided:
        delta[op["who"]] += PRICE
    for op in adjusted:
        if op["status"] == 201:
            delta[op["who"]] += op["body"]["points"]
    posted = {d.id: d.resident_id for d in db.session.scalars(sa.select(Deed).where(Deed.status == "posted"))}
    for resident_id in posted.values():
        delta[resident_id] += DEED_POINTS
    for person in (p for group in world["people"] for p in group):
        balance = ledger.balance(db.session, person)
        if balance != FUNDS + delta[person]:
            problems.append(f"resident {person}: balance {balance}, expected {FUNDS + delta[person]}")
    # Attendance: a check-out credited once; a check-in present once; a correction settled as asked.
    for op in by_kind.get("checkout", []) + by_kind.get("correction", []) + by_kind.get("checkin", []):
        row = db.session.scalar(
            sa.select(Attendance).where(Attendance.activity_id == world["activity"], Attendance.user_id == op["who"])
        )
        balance = ledger.balance(db.session, op["who"])
        if op["kind"] == "checkin":
            if row is None or row.status != "open" or balance != 0:
                problems.append(f"check-in of {op['who']}: {row and row.status}, balance {balance}")
            continue
        credits = count(Transfer, Transfer.idempotency_key.like(f"attendance:{row.id}:%"))
        if op["kind"] == "checkout":
            if row.status != "closed" or credits != 1 or balance != row.points or row.points <= 0:
                problems.append(f"check-out of {op['who']}: {row.status}, {credits} credits, balance {balance}")
        elif row.credited_minutes != 30 or balance != row.points or row.review is not None:
            problems.append(
                f"correction of {op['who']}: {row.credited_minutes} min, {row.points} pts, balance {balance}"
            )
    return problems


def _answer_ok(op: dict) -> bool:
    if op["kind"] in ("approve", "reject") and op.get("replayed") and op["status"] == 409:
        return isinstance(op["response"], dict) and op["response"].get("code") == "deed_not_pending"
    if op["kind"] == "adjust":
        return op["status"] in (201, 202)
    if op["kind"] in ("checkout", "checkin"):
        action = op["response"].get("action") if isinstance(op["response"], dict) else None
        return op["status"] == 200 and action == ("check_out" if op["kind"] == "checkout" else "check_in")
    return op["status"] == {"redeem": 201, "deed": 201}.get(op["kind"], 200)


def summary(run: Run, problems: list[str], checked: subprocess.CompletedProcess) -> str:
    figures = run.figures
    kinds = ", ".join(f"{k[3:]} {v}" for k, v in sorted(figures.items()) if k.startswith("op:"))
    result = "ok" if not problems and not run.mismatches and checked.returncode == 0 else "FAILED"
    return (
        f"operations {figures['operations']} (acknowledged {figures['acknowledged']}, replayed {figures['replayed']}"
        f", {figures['replays_answered_from_store']} of them done before the kill), kills {figures['kills']}, "
        f"client retries {figures['retries']}, acknowledged sent again {figures['resent']} "
        f"({len(run.mismatches)} answered differently), 5xx {figures['server_errors']}, "
        f"ledger check exit {checked.returncode}, audit problems {len(problems)}: {result}\n  by kind: {kinds}"
    )


@contextmanager
def app_on(url: str, secret: str) -> Iterator[None]:
    """An app context on `url` with the server's secret (tokens it mints are the server's)."""
    from core.db import db
    from moralcredit import create_app

    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secret})
    with app.app_context():
        yield
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    world_file, index, round_no, port, run_id, seed_no, out = sys.argv[1:8]
    client(world_file, int(index), int(round_no), int(port), run_id, int(seed_no), out)
