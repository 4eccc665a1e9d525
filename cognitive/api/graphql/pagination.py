"""Cursor pagination for every list: keyset on (created_at, id), newest first, with a bounded page size.

A cursor is the position of a row, not an offset, so a page costs the same at any depth and a
row inserted meanwhile never shifts the next page.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Generic, TypeVar

import strawberry
from django.conf import settings
from django.db.models import Q, QuerySet

from cognitive.errors import InvalidInput

NodeType = TypeVar("NodeType")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeType]):
    cursor: str
    node: NodeType


@strawberry.type
class Connection(Generic[NodeType]):
    edges: list[Edge[NodeType]]
    page_info: PageInfo
    queryset: strawberry.Private[QuerySet]

    @strawberry.field(description="rows matching the filter (one COUNT query, run only when asked for)")
    def total_count(self) -> int:
        return self.queryset.order_by().count()


def encode_cursor(created_at: datetime, pk: object) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, pk = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created), uuid.UUID(pk)
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidInput("after: not a cursor from this API", {"field": "after"}) from None


def page_size(first: int | None) -> int:
    limit = settings.DSPEX_GRAPHQL_PAGE_MAX
    if first is None:
        return min(settings.DSPEX_GRAPHQL_PAGE_DEFAULT, limit)
    if not 1 <= first <= limit:
        raise InvalidInput(f"first must be from 1 to {limit}", {"field": "first"})
    return first


def paginate(queryset: QuerySet, *, first: int | None, after: str | None) -> Connection:
    """One page, newest first. The rows' own `created_at` and `id` are the cursor."""
    size = page_size(first)
    ordered = queryset.order_by("-created_at", "-id")
    if after:
        created_at, pk = decode_cursor(after)
        ordered = ordered.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows = list(ordered[: size + 1])
    edges = [Edge(cursor=encode_cursor(row.created_at, row.pk), node=row) for row in rows[:size]]
    return Connection(
        edges=edges,
        page_info=PageInfo(has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None),
        queryset=queryset,
    )
