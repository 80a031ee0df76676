"""A resident's point balance, as the points domain reports it.

People and places know nothing of points (dependencies point one way), so the points domain gives
each app its reader when it is wired in (`points.init_app`); until then there are no points and no
balance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

EXTENSION = "community.balance_reader"


def register_balance_reader(app: Flask, reader: Callable[[Any], int]) -> None:
    app.extensions[EXTENSION] = reader


def balance(user: Any) -> int:
    reader = current_app.extensions.get(EXTENSION)
    return reader(user) if reader is not None else 0
