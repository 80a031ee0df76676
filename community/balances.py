"""A resident's point balance, as the points domain reports it.

People and places know nothing of points (dependencies point one way), so the points domain
registers its reader here when it is wired in; until then there are no points and no balance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

_reader: Callable[[Any], int] | None = None


def register_balance_reader(reader: Callable[[Any], int]) -> None:
    global _reader
    _reader = reader


def balance(user: Any) -> int:
    return _reader(user) if _reader is not None else 0
