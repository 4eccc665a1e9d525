"""Serializers shape requests and responses; every write goes through a service."""

from __future__ import annotations

import os
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cognitive.api.references import IdOrNameRelatedField
from cognitive.api.validation import ServiceChecks
from cognitive.engine.modules import validate_module_config
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
from cognitive.selectors_runs import steps_in_pipeline_order
from cognitive.services.pipeline_references import pipeline_with_names
from cognitive.services.pipelines import pipeline_check


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


def lm_reference(**kwargs: Any) -> IdOrNameRelatedField:
    """An LM the requesting user may use (its availability), by id or name; responses show its name.

    An LM the user may not use is "does not exist", exactly like one that does not exist.
    """
    return IdOrNameRelatedField(kind="LM", selector=lm_list, output="name", **kwargs)


class ModuleSerializer(ServiceChecks, serializers.ModelSerializer):
    signature = IdOrNameRelatedField(kind="signature", selector=signature_list)
    lm = lm_reference(required=False, allow_null=True, help_text="the id or name of an LM; empty: the default LM")
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

    def validate_config(self, value: Any) -> Any:
        """Checked with the other fields, against the type sent (or the module's own when it is not)."""
        module_type = self.initial_data.get("type", getattr(self.instance, "type", None))
        if module_type not in ModuleType.values:
            return value  # the type's own error says what is wrong
        return self.service_check("config", validate_module_config, module_type, value)


class ProgramSerializer(ServiceChecks, serializers.ModelSerializer):
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
        """Compiled here too, so a pipeline error is reported together with every other field's."""
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object")
        owner = self.instance.owner if self.instance is not None else self.context["request"].user
        value = pipeline_with_names(owner=owner, pipeline=value)
        self.service_check("pipeline", pipeline_check, owner=owner, pipeline=value)
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
        children = steps_in_pipeline_order(obj)
        return ExecutionSerializer(children, many=True, context=self.context).data
