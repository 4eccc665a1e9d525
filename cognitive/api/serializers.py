"""Serializers shape requests and responses; every write goes through a service."""

from __future__ import annotations

import os
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cognitive.models import (
    Execution,
    LanguageModel,
    Module,
    ModuleType,
    Optimizer,
    OptimizerType,
    Program,
    ProgramVersion,
    Signature,
)
from cognitive.selectors import lm_list, signature_complexity_of, signature_list


class FieldSpecSerializer(serializers.Serializer):
    name = serializers.CharField()
    type = serializers.CharField()
    description = serializers.CharField(allow_blank=True)


class SignatureSerializer(serializers.ModelSerializer):
    input_fields = FieldSpecSerializer(many=True, read_only=True)
    output_fields = FieldSpecSerializer(many=True, read_only=True)
    complexity = serializers.SerializerMethodField()
    descriptions = serializers.DictField(
        child=serializers.CharField(allow_blank=True), write_only=True, required=False,
        help_text="optional description per field name",
    )
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Signature
        fields = [
            "id", "name", "spec", "instructions", "descriptions", "input_fields", "output_fields",
            "complexity", "metadata", "owner", "created_at", "updated_at",
        ]
        # Error positions index the spec exactly as sent, so it must not be trimmed.
        extra_kwargs = {"spec": {"trim_whitespace": False}}

    def get_complexity(self, obj: Signature) -> int:
        return signature_complexity_of(obj)


class LanguageModelSerializer(serializers.ModelSerializer):
    # Declared without DRF's UniqueValidator: a taken name is a 409 from the service, as for every resource.
    name = serializers.SlugField(max_length=100)
    key_configured = serializers.SerializerMethodField(help_text="whether the key variable is set on this server")

    class Meta:
        model = LanguageModel
        fields = [
            "id", "name", "model", "api_base", "api_key_env", "embedding_model", "params", "rpm", "tpm",
            "max_output_tokens", "availability", "groups", "key_configured", "created_at", "updated_at",
        ]

    def get_key_configured(self, obj: LanguageModel) -> bool:
        return bool(obj.api_key_env) and bool(os.environ.get(obj.api_key_env))


class OwnedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """Only offers rows the requesting user may see, so another user's id is 'does not exist'."""

    def __init__(self, selector: Any, **kwargs: Any) -> None:
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self) -> Any:
        return self.selector(user=self.context["request"].user)


class AvailableLMField(serializers.SlugRelatedField):
    """An LM by name, among those the requesting user may use: any other name is 'does not exist'."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="name", **kwargs)

    def get_queryset(self) -> Any:
        return lm_list(user=self.context["request"].user)


class ModuleSerializer(serializers.ModelSerializer):
    signature = OwnedPrimaryKeyField(selector=signature_list)
    lm = AvailableLMField(required=False, allow_null=True)
    type = serializers.ChoiceField(choices=ModuleType.choices)
    executing = serializers.IntegerField(read_only=True, help_text="executions of this module running now")
    success_rate = serializers.FloatField(read_only=True, allow_null=True)
    avg_latency = serializers.FloatField(read_only=True, allow_null=True, help_text="ms, completed executions")
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Module
        fields = [
            "id", "name", "type", "signature", "lm", "config", "cache_ttl", "state", "error_reason",
            "executing", "success_rate", "avg_latency", "owner", "created_at", "updated_at",
        ]
        read_only_fields = ["state", "error_reason"]


class ProgramSerializer(serializers.ModelSerializer):
    pipeline = serializers.JSONField(required=False)
    variables = serializers.JSONField(required=False)
    executing = serializers.IntegerField(read_only=True)
    success_rate = serializers.FloatField(read_only=True, allow_null=True)
    avg_latency = serializers.FloatField(read_only=True, allow_null=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Program
        fields = [
            "id", "name", "description", "pipeline", "variables", "status", "active_version",
            "executing", "success_rate", "avg_latency", "owner", "created_at", "updated_at",
        ]
        read_only_fields = ["status", "active_version"]

    def validate_pipeline(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value

    def validate_variables(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        return value


class ProgramVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProgramVersion
        fields = ["id", "program", "number", "state", "source", "scores", "created_at"]
        read_only_fields = fields


class OptimizerSerializer(serializers.ModelSerializer):
    type = serializers.CharField(help_text=f"one of: {', '.join(OptimizerType.values)}")
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Optimizer
        fields = ["id", "name", "type", "config", "owner", "created_at", "updated_at"]


class ExecutionSerializer(serializers.ModelSerializer):
    children = serializers.SerializerMethodField()

    class Meta:
        model = Execution
        fields = [
            "id", "program", "version", "module", "parent", "step_id", "input", "context", "output", "trace", "metrics",
            "duration_ms", "status", "error", "priority", "attempt", "max_attempts", "attempts", "run_after",
            "created_at", "started_at", "finished_at", "children",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_children(self, obj: Execution) -> list[dict[str, Any]]:
        if not self.context.get("with_children"):
            return []
        children = obj.children.order_by("created_at")
        return ExecutionSerializer(children, many=True, context=self.context).data
