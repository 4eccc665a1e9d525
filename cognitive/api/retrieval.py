"""Corpora and documents over REST: thin views over `services.corpora` and the corpus selectors."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from cognitive import selectors
from cognitive.api.serializers import AvailableLMField
from cognitive.engine.retrieval import MAX_K, RETRIEVAL_METHODS
from cognitive.errors import RetryableError
from cognitive.models import Corpus, Document
from cognitive.policies import IsOwnerOrStaff
from cognitive.services import corpora


@extend_schema_field({"type": "array", "items": {"type": "string"}, "minItems": 1})
class TextListField(serializers.JSONField):
    """Passed through as sent: the service checks every item, so an error names its index (`documents[3]`)."""


class CorpusSerializer(serializers.ModelSerializer):
    documents = TextListField(write_only=True, help_text="the passages, in order")
    embedding_lm = AvailableLMField(
        required=False, allow_null=True,
        help_text="LM whose embedding model embeds the documents; empty: the default LM",
    )
    document_count = serializers.IntegerField(read_only=True)
    pending_embeddings = serializers.IntegerField(
        read_only=True, help_text="documents not embedded yet (the embedding model was unreachable)"
    )
    owner = serializers.CharField(source="owner.username", read_only=True)

    class Meta:
        model = Corpus
        fields = [
            "id", "name", "documents", "embedding_lm", "document_count", "pending_embeddings", "owner",
            "created_at", "updated_at",
        ]


class DocumentsSerializer(serializers.Serializer):
    documents = TextListField(help_text="passages to append, in order")


class DocumentSerializer(serializers.ModelSerializer):
    embedded = serializers.SerializerMethodField()

    class Meta:
        model = Document
        fields = ["id", "position", "text", "embedded", "created_at"]

    def get_embedded(self, obj: Document) -> bool:
        return obj.embedding is not None


class SearchSerializer(serializers.Serializer):
    query = serializers.CharField()
    method = serializers.ChoiceField(choices=RETRIEVAL_METHODS, default="bm25")
    k = serializers.IntegerField(default=5, min_value=1, max_value=MAX_K)


class PassagesSerializer(serializers.Serializer):
    passages = serializers.ListField(child=serializers.CharField(), help_text="best first")


class CorpusViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Corpora that `retrieve` steps search by name, by keyword (`bm25`) or by embedding (`vector`)."""

    queryset = Corpus.objects.none()  # for the schema; requests use the user-scoped get_queryset
    serializer_class = CorpusSerializer
    permission_classes = [IsAuthenticated, IsOwnerOrStaff]
    filterset_fields = ["name"]
    ordering_fields = ["created_at", "updated_at", "name"]
    ordering = ["-created_at"]

    def get_queryset(self) -> Any:
        return selectors.corpus_list(user=self.request.user)

    def _corpus_response(self, corpus: Corpus, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=corpus.pk)).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        corpus = corpora.corpus_create(owner=request.user, **serializer.validated_data)
        return self._corpus_response(corpus, status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Corpus) -> None:
        corpora.corpus_delete(corpus=instance)

    @extend_schema(methods=["GET"], request=None, responses=DocumentSerializer(many=True))
    @extend_schema(methods=["POST"], request=DocumentsSerializer, responses={201: CorpusSerializer})
    @action(detail=True, methods=["get", "post"])
    def documents(self, request: Request, pk: str | None = None) -> Response:
        """GET: the documents in order (paginated). POST: append documents; answers with the new count."""
        corpus = self.get_object()
        if request.method == "GET":
            page = self.paginate_queryset(selectors.document_list(corpus=corpus))
            return self.get_paginated_response(DocumentSerializer(page, many=True).data)
        serializer = DocumentsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        corpora.corpus_add_documents(corpus=corpus, documents=serializer.validated_data["documents"])
        return self._corpus_response(corpus, status.HTTP_201_CREATED)

    @extend_schema(
        request=SearchSerializer,
        responses={
            200: PassagesSerializer,
            503: OpenApiResponse(description="the embedding model cannot be reached now; retry later"),
        },
    )
    @action(detail=True, methods=["post"])
    def search(self, request: Request, pk: str | None = None) -> Response:
        """Run a retrieval as a `retrieve` step would, to check what it finds."""
        corpus = self.get_object()
        serializer = SearchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            passages = corpora.corpus_search(corpus=corpus, **serializer.validated_data)
        except RetryableError as exc:
            headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
            return Response(
                {"message": exc.message, "extra": {"retryable": True, "kind": exc.kind}},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers=headers,
            )
        return Response({"passages": passages})
