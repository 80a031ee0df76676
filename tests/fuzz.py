"""Fuzzing the JSON API from its own OpenAPI document (schemathesis, in process through WSGI).

Every operation of `/api/openapi.json` gets generated requests, valid (positive) and invalid
(negative), each sent with a bearer token of a role drawn at random (or none). A response fails when
it is a 5xx, has a status the document does not list for that operation, another content type, or a
body that breaks its documented schema (errors must be problem+json). The test suite runs this
briefly (tests/test_api_fuzz.py), `bench/fuzz_api.py` for long.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# Run last: they take a caller's account (or its token) away, and the others would then see only 401s.
LAST = ("POST /api/v1/me/close", "PATCH /api/v1/users/{user_id}", "POST /api/v1/users/{user_id}/password-reset")


ROLES = ("resident", "organizer", "clerk", "grid_worker", "reviewer", "admin")


def fuzz_world() -> tuple[dict[str, str | None], dict[str, list]]:
    """A small county (tests.authz) with an activity running, a sign-up waiting, deeds, an objection,
    an adjustment, a certificate and a redemption; a bearer token per role (and none); and the ids of
    real objects per path parameter, so that generated requests also reach what is there."""
    from tests import factories as f
    from tests import test_exchange_authz as exchange
    from tests import test_points_authz as points
    from tests import volunteer_helpers as volunteer
    from tests.authz import build_world

    w = build_world()
    running = volunteer.running(w)
    pending_activity, pending_signup = volunteer.pending_signup(w)
    deed_id, objection_id = points.objection(w)
    tokens: dict[str, str | None] = {role: f.token(w.users[role]) for role in ROLES}
    tokens["anonymous"] = None
    known = {
        "activity_id": [running, pending_activity, volunteer.upcoming(w)],
        "signup_id": [pending_signup],
        "user_id": [w.users["resident"].id, w.users["target"].id],
        "resident_id": [w.users["resident"].id],
        "deed_id": [deed_id, points.pending_deed(w)],
        "objection_id": [objection_id],
        "adjustment_id": [points.pending_adjustment(w)],
        "code": [points.certificate_code(w), "4301", "haorenhaoshi"],
        "region_code": ["4301", "430101", "4301010101"],
        "store_id": [w.stores["s1"].id],
        "item_id": [w.items["oil"].id, w.items["rice"].id],
        "redemption_id": [exchange.a_redemption(w)],
    }
    return tokens, known


@dataclass
class Report:
    cases: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)  # (operation, check) → an example

    def lines(self) -> list[str]:
        return [f"{op} · {check}: {example}" for (op, check), example in sorted(self.failures.items())]


def _describe(case, response, failure: Failure) -> str:
    body = case.body if not isinstance(case.body, bytes | bytearray) else f"<{len(case.body)} bytes>"
    text = response.content[:300].decode("utf-8", "replace")
    return (
        f"{failure.title}: {failure.message[:300]} | sent path={case.path_parameters} query={case.query} "
        f"body={str(body)[:300]} | got {response.status_code} {response.headers.get('content-type')} {text}"
    )


def _send(report: Report, label: str, case, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A context of its own, as in production: Flask reuses an app context already pushed (a test's),
    # and with it `g`, where the previous request's bearer user would still be signed in.
    response = contextvars.Context().run(case.call, headers=headers)
    report.cases += 1
    report.by_operation[label] += 1
    report.statuses[response.status_code] += 1
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except FailureGroup as group:
        for failure in group.exceptions:
            report.failures.setdefault((label, failure.title), _describe(case, response, failure))
    except Failure as failure:
        report.failures.setdefault((label, failure.title), _describe(case, response, failure))


def _strategy(operation, mode, known: dict[str, list]):
    """Generated requests; half of them with path parameters that name real objects."""
    generated = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters]
    if not names or not all(name in known for name in names):
        return generated
    real = st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names})
    return st.one_of(
        generated, real.flatmap(lambda values: operation.as_strategy(generation_mode=mode, path_parameters=values))
    )


def _fuzz(report: Report, operation, mode, tokens: dict[str, str | None], known, examples: int, seed: int) -> None:
    @seeded(seed)  # the same seed, the same requests
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(operation, mode, known), role=st.sampled_from(sorted(tokens)))
    def send(case, role) -> None:
        _send(report, operation.label, case, tokens[role])

    with contextlib.suppress(Unsatisfiable):  # nothing of this operation can be sent wrong
        send()


def run(
    app,
    tokens: dict[str, str | None],
    known: dict[str, list],
    *,
    examples: int,
    seed: int = 0,
    negative: bool = True,
) -> Report:
    """Send up to `examples` generated requests per operation and generation mode; report failures."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: op.label in LAST)
    modes = [schemathesis.GenerationMode.POSITIVE] + ([schemathesis.GenerationMode.NEGATIVE] if negative else [])
    report = Report()
    for operation in operations:
        for mode in modes:
            _fuzz(report, operation, mode, tokens, known, examples, seed)
    return report
