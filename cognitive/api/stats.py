"""Stats (runs, success rate, latency percentiles, LM calls, tokens, cost) over `?since=`, and spend budgets."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.generics import get_object_or_404
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cognitive import selectors, selectors_usage
from cognitive.errors import InvalidInput
from cognitive.models import LanguageModel, SpendBudget
from cognitive.policies import IsOwnerOrStaff, is_staff
from cognitive.services import budgets

SINCE = OpenApiParameter(
    "since", str, description="ISO 8601 date-time or a span back from now (90m, 24h, 7d); default 24h"
)
STATS_SCHEMA = extend_schema(parameters=[SINCE], responses=OpenApiTypes.OBJECT)


class _StatsView(APIView):
    permission_classes = [IsOwnerOrStaff]

    def since(self, request: Request) -> Any:
        return selectors_usage.parse_since(request.query_params.get("since"))

    def owned(self, queryset: Any, pk: Any) -> Any:
        obj = get_object_or_404(queryset, pk=pk)
        self.check_object_permissions(self.request, obj)
        return obj


class ProgramStatsView(_StatsView):
    @STATS_SCHEMA
    def get(self, request: Request, pk: Any) -> Response:
        """The program's runs, by version, module and LM; with its spend budget, if it has one."""
        program = self.owned(selectors.program_list(user=request.user, with_stats=False), pk)
        stats = selectors_usage.program_stats(program.pk, self.since(request))
        budget = SpendBudget.objects.filter(program=program).select_related("program").first()
        return Response({"program": str(program.pk), **stats, "budget": budgets.budget_status(budget)})


class VersionStatsView(_StatsView):
    @STATS_SCHEMA
    def get(self, request: Request, pk: Any) -> Response:
        version = get_object_or_404(selectors.program_version_list(user=request.user), pk=pk)
        return Response({"version": str(version.pk), **selectors_usage.version_stats(version.pk, self.since(request))})


class ModuleStatsView(_StatsView):
    @STATS_SCHEMA
    def get(self, request: Request, pk: Any) -> Response:
        """Every execute of the module: as a pipeline step and alone."""
        module = self.owned(selectors.module_list(user=request.user, with_stats=False), pk)
        return Response({"module": str(module.pk), **selectors_usage.module_stats(module.pk, self.since(request))})


class LanguageModelStatsView(_StatsView):
    @STATS_SCHEMA
    def get(self, request: Request, pk: Any) -> Response:
        """LM calls, tokens and cost of this LM: everyone's for staff, the caller's own otherwise."""
        lm = get_object_or_404(LanguageModel.objects.all(), pk=pk)
        owner = None if is_staff(request.user) else request.user.pk
        return Response({"lm": lm.name, **selectors_usage.lm_stats(lm.name, self.since(request), owner_id=owner)})


class UserStatsView(_StatsView):
    @extend_schema(
        parameters=[SINCE, OpenApiParameter("user", int, description="staff: another user's id")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request) -> Response:
        """The caller's runs (staff: `?user=`), by program and LM, with the caller's spend budget."""
        user = request.user
        if "user" in request.query_params:
            if not is_staff(user):
                raise InvalidInput("only staff may ask for another user's stats", {"field": "user"})
            try:
                user = get_object_or_404(get_user_model(), pk=int(request.query_params["user"]))
            except ValueError:
                raise InvalidInput("user must be a user id", {"field": "user"}) from None
        stats = selectors_usage.user_stats(user.pk, self.since(request))
        budget = SpendBudget.objects.filter(user=user).select_related("user").first()
        return Response({"user": user.pk, **stats, "budget": budgets.budget_status(budget)})


class BudgetSerializer(serializers.ModelSerializer):
    periods = serializers.SerializerMethodField()

    class Meta:
        model = SpendBudget
        fields = ["id", "user", "program", "daily_usd", "monthly_usd", "periods", "created_at", "updated_at"]
        read_only_fields = ["id", "periods", "created_at", "updated_at"]

    def get_periods(self, budget: SpendBudget) -> list[dict[str, Any]]:
        return [period.as_dict() for period in budgets.budget_periods(budget)]


class IsStaffToWrite(IsOwnerOrStaff):
    message = "only staff set budgets"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        return request.method in ("GET", "HEAD", "OPTIONS") or is_staff(request.user)


class BudgetViewSet(viewsets.ModelViewSet):
    """Daily and monthly spend limits (USD): staff set them; a user reads the ones that apply to them."""

    serializer_class = BudgetSerializer
    permission_classes = [IsStaffToWrite]
    queryset = SpendBudget.objects.none()  # for the schema; requests use get_queryset
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> Any:
        budgets_all = SpendBudget.objects.select_related("user", "program").order_by("created_at")
        if is_staff(self.request.user):
            return budgets_all
        return budgets_all.filter(user=self.request.user) | budgets_all.filter(program__owner=self.request.user)

    def perform_create(self, serializer: BudgetSerializer) -> None:
        serializer.instance = budgets.budget_set(**serializer.validated_data)

    def perform_update(self, serializer: BudgetSerializer) -> None:
        budget = serializer.instance
        data = {"daily_usd": budget.daily_usd, "monthly_usd": budget.monthly_usd, **serializer.validated_data}
        data.update(user=budget.user, program=budget.program)
        serializer.instance = budgets.budget_set(**data)
