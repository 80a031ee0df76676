"""The archive root: one hash over every resident's archive head, published monthly (DESIGN §3).

A leaf per resident with archive entries: SHA-256 of `0x00 ‖ "<user id>:<entries>:<head hash>"`;
inner nodes SHA-256 of `0x01 ‖ left ‖ right` over the leaves in user-id order, the tree shaped as in
RFC 6962 (Certificate Transparency), so anyone with the list of heads can recompute it. The root is
taken "as of" a mark, the highest archive entry id at a moment when every entry up to it was
committed (`take_mark`): entries are append-only, so the heads as of a mark never change, and
recomputing an old root later finds any rewrite of the history before it — even by someone who
rewrote a whole chain and its anchor consistently. Heads are read in bounded batches of residents
and folded into the tree as they come (memory: one hash per level).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from core.db import db, insert_if_absent, is_postgresql, unit_of_work
from points.models import ArchiveEntry, ArchiveRoot

BATCH = 10_000
EMPTY = hashlib.sha256(b"").hexdigest()


def leaf(user_id: int, entries: int, head: str) -> bytes:
    return hashlib.sha256(b"\x00" + f"{user_id}:{entries}:{head}".encode()).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Tree:
    """Fold leaves into an RFC 6962 Merkle tree as they come: a stack of perfect subtrees."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []  # (leaves under it, hash), sizes strictly falling
        self.leaves = 0

    def add(self, digest: bytes) -> None:
        size = 1
        while self.stack and self.stack[-1][0] == size:
            below, left = self.stack.pop()
            digest, size = node(left, digest), size + below
        self.stack.append((size, digest))
        self.leaves += 1

    def root(self) -> str:
        if not self.stack:
            return EMPTY
        digest = self.stack[-1][1]
        for _size, left in reversed(self.stack[:-1]):
            digest = node(left, digest)
        return digest.hex()


def take_mark(session: Session) -> int:
    """The highest archive entry id such that every entry up to it is committed. On PostgreSQL a
    SHARE lock waits for the transactions that are inserting entries and is released at once (it
    is held for one statement's time); SQLite commits one writer at a time, in id order."""
    if is_postgresql(session):
        with unit_of_work() as locked:
            locked.execute(sa.text("LOCK TABLE archive_entry IN SHARE MODE"))
            return int(locked.scalar(sa.select(sa.func.coalesce(sa.func.max(ArchiveEntry.id), 0))) or 0)
    return int(session.scalar(sa.select(sa.func.coalesce(sa.func.max(ArchiveEntry.id), 0))) or 0)


def heads(session: Session, mark: int) -> Iterator[tuple[int, int, str]]:
    """(user id, entries, head hash) of every archive as of `mark`, in user-id order, in batches."""
    after = 0
    while True:
        last = (
            sa.select(
                ArchiveEntry.user_id.label("user_id"),
                sa.func.max(ArchiveEntry.seq).label("seq"),
                sa.func.count().label("entries"),
            )
            .where(ArchiveEntry.id <= mark, ArchiveEntry.user_id > after)
            .group_by(ArchiveEntry.user_id)
            .order_by(ArchiveEntry.user_id)
            .limit(BATCH)
            .subquery()
        )
        rows = session.execute(
            sa.select(last.c.user_id, last.c.entries, ArchiveEntry.hash)
            .join(ArchiveEntry, sa.and_(ArchiveEntry.user_id == last.c.user_id, ArchiveEntry.seq == last.c.seq))
            .order_by(last.c.user_id)
        ).all()
        for user_id, entries, head in rows:
            yield int(user_id), int(entries), head
        if len(rows) < BATCH:
            return
        after = rows[-1][0]


@dataclass
class Root:
    mark: int
    root: str
    leaves: int


def compute(session: Session, mark: int) -> Root:
    tree = Tree()
    for user_id, entries, head in heads(session, mark):
        tree.add(leaf(user_id, entries, head))
    return Root(mark, tree.root(), tree.leaves)


def publish(*, now: datetime) -> ArchiveRoot:
    """Take a mark, compute the root as of it and keep it (once per mark); returns the published row."""
    session = db.session
    mark = take_mark(session)
    found = session.scalar(sa.select(ArchiveRoot).where(ArchiveRoot.mark == mark))
    if found is not None:
        return found
    computed = compute(session, mark)
    session.rollback()  # the reads above end here; the write is a transaction of its own
    with unit_of_work() as session:
        values = {"mark": mark, "root": computed.root, "leaves": computed.leaves, "created_at": now}
        insert_if_absent(session, ArchiveRoot, values, ("mark",))
    return db.session.scalar(sa.select(ArchiveRoot).where(ArchiveRoot.mark == mark))


def latest(session: Session) -> ArchiveRoot | None:
    return session.scalar(sa.select(ArchiveRoot).order_by(ArchiveRoot.mark.desc()).limit(1))


def problems(session: Session) -> list[str]:
    """Recompute the latest published root from the archives as they are now; a difference means
    an entry up to its mark was rewritten, deleted or added since it was published."""
    published = latest(session)
    if published is None:
        return []
    again = compute(session, published.mark)
    if (again.root, again.leaves) != (published.root, published.leaves):
        return [
            f"the archive root published {published.created_at:%Y-%m-%d} over {published.leaves} archives "
            f"(entries up to {published.mark}) was {published.root}; the archives now give {again.root} over "
            f"{again.leaves}: an archive was changed after it was published"
        ]
    return []
