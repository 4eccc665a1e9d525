"""Who may do what, for REST, GraphQL and the admin: the scoping the selectors apply, and DRF permissions."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from cognitive.models import ProgramStatus

# An optimization works on a copy in the background; the program keeps serving its active version.
RUNNABLE_PROGRAM_STATUSES = (ProgramStatus.ACTIVE, ProgramStatus.OPTIMIZING)


def is_staff(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user and user.is_authenticated and user.is_staff)


def owned(queryset: QuerySet, user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    """Owner scoping: staff see every row, anyone else only their own."""
    return queryset if is_staff(user) else queryset.filter(owner=user)


def readable_programs(queryset: QuerySet, user: AbstractBaseUser | AnonymousUser) -> QuerySet:
    """The original design's read policy: archived programs are invisible except to staff."""
    return queryset if is_staff(user) else owned(queryset, user).exclude(status=ProgramStatus.ARCHIVED)


class IsStaffOrReadOnly(BasePermission):
    message = "only staff may change language models"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or is_staff(request.user)


class IsOwnerOrStaff(BasePermission):
    message = "this resource belongs to another user"

    def has_permission(self, request: Request, view: Any) -> bool:
        # Replacing DRF's default IsAuthenticated must not open the route to anonymous callers.
        return bool(request.user and request.user.is_authenticated)

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        return is_staff(request.user) or getattr(obj, "owner_id", None) == request.user.pk
