"""The import contracts: how the layers may depend on each other, read from the source.

- The engine knows only DSPy: nothing it imports, directly or through a helper, reaches Django,
  the models, services, selectors, the API or the workers.
- Nothing but the engine imports `dspy`.
- No import cycle among the project's modules, deferred imports included.

The `test_checker_*` tests feed the checks synthetic sources, so each contract is shown to fail.
"""

from __future__ import annotations

from tests.import_contracts import (
    ImportGraph,
    describe_cycles,
    direct_imports_of,
    forbidden_chains,
    import_cycles,
)

ENGINE = "cognitive.engine"
# Django and what stands on it, the layers above the engine, and the places that configure them.
ENGINE_FORBIDDEN = (
    "django",
    "rest_framework",
    "drf_spectacular",
    "strawberry_django",
    "django_fsm",
    "django_celery_beat",
    "django_redis",
    "celery",
    "dspex_site",
    "cognitive.models",
    "cognitive.services",
    "cognitive.selectors",
    "cognitive.api",
    "cognitive.admin",
    "workers",
)
# bench/ is in the dspy check although it may import dspy: it times bare DSPy as the baseline the
# platform is compared with, so that import is the point of it. Only bench/__main__.py may do so.
DSPY_USERS_ALLOWED = (ENGINE, "bench.__main__")
DSPY_CHECKED = ("cognitive", "workers", "dspex_site", "local_lm", "bench")
ACYCLIC = ("cognitive", "workers", "dspex_site")


def _chains(chains: list) -> str:
    return "\n".join(" -> ".join(str(imp) for imp in chain) for chain in chains)


# --------------------------------------------------------------------------- the contracts


def test_engine_imports_nothing_from_django_or_the_layers_above_it():
    graph = ImportGraph.of_project(["cognitive", "workers", "dspex_site"])
    chains = forbidden_chains(graph, [ENGINE], ENGINE_FORBIDDEN)
    assert not chains, f"cognitive/engine must not reach these (pass what it needs in instead):\n{_chains(chains)}"


def test_only_the_engine_imports_dspy():
    graph = ImportGraph.of_project(DSPY_CHECKED)
    found = direct_imports_of(graph, "dspy", outside=DSPY_USERS_ALLOWED)
    assert not found, "only cognitive/engine may import dspy:\n" + "\n".join(map(str, found))


def test_no_import_cycles():
    graph = ImportGraph.of_project(ACYCLIC)
    cycles = import_cycles(graph)
    assert not cycles, "import cycles (deferred imports count):\n" + describe_cycles(graph, cycles)


# --------------------------------------------------------------------------- the checks can fail


def test_checker_finds_a_forbidden_import_deferred_inside_a_function():
    graph = ImportGraph(
        {
            "app.engine.metrics": "def judge():\n    from app.models import LanguageModel\n    return LanguageModel\n",
            "app.models": "from django.db import models\n",
        }
    )
    chains = forbidden_chains(graph, ["app.engine"], ["app.models"])
    assert _chains(chains) == "app.engine.metrics:2 imports app.models"


def test_checker_follows_a_helper_to_django():
    graph = ImportGraph(
        {
            "app": "",
            "app.engine": "",
            "app.engine.lms": "from app.ratelimit import acquire\n",
            "app.ratelimit": "import os\nfrom django.conf import settings\n",
        },
        packages={"app", "app.engine"},
    )
    chains = forbidden_chains(graph, ["app.engine"], ["django"])
    assert _chains(chains) == "app.engine.lms:1 imports app.ratelimit -> app.ratelimit:2 imports django.conf"


def test_checker_follows_a_package_init():
    graph = ImportGraph(
        {"app": "import django\n", "app.engine": "", "app.engine.run": "x = 1\n"}, packages={"app", "app.engine"}
    )
    assert _chains(forbidden_chains(graph, ["app.engine"], ["django"])) == (
        "app.engine runs its package's app/__init__.py -> app:1 imports django"
    )


def test_checker_resolves_relative_imports_and_ignores_type_checking_ones():
    graph = ImportGraph(
        {
            "app.engine": "",
            "app.engine.run": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from app.models import Row\n"
                "from ..services import runs\n"
            ),
            "app.services": "",
            "app.services.runs": "",
        },
        packages={"app.engine", "app.services"},
    )
    assert _chains(forbidden_chains(graph, ["app.engine"], ["app.models", "app.services"])) == (
        "app.engine.run:4 imports app.services.runs"
    )


def test_checker_finds_dspy_outside_the_engine():
    graph = ImportGraph(
        {
            "app.engine.run": "import dspy\n",
            "app.services.runs": "def f():\n    import dspy.teleprompt\n",
            "bench.__main__": "import dspy\n",
        }
    )
    found = direct_imports_of(graph, "dspy", outside=["app.engine", "bench.__main__"])
    assert [str(imp) for imp in found] == ["app.services.runs:2 imports dspy.teleprompt"]


def test_checker_finds_a_deferred_cycle_and_prints_it():
    graph = ImportGraph(
        {
            "app.jobs": "def publish():\n    from app.tasks import run\n",
            "app.tasks": "from app.runs import perform\n",
            "app.runs": "from app import jobs\n",
            "app.other": "from app.jobs import publish\n",
        }
    )
    cycles = import_cycles(graph)
    assert cycles == [["app.jobs", "app.runs", "app.tasks"]]
    text = describe_cycles(graph, cycles)
    assert "app.jobs:2 imports app.tasks\n    app.tasks:1 imports app.runs\n    app.runs:1 imports app.jobs" in text


def test_checker_finds_no_cycle_in_a_tree():
    graph = ImportGraph({"app.a": "from app import b\n", "app.b": "import app.c\n", "app.c": "import os\n"})
    assert import_cycles(graph) == []
