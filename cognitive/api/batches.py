"""Batches: many inputs through one program, with counts per status and progress."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive import selectors
from cognitive.api.filters import ExecutionFilter
from cognitive.api.serializers import ExecutionSerializer
from cognitive.models import Batch, ExecutionStatus
from cognitive.selectors_runs import (
    BatchStatus,
    annotated_counts,
    batch_execution_list,
    batch_progress,
    batch_status,
    with_batch_counts,
)
from cognitive.services.batches import batch_cancel, batch_counts


class RunBatchSerializer(serializers.Serializer):
    inputs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    priority = serializers.IntegerField(min_value=0, max_value=9, default=5, help_text="0 runs first, 9 last")


_STATUS_HELP = (
    "derived from the executions': pending (none started), running (some still waiting or running), "
    "completed (all completed), partially_failed (all finished, some completed and some failed), "
    "failed (all finished, some failed, none completed), cancelled (all finished, some cancelled, none failed)"
)


class BatchSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField(help_text=_STATUS_HELP)
    counts = serializers.SerializerMethodField(help_text="executions per status")
    done = serializers.SerializerMethodField(help_text="finished executions (completed, failed or cancelled)")
    progress = serializers.SerializerMethodField(help_text="finished executions / size, 0..1")

    class Meta:
        model = Batch
        fields = ["id", "program", "size", "priority", "status", "counts", "done", "progress", "created_at"]
        read_only_fields = fields

    def _counts(self, obj: Batch) -> dict[str, int]:
        cache = self.context.setdefault("_counts", {})
        if obj.pk not in cache:
            cache[obj.pk] = annotated_counts(obj) or batch_counts(obj)
        return cache[obj.pk]

    @extend_schema_field(serializers.ChoiceField(choices=BatchStatus.choices))
    def get_status(self, obj: Batch) -> str:
        return batch_status(self._counts(obj))

    def get_counts(self, obj: Batch) -> dict[str, int]:
        return self._counts(obj)

    def get_done(self, obj: Batch) -> int:
        return batch_progress(self._counts(obj), obj.size)[0]

    def get_progress(self, obj: Batch) -> float:
        return batch_progress(self._counts(obj), obj.size)[1]


class BatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batches are created by `POST /api/programs/{id}/run-batch/`."""

    queryset = Batch.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = BatchSerializer
    filterset_fields = ["program"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return with_batch_counts(selectors.batch_list(user=self.request.user))

    @extend_schema(request=None, responses=BatchSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        batch = self.get_object()
        batch_cancel(batch=batch)
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data)

    @extend_schema(
        request=None,
        parameters=[OpenApiParameter("status", str, enum=list(ExecutionStatus.values))],
        responses=ExecutionSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def executions(self, request: Request, pk: str | None = None) -> Response:
        """The batch's executions with their outputs, oldest first, paginated; `?status=` narrows them."""
        batch = self.get_object()
        found = ExecutionFilter(request.query_params, queryset=batch_execution_list(batch), request=request)
        if not found.is_valid():
            raise ValidationError(found.errors)
        page = self.paginate_queryset(found.qs)
        data = ExecutionSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)
