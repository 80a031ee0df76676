"""After signing in, the page goes back only to a path on this site: never to another host, however
the `next` parameter dresses it up (tabs and newlines browsers drop, backslashes they read as
slashes, percent-encoding, a scheme)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests import factories as f
from tests.authz import csrf_token

PHONE = "13912345678"


@pytest.fixture
def resident(app):
    f.region("4301", "桃江县", "county")
    f.region("430101", "桃花江镇", "township", "4301")
    f.region("43010101", "花果山村", "village", "430101")
    return f.user("43010101", phone=PHONE)


def sign_in(client, next_value: str):
    return client.post(
        "/login?next=" + quote(next_value, safe=""),
        data={"phone": PHONE, "password": f.PASSWORD, "csrf_token": csrf_token(client)},
    )


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        " //evil.example",
        "https://evil.example",
        "javascript:alert(1)",
        "evil.example",
    ],
)
def test_signing_in_never_redirects_to_another_site(client, resident, target):
    response = sign_in(client, target)
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_the_encoded_tab_trick_from_the_issue_lands_on_the_home_page(client, resident):
    # The issue's literal URL: `next=/%09/evil.example` as a browser sends it.
    response = client.post(
        "/login?next=/%09/evil.example",
        data={"phone": PHONE, "password": f.PASSWORD, "csrf_token": csrf_token(client)},
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/my/archive", "/activities?q=%E6%B8%85%E7%90%86&category=x", "/deeds/review"])
def test_signing_in_returns_to_the_page_on_this_site_that_asked_for_it(client, resident, target):
    response = sign_in(client, target)
    assert response.status_code == 302 and response.headers["Location"] == target
