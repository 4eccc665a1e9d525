"""Optimization over REST: start, watch and cancel runs; promote and roll back versions; schedules."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cognitive import selectors
from cognitive.api.datasets import JSONObjectField
from cognitive.api.references import IdOrNameRelatedField, ReferenceNotFound, resolve_reference
from cognitive.api.serializers import ProgramSerializer
from cognitive.api.summaries import SummaryListMixin
from cognitive.api.throttles import ActionThrottle
from cognitive.api.validation import ServiceChecks
from cognitive.engine.metrics import get_metric
from cognitive.engine.optimizers import OPTIMIZER_CLASSES, RETIRED_TYPES, split_optimizer_config
from cognitive.errors import InvalidInput
from cognitive.models import OptimizationRun, OptimizationSchedule, Optimizer, Program
from cognitive.selectors import lm_list
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


class OptimizerReferenceField(IdOrNameRelatedField):
    """An optimizer type, or the id or name of one of your optimizers (a type name wins over a name)."""

    def to_internal_value(self, data: Any) -> str | Optimizer:
        if isinstance(data, str) and (data in OPTIMIZER_CLASSES or data in RETIRED_TYPES):
            return data  # a retired type gets the service's advice on what to use instead
        try:
            return resolve_reference(self.get_queryset(), data, kind="optimizer", user=self._user())
        except ReferenceNotFound:
            raise serializers.ValidationError(
                f"unknown optimizer {str(data)[:200]!r}: give a type ({', '.join(OPTIMIZER_CLASSES)}) "
                "or the id or name of one of your optimizers"
            ) from None
        except InvalidInput as exc:
            raise serializers.ValidationError(exc.message) from None

    def to_representation(self, value: Any) -> str:
        return value if isinstance(value, str) else value.name


class _RequestSerializer(ServiceChecks, serializers.Serializer):
    optimizer = OptimizerReferenceField(
        kind="optimizer", selector=selectors.optimizer_list,
        help_text=f"an optimizer type ({', '.join(OPTIMIZER_CLASSES)}) or the id or name of one of your optimizers",
    )
    dataset = IdOrNameRelatedField(
        kind="dataset", selector=selectors.dataset_list, help_text="the id or name of a dataset of this program"
    )
    metric = serializers.CharField(help_text="exact_match, f1, contains, numeric_close or llm_judge")
    config = JSONObjectField(required=False, default=dict, help_text="optimizer arguments, checked against DSPy")
    metric_config = JSONObjectField(required=False, default=dict)
    budget = JSONObjectField(required=False, default=dict, help_text="max_lm_calls and/or max_cost (USD)")

    def validate_metric(self, value: str) -> str:
        metric_config = self.initial_data.get("metric_config") or {}
        if isinstance(metric_config, dict):
            # The judge LM is looked up among those the requester may use: another one looks like none.
            user = self.context["request"].user
            self.service_check(
                "metric", get_metric, value, config=metric_config,
                language_models=lambda name: lm_list(user=user).filter(name=name).first(),
            )
        return value

    def validate_config(self, value: Any) -> Any:
        """Checked against the optimizer named in the same request, when that one is valid."""
        try:
            optimizer = self.fields["optimizer"].to_internal_value(self.initial_data.get("optimizer"))
        except serializers.ValidationError:
            return value  # the optimizer's own error says what is wrong
        if (isinstance(optimizer, str) and optimizer in RETIRED_TYPES) or not isinstance(value, dict):
            return value
        optimizer_type, merged = (
            (optimizer, value) if isinstance(optimizer, str) else (optimizer.type, {**optimizer.config, **value})
        )
        self.service_check("config", split_optimizer_config, optimizer_type, merged)
        return value


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
        run = optimization_start(program=program, owner=request.user, **body.validated_data)
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
        schedule = optimization_schedule_set(program=program, owner=request.user, **body.validated_data)
        return Response(ScheduleSerializer(schedule).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request: Request, pk: Any) -> Response:
        schedule = get_object_or_404(OptimizationSchedule, program=self._program(request, pk))
        optimization_schedule_delete(schedule=schedule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class OptimizationRunViewSet(
    SummaryListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Optimization runs, newest first, with live progress. Started by `POST /api/programs/{id}/optimize/`.
    List items leave out the configs, trials, log and attempts; `GET /{id}/` has them."""

    list_omits = ("optimizer_config", "metric_config", "trials", "log", "attempts")

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

