"""Sign-in: a token for a username and password, throttled per username and per client address."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive.api.parsers import CheckedJSONParser
from cognitive.api.throttles import LoginAddressThrottle, LoginUsernameThrottle

logger = logging.getLogger(__name__)


class TokenView(ObtainAuthToken):
    """`POST {username, password}` → `{token}`. Too many attempts: 429 with Retry-After."""

    throttle_classes = [LoginUsernameThrottle, LoginAddressThrottle]
    parser_classes = [CheckedJSONParser, FormParser, MultiPartParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().post(request, *args, **kwargs)
        except ValidationError:
            username = request.data.get("username") if hasattr(request.data, "get") else None
            # Never the password; the username is cut short and repr'd so it cannot forge log lines.
            logger.warning(
                "sign-in failed for username=%r from %s", str(username)[:150] if username else None,
                LoginAddressThrottle().get_ident(request),
            )
            raise
