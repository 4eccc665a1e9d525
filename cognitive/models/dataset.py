from __future__ import annotations

from django.db import models

from cognitive.models.base import OwnedModel


class ExampleSplit(models.TextChoices):
    TRAIN = "train"
    VAL = "val"


class ExampleSource(models.TextChoices):
    IMPORT = "import"
    FEEDBACK = "feedback"


class Dataset(OwnedModel):
    """Examples a program is optimized and scored on."""

    name = models.CharField(max_length=200)
    program = models.ForeignKey("cognitive.Program", on_delete=models.CASCADE, related_name="datasets")
    # Scheduled re-optimization compares this with its last run to skip unchanged data.
    changed_at = models.DateTimeField(null=True, blank=True, help_text="last time an example was added or changed")

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="unique_dataset_name_per_owner")]

    def __str__(self) -> str:
        return self.name


class Example(models.Model):
    """One input → expected output pair; feedback examples remember the execution they came from."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="examples")
    inputs = models.JSONField(default=dict)
    outputs = models.JSONField(default=dict)
    split = models.CharField(max_length=10, choices=ExampleSplit.choices, default=ExampleSplit.TRAIN)
    source = models.CharField(max_length=10, choices=ExampleSource.choices, default=ExampleSource.IMPORT)
    execution = models.ForeignKey(
        "cognitive.Execution", on_delete=models.SET_NULL, null=True, blank=True, related_name="examples"
    )
    score = models.FloatField(null=True, blank=True, help_text="the user's score for a feedback example")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["dataset", "split"], name="example_dataset_split")]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "execution"],
                condition=models.Q(execution__isnull=False),
                name="unique_feedback_example_per_execution",
            )
        ]

    def __str__(self) -> str:
        return f"example {self.pk} ({self.split}, {self.source})"
