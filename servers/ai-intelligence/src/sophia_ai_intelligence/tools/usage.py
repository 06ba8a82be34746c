"""`llm_usage`: spend, tokens, calls and cache hit rate over a period, the budget, and where to save."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..ledger import budget_status
from ..names import LLM_USAGE
from ..state import AIState

Period = Literal["today", "7d", "30d", "month", "last_month"]
GroupBy = Literal["day", "model", "provider", "tool"]


class UsageLine(BaseModel):
    key: str
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float = Field(description="Known costs only.")
    unknown_cost_calls: int
    cache_hit_rate: float = Field(description="-1 when no call consulted the cache.")


class Saving(BaseModel):
    kind: str
    text: str
    calls: int
    current_cost_usd: float
    saving_usd: float


class UsageReport(ToolResult):
    period: str
    since: str
    until: str
    group_by: str
    rows: list[UsageLine]
    total: UsageLine
    budget_month: str
    budget_spend_usd: float
    budget_usd: float
    budget_percent: float
    budget_alert: str
    recommendations: list[Saving]

    def render_text(self) -> str:
        lines = [
            f"LLM usage {self.period} ({self.since} → {self.until}), by {self.group_by}:",
            f"{self.group_by} | calls | errors | tokens in+out | cost USD | unknown-cost calls | cache hit rate",
            "--- | --- | --- | --- | --- | --- | ---",
        ]
        for r in [*self.rows, self.total]:
            rate = "-" if r.cache_hit_rate < 0 else f"{r.cache_hit_rate * 100:.0f} %"
            lines.append(
                f"{r.key} | {r.calls} | {r.errors} | {r.input_tokens}+{r.output_tokens} | {r.cost_usd:.4f} | "
                f"{r.unknown_cost_calls} | {rate}"
            )
        lines.append(
            f"Budget {self.budget_month}: ${self.budget_spend_usd:,.2f} of ${self.budget_usd:,.2f} "
            f"({self.budget_percent:.1f} %)." + (f" {self.budget_alert}" if self.budget_alert else "")
        )
        if self.recommendations:
            lines.append("Where to save:")
            lines += [f"- {r.text}" for r in self.recommendations]
        elif self.total.calls:
            lines.append("No saving found in this period's calls (no repeated prompts, no cheaper fitting model).")
        return "\n".join(lines)


def period_bounds(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """[since, until) in UTC for a named period."""
    now = now.astimezone(UTC)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = today.replace(day=1)
    if period == "today":
        return today, now
    if period == "7d":
        return now - timedelta(days=7), now
    if period == "30d":
        return now - timedelta(days=30), now
    if period == "month":
        return month, now
    previous = (month - timedelta(days=1)).replace(day=1)
    return previous, month


def usage_report(state: AIState, *, period: Period, group_by: GroupBy, now: datetime) -> UsageReport:
    """Blocking: read the ledger and the price table; no LLM call, works offline."""
    ledger, prices = state.ledger(), state.prices()
    since, until = period_bounds(period, now)
    ttl = state.settings.get_int("SOPHIA_AI_CACHE_TTL_SECONDS", minimum=1)

    def line(row: Any) -> UsageLine:
        rate = row.cache_hit_rate
        return UsageLine(
            key=row.key, calls=row.calls, errors=row.errors, input_tokens=row.input_tokens,
            output_tokens=row.output_tokens, cost_usd=round(row.cost_usd, 10),
            unknown_cost_calls=row.unknown_cost_calls, cache_hit_rate=-1.0 if rate is None else round(rate, 4),
        )  # fmt: skip

    rows = [line(r) for r in ledger.summary(since=since, until=until, group_by=group_by)]
    total = line(ledger.totals(since=since, until=until))
    total.key = "total"
    budget = budget_status(ledger, state.settings, now)
    savings = ledger.recommendations(since=since, until=until, prices=prices, cache_ttl_seconds=ttl)
    return UsageReport(
        period=period, since=since.isoformat(), until=until.isoformat(), group_by=group_by, rows=rows, total=total,
        budget_month=budget.month, budget_spend_usd=round(budget.spend_usd, 6), budget_usd=budget.budget_usd,
        budget_percent=round(budget.percent, 2), budget_alert=budget.alert_text(),
        recommendations=[
            Saving(kind=r.kind, text=r.text, calls=r.calls, current_cost_usd=round(r.current_cost_usd, 6),
                   saving_usd=round(r.saving_usd, 6))
            for r in savings
        ],
    )  # fmt: skip


@sophia_tool(LLM_USAGE, title="LLM spend, usage and savings", read_only=True)
async def llm_usage(
    ctx: Context[Any, Any],
    period: Annotated[
        Period, Field(description="today, 7d, 30d, month (default: this calendar month, UTC) or last_month.")
    ] = "month",
    group_by: Annotated[
        GroupBy, Field(description="Break the figures down by day (default), model, provider or tool.")
    ] = "day",
) -> UsageReport:
    """How much the LLM calls made through this server cost: spend, tokens, calls, errors and cache hit
    rate for a period, grouped by day, model, provider or tool; the monthly budget status; and where
    caching or a cheaper model would have saved money, with the figures. Works offline from the local
    usage ledger; costs come from a dated price table (calls to models not in it count as unknown)."""
    state = state_of(ctx, AIState)
    now = datetime.now(UTC)
    return await run_blocking(lambda: usage_report(state, period=period, group_by=group_by, now=now))
