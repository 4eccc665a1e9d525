"""Per-LM rpm/tpm limits are enforced at the LM call, before any HTTP request is made."""

from __future__ import annotations

import pytest
from django.apps import apps
from limits.storage import MemoryStorage, RedisStorage

from cognitive.engine import rate_limits
from cognitive.engine.language_models import clear_lm_cache, lm_for
from cognitive.engine.rate_limits import configure_rate_limits, reset_rate_limits
from cognitive.errors import RateLimited
from cognitive.services.lms import lm_rate_limits_configure
from tests.factories import LanguageModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits():
    reset_rate_limits()
    clear_lm_cache()
    yield
    reset_rate_limits()
    clear_lm_cache()


def test_rpm_limit_refuses_the_call_before_it_reaches_the_lm(local_lm):
    row = LanguageModelFactory(name="limited-rpm", api_base=local_lm.url, rpm=2)
    lm = lm_for(row)
    lm("one")
    lm("two")
    with pytest.raises(RateLimited) as refused:
        lm("three")
    assert "2/min" in refused.value.message and 0 < refused.value.retry_after <= 60
    assert local_lm.stats()["chat_requests"] == 2


def test_tpm_limit_counts_the_tokens_really_used(local_lm):
    row = LanguageModelFactory(name="limited-tpm", api_base=local_lm.url, tpm=30)
    lm = lm_for(row)
    with pytest.raises(RateLimited):
        for _ in range(10):
            lm("a short prompt with a few words in it")
    assert 1 <= local_lm.stats()["chat_requests"] < 10


def test_no_limits_means_no_refusals(local_lm):
    lm = lm_for(LanguageModelFactory(name="free", api_base=local_lm.url))
    for i in range(5):
        lm(f"call {i}")
    assert local_lm.stats()["chat_requests"] == 5


def test_the_limits_count_where_the_settings_say(settings):
    """The engine reads no settings: the service configures it (the app's ready hook calls it once)."""
    configured = settings.REDIS_URL
    try:
        settings.REDIS_URL = "redis://127.0.0.1:6399/13"  # never contacted: nothing is counted here
        lm_rate_limits_configure()
        storage = rate_limits._limiter().storage
        assert isinstance(storage, RedisStorage) and storage.storage.connection_pool.connection_kwargs["port"] == 6399
        settings.REDIS_URL = None
        lm_rate_limits_configure()
        assert isinstance(rate_limits._limiter().storage, MemoryStorage)
    finally:
        configure_rate_limits(storage_url=configured)


def test_the_app_configures_the_limits_when_it_is_ready(settings):
    configure_rate_limits(storage_url="redis://127.0.0.1:6399/13")
    try:
        apps.get_app_config("cognitive").ready()
        assert rate_limits._storage_url == settings.REDIS_URL
    finally:
        configure_rate_limits(storage_url=settings.REDIS_URL)
