"""Sign-in is throttled per username and per client address, and failures are logged (issue 11).

Before: `POST /api/auth/token/` took unlimited wrong passwords and logged nothing.
"""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from django.core.cache import cache

pytestmark = pytest.mark.django_db

PASSWORD_GUESS = "hunter2-guess"


@pytest.fixture(autouse=True)
def _login_rates(settings):
    cache.clear()
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login-username": "3/min", "login-address": "5/min"}
    # DRF copies the rates into the throttle class when it is first imported.
    with mock.patch("rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", rates):
        yield
    cache.clear()


def sign_in(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post("/api/auth/token/", {"username": username, "password": password}, format="json",
                       REMOTE_ADDR=address)


def test_wrong_passwords_for_one_username_are_throttled_from_any_address(client_for, user):
    client = client_for()
    codes = [sign_in(client, user.username, PASSWORD_GUESS, f"10.0.0.{i}").status_code for i in range(4)]
    refused = sign_in(client, user.username, "pw", "10.0.0.99")  # even the right password waits now

    assert codes == [400, 400, 400, 429]
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert set(refused.json()) == {"message", "extra"}


def test_one_address_trying_many_usernames_is_throttled(client_for):
    client = client_for()
    codes = [sign_in(client, f"someone{i}", PASSWORD_GUESS).status_code for i in range(6)]
    assert codes == [400] * 5 + [429]
    # X-Forwarded-For is not trusted by default, so a client cannot pick a fresh address per attempt.
    spoofed = client.post("/api/auth/token/", {"username": "x", "password": "y"}, format="json",
                          REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.7")
    assert spoofed.status_code == 429


def test_the_right_password_signs_in(client_for, user):
    response = sign_in(client_for(), user.username, "pw")
    assert response.status_code == 200 and response.json()["token"]


def test_failures_are_logged_without_the_password(client_for, user, caplog):
    with caplog.at_level(logging.WARNING, logger="cognitive.api.auth"):
        sign_in(client_for(), user.username, PASSWORD_GUESS, "10.0.0.7")

    [record] = [r for r in caplog.records if r.name == "cognitive.api.auth"]
    assert user.username in record.getMessage() and "10.0.0.7" in record.getMessage()
    assert PASSWORD_GUESS not in caplog.text
