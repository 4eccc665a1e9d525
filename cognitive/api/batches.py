"""Batches: many inputs through one program, with counts per status and progress."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive import selectors
from cognitive.models import Batch, ExecutionStatus
from cognitive.services.batches import batch_cancel, batch_counts


class RunBatchSerializer(serializers.Serializer):
    inputs = serializers.ListField(child=serializers.JSONField(), allow_empty=False)
    priority = serializers.IntegerField(min_value=0, max_value=9, default=5, help_text="0 runs first, 9 last")


class BatchSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField(help_text="executions per status")
    progress = serializers.SerializerMethodField(help_text="finished executions / size, 0..1")

    class Meta:
        model = Batch
        fields = ["id", "program", "size", "priority", "counts", "progress", "created_at"]
        read_only_fields = fields

    def _counts(self, obj: Batch) -> dict[str, int]:
        cache = self.context.setdefault("_counts", {})
        if obj.pk not in cache:
            cache[obj.pk] = batch_counts(obj)
        return cache[obj.pk]

    def get_counts(self, obj: Batch) -> dict[str, int]:
        return self._counts(obj)

    def get_progress(self, obj: Batch) -> float:
        counts = self._counts(obj)
        finished = sum(
            counts[s] for s in (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)
        )
        return round(finished / obj.size, 4) if obj.size else 1.0


class BatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Batches are created by `POST /api/programs/{id}/run-batch/`."""

    queryset = Batch.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = BatchSerializer
    filterset_fields = ["program"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.batch_list(user=self.request.user)

    @extend_schema(request=None, responses=BatchSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        batch = self.get_object()
        batch_cancel(batch=batch)
        return Response(self.get_serializer(batch).data)
