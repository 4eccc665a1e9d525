from typing import Any

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """`?limit=` (default 50) is capped at DSPEX_PAGE_SIZE_MAX; a larger limit gets that many."""

    default_limit = 50

    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return settings.DSPEX_PAGE_SIZE_MAX

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["maximum"] = self.max_limit
                parameter["description"] = f"items per page (default {self.default_limit}, at most {self.max_limit})"
        return parameters
