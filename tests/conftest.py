from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import StaffFactory, UserFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # The production hasher is slow on purpose; every factory user would pay for it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user():
    return UserFactory()


@pytest.fixture
def other_user():
    return UserFactory()


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client authenticated with the user's token (`Authorization: Token <key>`), or anonymous."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def api(client_for, user) -> APIClient:
    return client_for(user)


@pytest.fixture
def broker_messages() -> Iterator[defaultdict[str, mock.Mock]]:
    """Stands in for the broker: what was published goes to one mock per task name."""
    queues: defaultdict[str, mock.Mock] = defaultdict(mock.Mock)

    def send_task(name: str, **options: object) -> None:
        queues[name](**options)

    with mock.patch("cognitive.services.jobs.publishing.send_task", side_effect=send_task):
        yield queues


@pytest.fixture
def no_broker(broker_messages):
    """The executions queue's single-id messages; nothing needs a broker."""
    return broker_messages["workers.executions.run"]
