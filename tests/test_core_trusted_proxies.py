"""Behind a TLS proxy: the client address and scheme come from as many proxies as are trusted, and
with none trusted a forged X-Forwarded-For changes nothing (a stranger cannot escape a limit nor
make a neighbour's address take the blame)."""

from __future__ import annotations

import pytest
from flask import request

from core.config import ConfigError
from moralcredit import create_app
from tests import factories as f
from tests.test_community_signin import PHONE, WRONG

PROXY = "10.0.0.1"


@pytest.fixture
def probe():
    """An app of its own with a route that tells what it sees of the client."""
    app = create_app("testing", {"SQLALCHEMY_DATABASE_URI": "sqlite://"})

    @app.get("/_probe")
    def seen():
        return {"addr": request.remote_addr, "secure": request.is_secure, "scheme": request.scheme}

    def get(trusted: int, headers: dict) -> dict:
        app.config["TRUSTED_PROXIES"] = trusted
        return app.test_client().get("/_probe", headers=headers, environ_base={"REMOTE_ADDR": PROXY}).get_json()

    return get


FORWARDED = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Forwarded-Proto": "https"}


def test_with_no_trusted_proxy_the_forwarded_headers_are_ignored(probe):
    assert probe(0, FORWARDED) == {"addr": PROXY, "secure": False, "scheme": "http"}


def test_with_one_trusted_proxy_the_address_it_saw_and_its_scheme_are_the_clients(probe):
    # The proxy appends the address it saw; what the client wrote before it is not believed.
    assert probe(1, FORWARDED) == {"addr": "198.51.100.7", "secure": True, "scheme": "https"}
    assert probe(1, {"X-Forwarded-For": "198.51.100.8"}) == {"addr": "198.51.100.8", "secure": False, "scheme": "http"}


def test_with_two_trusted_proxies_the_client_is_the_second_from_the_right(probe):
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.0.0.2", "X-Forwarded-Proto": "https, http"}
    assert probe(2, headers) == {"addr": "198.51.100.7", "secure": True, "scheme": "https"}


def test_a_negative_number_of_proxies_is_refused():
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app("testing", {"TRUSTED_PROXIES": -1})


@pytest.fixture
def resident(app):
    f.region("4301", "桃江县", "county")
    return f.user("4301", name="李四", phone=PHONE)


@pytest.fixture
def trusting(app):
    def trust(count: int) -> None:
        app.config["TRUSTED_PROXIES"] = count

    yield trust
    app.config["TRUSTED_PROXIES"] = 0


def sign_in(client, password: str, *, forwarded_for: str | None = None):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post(
        "/api/v1/auth/token",
        json={"phone": PHONE, "password": password},
        headers=headers,
        environ_base={"REMOTE_ADDR": PROXY},
    )


def test_behind_one_trusted_proxy_residents_of_a_village_office_are_told_apart(client, resident, trusting):
    trusting(1)
    stranger = [sign_in(client, WRONG, forwarded_for="198.51.100.66").status_code for _ in range(5)]
    assert stranger == [401, 401, 401, 429, 429]
    # The same account from the next desk of the office, behind the same proxy: not slowed.
    assert sign_in(client, f.PASSWORD, forwarded_for="198.51.100.67").status_code == 200


def test_with_no_trusted_proxy_a_forged_address_neither_escapes_nor_frames(client, resident, trusting):
    trusting(0)
    forged = [sign_in(client, WRONG, forwarded_for=f"198.51.100.{i}").status_code for i in range(5)]
    assert forged == [401, 401, 401, 429, 429], "a new forged address each time does not escape the slowing"
    # Everyone coming through that connection shares its address, and so its slowing.
    assert sign_in(client, f.PASSWORD, forwarded_for="198.51.100.67").status_code == 429
    # The slowing sits on the connection's own address, not on the address the stranger named.
    body = {"phone": PHONE, "password": f.PASSWORD}
    direct = client.post("/api/v1/auth/token", json=body, environ_base={"REMOTE_ADDR": "198.51.100.1"})
    assert direct.status_code == 200
