"""GraphQL at /graphql/: the original design's two examples verbatim, pagination, mutations and their errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from cognitive.models import Execution, ExecutionStatus, Program, ProgramStatus
from cognitive.services.modules import module_create
from cognitive.services.programs import program_activate, program_create
from cognitive.services.signatures import signature_create
from cognitive.services.versions import program_version_snapshot
from tests.cognitive.api.graphql_helpers import GET_PROGRAM, RUN_PROGRAM, data, gql
from tests.factories import ExecutionFactory, LanguageModelFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_broker")]

QA_PIPELINE = {"steps": [{"id": "answer", "module": "qa", "inputs": {"question": "$input.question"}}],
               "return": "$answer"}


def qa_program(owner, lm=None, name: str = "qa-program", module: str = "qa") -> Program:
    signature = signature_create(owner=owner, name=f"{module}-signature", spec="question: str -> answer: str")
    module_create(owner=owner, name=module, type="predict", signature=signature, lm=lm)
    pipeline = {**QA_PIPELINE, "steps": [{**QA_PIPELINE["steps"][0], "module": module}]}
    return program_activate(program=program_create(owner=owner, name=name, pipeline=pipeline))


@pytest.fixture
def lm(local_lm):
    return LanguageModelFactory(name="local", api_base=local_lm.url)


# --------------------------------------------------------------------------- the original design's examples


@pytest.mark.django_db(transaction=True)
def test_the_two_examples_run_verbatim(api, user, lm):
    program = qa_program(user, lm)

    ran = data(api, RUN_PROGRAM, {"programId": str(program.pk), "input": {"question": "What is 2 + 2?"}})

    result = ran["runProgram"]
    assert result["errors"] == []
    assert set(result["result"]["output"]) == {"answer"} and result["result"]["output"]["answer"]
    assert result["result"]["metrics"]["lm_calls"] >= 1
    assert [(step["step"], step["status"]) for step in result["result"]["trace"]] == [("answer", "completed")]
    execution = Execution.objects.get(program=program, parent__isnull=True)
    assert execution.status == ExecutionStatus.COMPLETED

    got = data(api, GET_PROGRAM, {"id": str(program.pk)})["getProgram"]

    assert (got["id"], got["name"], got["status"]) == (str(program.pk), "qa-program", "ACTIVE")
    (module,) = got["modules"]
    assert (module["name"], module["type"]) == ("qa", "predict")
    # The step ran the module once and completed; its metrics are the original design's calculations.
    step = Execution.objects.get(parent=execution)
    assert module["performanceMetrics"] == {
        "success_rate": 1.0, "avg_latency": float(step.duration_ms), "executing": 0, "finished": 1, "window": 1000}
    (edge,) = got["executions"]["edges"]
    assert edge["node"] == {
        "id": str(execution.pk), "input": {"question": "What is 2 + 2?"}, "output": execution.output,
        "duration": execution.duration_ms, "metrics": execution.metrics,
    }


def test_get_program_filters_executions_by_status_and_pages_by_cursor(api, user):
    program = qa_program(user)
    completed = [ExecutionFactory(owner=user, program=program, status=ExecutionStatus.COMPLETED) for _ in range(12)]
    ExecutionFactory(owner=user, program=program, status=ExecutionStatus.FAILED)
    ExecutionFactory(owner=user, program=program, status=ExecutionStatus.COMPLETED, parent=completed[0])  # a step

    first = data(api, GET_PROGRAM, {"id": str(program.pk)})["getProgram"]["executions"]["edges"]
    assert len(first) == 10

    query = """query($id: ID!, $after: String) { getProgram(id: $id) {
        executions(first: 10, after: $after, filter: {status: {eq: COMPLETED}}) {
          totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id status } } } } }"""
    page1 = data(api, query, {"id": str(program.pk)})["getProgram"]["executions"]
    page2 = data(api, query, {"id": str(program.pk), "after": page1["pageInfo"]["endCursor"]})["getProgram"][
        "executions"]
    assert page1["totalCount"] == 12 and page1["pageInfo"]["hasNextPage"] is True
    assert page2["pageInfo"] == {"hasNextPage": False, "endCursor": page2["edges"][-1]["cursor"]}
    seen = [edge["node"]["id"] for edge in page1["edges"] + page2["edges"]]
    newest_first = sorted(completed, key=lambda row: (row.created_at, str(row.pk)), reverse=True)
    assert seen == [str(row.pk) for row in newest_first]


def test_executions_filters_by_created_range_batch_and_version(api, user):
    program = qa_program(user)
    version = program_version_snapshot(program=program)
    old = ExecutionFactory(owner=user, program=program)
    Execution.objects.filter(pk=old.pk).update(created_at="2020-01-01T00:00:00Z")
    pinned = ExecutionFactory(owner=user, program=program, version=version)
    query = """query($f: ExecutionFilter) { executions(filter: $f) { edges { node { id versionId } } } }"""

    def ids(filter_: dict[str, Any]) -> set[str]:
        return {edge["node"]["id"] for edge in data(api, query, {"f": filter_})["executions"]["edges"]}

    assert ids({"created": {"lt": "2021-01-01T00:00:00Z"}}) == {str(old.pk)}
    assert ids({"created": {"gte": "2021-01-01T00:00:00Z"}}) == {str(pinned.pk)}
    assert ids({"version": str(version.pk)}) == {str(pinned.pk)}
    assert ids({"batch": "00000000-0000-0000-0000-000000000000"}) == set()
    bad = gql(api, query, {"f": {"batch": "nope"}}).json()
    assert bad["errors"][0]["message"] == "filter.batch: not an id"
    assert bad["errors"][0]["extensions"]["code"] == 400


def test_page_size_is_bounded(api, settings):
    settings.DSPEX_GRAPHQL_PAGE_MAX = 5
    body = gql(api, "{ programs(first: 6) { edges { cursor } } }").json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "first must be from 1 to 5"
    assert body["errors"][0]["extensions"] == {"code": 400, "extra": {"field": "first"}}


def test_get_program_costs_a_fixed_number_of_queries(api, user):
    """50 executions and 5 modules: the same queries as with one of each (no N+1)."""
    signature = signature_create(owner=user, name="s", spec="question: str -> answer: str")
    steps = []
    for n in range(5):
        module_create(owner=user, name=f"m{n}", type="predict", signature=signature)
        steps.append({"id": f"s{n}", "module": f"m{n}", "inputs": {"question": "$input.question"}})
    program = program_activate(program=program_create(owner=user, name="five", pipeline={"steps": steps}))
    runs = [ExecutionFactory(owner=user, program=program, status=ExecutionStatus.COMPLETED) for _ in range(50)]
    for run in runs[:10]:
        ExecutionFactory(owner=user, program=program, parent=run, step_id="s0")
    query = """query GetProgram($id: ID!) { getProgram(id: $id) {
        id name status stats { executing successRate avgLatency }
        modules { id name type performanceMetrics }
        executions(first: 50, filter: { status: { eq: COMPLETED } }) {
          totalCount edges { node { id input output duration metrics children { id lmCalls } } } } } }"""
    data(api, query, {"id": str(program.pk)})  # warm: the token, content types

    with CaptureQueriesContext(connection) as queries:
        got = data(api, query, {"id": str(program.pk)})["getProgram"]

    assert len(got["modules"]) == 5 and len(got["executions"]["edges"]) == 50
    assert sum(len(edge["node"]["children"]) for edge in got["executions"]["edges"]) == 10
    # token + user, the program, its modules, their metrics (finished, running), stats, the page, its count,
    # the children
    assert len(queries) == 9, [q["sql"] for q in queries.captured_queries]


def test_module_metrics_cover_the_last_window_of_finished_executions(api, user, settings):
    from cognitive.models import Module

    settings.DSPEX_METRICS_WINDOW = 4
    program = qa_program(user)
    module = Module.objects.get(owner=user, name="qa")
    other = program_create(owner=user, name="other", pipeline=program.pipeline)
    rows = [  # oldest first: two failures, then five completed runs of 10..50 ms; one running
        *[(ExecutionStatus.FAILED, None)] * 2, *[(ExecutionStatus.COMPLETED, ms) for ms in (10, 20, 30, 40, 50)],
        (ExecutionStatus.RUNNING, None),
    ]
    for n, (status, ms) in enumerate(rows):
        row = ExecutionFactory(owner=user, program=other, module=module, status=status, duration_ms=ms)
        Execution.objects.filter(pk=row.pk).update(created_at=f"2026-01-01T00:00:{n:02d}Z")
    ExecutionFactory(owner=user, program=other, status=ExecutionStatus.FAILED)  # another module's, or none

    got = data(api, GET_PROGRAM, {"id": str(program.pk)})["getProgram"]["modules"][0]["performanceMetrics"]

    # The last 4 finished are the completed 20..50 ms runs.
    assert got == {"success_rate": 1.0, "avg_latency": 35.0, "executing": 1, "finished": 4, "window": 4}
    settings.DSPEX_METRICS_WINDOW = 6
    got = data(api, GET_PROGRAM, {"id": str(program.pk)})["getProgram"]["modules"][0]["performanceMetrics"]
    assert got == {"success_rate": 5 / 6, "avg_latency": 30.0, "executing": 1, "finished": 6, "window": 6}


def test_execution_has_its_step_tree_and_lm_calls(api, user):
    program = qa_program(user)
    call = {"type": "lm_call", "model": "openai/local", "prompt_tokens": 3}
    run = ExecutionFactory(owner=user, program=program, trace=[{"step_id": "answer"}])
    step = ExecutionFactory(owner=user, program=program, parent=run, step_id="answer", trace=[call, {"type": "tool"}])
    query = """query($id: ID!) { execution(id: $id) { id status children { id stepId lmCalls children { id } } } }"""

    got = data(api, query, {"id": str(run.pk)})["execution"]

    assert got["children"] == [{"id": str(step.pk), "stepId": "answer", "lmCalls": [call], "children": []}]


def test_every_list_is_a_cursor_connection(api, user):
    qa_program(user)
    for field in ("programs", "executions", "modules", "signatures", "datasets", "optimizationRuns",
                  "programVersions"):
        got = data(api, f"{{ {field}(first: 1) {{ pageInfo {{ hasNextPage endCursor }} edges {{ cursor }} }} }}")
        assert set(got[field]) == {"pageInfo", "edges"}
    assert data(api, "{ programs { totalCount } }")["programs"]["totalCount"] == 1
    bad = gql(api, '{ programs(after: "bm9wZQ==") { totalCount } }').json()
    assert bad["errors"][0]["message"] == "after: not a cursor from this API"


# --------------------------------------------------------------------------- mutations and their errors


def test_run_program_can_queue_and_return_the_execution(api, user, no_broker, django_capture_on_commit_callbacks):
    program = qa_program(user)
    query = """mutation($id: ID!) { runProgram(programId: $id, input: {question: "q"}, queue: true, priority: 2) {
        result { output } execution { id status } errors { field message } } }"""

    with django_capture_on_commit_callbacks(execute=True):
        got = data(api, query, {"id": str(program.pk)})["runProgram"]

    execution = Execution.objects.get(program=program)
    assert got == {"result": {"output": None}, "execution": {"id": str(execution.pk), "status": "PENDING"},
                   "errors": []}
    assert execution.priority == 2 and no_broker.call_args.kwargs["args"] == [str(execution.pk)]


def test_run_program_errors_come_back_in_the_payload(api, user):
    program = qa_program(user)
    bad_input = data(api, RUN_PROGRAM, {"programId": str(program.pk), "input": {"nope": 1}})["runProgram"]
    assert bad_input["result"] is None
    assert bad_input["errors"] == [
        {"field": "nope", "message": "unknown input field 'nope'; this program takes: question"}]

    draft = program_create(owner=user, name="draft", pipeline=program.pipeline)
    not_active = data(api, RUN_PROGRAM, {"programId": str(draft.pk), "input": {"question": "q"}})["runProgram"]
    assert not_active["errors"][0]["message"] == "only an active program can run; this one is draft"
    assert not Execution.objects.exists()


def test_create_signature_errors_carry_their_position(api):
    query = """mutation($spec: String!) { createSignature(name: "s", spec: $spec) {
        signature { name inputFields complexity } errors { field message position code } } }"""

    bad = data(api, query, {"spec": "question: str -> answer: lisst[str]"})["createSignature"]
    good = data(api, query, {"spec": "question: str -> answer: str"})["createSignature"]

    assert bad["signature"] is None
    (error,) = bad["errors"]
    assert error["field"] == "spec" and error["code"] == 400
    assert error["position"] == len("question: str -> answer: ")
    assert good["errors"] == [] and good["signature"]["name"] == "s" and good["signature"]["complexity"] >= 2


def test_compose_program_errors_carry_their_json_path(api, user):
    qa_program(user)
    query = """mutation($p: JSON) { composeProgram(name: "new", pipeline: $p) {
        program { name status modules { name } } errors { field message path code } } }"""

    bad = data(api, query, {"p": {"steps": [{"id": "a", "module": "missing"}]}})["composeProgram"]
    good = data(api, query, {"p": QA_PIPELINE})["composeProgram"]

    assert bad["program"] is None
    assert bad["errors"] == [{"field": "steps", "message": "steps[0].module: unknown module 'missing'",
                              "path": "steps[0].module", "code": 400}]
    assert good == {"program": {"name": "new", "status": "DRAFT", "modules": [{"name": "qa"}]}, "errors": []}


def test_run_batch_checks_every_item_and_queues_them(api, user, broker_messages):
    program = qa_program(user)
    query = """mutation($id: ID!, $inputs: [JSON!]!) { runBatch(programId: $id, inputs: $inputs) {
        batch { id size counts } errors { field message path code } } }"""

    bad = data(api, query, {"id": str(program.pk), "inputs": [{"question": "a"}, {"x": 1}]})["runBatch"]
    good = data(api, query, {"id": str(program.pk), "inputs": [{"question": "a"}, {"question": "b"}]})["runBatch"]

    assert bad["batch"] is None and bad["errors"][0]["path"].startswith("inputs[1]")
    assert good["errors"] == [] and good["batch"]["size"] == 2 and good["batch"]["counts"]["pending"] == 2


def test_cancel_activate_archive_promote_and_rollback(api, user):
    program = qa_program(user)
    pending = ExecutionFactory(owner=user, program=program)
    cancelled = data(api, "mutation($id: ID!) { cancelExecution(id: $id) { execution { status } errors { code } } }",
                     {"id": str(pending.pk)})["cancelExecution"]
    assert cancelled == {"execution": {"status": "CANCELLED"}, "errors": []}

    v1 = program_version_snapshot(program=program)
    v2 = program_version_snapshot(program=program)
    promote = """mutation($p: ID!, $v: ID!) { promoteVersion(programId: $p, versionId: $v) {
        program { activeVersionId } errors { field message code } } }"""
    assert data(api, promote, {"p": str(program.pk), "v": str(v1.pk)})["promoteVersion"]["errors"] == []
    assert data(api, promote, {"p": str(program.pk), "v": str(v2.pk)})["promoteVersion"]["program"] == {
        "activeVersionId": str(v2.pk)}
    other = data(api, promote, {"p": str(program.pk), "v": "00000000-0000-0000-0000-000000000000"})
    assert other["promoteVersion"]["errors"] == [
        {"field": "version", "message": "version: not a version of this program", "code": 400}]
    rollback = "mutation($p: ID!) { rollbackProgram(programId: $p) { program { activeVersionId } errors { code } } }"
    assert data(api, rollback, {"p": str(program.pk)})["rollbackProgram"]["program"] == {
        "activeVersionId": str(v1.pk)}

    archived = data(api, "mutation($id: ID!) { archiveProgram(id: $id) { program { status } errors { code } } }",
                    {"id": str(program.pk)})["archiveProgram"]
    assert archived == {"program": {"status": "ARCHIVED"}, "errors": []}
    assert Program.objects.get(pk=program.pk).status == ProgramStatus.ARCHIVED
    again = data(api, "mutation($id: ID!) { activateProgram(id: $id) { program { id } errors { code } } }",
                 {"id": str(program.pk)})["activateProgram"]
    assert again == {"program": None, "errors": [{"code": 404}]}  # archived: hidden from its owner


# --------------------------------------------------------------------------- safety


def test_a_query_asking_for_get_program_500_times_is_refused(api, user):
    program = qa_program(user)
    aliases = " ".join(f'p{n}: getProgram(id: "{program.pk}") {{ id }}' for n in range(500))

    with CaptureQueriesContext(connection) as queries:
        response = gql(api, f"{{ {aliases} }}")

    body = response.json()
    assert body["data"] is None
    # Refused before anything runs: the document is over the token limit (and the alias limit).
    assert body["errors"][0]["message"].endswith("more than 2000 tokens. Parsing aborted."), body["errors"][:2]
    assert not any("cognitive_program" in q["sql"] for q in queries.captured_queries)


def test_too_many_aliases_and_too_deep_are_refused(api, user):
    program = qa_program(user)
    twenty = " ".join(f'p{n}: getProgram(id: "{program.pk}") {{ id }}' for n in range(20))
    body = gql(api, f"{{ {twenty} }}").json()
    assert body["data"] is None
    assert body["errors"][0]["message"] == "20 aliases found. Allowed: 15"
    many = " ".join(f"s{n}: signatures(first: 1) {{ totalCount }}" for n in range(16))
    assert "aliases" in gql(api, f"{{ {many} }}").json()["errors"][0]["message"]
    deep = "{ execution(id: \"x\") { " + "children { " * 10 + "id" + " }" * 10 + " } }"
    body = gql(api, deep).json()
    assert body["data"] is None and "exceeds maximum operation depth" in body["errors"][0]["message"]


def test_a_document_over_the_token_limit_is_refused(api, settings):
    settings.DSPEX_GRAPHQL_MAX_TOKENS = 100  # read when the schema is built: checked through a fresh one
    from cognitive.api.graphql.schema import build_schema

    fields = " ".join(["id name"] * 60)
    result = build_schema().execute_sync(f"{{ programs {{ edges {{ node {{ {fields} }} }} }} }}")
    assert result.errors and "token" in result.errors[0].message.lower()


def test_introspection_for_graphiql_fits_the_limits(api):
    from graphql import get_introspection_query

    body = gql(api, get_introspection_query()).json()
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


def test_a_bug_is_masked_never_a_traceback(api, user, monkeypatch):
    from cognitive import selectors

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals /srv/app.py line 3")

    monkeypatch.setattr(selectors, "signature_list", broken)
    response = gql(api, "{ signatures { edges { cursor } } }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == "internal error"
    assert "secret" not in response.content.decode()


def test_run_shares_the_rest_throttle(api, user, settings, django_capture_on_commit_callbacks):
    from unittest import mock

    from django.core.cache import cache

    program = qa_program(user)
    cache.clear()
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "run": "2/min"}
    query = """mutation($id: ID!) { runProgram(programId: $id, input: {question: "q"}, queue: true) {
        execution { id } errors { code message extra } } }"""
    with mock.patch("rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", rates):
        rest = api.post(f"/api/programs/{program.pk}/run/", {"input": {"question": "q"}}, format="json")
        graph = data(api, query, {"id": str(program.pk)})["runProgram"]
        refused = data(api, query, {"id": str(program.pk)})["runProgram"]
    cache.clear()

    assert rest.status_code == 202 and graph["errors"] == []
    (error,) = refused["errors"]
    assert refused["execution"] is None and error["code"] == 429
    assert error["message"].startswith("too many run requests; retry in ")
    assert 1 <= error["extra"]["retry_after"] <= 61
    assert Execution.objects.count() == 2
