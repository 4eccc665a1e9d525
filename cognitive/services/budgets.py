"""Spend limits (USD) per user and per program, per UTC day and calendar month, read from the rollups.

A new run is refused (429, `BudgetExceeded`) once what finished runs cost in the period reached a
limit. Runs already accepted are never touched: they were paid for when they were asked for, and
the check counts runs as they finish, so runs still queued can take the spend past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q, Sum
from django.utils import timezone

from cognitive.errors import BudgetExceeded
from cognitive.models import RollupScope, SpendBudget, UsageRollup


@dataclass(frozen=True)
class BudgetPeriod:
    period: str  # "daily" | "monthly"
    limit_usd: float
    spent_usd: float
    starts_at: datetime
    resets_at: datetime

    @property
    def remaining_usd(self) -> float:
        return round(max(self.limit_usd - self.spent_usd, 0.0), 6)

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.limit_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period, "limit_usd": self.limit_usd, "spent_usd": round(self.spent_usd, 6),
            "remaining_usd": self.remaining_usd, "resets_at": self.resets_at.isoformat(),
        }


def period_bounds(now: datetime) -> dict[str, tuple[datetime, datetime]]:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return {"daily": (day, day + timedelta(days=1)), "monthly": (month, next_month)}


def spent_usd(budget: SpendBudget, since: datetime) -> float:
    subject = {"program_id": budget.program_id} if budget.program_id else {"owner_id": budget.user_id}
    rows = UsageRollup.objects.filter(scope=RollupScope.RUN, bucket__gte=since, **subject)
    return float(rows.aggregate(cost=Sum("cost"))["cost"] or 0.0)


def budget_periods(budget: SpendBudget, now: datetime | None = None) -> list[BudgetPeriod]:
    now = now or timezone.now()
    periods = []
    for period, limit in (("daily", budget.daily_usd), ("monthly", budget.monthly_usd)):
        if limit is None:
            continue
        start, end = period_bounds(now)[period]
        periods.append(BudgetPeriod(period, float(limit), spent_usd(budget, start), start, end))
    return periods


def budget_status(budget: SpendBudget | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {"id": str(budget.pk), "periods": [p.as_dict() for p in budget_periods(budget)]}


def budgets_for(*, owner: Any, program: Any = None) -> list[SpendBudget]:
    """The budgets a run by `owner` (of `program`) counts against: one query, usually finding none."""
    condition = Q(user_id=owner.pk)
    if program is not None:
        condition |= Q(program_id=program.pk)
    return list(SpendBudget.objects.filter(condition).select_related("user", "program"))


def check_run_budget(*, owner: Any, program: Any = None) -> None:
    """BudgetExceeded (429) when a budget of the user or of the program is spent for its period."""
    now = timezone.now()
    for budget in budgets_for(owner=owner, program=program):
        for period in budget_periods(budget, now):
            if period.exhausted:
                raise BudgetExceeded(
                    f"the {period.period} budget of {budget.subject_label} (${period.limit_usd:g}) is spent "
                    f"(${period.spent_usd:.4f}); it resets at {period.resets_at.isoformat()}",
                    {"budget": str(budget.pk), **period.as_dict()},
                )


def budget_set(*, user: Any = None, program: Any = None, daily_usd: Any = None, monthly_usd: Any = None) -> SpendBudget:
    """Create or change the budget of one user or one program (staff only; see the admin and the API)."""
    from cognitive.errors import InvalidInput

    if (user is None) == (program is None):
        raise InvalidInput("a budget is for one user or one program", {"field": "user"})
    limits = {}
    for name, value in (("daily_usd", daily_usd), ("monthly_usd", monthly_usd)):
        if value is None:
            limits[name] = None
            continue
        try:
            amount = Decimal(str(value))
        except ArithmeticError:
            raise InvalidInput(f"{name} must be a number of USD", {"field": name}) from None
        if not amount.is_finite() or amount < 0:
            raise InvalidInput(f"{name} must be a finite amount of USD, 0 or more", {"field": name})
        limits[name] = amount
    budget, _ = SpendBudget.objects.update_or_create(
        user=user, program=program, defaults=limits
    )
    return budget
