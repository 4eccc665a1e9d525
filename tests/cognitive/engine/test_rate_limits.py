"""Per-LM rpm/tpm limits are enforced at the LM call, before any HTTP request is made."""

from __future__ import annotations

import pytest

from cognitive import ratelimit
from cognitive.engine.language_models import clear_lm_cache, lm_for
from cognitive.errors import RateLimited
from tests.factories import LanguageModelFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_limits():
    ratelimit._limiter.cache_clear()
    clear_lm_cache()
    yield
    ratelimit._limiter().storage.reset()
    ratelimit._limiter.cache_clear()
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
