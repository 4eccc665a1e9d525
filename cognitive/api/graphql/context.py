"""The context of one GraphQL request: the authenticated user and the request's loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import strawberry
from strawberry.django.context import StrawberryDjangoContext

from cognitive.api.graphql.loaders import Loaders


@dataclass
class Context(StrawberryDjangoContext):
    loaders: Loaders = field(default_factory=Loaders)

    @property
    def user(self) -> Any:
        return self.request.user


Info = strawberry.Info[Context, None]
