"""Datasets, their examples, and feedback on executions over REST: thin views over `services.datasets`."""

from __future__ import annotations

from functools import partial
from pathlib import PurePath
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive import selectors
from cognitive.api.parsers import CheckedJSONParser
from cognitive.api.references import IdOrNameRelatedField
from cognitive.errors import InvalidInput
from cognitive.models import Dataset, Example, ExampleSource, ExampleSplit, Execution
from cognitive.policies import IsOwnerOrStaff
from cognitive.services import datasets

_EXTENSION_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "json"}


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """Passed through as sent; the service checks it."""


class DatasetSerializer(serializers.ModelSerializer):
    program = IdOrNameRelatedField(kind="program", selector=partial(selectors.program_list, with_stats=False))
    example_count = serializers.IntegerField(read_only=True)
    train_count = serializers.IntegerField(read_only=True)
    val_count = serializers.IntegerField(read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "program", "example_count", "train_count", "val_count", "changed_at", "owner",
            "created_at", "updated_at",
        ]
        read_only_fields = ["changed_at"]
        validators: list[Any] = []  # a taken name is a 409 from the service


class ExampleSerializer(serializers.ModelSerializer):
    inputs = JSONObjectField()
    outputs = JSONObjectField()

    class Meta:
        model = Example
        fields = ["id", "dataset", "inputs", "outputs", "split", "source", "execution", "score", "created_at"]


class ExampleRecordSerializer(serializers.Serializer):
    """One example as imported and exported (documentation only: the service validates every record)."""

    inputs = JSONObjectField()
    outputs = JSONObjectField()
    split = serializers.ChoiceField(choices=ExampleSplit.choices, required=False, default=ExampleSplit.TRAIN)


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="a .jsonl, .csv or .json file")
    format = serializers.ChoiceField(
        choices=datasets.IMPORT_FORMATS, required=False, help_text="overrides the format guessed from the extension"
    )


class ImportedSerializer(serializers.Serializer):
    imported = serializers.IntegerField()


class FeedbackSerializer(serializers.Serializer):
    score = serializers.FloatField(required=False, allow_null=True, default=None)
    corrected_output = JSONObjectField(
        required=False, allow_null=True, default=None, help_text="the right output; empty: keep the execution's"
    )


def _upload_format(request: Request, filename: str) -> str:
    chosen = request.data.get("format")
    if chosen:
        return str(chosen)
    guessed = _EXTENSION_FORMATS.get(PurePath(filename).suffix.lower())
    if guessed is None:
        raise InvalidInput(
            f"cannot tell the format of {filename!r}; name it .jsonl, .csv or .json, or send a 'format' field",
            {"field": "format", "choices": list(datasets.IMPORT_FORMATS)},
        )
    return guessed


def _import_content(request: Request) -> tuple[bytes | list[Any], str]:
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size is not None and upload.size > datasets.MAX_IMPORT_BYTES:
            raise InvalidInput(
                f"the file is {upload.size} bytes; at most {datasets.MAX_IMPORT_BYTES} bytes may be imported at once",
                {"limit_bytes": datasets.MAX_IMPORT_BYTES},
            )
        return upload.read(datasets.MAX_IMPORT_BYTES + 1), _upload_format(request, upload.name or "")
    if isinstance(request.data, list):
        return request.data, "json"
    raise InvalidInput(
        "send a file (multipart field 'file') or a JSON list of {inputs, outputs, split} objects", {"field": "file"}
    )


class DatasetViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Datasets of examples that programs are scored and optimized on."""

    queryset = Dataset.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = DatasetSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrStaff]
    filterset_fields = ["name", "program"]
    ordering_fields = ["created_at", "updated_at", "changed_at", "name"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.dataset_list(user=self.request.user)

    def _dataset_response(self, dataset: Dataset, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=dataset.pk)).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dataset = datasets.dataset_create(owner=request.user, **serializer.validated_data)
        return self._dataset_response(dataset, status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Dataset) -> None:
        datasets.dataset_delete(dataset=instance)

    @extend_schema(
        request={
            "multipart/form-data": ImportUploadSerializer,
            "application/json": ExampleRecordSerializer(many=True),
        },
        responses={
            201: ImportedSerializer,
            400: OpenApiResponse(description='`{"message", "extra": {"errors": [{"line", "message"}]}}`'),
        },
    )
    @action(
        detail=True, methods=["post"], url_path="import",
        parser_classes=[MultiPartParser, FormParser, CheckedJSONParser],
    )
    def import_examples(self, request: Request, pk: str | None = None) -> Response:
        """Add examples from a JSONL/CSV/JSON file or a JSON list: all of them, or none and every bad line."""
        dataset = self.get_object()
        content, format = _import_content(request)
        imported = datasets.dataset_import(dataset=dataset, content=content, format=format)
        return Response({"imported": imported}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> HttpResponse:
        """Every example as JSONL, in the format import reads."""
        dataset = self.get_object()
        response = HttpResponse(datasets.dataset_export_jsonl(dataset), content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="dataset-{dataset.pk}.jsonl"'
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter("split", str, enum=list(ExampleSplit.values)),
            OpenApiParameter("source", str, enum=list(ExampleSource.values)),
        ],
        responses=ExampleSerializer(many=True),
    )
    @action(detail=True, methods=["get"])
    def examples(self, request: Request, pk: str | None = None) -> Response:
        """The examples in order, paginated; `?split=` and `?source=` narrow them."""
        dataset = self.get_object()
        split, source = request.query_params.get("split"), request.query_params.get("source")
        if split and split not in ExampleSplit.values:
            raise InvalidInput(f"split must be one of {', '.join(ExampleSplit.values)}", {"field": "split"})
        if source and source not in ExampleSource.values:
            raise InvalidInput(f"source must be one of {', '.join(ExampleSource.values)}", {"field": "source"})
        page = self.paginate_queryset(selectors.example_list(dataset=dataset, split=split, source=source))
        return self.get_paginated_response(ExampleSerializer(page, many=True).data)


class ExecutionFeedbackView(generics.GenericAPIView):
    """Turn a completed program execution into an example of its program's dataset (again: update it)."""

    queryset = Execution.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = FeedbackSerializer
    permission_classes = [IsAuthenticated]

    def get_queryset(self) -> Any:
        return selectors.execution_list(user=self.request.user)

    @extend_schema(request=FeedbackSerializer, responses={201: ExampleSerializer})
    def post(self, request: Request, pk: str) -> Response:
        execution = self.get_object()
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        example = datasets.execution_feedback(execution=execution, owner=request.user, **body.validated_data)
        return Response(ExampleSerializer(example).data, status=status.HTTP_201_CREATED)
