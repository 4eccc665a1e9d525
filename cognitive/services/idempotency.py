"""Idempotency-Key (draft-ietf-httpapi-idempotency-key-header): a retried request gets the first one's response.

- The first request with a key claims it; its response is stored once work has begun (a run or a
  batch was created), and every later request with that key gets the same status and body back.
- The same key with a different request (method, path or body) is a 422.
- The same key while the first request is still being handled is a 409; retry later.
- A first request that did nothing (a 4xx before any run was created) releases the key, so the
  corrected request may use it again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from cognitive.errors import ApplicationError, Conflict, InvalidInput
from cognitive.models import IdempotentRequest

MAX_KEY_LENGTH = 200
HEADER = "Idempotency-Key"


class IdempotencyKeyReused(ApplicationError):
    """The draft's answer to a key sent again with a different request."""

    status_code = 422


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: Any


def idempotency_key_parse(raw: str) -> str:
    """The key from the header: an sf-string (`"abc"`), or the bare value many clients send."""
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not value:
        raise InvalidInput(f"the {HEADER} header is empty", {"header": HEADER})
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidInput(
            f"the {HEADER} header is {len(value)} characters; at most {MAX_KEY_LENGTH}", {"header": HEADER}
        )
    if not value.isascii() or not value.isprintable():
        raise InvalidInput(f"the {HEADER} header must be printable ASCII", {"header": HEADER})
    return value


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """Key order and whitespace in the JSON body do not change it; any value does."""
    canonical = json.dumps(
        [method.upper(), path, body], sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _abandoned_after() -> timedelta:
    # A first request still unanswered after the longest a run may take was lost (its process died).
    return timedelta(seconds=settings.DSPEX_EXECUTION_TIME_LIMIT)


def idempotent_begin(*, owner: AbstractBaseUser, key: str, fingerprint: str) -> Replay | None:
    """None: this request holds the key and must end with `idempotent_finish` or `idempotent_release`."""
    for _ in range(3):  # the holder may release the key between our insert and our read
        try:
            with transaction.atomic():
                IdempotentRequest.objects.create(owner=owner, key=key, fingerprint=fingerprint)
            return None
        except IntegrityError:
            pass
        first = IdempotentRequest.objects.filter(owner=owner, key=key).first()
        if first is None:
            continue
        if first.fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                f"this {HEADER} was already used for a different request; use a new key for a new request",
                {"header": HEADER},
            )
        if first.status_code is not None:
            return Replay(status_code=first.status_code, body=first.body)
        if first.created_at < timezone.now() - _abandoned_after():
            taken = IdempotentRequest.objects.filter(
                pk=first.pk, status_code__isnull=True, created_at=first.created_at
            ).update(created_at=timezone.now())
            if taken:
                return None
        raise Conflict(
            f"the first request with this {HEADER} is still being processed; retry when it has finished",
            {"header": HEADER},
        )
    raise Conflict(f"this {HEADER} is being claimed concurrently; retry", {"header": HEADER})


def idempotent_finish(*, owner: AbstractBaseUser, key: str, status_code: int, body: Any) -> None:
    """Keep the response to replay. `body` is what was sent (JSON)."""
    IdempotentRequest.objects.filter(owner=owner, key=key, status_code__isnull=True).update(
        status_code=status_code, body=body
    )


def idempotent_release(*, owner: AbstractBaseUser, key: str) -> None:
    IdempotentRequest.objects.filter(owner=owner, key=key, status_code__isnull=True).delete()
