"""Builders for optimization tests: an arithmetic QA program on the local LM and its dataset."""

from __future__ import annotations

from cognitive.models import Dataset, Example, LanguageModel, Program
from cognitive.services.datasets import dataset_create, dataset_import
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from local_lm.responder import oracle_answer

# Tiny configs: each optimizer finishes in seconds against the local LM.
TINY_CONFIGS = {
    "labeled_few_shot": {"k": 4},
    "bootstrap_few_shot": {"max_bootstrapped_demos": 3, "max_labeled_demos": 0, "max_rounds": 1},
    "bootstrap_random_search": {"max_bootstrapped_demos": 2, "max_labeled_demos": 2, "num_candidate_programs": 2},
    "mipro_v2": {
        "auto": None, "num_candidates": 2, "num_trials": 2, "minibatch": False, "max_bootstrapped_demos": 2,
        "max_labeled_demos": 2, "num_threads": 2,
    },
    "simba": {"bsize": 4, "max_steps": 1, "num_candidates": 2, "max_demos": 2},
    "gepa": {"max_metric_calls": 30, "reflection_minibatch_size": 2},
    "copro": {"breadth": 2, "depth": 1},
}


def question(i: int) -> str:
    return f"What is {i + 3} + {2 * i + 5}?"


def make_program(owner, lm_url: str, name: str = "adder") -> Program:
    lm = LanguageModel.objects.filter(name=f"local-{owner.pk}").first() or LanguageModel.objects.create(
        name=f"local-{owner.pk}", model="openai/local", api_base=lm_url
    )
    signature = signature_create(owner=owner, name=f"{name}-sig", spec="question: str -> answer: str")
    module = module_create(owner=owner, name=f"{name}-qa", type="predict", signature=signature)
    module.lm = lm
    module.save(update_fields=["lm"])
    program = program_create(owner=owner, name=name, pipeline={"steps": [{"id": "qa", "module": module.name}]})
    return program_activate(program=program)


def make_dataset(program: Program, *, train: int = 12, val: int = 8, offset: int = 0) -> Dataset:
    dataset = dataset_create(owner=program.owner, name=f"{program.name}-data", program=program)
    records = []
    for i in range(offset, offset + train + val):
        q = question(i)
        records.append(
            {"inputs": {"question": q}, "outputs": {"answer": oracle_answer({"question": q})},
             "split": "train" if i - offset < train else "val"}
        )
    dataset_import(dataset=dataset, content=records, format="json")
    return Dataset.objects.get(pk=dataset.pk)


def val_examples(dataset: Dataset) -> list[Example]:
    return list(dataset.examples.filter(split="val"))
