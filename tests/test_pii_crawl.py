"""No full phone or ID number of another person on anything a clerk, grid worker, organizer or
reviewer can reach (DESIGN §8: shown masked except to the person and the admins of their region).

Residents with known phones and ID numbers sign up, check in, get deeds recorded and redeem goods,
so that the staff's pages list them. Each staff caller then crawls from the home page and their
own area: every same-site link, GET only, breadth first and bounded; and every API GET of the URL
map with ids in scope (tests/walk.py). A full phone or ID number of anyone but the caller fails.
"""

from __future__ import annotations

import html
import io
import re
from collections import deque
from urllib.parse import urljoin, urlsplit

import openpyxl
import sqlalchemy as sa

from community.models import User
from community.pii import _CHECK, _WEIGHTS, mask_phone
from core.db import db, utcnow
from exchange import redemption
from points import deeds
from tests import factories as f
from tests.volunteer_helpers import running, upcoming
from tests.walk import (
    CALLERS,
    build_walk_world,
    callers,
    matrix_cases,
    reached,
    request_for,
    walkable_rules,
    watching_refusals,
)
from volunteer import signups

MAX_PAGES = 300  # per caller; the pages of the seeded county number far fewer
LINK = re.compile(r"""(?:href|src)\s*=\s*["']([^"']+)["']""")


def homes(w) -> dict[str, list[str]]:
    """Where each caller starts: the home page, their own area, and what they type into a search
    (the counter finds a resident by name and phone tail, a proxy sign-up by part of the name)."""
    store = w.stores["s1"].id
    search = "name=居民甲&phone_tail=0001"
    receipts = [f"/stores/{store}/receipts/{r}" for r in w.extra["crawl_redemptions"]]
    clerk = ["/", "/stores/", f"/stores/{store}/counter?{search}", f"/api/v1/stores/{store}/residents?{search}"]
    return {
        "clerk": [*clerk, *receipts],
        "grid_worker": ["/", "/deeds/new", f"/activities/{running(w)}/proxy?q=居民"],
        "organizer": ["/", "/organizer/", f"/activities/{running(w)}/proxy?q=居民"],
        "reviewer": ["/", "/deeds/review", "/reviewer/makeups", "/admin/residents", "/stats/"],
    }


def id_number(n: int) -> str:
    """A valid 18-digit ID number (GB 11643 check digit), distinct for each `n`."""
    body = f"43010119{80 + n % 20:02d}0{1 + n % 9}1{n % 10}{n:03d}"
    return body + _CHECK[sum(int(d) * w for d, w in zip(body, _WEIGHTS, strict=True)) % 11]


def seed_people(w) -> dict[str, str]:
    """Residents of both grids whose data the staff's pages show: signed up for the activities,
    deeds recorded (one on notice), goods redeemed at store 1. Answers {ID number: name}."""
    ids = {}
    grid_workers = {"4301010101": w.users["grid_worker"], "4301020101": w.users["grid_worker_elsewhere"]}
    for n, grid in enumerate(["4301010101"] * 5 + ["4301020101"] * 2):
        number = id_number(n)
        person = f.user(grid, name=f"居民{'甲乙丙丁戊己庚'[n]}", phone=f"1380000{n + 1:04d}", id_number=number)
        ids[number] = person.name
        for activity_id in (running(w), upcoming(w)):
            signups.sign_up(user=person, activity_id=activity_id, now=utcnow())
        deed = deeds.record(
            actor=grid_workers[grid],
            resident_id=person.id,
            deed_type="haorenhaoshi",
            description="帮助邻居",
            occurred_on=utcnow().date(),
            now=utcnow(),
        )
        if n % 2:
            reviewer = w.users["reviewer"] if grid == "4301010101" else w.users["reviewer_elsewhere"]
            deeds.approve(actor=reviewer, deed_id=deed.id, now=utcnow())
        if grid == "4301010101":
            f.fund(person, 50)
            w.extra.setdefault("crawl_redemptions", []).append(
                redemption.redeem(
                    actor=w.users["clerk"],
                    store_id=w.stores["s1"].id,
                    lines=[redemption.Line(w.items["rice"].id, 1)],
                    key=f"crawl-{n}",
                    resident_id=person.id,
                    now=utcnow(),
                ).id
            )
    return ids


def text_of(response) -> str:
    if response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet":
        book = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True)
        return "\n".join(
            str(cell) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for cell in row
        )
    if response.mimetype.startswith("image/"):
        return ""
    return html.unescape(response.get_data(as_text=True))


def links(base: str, page: str) -> list[str]:
    found = []
    for href in LINK.findall(page):
        url = urlsplit(urljoin(base, html.unescape(href)))
        if url.scheme not in ("", "http") or url.netloc not in ("", "localhost"):
            continue
        if url.path.startswith("/static/") or url.path == "/logout":
            continue
        found.append(url.path + (f"?{url.query}" if url.query else ""))
    return found


def crawl(caller, starts: list[str]) -> list[tuple[str, object]]:
    """Breadth first over same-site links from `starts`, GET only, at most MAX_PAGES pages."""
    seen, queue, answers = set(starts), deque(starts), []
    while queue and len(answers) < MAX_PAGES:
        path = queue.popleft()
        response = caller.get(path)
        answers.append((path, response))
        following = []
        if response.status_code in (301, 302, 303) and "Location" in response.headers:
            following = links(path, f'href="{response.headers["Location"]}"')
        elif response.mimetype == "text/html":
            following = links(path, response.get_data(as_text=True))
        for url in following:
            if url not in seen:
                seen.add(url)
                queue.append(url)
    return answers


def test_staff_never_see_a_full_phone_or_id_number_of_anyone_else(app, backend):
    matrix_cases(app)
    backend.reset()
    w = build_walk_world()
    ids = seed_people(w)
    phones = dict(db.session.execute(sa.select(User.phone, User.id)).all())
    seeded = {u.name: mask_phone(u.phone) for u in db.session.scalars(sa.select(User).where(User.name.like("居民%")))}
    people = callers(app, w)
    api_gets = [rule for rule, method in walkable_rules(app) if method == "GET" and rule.rule.startswith("/api/")]
    problems, covered = [], {}
    with watching_refusals():
        for role, starts in homes(w).items():
            caller = people[role]
            me = w.users[CALLERS[role]]
            forbidden = {p: "phone" for p, who in phones.items() if who != me.id} | dict.fromkeys(ids, "ID number")
            pages = crawl(caller, starts)
            apis = [(path, caller.get(path)) for path in (request_for(rule, "GET", w)[0] for rule in api_gets)]
            seen_people = set()
            for path, response in pages + apis:
                text = text_of(response)
                problems.extend(
                    f"{role} sees a full {kind} on {path}" for value, kind in forbidden.items() if value in text
                )
                seen_people.update(n for n in seeded if n in text or seeded[n] in text)
            covered[role] = (
                sum(reached(p, r) and r.status_code == 200 for p, r in pages),
                sum(reached(p, r) for p, r in apis),
                len(seen_people),
            )
            # The crawl is not vacuous: the caller's pages list seeded people (by name or masked phone).
            assert seen_people, f"{role}'s crawl met none of the seeded people: {[p for p, _ in pages]}"
    print("PII crawl (pages read, API answers reached, seeded people shown):", covered)
    assert not problems, "\n".join(sorted(set(problems)))
