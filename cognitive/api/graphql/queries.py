"""Queries: every read goes through the user-scoped selectors REST uses, so what REST answers 404 is null here."""

from __future__ import annotations

import strawberry

from cognitive import selectors
from cognitive.api.graphql.context import Info
from cognitive.api.graphql.pagination import Connection, paginate
from cognitive.api.graphql.types import (
    Dataset,
    Execution,
    ExecutionFilter,
    Module,
    OptimizationRun,
    Program,
    ProgramStatusEnum,
    ProgramVersion,
    Signature,
    execution_page,
    parse_id,
)


@strawberry.type
class Query:
    @strawberry.field(description="a program you may read (archived ones only for staff), or null")
    def get_program(self, info: Info, id: strawberry.ID) -> Program | None:
        program = selectors.visible_row(selectors.program_list(user=info.context.user, with_stats=False), id)
        return info.context.loaders.programs_seen([program])[0] if program is not None else None

    @strawberry.field
    def programs(
        self, info: Info, first: int | None = None, after: str | None = None, status: ProgramStatusEnum | None = None,
        name: str | None = None,
    ) -> Connection[Program]:
        queryset = selectors.program_list(user=info.context.user, with_stats=False)
        if status is not None:
            queryset = queryset.filter(status=status.value)
        if name is not None:
            queryset = queryset.filter(name=name)
        page = paginate(queryset, first=first, after=after)
        info.context.loaders.programs_seen([edge.node for edge in page.edges])
        return page

    @strawberry.field(description="one execution with its step tree (children) and LM calls, or null")
    def execution(self, info: Info, id: strawberry.ID) -> Execution | None:
        found = selectors.visible_row(selectors.execution_list(user=info.context.user), id)
        return info.context.loaders.executions_seen([found])[0] if found is not None else None

    @strawberry.field(description="executions you may read, newest first; `filter: {root: true}` for runs only")
    def executions(
        self, info: Info, first: int | None = None, after: str | None = None, filter: ExecutionFilter | None = None,
    ) -> Connection[Execution]:
        return execution_page(info, selectors.execution_list(user=info.context.user), first=first, after=after,
                              filter=filter)

    @strawberry.field
    def modules(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Module]:
        page = paginate(selectors.module_list(user=info.context.user, with_stats=False), first=first, after=after)
        info.context.loaders.modules_seen([edge.node for edge in page.edges])
        return page

    @strawberry.field
    def signatures(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Signature]:
        return paginate(selectors.signature_list(user=info.context.user), first=first, after=after)

    @strawberry.field
    def datasets(
        self, info: Info, first: int | None = None, after: str | None = None, program: strawberry.ID | None = None,
    ) -> Connection[Dataset]:
        queryset = selectors.dataset_list(user=info.context.user)
        if program is not None:
            queryset = queryset.filter(program_id=parse_id(program, "program"))
        return paginate(queryset, first=first, after=after)

    @strawberry.field
    def optimization_runs(
        self, info: Info, first: int | None = None, after: str | None = None, program: strawberry.ID | None = None,
    ) -> Connection[OptimizationRun]:
        queryset = selectors.optimization_run_list(user=info.context.user)
        if program is not None:
            queryset = queryset.filter(program_id=parse_id(program, "program"))
        return paginate(queryset, first=first, after=after)

    @strawberry.field
    def program_versions(
        self, info: Info, first: int | None = None, after: str | None = None, program: strawberry.ID | None = None,
    ) -> Connection[ProgramVersion]:
        queryset = selectors.program_version_list(user=info.context.user)
        if program is not None:
            queryset = queryset.filter(program_id=parse_id(program, "program"))
        return paginate(queryset, first=first, after=after)
