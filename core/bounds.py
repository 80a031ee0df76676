"""Bounds at the edge: every integer a client sends is read from ASCII digits and kept within what
its column holds.

`str.isdigit()` says yes to "²" and "١", which `int()` then refuses (a 500) or reads as another
number; an integer beyond a 32-bit column overflows in the database driver (another 500). So every
parser of a token, a code or a form number goes through `parse_int`, schemas bound their Integer
fields with `Range` inside `INT_MIN..INT_MAX`, and URL ids use `BoundedIntConverter`. Nothing here
knows a domain; callers choose tighter ranges where the domain has them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from marshmallow import validate
from werkzeug.routing import IntegerConverter

from core.errors import Invalid

# An `Integer` column on PostgreSQL is 32-bit; SQLite would take more, but both must agree.
INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
# Points and goods: far above any real price, balance step or delivery, far below an overflow when
# a few of them are added or multiplied by a small quantity.
# (50 lines x 99 pieces x POINTS_MAX stays inside a 32-bit total.)
POINTS_MAX = 100_000
STOCK_MAX = 1_000_000
CAPACITY_MAX = 100_000

# A client-sent row id: positive and inside the column.
ID = validate.Range(min=1, max=INT_MAX, error="编号无效")

_INTEGER = re.compile(r"-?[0-9]{1,18}", re.ASCII)


def is_ascii_digits(text: str) -> bool:
    """True for a non-empty run of the digits 0-9 and nothing else (no "²", no full-width digits)."""
    return bool(text) and text.isascii() and text.isdigit()


def parse_int(text: str | None, *, minimum: int = INT_MIN, maximum: int = INT_MAX) -> int:
    """The integer spelled by `text` (ASCII digits, an optional minus, surrounding blanks ignored),
    or ValueError when it is not one or lies outside [minimum, maximum]."""
    value = (text or "").strip()
    if not _INTEGER.fullmatch(value):
        raise ValueError(f"not an integer: {value[:20]!r}")
    number = int(value)
    if not minimum <= number <= maximum:
        raise ValueError(f"out of range: {number}")
    return number


def range_text(minimum: int, maximum: int) -> str:
    return f"请输入 {minimum}–{maximum} 之间的整数"


def form_int(
    form: Mapping[str, str],
    name: str,
    *,
    minimum: int = INT_MIN,
    maximum: int = INT_MAX,
    default: int | None = None,
    required: bool = False,
    message: str | None = None,
) -> int | None:
    """A number typed into a page's form field, `default` when left empty; a bad one raises a 422
    naming the field, so the page can say what is wrong and show the form again as typed."""
    raw = (form.get(name) or "").strip()
    if not raw:
        if required:
            raise Invalid(errors={name: [message or "请填写此项"]})
        return default
    try:
        return parse_int(raw, minimum=minimum, maximum=maximum)
    except ValueError:
        raise Invalid(errors={name: [message or range_text(minimum, maximum)]}) from None


def digits_up_to(limit: int) -> str:
    """A regular expression for the decimal numbers 0..`limit` (leading zeros allowed)."""
    text = str(limit)
    choices = [f"[0-9]{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        low = 1 if i == 0 and len(text) > 1 else 0
        if int(digit) > low:
            rest = len(text) - i - 1
            choices.append(text[:i] + f"[{low}-{int(digit) - 1}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    choices.append(text)
    return "0*(?:" + "|".join(choices) + ")"


class BoundedIntConverter(IntegerConverter):
    """`<int:...>` in a URL: ASCII digits only and at most INT_MAX, else the route does not match
    (404) instead of a database overflow. The bound is in the pattern itself: a number the pattern
    took but the converter refused would make Werkzeug answer 405 when the same path has a route
    for another method."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = None, signed=False):
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=INT_MAX if max is None else max, signed=signed)
        self.regex = digits_up_to(self.max)
