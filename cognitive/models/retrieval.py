from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class Corpus(OwnedModel):
    """Named passages a `retrieve` step searches, by keyword (BM25) or by embedding similarity."""

    name = models.CharField(max_length=200, help_text="pipelines refer to the corpus by this name")
    embedding_lm = models.ForeignKey(
        "cognitive.LanguageModel",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="corpora",
        help_text="the LM whose embedding model embeds the documents; empty: the default LM",
    )
    # Stored vectors are only comparable with queries embedded the same way; a different value here
    # means they are stale and the next vector query re-embeds every document.
    embedded_with = models.CharField(max_length=800, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "corpora"
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_corpus_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    """One passage. `embedding` is empty until the corpus's embedding model could be reached."""

    corpus = models.ForeignKey(Corpus, on_delete=models.CASCADE, related_name="documents")
    position = models.PositiveIntegerField(help_text="order within the corpus; ties in ranking go to the earlier one")
    text = models.TextField()
    embedding = models.JSONField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["corpus", "position"]
        constraints = [
            models.UniqueConstraint(fields=["corpus", "position"], name="unique_document_position"),
        ]
        indexes = [
            models.Index(
                fields=["corpus"], condition=models.Q(embedding__isnull=True), name="document_embedding_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.corpus_id}#{self.position}"
