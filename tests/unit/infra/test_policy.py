"""The spend rules at their exact boundaries, without I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sophia_infrastructure.policy import HOURS_PER_MONTH, check_budget, check_hourly_cap, project_month
from sophia_shared.errors import PolicyError


def test_a_price_equal_to_the_hourly_cap_is_allowed() -> None:
    check_hourly_cap(129, 1.29)
    check_hourly_cap(110, 1.1)  # 1.1 is not exact in binary; the cap is compared as the decimal it was written


def test_one_cent_above_the_hourly_cap_is_refused() -> None:
    with pytest.raises(PolicyError, match=r"\$1.30/h, above the \$1.29/h cap \(SOPHIA_LAMBDA_MAX_HOURLY_USD\)"):
        check_hourly_cap(130, "1.29", "gpu_1x_a100")


def test_the_month_projects_running_instances_plus_the_new_one() -> None:
    projection = project_month([75, 129], 1000, new_cents=100)
    assert projection.month_usd == Decimal("3.04") * HOURS_PER_MONTH
    assert projection.running_hourly_usd == Decimal("2.04") and projection.new_hourly_usd == Decimal("1")


def test_a_projection_exactly_at_the_budget_is_allowed_and_one_cent_an_hour_more_is_refused() -> None:
    budget = Decimal(137) * HOURS_PER_MONTH / 100  # 1000.10
    check_budget(project_month([100], budget, new_cents=37))
    with pytest.raises(PolicyError, match=r"above the \$1000\.10 monthly budget"):
        check_budget(project_month([100], budget, new_cents=38))


@pytest.mark.parametrize(
    ("cents", "alert"),
    [(102, ""), (103, "75 %"), (123, "75 %"), (124, "90 %"), (137, "90 %")],
)
def test_budget_alerts_start_at_75_and_90_percent(cents: int, alert: str) -> None:
    projection = project_month([cents], 1000)  # 103 ¢/h × 730 h = $751.90, 124 ¢/h = $905.20
    assert [a.split("(")[1].split(")")[0] for a in projection.alerts] == ([alert] if alert else [])
