"""A year of the city, day by day: activities, sign-ups and attendances, each credit through the
ledger and onto the resident's archive, and residents spending their points at the township's
moral supermarket, with the stock ledger behind every basket.

What a scan or a counter sale would write, row for row, but computed here in one pass in time
order and written in bulk: the points rule (`points.rules.credit`) turns each attendance into
minutes and points; a transfer carries the points with the key, cause and fingerprint the ledger
gives it (`points.ledger.fingerprint`); each archive entry is chained to the resident's previous
one by `points.archive.entry_hash`, and the resident's account ends with the head and count
(the anchor), so that `flask ledger check` and `flask archive verify` find everything sound.
Memory stays bounded: per resident only the chain head, the count and the balance are kept, and
rows go to the database in batches.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from citydemo.bulk import Writer
from citydemo.people import People
from citydemo.places import City, Township, Village
from exchange.demo import GOODS
from points.archive import HASHED_FIELDS, entry_hash
from points.ledger import fingerprint
from points.models import GENESIS
from points.rules import Rule, credit

PLAN = {
    "平安巡逻": ("夜间平安巡逻", "村组平安巡逻", "节日安保巡逻"),
    "矛盾调解": ("邻里纠纷调解", "家庭矛盾调解"),
    "环境整治": ("河道垃圾清理", "村道环境整治", "垃圾分类宣传"),
    "文明劝导": ("路口文明劝导", "移风易俗劝导"),
    "助老助残": ("探访独居老人", "助残送餐服务"),
    "法治宣传": ("反诈宣传进村", "普法宣传日"),
}
NOTES = ("请穿志愿者马甲，带好手套和水杯。", "请提前十分钟到场扫码签到。", "雨天照常进行，请带好雨具。")
DONORS = ("益阳市爱心企业协会", "县供销社", "资江农商银行", "张氏宗亲会", "桃江竹业协会")
REDEEM_SHARE = 0.35  # of credits, a visit to the supermarket some days later
FLUSH_ROWS = 60_000

ACTIVITY = [
    "id",
    "title",
    "description",
    "category",
    "department_id",
    "region_id",
    "address",
    "starts_at",
    "ends_at",
    "capacity",
    "requires_approval",
    "allow_walk_in",
    "status",
    "secret",
    "created_by_id",
    "created_at",
]
SIGNUP = ["id", "activity_id", "user_id", "status", "no_show", "walk_in", "created_at", "updated_at"]
ATTENDANCE = [
    "id",
    "activity_id",
    "user_id",
    "checked_in_at",
    "checked_out_at",
    "status",
    "method_in",
    "method_out",
    "operator_id",
    "manual",
    "credited_minutes",
    "points",
    "version",
    "credit_key",
    "updated_at",
    "scanned_in_at",
    "scanned_out_at",
    "scanned_minutes",
    "scanned_points",
    "makeup_minutes",
]
TRANSFER = [
    "id",
    "amount",
    "from_account_id",
    "to_account_id",
    "kind",
    "idempotency_key",
    "fingerprint",
    "cause_type",
    "cause_id",
    "actor_id",
    "details",
    "created_at",
]
ENTRY = ["id", *HASHED_FIELDS, "hash"]  # the hash covers every column but the id and itself
REDEMPTION = [
    "id",
    "store_id",
    "resident_id",
    "clerk_id",
    "idempotency_key",
    "total_points",
    "balance_after",
    "status",
    "transfer_id",
    "created_at",
    "flagged",
    "identified_by",
]
LINE = ["id", "redemption_id", "item_id", "name", "unit", "qty", "unit_points"]
MOVEMENT = ["id", "item_id", "delta", "stock_after", "kind", "donor", "redemption_id", "actor_id", "created_at"]
ACCOUNT = ["id", "kind", "owner_type", "owner_id", "balance", "debt", "archive_count", "archive_head", "created_at"]
STORE = ["id", "name", "region_id", "opening_hours", "active", "created_at"]
ITEM = [
    "id",
    "store_id",
    "name",
    "category",
    "unit",
    "points_price",
    "stock",
    "low_stock_threshold",
    "monthly_limit",
    "active",
    "created_at",
]


@dataclass
class Good:
    id: int
    name: str
    unit: str
    price: int
    limit: int | None
    stock: int = 0


@dataclass
class Shop:
    id: int
    name: str
    township_id: int
    goods: list[Good]
    clerk_id: int = 0
    account_id: int = 0


def open_stores(writer: Writer, city: City, *, opened: datetime) -> list[Shop]:
    """A moral supermarket (道德超市) in the first village of every township, each with the goods of
    the demo; stock arrives with the year (its first movements)."""
    store_id, item_id = writer.next_id("store"), writer.next_id("item")
    shops, stores, items = [], [], []
    for township in city.townships:
        village = township.villages[0]
        name = f"{village.name}道德超市"
        stores.append((store_id, name, village.id, "每日 9:00–17:00", True, opened))
        goods = []
        for good_name, category, unit, price, _stock, limit in GOODS:
            items.append((item_id, store_id, good_name, category, unit, price, 0, 5, limit, True, opened))
            goods.append(Good(item_id, good_name, unit, price, limit))
            item_id += 1
        shops.append(Shop(store_id, name, township.id, goods))
        store_id += 1
    writer.write("store", STORE, stores)
    writer.write("item", ITEM, items)
    return shops


@dataclass
class Planned:
    starts_at: datetime
    ends_at: datetime
    township: Township
    village: Village
    department_id: int
    department_name: str
    category: str
    title: str
    id: int = 0


@dataclass
class Totals:
    activities: int = 0
    signups: int = 0
    attendances: int = 0
    credits: int = 0
    redemptions: int = 0
    points_issued: int = 0
    points_redeemed: int = 0


@dataclass
class _Resident:
    account_id: int
    township_id: int
    seq: int = 0
    head: str = GENESIS
    balance: int = 0
    last_day: date | None = None
    taken: dict[tuple[int, str], int] = field(default_factory=dict)  # (item, month) → qty (monthly limits)


class Year:
    def __init__(
        self,
        writer: Writer,
        city: City,
        people: People,
        shops: list[Shop],
        *,
        rule: Rule,
        organizer_id: int,
        departments: dict[int, str],
        start: datetime,
        end: datetime,
        zone: ZoneInfo,
        seed: int = 2026,
    ):
        self.w, self.city, self.people, self.shops = writer, city, people, shops
        self.rule, self.organizer_id, self.departments = rule, organizer_id, departments
        self.start, self.end, self.zone = start, end, zone
        self.rng = random.Random(seed)
        self.totals = Totals()
        self.buffers: dict[str, list[tuple]] = {
            t: []
            for t in (
                "activity",
                "signup",
                "attendance",
                "transfer",
                "archive_entry",
                "redemption",
                "redemption_line",
                "stock_movement",
            )
        }
        self.ids = {t: writer.next_id(t) for t in self.buffers}
        self.shop_of = {shop.township_id: shop for shop in shops}
        self.heap: list[tuple[datetime, int, int]] = []  # (when, tie-break, user id): planned visits

    # --- accounts -----------------------------------------------------------------------------

    def open_accounts(self) -> None:
        """An issuer account per department, one per store, and one per volunteer (balance 0; the
        balances and archive anchors are set once the year is written)."""
        next_id = self.w.next_id("account")
        rows = []
        self.issuer: dict[int, int] = {}
        for department_id in sorted(self.departments):
            self.issuer[department_id] = next_id
            rows.append((next_id, "issuer", "department", department_id, 0, 0, 0, GENESIS, self.start))
            next_id += 1
        for shop in self.shops:
            shop.account_id = next_id
            rows.append((next_id, "store", "store", shop.id, 0, 0, 0, GENESIS, self.start))
            next_id += 1
        self.residents: dict[int, _Resident] = {}
        for township_id, pool in sorted(self.people.pools.items()):
            for user_id in pool.user_ids:
                self.residents[user_id] = _Resident(next_id, township_id)
                rows.append((next_id, "resident", "user", user_id, 0, 0, 0, GENESIS, self.start))
                next_id += 1
        self.system_balance: dict[int, int] = {
            a: 0 for a in (*self.issuer.values(), *(s.account_id for s in self.shops))
        }
        self.w.write("account", ACCOUNT, rows)

    def close_accounts(self) -> None:
        self.w.update(
            "account",
            "id",
            ("balance", "archive_count", "archive_head"),
            [(r.account_id, r.balance, r.seq, r.head) for r in self.residents.values() if r.seq],
        )
        self.w.update("account", "id", ("balance",), [(a, b) for a, b in self.system_balance.items() if b])
        self.w.update("item", "id", ("stock",), [(g.id, g.stock) for s in self.shops for g in s.goods])

    # --- the plan of activities -----------------------------------------------------------------

    def plan(self, count: int) -> list[Planned]:
        """`count` activities over the year, in the townships where the volunteers live, more at
        weekends, sorted by start (their ids follow time, as they would have)."""
        rng = self.rng
        townships = [t for t in self.city.townships if self.people.pools[t.id].user_ids] or self.city.townships
        t_weights = [len(self.people.pools[t.id].user_ids) + 1 for t in townships]
        first = self.start.astimezone(self.zone).date()
        days = [first + timedelta(days=n) for n in range((self.end - self.start).days)]
        d_weights = [1.6 if d.weekday() >= 5 else 1.0 for d in days]
        planned = []
        for township, day in zip(
            rng.choices(townships, t_weights, k=count), rng.choices(days, d_weights, k=count), strict=True
        ):
            village = rng.choice(township.villages)
            category = rng.choice(tuple(PLAN))
            hour = rng.choice((19, 20)) if category == "平安巡逻" else rng.choice((8, 9, 10, 14, 15))
            starts = datetime.combine(day, time(hour, rng.choice((0, 30))), tzinfo=self.zone).astimezone(UTC)
            ends = starts + timedelta(hours=rng.choice((2, 2, 3, 3, 4)))
            if ends > self.end:
                starts, ends = starts - timedelta(days=1), ends - timedelta(days=1)
            draw = rng.random()
            if draw < 0.65:
                department_id = village.committee_id
            elif draw < 0.9:
                department_id = township.police_id
            else:
                department_id = rng.choice(township.county.offices)
            title = f"{village.name}{rng.choice(PLAN[category])}"
            if village.level == "community":
                title = title.replace("进村", "进社区").replace("村组", "社区")
            planned.append(
                Planned(
                    starts, ends, township, village, department_id, self.departments[department_id], category, title
                )
            )
        planned.sort(key=lambda p: p.starts_at)
        for p in planned:
            p.id = self._id("activity")
        return planned

    # --- the year, day by day ---------------------------------------------------------------------

    def run(self, planned: list[Planned], participations: int, progress: Callable[[int], None]) -> Totals:
        mean = participations / max(1, len(planned))
        by_day: dict[date, list[Planned]] = {}
        for p in planned:
            by_day.setdefault(p.starts_at.astimezone(self.zone).date(), []).append(p)
        self._stock_up(self.start)
        day = self.start.astimezone(self.zone).date()
        last = self.end.astimezone(self.zone).date()
        while day <= last:
            day_end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)
            events: list[tuple[datetime, int, tuple]] = []
            for p in by_day.get(day, ()):
                events += self._hold(p, mean, day)
            while self.heap and self.heap[0][0] < day_end:
                at, tie, user_id = heapq.heappop(self.heap)
                if at <= self.end:
                    events.append((at, tie, ("redeem", user_id)))
            events.sort(key=lambda e: (e[0], e[1]))
            for at, _tie, event in events:
                if event[0] == "credit":
                    self._credit(at, *event[1:])
                else:
                    self._redeem(at, event[1])
            if sum(len(b) for b in self.buffers.values()) >= FLUSH_ROWS:
                self.flush()
            progress(1)
            day += timedelta(days=1)
        self.flush()
        return self.totals

    def _id(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def _hold(self, p: Planned, mean: float, day: date) -> list[tuple[datetime, int, tuple]]:
        """The activity, its sign-ups and attendances; the credits, to be booked at check-out."""
        rng = self.rng
        capacity = rng.choice((None, 20, 30, 50))
        created = p.starts_at - timedelta(days=rng.randint(3, 14), hours=rng.randint(0, 8))
        status = "closed" if p.ends_at < self.end - timedelta(days=7) else "finished"
        address = f"{p.village.name}{rng.choice(('村部', '文化广场', '党群服务中心'))}"
        self.buffers["activity"].append(
            (
                p.id,
                p.title,
                rng.choice(NOTES),
                p.category,
                p.department_id,
                p.village.id,
                address,
                p.starts_at,
                p.ends_at,
                capacity,
                False,
                rng.random() < 0.3,
                status,
                f"{rng.getrandbits(128):032x}",
                self.organizer_id,
                created,
            )
        )
        self.totals.activities += 1
        pool = self.people.pools[p.township.id]
        wanted = max(1, round(rng.gauss(mean, mean * 0.4)))
        if capacity:
            wanted = min(wanted, capacity)
        chosen: list[int] = []
        if pool.user_ids:
            seen: set[int] = set()
            for user_id in rng.choices(pool.user_ids, cum_weights=pool.cumulative, k=wanted * 2):
                if user_id in seen or self.residents[user_id].last_day == day:
                    continue  # one activity a day each: the daily cap never bites
                seen.add(user_id)
                chosen.append(user_id)
                if len(chosen) == wanted:
                    break
        signed = created + timedelta(hours=rng.randint(1, 48))
        place = {
            "title": p.title,
            "category": p.category,
            "organizer": p.department_name,
            "place": address,
            "date": p.starts_at.isoformat(),
            "activity_id": p.id,
        }
        events = []
        for user_id in chosen:
            self.residents[user_id].last_day = day
            self.buffers["signup"].append(
                (self._id("signup"), p.id, user_id, "confirmed", False, False, signed, signed)
            )
            self.totals.signups += 1
            came = p.starts_at + timedelta(minutes=rng.randint(-15, 10), seconds=rng.randint(0, 59))
            went = p.ends_at + timedelta(minutes=rng.randint(-30, 10), seconds=rng.randint(0, 59))
            earned = credit(came, went, p.starts_at, p.ends_at, self.rule)
            attendance_id = self._id("attendance")
            method = "venue" if rng.random() < 0.8 else "kiosk"
            operator = self.organizer_id if method == "kiosk" else None
            key = f"attendance:{attendance_id}:0"
            self.buffers["attendance"].append(
                (
                    attendance_id,
                    p.id,
                    user_id,
                    came,
                    went,
                    "closed",
                    method,
                    method,
                    operator,
                    False,
                    earned.credited_minutes,
                    earned.points,
                    0,
                    key,
                    went,
                    came,
                    went,
                    earned.credited_minutes,
                    earned.points,
                    0,
                )
            )
            self.totals.attendances += 1
            events.append((went, attendance_id, ("credit", user_id, attendance_id, p, earned, key, operator, place)))
        # A few who signed up and did not come (the organizer's finish marks them).
        for user_id in rng.sample(pool.user_ids, min(len(pool.user_ids), rng.choice((0, 0, 0, 1, 2)))):
            if user_id in chosen:
                continue
            self.buffers["signup"].append(
                (self._id("signup"), p.id, user_id, "confirmed", True, False, signed, p.ends_at)
            )
            self.totals.signups += 1
        return events

    def _entry(self, resident: _Resident, user_id: int, **values) -> None:
        """An archive entry chained to the resident's head (what `archive.append` writes)."""
        resident.seq += 1
        entry = SimpleNamespace(user_id=user_id, seq=resident.seq, prev_hash=resident.head, **values)
        entry.hash = entry_hash(entry)
        resident.head = entry.hash
        row = (self._id("archive_entry"), *(getattr(entry, name) for name in HASHED_FIELDS), entry.hash)
        self.buffers["archive_entry"].append(row)

    def _transfer(
        self, at: datetime, source: int, target: int, amount: int, kind: str, key: str, cause: tuple[str, str], **more
    ) -> int:
        transfer_id = self._id("transfer")
        print_ = fingerprint(source, target, amount, kind, cause[0], cause[1], None)
        self.buffers["transfer"].append(
            (
                transfer_id,
                amount,
                source,
                target,
                kind,
                key,
                print_,
                cause[0],
                cause[1],
                more.get("actor_id"),
                more.get("details"),
                at,
            )
        )
        return transfer_id

    def _credit(self, at: datetime, user_id: int, attendance_id: int, p: Planned, earned, key, operator, place) -> None:
        """What `awards.credit_service` writes for a settled attendance."""
        resident = self.residents[user_id]
        transfer_id = None
        if earned.points > 0:
            issuer = self.issuer[p.department_id]
            transfer_id = self._transfer(
                at,
                issuer,
                resident.account_id,
                earned.points,
                "service",
                key,
                ("attendance", str(attendance_id)),
                actor_id=operator,
                details={"minutes": earned.credited_minutes},
            )
            resident.balance += earned.points
            self.system_balance[issuer] -= earned.points
            self.totals.credits += 1
            self.totals.points_issued += earned.points
            if self.rng.random() < REDEEM_SHARE:
                visit = datetime.combine(
                    at.astimezone(self.zone).date() + timedelta(days=self.rng.randint(1, 20)),
                    time(self.rng.randint(9, 16), self.rng.randint(0, 59), self.rng.randint(0, 59)),
                    tzinfo=self.zone,
                ).astimezone(UTC)
                heapq.heappush(self.heap, (visit, attendance_id, user_id))
        self._entry(
            resident,
            user_id,
            kind="service",
            occurred_at=earned.check_in,
            recorded_at=at,
            summary=f"志愿服务：{p.title}（{earned.explanation()}）"[:255],
            points=earned.points,
            service_minutes=earned.credited_minutes,
            manual=False,
            details={"activity": place, "credit": earned.as_details(), "key": key},
            transfer_id=transfer_id,
            cause_type="service_key",
            cause_id=key,
        )

    def _redeem(self, at: datetime, user_id: int) -> None:
        """What `redemption.redeem` writes for a basket the resident can pay."""
        rng, resident = self.rng, self.residents[user_id]
        shop = self.shop_of[resident.township_id]
        month = at.astimezone(self.zone).strftime("%Y-%m")
        budget = resident.balance
        basket: dict[int, int] = {}
        goods = {g.id: g for g in shop.goods}
        for _ in range(rng.choice((1, 1, 2))):
            choices = [
                g
                for g in shop.goods
                if g.id not in basket
                and g.price <= budget
                and (g.limit is None or resident.taken.get((g.id, month), 0) < g.limit)
            ]
            if not choices:
                break
            good = rng.choice(choices)
            qty = 2 if good.limit is None and good.price * 2 <= budget and rng.random() < 0.3 else 1
            basket[good.id] = qty
            budget -= good.price * qty
        if not basket:
            return
        total = resident.balance - budget
        redemption_id = self._id("redemption")
        key = f"redemption:{shop.id}:{shop.clerk_id}:city-{redemption_id}"
        transfer_id = self._transfer(
            at,
            resident.account_id,
            shop.account_id,
            total,
            "redemption",
            key,
            ("store", str(shop.id)),
            actor_id=shop.clerk_id,
        )
        resident.balance -= total
        self.system_balance[shop.account_id] += total
        self.buffers["redemption"].append(
            (
                redemption_id,
                shop.id,
                user_id,
                shop.clerk_id,
                key,
                total,
                resident.balance,
                "completed",
                transfer_id,
                at,
                False,
                "code",
            )
        )
        for item_id in sorted(basket):
            good, qty = goods[item_id], basket[item_id]
            if good.limit is not None:
                resident.taken[(item_id, month)] = resident.taken.get((item_id, month), 0) + qty
            if good.stock < qty + 5:  # the shop restocks before it runs out (a purchase or a gift)
                self._restock(good, at, shop.clerk_id)
            good.stock -= qty
            self.buffers["redemption_line"].append(
                (self._id("redemption_line"), redemption_id, item_id, good.name, good.unit, qty, good.price)
            )
            self.buffers["stock_movement"].append(
                (
                    self._id("stock_movement"),
                    item_id,
                    -qty,
                    good.stock,
                    "redemption",
                    None,
                    redemption_id,
                    shop.clerk_id,
                    at,
                )
            )
        lines = "、".join(f"{goods[i].name}×{q}" for i, q in sorted(basket.items()))
        self._entry(
            resident,
            user_id,
            kind="redemption",
            occurred_at=at,
            recorded_at=at,
            summary=f"道德超市兑换：{lines}（{shop.name}）"[:255],
            points=-total,
            service_minutes=0,
            manual=False,
            details={
                "redemption_id": redemption_id,
                "store": shop.name,
                "lines": [[goods[i].name, q, goods[i].price] for i, q in sorted(basket.items())],
            },
            transfer_id=transfer_id,
            cause_type="redemption",
            cause_id=str(redemption_id),
        )
        self.totals.redemptions += 1
        self.totals.points_redeemed += total

    def _restock(self, good: Good, at: datetime, clerk_id: int | None) -> None:
        delta = self.rng.choice((20, 30, 50))
        gift = self.rng.random() < 0.3
        good.stock += delta
        self.buffers["stock_movement"].append(
            (
                self._id("stock_movement"),
                good.id,
                delta,
                good.stock,
                "donation" if gift else "purchase",
                self.rng.choice(DONORS) if gift else None,
                None,
                clerk_id,
                at,
            )
        )

    def _stock_up(self, at: datetime) -> None:
        for shop in self.shops:
            for good in shop.goods:
                self._restock(good, at, None)

    def flush(self) -> None:
        """Write what the buffers hold, parents before the rows that name them."""
        columns = {
            "activity": ACTIVITY,
            "signup": SIGNUP,
            "attendance": ATTENDANCE,
            "transfer": TRANSFER,
            "archive_entry": ENTRY,
            "redemption": REDEMPTION,
            "redemption_line": LINE,
            "stock_movement": MOVEMENT,
        }
        for table, rows in self.buffers.items():
            self.w.write(table, columns[table], rows)
            rows.clear()
