"""Optimization over REST: start, watch and cancel runs; promote and roll back versions; schedules."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cognitive import selectors
from cognitive.api.datasets import JSONObjectField
from cognitive.api.serializers import OwnedPrimaryKeyField, ProgramSerializer
from cognitive.api.throttles import ActionThrottle
from cognitive.engine.optimizers import OPTIMIZER_CLASSES
from cognitive.models import OptimizationRun, OptimizationSchedule, Program
from cognitive.services.optimization_requests import optimization_cancel, optimization_start
from cognitive.services.optimization_schedules import optimization_schedule_delete, optimization_schedule_set
from cognitive.services.versions import program_promote, program_rollback


class OptimizationRunSerializer(serializers.ModelSerializer):
    progress = JSONObjectField(read_only=True)
    trials = serializers.ListField(child=JSONObjectField(), read_only=True, help_text="{n, score, phase} per trial")
    log = serializers.ListField(child=serializers.CharField(), read_only=True)
    attempts = serializers.ListField(child=JSONObjectField(), read_only=True)
    optimizer_config = JSONObjectField(read_only=True)
    metric_config = JSONObjectField(read_only=True)
    budget = JSONObjectField(read_only=True)
    error = JSONObjectField(read_only=True, allow_null=True)

    class Meta:
        model = OptimizationRun
        fields = [
            "id", "program", "optimizer", "optimizer_type", "optimizer_config", "dataset", "metric", "metric_config",
            "budget", "schedule", "status", "attempt", "max_attempts", "attempts", "progress", "trials",
            "baseline_score", "final_score", "result_version", "promoted", "log", "error", "created_at",
            "started_at", "finished_at",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.UUID)
class _OwnedUUIDField(OwnedPrimaryKeyField):
    pass


class _RequestSerializer(serializers.Serializer):
    optimizer = serializers.CharField(
        help_text=f"an optimizer type ({', '.join(OPTIMIZER_CLASSES)}) or the name of one of your optimizers"
    )
    dataset = _OwnedUUIDField(selector=selectors.dataset_list, help_text="a dataset of this program")
    metric = serializers.CharField(help_text="exact_match, f1, contains, numeric_close or llm_judge")
    config = JSONObjectField(required=False, default=dict, help_text="optimizer arguments, checked against DSPy")
    metric_config = JSONObjectField(required=False, default=dict)
    budget = JSONObjectField(required=False, default=dict, help_text="max_lm_calls and/or max_cost (USD)")

    def resolved(self) -> dict[str, Any]:
        data = dict(self.validated_data)
        data["optimizer"] = selectors.optimizer_named(user=self.context["request"].user, name=data["optimizer"])
        return data


class OptimizeSerializer(_RequestSerializer):
    pass


class ScheduleRequestSerializer(_RequestSerializer):
    cron = serializers.CharField(help_text="minute hour day-of-month month day-of-week, in UTC")
    enabled = serializers.BooleanField(default=True)


class ScheduleSerializer(serializers.ModelSerializer):
    optimizer_config = JSONObjectField(read_only=True)
    metric_config = JSONObjectField(read_only=True)
    budget = JSONObjectField(read_only=True)

    class Meta:
        model = OptimizationSchedule
        fields = [
            "id", "program", "cron", "optimizer_type", "optimizer_config", "dataset", "metric", "metric_config",
            "budget", "enabled", "periodic_task", "last_started_at", "last_checked_at", "last_outcome",
        ]
        read_only_fields = fields


class OptimizationStartedSerializer(serializers.Serializer):
    optimization_run = OptimizationRunSerializer()


class PromoteSerializer(serializers.Serializer):
    version = serializers.UUIDField(help_text="a version of this program")


class _ProgramAction(APIView):
    permission_classes = [IsAuthenticated]

    def _program(self, request: Request, pk: Any) -> Program:
        return get_object_or_404(selectors.program_list(user=request.user), pk=pk)

    def _program_body(self, program: Program) -> dict[str, Any]:
        return ProgramSerializer(selectors.program_with_stats(program.pk), context={"request": self.request}).data


class ProgramOptimizeView(_ProgramAction):
    throttle_classes = [ActionThrottle]
    throttle_scope = "optimize"

    @extend_schema(request=OptimizeSerializer, responses={202: OptimizationStartedSerializer})
    def post(self, request: Request, pk: Any) -> Response:
        """Queue an optimization of an active program (409 if it is not active or already optimizing)."""
        program = self._program(request, pk)
        body = OptimizeSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        run = optimization_start(program=program, owner=request.user, **body.resolved())
        data = OptimizationRunSerializer(run).data
        return Response({"optimization_run": data}, status=status.HTTP_202_ACCEPTED)


class ProgramPromoteView(_ProgramAction):
    @extend_schema(request=PromoteSerializer, responses=ProgramSerializer)
    def post(self, request: Request, pk: Any) -> Response:
        """Make one of the program's versions the active one."""
        program = self._program(request, pk)
        body = PromoteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = selectors.program_version_of(program, body.validated_data["version"])
        promoted = program_promote(program=program, version=version, actor=request.user)
        return Response(self._program_body(promoted))


class ProgramRollbackView(_ProgramAction):
    @extend_schema(request=None, responses=ProgramSerializer)
    def post(self, request: Request, pk: Any) -> Response:
        """Return to the version that was active before the current one (409 when there is none)."""
        program = program_rollback(program=self._program(request, pk), actor=request.user)
        return Response(self._program_body(program))


class ProgramScheduleView(_ProgramAction):
    @extend_schema(responses={200: ScheduleSerializer, 404: OpenApiResponse(description="no schedule")})
    def get(self, request: Request, pk: Any) -> Response:
        schedule = get_object_or_404(OptimizationSchedule, program=self._program(request, pk))
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(request=ScheduleRequestSerializer, responses=ScheduleSerializer)
    def post(self, request: Request, pk: Any) -> Response:
        """Create or replace the program's re-optimization schedule (a celery beat task)."""
        program = self._program(request, pk)
        body = ScheduleRequestSerializer(data=request.data, context={"request": request})
        body.is_valid(raise_exception=True)
        schedule = optimization_schedule_set(program=program, owner=request.user, **body.resolved())
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: Any) -> Response:
        schedule = get_object_or_404(OptimizationSchedule, program=self._program(request, pk))
        optimization_schedule_delete(schedule=schedule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OptimizationRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Optimization runs, newest first, with live progress. Started by `POST /api/programs/{id}/optimize/`."""

    queryset = OptimizationRun.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = OptimizationRunSerializer
    filterset_fields = {"program": ["exact"], "status": ["exact"]}
    ordering_fields = ["created_at", "finished_at"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.optimization_run_list(user=self.request.user)

    @extend_schema(request=None, responses=OptimizationRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """A queued run never runs; a running one stops at its next LM call. No version is written."""
        run = optimization_cancel(run=self.get_object(), reason=f"cancelled by {request.user}")
        return Response(self.get_serializer(run).data)

