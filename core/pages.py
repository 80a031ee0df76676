"""What the pages share when a form calls a service: a refusal becomes a message on the page.

A page's POST reads the form and calls one service. When the service refuses (a `DomainError`),
or the form holds what cannot be read (a `ValueError` from parsing a date or a number), the user
sees why as a flash and the page answers with the refusal's status; never a 500. Knows no domain.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import flash

from core.errors import DomainError


@dataclass
class Refusal:
    """What a `refusals()` block ended with: 200 when nothing was refused, else the status to answer."""

    status: int = 200


@contextmanager
def refusals(unreadable: str | None = None) -> Iterator[Refusal]:
    """Run a page's service call; a refusal is flashed and the block ends there.

    A `DomainError` flashes its text and keeps its status. With `unreadable`, a `ValueError` (a date
    or number the form could not give) flashes that message with 422; without it, a ValueError is
    a bug and passes. What follows the call inside the block (its success message, the redirect)
    runs only when nothing was refused:

        with refusals("请选择正确的日期") as refused:
            thing = service.do(...)
            return redirect(url_for(...))
        return render_template(...), refused.status
    """
    refused = Refusal()
    try:
        yield refused
    except DomainError as error:
        flash(error.text, "error")
        refused.status = error.status
    except ValueError:
        if unreadable is None:
            raise
        flash(unreadable, "error")
        refused.status = 422
