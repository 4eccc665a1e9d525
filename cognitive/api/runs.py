"""Request and response shapes of running: module execute, program run, versions and prompts."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.response import Response

from cognitive.api.references import resolve_reference
from cognitive.errors import ExecutionFailed, InvalidInput
from cognitive.models import Execution, ExecutionStatus, LanguageModel


class ExecuteSerializer(serializers.Serializer):
    input = serializers.JSONField(help_text="values for the signature's input fields")
    context = serializers.JSONField(
        required=False, default=dict, help_text="call options: lm (an LM's id or name), temperature, max_tokens"
    )

    def validate_context(self, value: Any) -> Any:
        """`lm` may be an id; the service reads names. One it cannot find is left for its error (`context.lm`)."""
        if isinstance(value, dict) and isinstance(value.get("lm"), str):
            try:
                lm = resolve_reference(LanguageModel.objects.all(), value["lm"], kind="LM")
            except InvalidInput:
                return value
            return {**value, "lm": lm.name}
        return value


class RunSerializer(serializers.Serializer):
    input = serializers.JSONField(help_text="values for the program's $input fields")
    wait = serializers.BooleanField(default=False, help_text="true: run now and answer with the output")
    priority = serializers.IntegerField(min_value=0, max_value=9, default=5, help_text="queued runs: 0 first")


class RunResultSerializer(serializers.Serializer):
    execution = serializers.UUIDField(help_text="GET /api/executions/{id}/ for the trace")
    status = serializers.CharField()
    output = serializers.JSONField(allow_null=True)
    error = serializers.JSONField(required=False, allow_null=True)


class PromptSerializer(serializers.Serializer):
    version = serializers.UUIDField()
    program = serializers.UUIDField()
    number = serializers.IntegerField()
    steps = serializers.JSONField(help_text="per module step: its predictors' instructions, fields, demos, messages")


def run_result(execution: Execution) -> Response:
    """A finished synchronous run: 200 with the output, or its recorded failure in the error envelope.

    A failure is 400 when the input was at fault, otherwise 422; `extra` carries the execution
    id, its status and the recorded error.
    """
    body: dict[str, Any] = {"execution": str(execution.pk), "status": execution.status, "output": execution.output}
    if execution.status == ExecutionStatus.COMPLETED:
        return Response(body, status=status.HTTP_200_OK)
    error = dict(execution.error or {})
    if execution.status != ExecutionStatus.FAILED:
        return Response({**body, "error": error or None}, status=status.HTTP_202_ACCEPTED)
    extra = {**(error.get("extra") or {}), "execution": str(execution.pk), "status": execution.status, "error": error}
    code = status.HTTP_400_BAD_REQUEST if error.get("type") == "InvalidInput" else ExecutionFailed.status_code
    return Response({"message": error.get("message") or "the run failed", "extra": extra}, status=code)


def queued_result(execution: Execution) -> Response:
    body = {"execution": str(execution.pk), "status": execution.status, "output": execution.output}
    return Response(body, status=status.HTTP_202_ACCEPTED)
