"""Thin DRF views: parse, call a service or selector, serialize."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive import selectors
from cognitive.api import runs as run_api
from cognitive.api import serializers as s
from cognitive.api.batches import BatchSerializer, RunBatchSerializer
from cognitive.api.filters import ExecutionFilter, ProgramVersionFilter
from cognitive.api.idempotency import KEY_PARAMETER, KEY_RESPONSES, idempotent
from cognitive.api.summaries import SummaryListMixin, summary_serializer
from cognitive.api.throttles import ActionThrottle
from cognitive.models import Execution, LanguageModel, Module, Optimizer, Program, ProgramVersion, Signature
from cognitive.policies import IsOwnerOrStaff, IsStaffOrReadOnly
from cognitive.services import lms, modules, optimizers, programs, run_requests, signatures
from cognitive.services import versions as version_services
from cognitive.services.execution_jobs import execution_cancel


class OwnedViewSet(viewsets.ModelViewSet):
    permission_classes = [IsOwnerOrStaff]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    ordering_fields = ["created_at", "updated_at", "name"]
    ordering = ["-created_at"]

    def _respond(self, obj: Any, code: int = status.HTTP_200_OK) -> Response:
        obj = self.get_queryset().get(pk=obj.pk)
        return Response(self.get_serializer(obj).data, status=code)

    def _validated(self, request: Request, *, partial: bool = False, instance: Any = None) -> dict[str, Any]:
        serializer = self.get_serializer(instance, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        created = self.perform_service_create(self._validated(request))
        return self._respond(created, status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        updated = self.perform_service_update(instance, self._validated(request, partial=True, instance=instance))
        return self._respond(updated)

    def _unannotated(self, queryset: Any) -> Any:
        """The object for an action, without the list's statistics (they aggregate every execution)."""
        obj = get_object_or_404(queryset, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError


class SignatureViewSet(OwnedViewSet):
    """Signatures: typed input → output contracts. `?name=` finds one by name."""

    queryset = Signature.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.SignatureSerializer
    filterset_fields = ["name"]

    def get_queryset(self) -> Any:
        return selectors.signature_list(user=self.request.user)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return signatures.signature_create(owner=self.request.user, **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return signatures.signature_update(signature=instance, **data)


class LanguageModelViewSet(OwnedViewSet):
    """Named LM configurations. Everyone signed in reads them; only staff write. Keys never appear."""

    queryset = LanguageModel.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.LanguageModelSerializer
    permission_classes = [IsStaffOrReadOnly]
    filterset_fields = ["name"]
    ordering = ["name"]

    def get_queryset(self) -> Any:
        return selectors.lm_list(user=self.request.user)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return lms.lm_save(lm=LanguageModel(), **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return lms.lm_save(lm=instance, **data)


class ModuleViewSet(OwnedViewSet):
    queryset = Module.objects.none()  # for the schema; requests use the user-scoped get_queryset
    throttle_scope: str | None = None  # set per action: run
    serializer_class = s.ModuleSerializer
    filterset_fields = ["name", "type", "state", "signature"]

    def get_queryset(self) -> Any:
        return selectors.module_list(user=self.request.user)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return modules.module_create(owner=self.request.user, **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return modules.module_update(module=instance, **data)

    @extend_schema(request=None, responses=s.ModuleSerializer)
    @action(detail=True, methods=["post"])
    def initialize(self, request: Request, pk: str | None = None) -> Response:
        """Validate the config and build the DSPy module (no LM call): `ready`, or `error` with the reason."""
        return self._respond(modules.module_initialize(module=self._module()))

    @extend_schema(request=None, responses=s.ModuleSerializer)
    @action(detail=True, methods=["post"])
    def reset(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(modules.module_reset(module=self._module()))

    @extend_schema(request=run_api.ExecuteSerializer, responses=run_api.RunResultSerializer)
    @action(detail=True, methods=["post"], throttle_classes=[ActionThrottle], throttle_scope="run")
    def execute(self, request: Request, pk: str | None = None) -> Response:
        """Run the module now on `input` (checked against its signature first). The trace is the execution's."""
        module = self._module()  # an unknown id is a 404 whatever the body
        body = run_api.ExecuteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = run_requests.module_run_request(module=module, owner=request.user, **body.validated_data)
        return run_api.run_result(run_requests.run_now(run))

    def _module(self) -> Module:
        return self._unannotated(selectors.module_list(user=self.request.user, with_stats=False))


_VERSION_SUMMARY = summary_serializer(s.ProgramVersionSerializer, ("state",))


class ProgramViewSet(SummaryListMixin, OwnedViewSet):
    throttle_scope: str | None = None  # set per action: run, run-batch, optimize
    list_omits = ("pipeline", "variables")
    queryset = Program.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.ProgramSerializer
    filterset_fields = ["name", "status"]

    def get_queryset(self) -> Any:
        return selectors.program_list(user=self.request.user)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return programs.program_create(owner=self.request.user, **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return programs.program_update(program=instance, **data)

    @extend_schema(request=None, responses=s.ProgramSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        return self._respond(programs.program_activate(program=self._program()))

    @extend_schema(request=None, responses=s.ProgramSerializer)
    @action(detail=True, methods=["post"])
    def archive(self, request: Request, pk: str | None = None) -> Response:
        archived = programs.program_archive(program=self._program())
        # Non-staff can no longer read an archived program, so answer from the unscoped row.
        return Response(self.get_serializer(selectors.program_with_stats(archived.pk)).data)

    def _program(self) -> Program:
        return self._unannotated(selectors.program_list(user=self.request.user, with_stats=False))

    @extend_schema(
        request=run_api.RunSerializer,
        parameters=[KEY_PARAMETER],
        responses={200: run_api.RunResultSerializer, 202: run_api.RunResultSerializer, **KEY_RESPONSES},
    )
    @action(detail=True, methods=["post"], throttle_classes=[ActionThrottle], throttle_scope="run")
    def run(self, request: Request, pk: str | None = None) -> Response:
        """Run an active program. `wait: true` answers with the output; otherwise 202 and poll the execution."""
        program = self._program()  # a program the caller cannot see is a 404 whatever key it sends
        return idempotent(self, request, lambda key: self._run(program, key))

    def _run(self, program: Program, idempotency_key: str) -> Response:
        body = run_api.RunSerializer(data=self.request.data)
        body.is_valid(raise_exception=True)
        wait = body.validated_data.pop("wait")
        run = run_requests.program_run_request(
            program=program, owner=self.request.user, idempotency_key=idempotency_key,
            **body.validated_data,
        )
        if wait:
            return run_api.run_result(run_requests.run_now(run))
        execution, _ = run_requests.run_enqueue(run)
        return run_api.queued_result(execution)

    @extend_schema(methods=["GET"], request=None, responses=_VERSION_SUMMARY(many=True))
    @extend_schema(methods=["POST"], request=None, responses={201: s.ProgramVersionSerializer})
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, pk: str | None = None) -> Response:
        """GET: the program's versions, newest first (paginated, without state).
        POST: snapshot the modules' current state as the next version."""
        program = self._program()
        if request.method == "GET":
            found = selectors.program_version_list(user=request.user).filter(program=program).order_by("-number")
            page = self.paginate_queryset(found.defer("state"))
            return self.get_paginated_response(_VERSION_SUMMARY(page, many=True).data)
        version = version_services.program_version_snapshot(program=program)
        return Response(s.ProgramVersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=RunBatchSerializer, parameters=[KEY_PARAMETER], responses={202: BatchSerializer, **KEY_RESPONSES}
    )
    @action(
        detail=True, methods=["post"], url_path="run-batch", throttle_classes=[ActionThrottle],
        throttle_scope="run-batch",
    )
    def run_batch(self, request: Request, pk: str | None = None) -> Response:
        """Queue one execution per input (up to DSPEX_BATCH_MAX); poll `/api/batches/{id}/`."""
        program = self._program()
        return idempotent(self, request, lambda key: self._run_batch(program))

    def _run_batch(self, program: Program) -> Response:
        body = RunBatchSerializer(data=self.request.data)
        body.is_valid(raise_exception=True)
        batch = run_requests.batch_enqueue(
            run_requests.batch_run_request(program=program, owner=self.request.user, **body.validated_data)
        )
        return Response({"batch": BatchSerializer(batch).data}, status=status.HTTP_202_ACCEPTED)


class ProgramVersionViewSet(SummaryListMixin, viewsets.ReadOnlyModelViewSet):
    """Versions; list items leave out `state` (the DSPy program state), `GET /{id}/` has it."""

    list_omits = ("state",)
    queryset = ProgramVersion.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.ProgramVersionSerializer
    filterset_class = ProgramVersionFilter
    ordering_fields = ["created_at", "number"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.program_version_list(user=self.request.user)

    @extend_schema(responses=run_api.PromptSerializer)
    @action(detail=True, methods=["get"])
    def prompt(self, request: Request, pk: str | None = None) -> Response:
        """Each predictor's prompt in this version (instructions, fields, demos) as chat messages and text."""
        return Response(version_services.program_version_prompt(version=self.get_object()))


class OptimizerViewSet(OwnedViewSet):
    queryset = Optimizer.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.OptimizerSerializer
    filterset_fields = ["name", "type"]

    def get_queryset(self) -> Any:
        return selectors.optimizer_list(user=self.request.user)

    def perform_service_create(self, data: dict[str, Any]) -> Any:
        return optimizers.optimizer_create(owner=self.request.user, **data)

    def perform_service_update(self, instance: Any, data: dict[str, Any]) -> Any:
        return optimizers.optimizer_update(optimizer=instance, **data)


class ExecutionViewSet(
    SummaryListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Top-level runs, newest first (`?root=false`: their step executions too; `?batch=`: one batch's runs).

    List items leave out input, context, output, trace and attempts; `GET /api/executions/{id}/`
    has them, and the run's step executions, per attempt in pipeline order.
    """

    list_omits = ("input", "context", "output", "trace", "attempts", "children")
    queryset = Execution.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = s.ExecutionSerializer
    filterset_class = ExecutionFilter
    ordering_fields = ["created_at", "finished_at", "duration_ms", "priority"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.execution_list(user=self.request.user)

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "with_children": self.action in ("retrieve", "cancel")}

    @extend_schema(request=None, responses=s.ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """A pending execution never runs; a running one stops at its next step boundary."""
        cancelled = execution_cancel(execution=self.get_object())
        return Response(self.get_serializer(cancelled).data)
