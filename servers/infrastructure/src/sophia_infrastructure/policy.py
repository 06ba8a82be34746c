"""GPU spend rules, pure and exact: the hourly cap, the month's projection against the budget, and its alerts.

Money is `Decimal` from integer cents, so a cap of 1.29 admits a 129-cent type and refuses a 130-cent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sophia_shared.errors import PolicyError

HOURS_PER_MONTH = 730  # 365 × 24 / 12: a month of running around the clock
ALERT_PERCENTS = (75, 90)
MAX_HOURLY_VARIABLE = "SOPHIA_LAMBDA_MAX_HOURLY_USD"
BUDGET_VARIABLE = "SOPHIA_INFRA_MONTHLY_BUDGET_USD"


def usd(cents: int) -> Decimal:
    return Decimal(cents) / 100


def as_usd(value: float | str | Decimal) -> Decimal:
    """A setting's number as exact dollars (`1.29` stays 1.29, not its binary approximation)."""
    return value if isinstance(value, Decimal) else Decimal(str(value))


def check_hourly_cap(price_cents: int, max_hourly_usd: float | str | Decimal, instance_type: str = "") -> None:
    """Refuse a price above the cap; a price equal to the cap is allowed."""
    cap = as_usd(max_hourly_usd)
    if usd(price_cents) > cap:
        what = f"{instance_type} costs" if instance_type else "This instance type costs"
        raise PolicyError(
            f"Refused: {what} ${usd(price_cents):.2f}/h, above the ${cap:.2f}/h cap ({MAX_HOURLY_VARIABLE}).",
            hint=f"Pick a cheaper instance type (gpu_types with max_usd_per_hour={cap}) or raise "
            f"{MAX_HOURLY_VARIABLE} deliberately.",
        )


@dataclass(frozen=True)
class MonthProjection:
    """What the running instances (and a new one) would cost over a month of running, against the budget."""

    running_hourly_usd: Decimal
    new_hourly_usd: Decimal
    month_usd: Decimal
    budget_usd: Decimal

    @property
    def percent(self) -> Decimal:
        return self.month_usd * 100 / self.budget_usd if self.budget_usd > 0 else Decimal("Infinity")

    @property
    def over_budget(self) -> bool:
        return self.month_usd > self.budget_usd

    @property
    def alerts(self) -> list[str]:
        """`"75 %"` and `"90 %"` alerts the projection has reached, as sentences."""
        reached = [p for p in ALERT_PERCENTS if self.percent >= p]
        if not reached:
            return []
        level = reached[-1]
        return [
            f"Budget alert ({level} %): the projected month is ${self.month_usd:.2f}, {self.percent:.0f} % of the "
            f"${self.budget_usd:.2f} monthly budget ({BUDGET_VARIABLE})."
        ]

    def line(self) -> str:
        return (
            f"${self.running_hourly_usd + self.new_hourly_usd:.2f}/h × {HOURS_PER_MONTH} h = ${self.month_usd:.2f} "
            f"projected for a month, {self.percent:.0f} % of the ${self.budget_usd:.2f} budget"
        )


def project_month(
    running_cents: Sequence[int], budget_usd: float | str | Decimal, new_cents: int = 0
) -> MonthProjection:
    """The month's projection if every running instance (and the new one) ran all month."""
    running = sum((usd(c) for c in running_cents), Decimal(0))
    new = usd(new_cents)
    return MonthProjection(running, new, (running + new) * HOURS_PER_MONTH, as_usd(budget_usd))


def check_budget(projection: MonthProjection) -> None:
    """Refuse a launch whose projection would cross the budget; reaching it exactly is allowed."""
    if projection.over_budget:
        raise PolicyError(
            f"Refused: running instances plus this one project to ${projection.month_usd:.2f} for a month "
            f"({HOURS_PER_MONTH} h), above the ${projection.budget_usd:.2f} monthly budget ({BUDGET_VARIABLE}).",
            hint="Terminate instances you no longer need (gpu_instances lists them with their cost), pick a cheaper "
            f"type, or raise {BUDGET_VARIABLE} deliberately.",
        )
