"""The usage ledger (one row per LLM call, SQLite in the data dir) and the monthly budget built on it.

Several server processes (one per editor window) append to the same file: WAL mode, a busy timeout and
short `BEGIN IMMEDIATE` transactions keep every row and never surface "database is locked".
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sophia_shared.errors import ConfigError, PolicyError
from sophia_shared.settings import Settings

from .prices import PriceTable
from .state_db import ai_state_dir, create_schema, open_state_db

__all__ = [
    "BUDGET_ALERTS",
    "BudgetStatus",
    "GroupBy",
    "Recommendation",
    "UsageEvent",
    "UsageLedger",
    "UsageRow",
    "ai_state_dir",
    "budget_status",
    "check_budget",
    "create_schema",
    "open_ledger",
    "open_state_db",
]

GroupBy = Literal["day", "model", "provider", "tool"]
CACHE_HIT_STATUSES = ("hit", "semantic_hit")
CONSULTED_STATUSES = ("hit", "semantic_hit", "miss")
BUDGET_ALERTS: tuple[tuple[float, str], ...] = ((75.0, "75%"), (90.0, "90%"), (100.0, "100%"))
BUDGET_SETTING = "SOPHIA_AI_MONTHLY_BUDGET_USD"
HARD_STOP_SETTING = "SOPHIA_AI_BUDGET_HARD_STOP"


@dataclass(frozen=True)
class UsageEvent:
    """One LLM call as the ledger keeps it (never the prompt or answer text)."""

    at: datetime  # timezone-aware; stored as UTC
    tool: str
    profile: str  # routing source/profile the call used
    provider: str  # that answered ("" when unknown)
    model: str  # that answered
    fallbacks: tuple[str, ...] = ()
    input_tokens: int | None = None
    output_tokens: int | None = None
    latency_ms: float = 0.0
    cost_usd: float | None = None  # None = unknown (model not in the price table); 0 for a cache hit
    cache_status: str = "off"  # "off", "miss", "hit", "semantic_hit"
    trace_id: str = ""
    prompt_hash: str = ""  # ResponseCache.key_for(request): equal hashes are answers an exact cache serves
    error: str = ""  # empty when the call succeeded


@dataclass(frozen=True)
class UsageRow:
    key: str  # the day (YYYY-MM-DD, UTC), model, provider or tool
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float  # sum over calls whose cost is known
    unknown_cost_calls: int
    cache_hits: int  # exact and semantic
    cache_consulted: int  # calls that looked in the cache (hit, semantic hit or miss)

    @property
    def cache_hit_rate(self) -> float | None:
        return self.cache_hits / self.cache_consulted if self.cache_consulted else None


@dataclass(frozen=True)
class Recommendation:
    kind: Literal["cache", "cheaper_model"]
    text: str  # one sentence with its figures
    calls: int  # calls the recommendation is about
    current_cost_usd: float
    saving_usd: float
    details: dict[str, str | int | float]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    day TEXT NOT NULL,
    tool TEXT NOT NULL,
    profile TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    fallbacks TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    latency_ms REAL NOT NULL,
    cost_usd REAL,
    cache_status TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS usage_at ON usage (at);
"""

_GROUP_COLUMNS: dict[str, str] = {"day": "day", "model": "model", "provider": "provider", "tool": "tool"}


class UsageLedger:
    """Append-only call records in SQLite; every method is blocking and safe across processes."""

    WHAT = "AI usage ledger"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> UsageLedger:
        return cls(ai_state_dir(settings) / "ledger.sqlite3")

    @contextmanager
    def _db(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            with self._lock, open_state_db(self.path, self.WHAT, write=True) as conn:
                create_schema(conn, _SCHEMA)
                self._ready = True
        with open_state_db(self.path, self.WHAT, write=write) as conn:
            yield conn

    def record(self, event: UsageEvent) -> None:
        at = _utc(event.at)
        with self._db(write=True) as conn:
            conn.execute(
                "INSERT INTO usage (at, day, tool, profile, provider, model, fallbacks, input_tokens, output_tokens,"
                " latency_ms, cost_usd, cache_status, trace_id, prompt_hash, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at.timestamp(),
                    at.strftime("%Y-%m-%d"),
                    event.tool,
                    event.profile,
                    event.provider,
                    event.model,
                    json.dumps(list(event.fallbacks)),
                    event.input_tokens,
                    event.output_tokens,
                    event.latency_ms,
                    event.cost_usd,
                    event.cache_status,
                    event.trace_id,
                    event.prompt_hash,
                    event.error,
                ),
            )

    def summary(self, *, since: datetime, until: datetime, group_by: GroupBy) -> list[UsageRow]:
        """Calls in [since, until) grouped by day, model, provider or tool, most expensive first (days in order)."""
        column = _GROUP_COLUMNS.get(group_by)
        if column is None:
            raise ValueError(f"group_by must be one of {sorted(_GROUP_COLUMNS)}, not {group_by!r}")
        hits = ", ".join(f"'{s}'" for s in CACHE_HIT_STATUSES)
        consulted = ", ".join(f"'{s}'" for s in CONSULTED_STATUSES)
        order = "key" if group_by == "day" else "cost DESC, calls DESC, key"
        # `column` comes from the fixed mapping above, never from the caller's text.
        query = (
            f"SELECT {column} AS key, COUNT(*) AS calls, SUM(error != ''),"
            " COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
            " COALESCE(SUM(cost_usd), 0.0) AS cost, SUM(cost_usd IS NULL),"
            f" SUM(cache_status IN ({hits})), SUM(cache_status IN ({consulted}))"
            f" FROM usage WHERE at >= ? AND at < ? GROUP BY {column} ORDER BY {order}"
        )
        with self._db(write=False) as conn:
            rows = conn.execute(query, (_utc(since).timestamp(), _utc(until).timestamp())).fetchall()
        return [
            UsageRow(
                key=str(r[0]),
                calls=int(r[1]),
                errors=int(r[2]),
                input_tokens=int(r[3]),
                output_tokens=int(r[4]),
                cost_usd=float(r[5]),
                unknown_cost_calls=int(r[6]),
                cache_hits=int(r[7]),
                cache_consulted=int(r[8]),
            )
            for r in rows
        ]

    def totals(self, *, since: datetime, until: datetime) -> UsageRow:
        """All calls in [since, until) as one row (key "total")."""
        rows = self.summary(since=since, until=until, group_by="tool")
        return UsageRow(
            key="total",
            calls=sum(r.calls for r in rows),
            errors=sum(r.errors for r in rows),
            input_tokens=sum(r.input_tokens for r in rows),
            output_tokens=sum(r.output_tokens for r in rows),
            cost_usd=sum(r.cost_usd for r in rows),
            unknown_cost_calls=sum(r.unknown_cost_calls for r in rows),
            cache_hits=sum(r.cache_hits for r in rows),
            cache_consulted=sum(r.cache_consulted for r in rows),
        )

    def month_spend(self, now: datetime) -> float:
        """Known spend in `now`'s calendar month (UTC)."""
        return self.month_totals(now)[0]

    def month_totals(self, now: datetime) -> tuple[float, int]:
        """Known spend in `now`'s calendar month (UTC) and how many of its calls have an unknown cost."""
        start, end = _month_bounds(now)
        with self._db(write=False) as conn:
            spend, unknown = conn.execute(
                "SELECT COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(cost_usd IS NULL), 0) FROM usage"
                " WHERE at >= ? AND at < ?",
                (start.timestamp(), end.timestamp()),
            ).fetchone()
        return float(spend), int(unknown)

    def recommendations(
        self, *, since: datetime, prices: PriceTable, until: datetime | None = None, cache_ttl_seconds: int = 3600
    ) -> list[Recommendation]:
        """Savings the ledger shows: repeats a cache would have served, cheaper models that did the same work."""
        calls = self._calls(since, until or datetime.now(UTC))
        found = [*_cache_recommendations(calls, cache_ttl_seconds), *_model_recommendations(calls, prices)]
        return sorted(found, key=lambda r: -r.saving_usd)

    def _calls(self, since: datetime, until: datetime) -> list[_Call]:
        with self._db(write=False) as conn:
            rows = conn.execute(
                "SELECT at, tool, model, input_tokens, output_tokens, cost_usd, cache_status, prompt_hash"
                " FROM usage WHERE at >= ? AND at < ? AND error = '' ORDER BY at, id",
                (_utc(since).timestamp(), _utc(until).timestamp()),
            ).fetchall()
        return [_Call(*row) for row in rows]


def open_ledger(settings: Settings) -> UsageLedger:
    """The server's ledger, `<data dir>/ai/ledger.sqlite3`; nothing is opened until the first call."""
    return UsageLedger.from_settings(settings)


@dataclass(frozen=True)
class _Call:
    at: float
    tool: str
    model: str
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    cache_status: str
    prompt_hash: str


def _cache_recommendations(calls: Sequence[_Call], ttl_seconds: int) -> list[Recommendation]:
    # Replay the uncached calls through an imaginary exact cache with this TTL: a repeat within the
    # TTL of the stored answer would have been served; a later one would have refreshed the entry.
    by_hash: dict[str, list[_Call]] = defaultdict(list)
    for call in calls:
        if call.prompt_hash and call.cache_status in ("off", "miss"):
            by_hash[call.prompt_hash].append(call)
    served = 0
    saved = 0.0
    unknown = 0
    prompts = 0
    for group in by_hash.values():
        stored_at: float | None = None
        group_served = 0
        for call in group:
            if stored_at is not None and call.at - stored_at <= ttl_seconds:
                group_served += 1
                if call.cost_usd is None:
                    unknown += 1
                else:
                    saved += call.cost_usd
            else:
                stored_at = call.at
        if group_served:
            prompts += 1
            served += group_served
    if not served:
        return []
    unknown_text = f" ({unknown} of them with unknown cost, not counted)" if unknown else ""
    return [
        Recommendation(
            kind="cache",
            text=(
                f"{served} calls repeated an identical request ({prompts} distinct prompts) within "
                f"{ttl_seconds} s of an earlier answer without using the cache{unknown_text}: the exact cache "
                f"would have answered them and saved ${saved:.4f}."
            ),
            calls=served,
            current_cost_usd=saved,
            saving_usd=saved,
            details={"distinct_prompts": prompts, "unknown_cost_calls": unknown, "ttl_seconds": ttl_seconds},
        )
    ]


# "Similar token sizes": the cheaper model's calls of the same tool averaged within this factor.
_SIZE_FACTOR = 2.0


@dataclass
class _ModelWork:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    max_input: int = 0


def _model_recommendations(calls: Sequence[_Call], prices: PriceTable) -> list[Recommendation]:
    # Only calls with known tokens and cost count: a comparison needs both sides' figures.
    work: dict[tuple[str, str], _ModelWork] = defaultdict(_ModelWork)
    for call in calls:
        if call.cache_status in CACHE_HIT_STATUSES or call.cost_usd is None:
            continue
        if call.input_tokens is None or call.output_tokens is None:
            continue
        w = work[(call.tool, call.model)]
        w.calls += 1
        w.input_tokens += call.input_tokens
        w.output_tokens += call.output_tokens
        w.cost += call.cost_usd
        w.max_input = max(w.max_input, call.input_tokens)

    found: list[Recommendation] = []
    for (tool, model), current in work.items():
        best: tuple[float, str, float] | None = None  # (saving, model, cost there)
        for (other_tool, other_model), other in work.items():
            if other_tool != tool or other_model == model or not _similar_sizes(current, other):
                continue
            price = prices.price_of(other_model)
            if price is None or not price.price_known:
                continue
            if price.context_window is not None and current.max_input > price.context_window:
                continue
            there = price.cost(current.input_tokens, current.output_tokens)
            if there is None:
                continue
            saving = current.cost - there
            if saving > 0 and (best is None or saving > best[0]):
                best = (saving, other_model, there)
        if best is None:
            continue
        saving, cheaper, there = best
        other = work[(tool, cheaper)]
        found.append(
            Recommendation(
                kind="cheaper_model",
                text=(
                    f"{current.calls} {tool} calls on {model} cost ${current.cost:.4f}; at {cheaper}'s list price "
                    f"(it served {other.calls} {tool} calls of similar size) the same tokens cost ${there:.4f}, "
                    f"saving ${saving:.4f}."
                ),
                calls=current.calls,
                current_cost_usd=current.cost,
                saving_usd=saving,
                details={
                    "tool": tool,
                    "model": model,
                    "cheaper_model": cheaper,
                    "cost_on_cheaper_usd": there,
                    "avg_input_tokens": round(current.input_tokens / current.calls),
                    "avg_output_tokens": round(current.output_tokens / current.calls),
                    "cheaper_model_calls": other.calls,
                    "cheaper_avg_input_tokens": round(other.input_tokens / other.calls),
                    "cheaper_avg_output_tokens": round(other.output_tokens / other.calls),
                },
            )
        )
    return found


def _similar_sizes(a: _ModelWork, b: _ModelWork) -> bool:
    def close(x: float, y: float) -> bool:
        low, high = sorted((max(x, 1.0), max(y, 1.0)))
        return high / low <= _SIZE_FACTOR

    return close(a.input_tokens / a.calls, b.input_tokens / b.calls) and close(
        a.output_tokens / a.calls, b.output_tokens / b.calls
    )


# -- budget --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    month: str  # YYYY-MM (UTC)
    spend_usd: float  # known costs only
    budget_usd: float
    percent: float
    alerts: tuple[str, ...]  # thresholds reached: "75%", "90%", "100%"
    hard_stop: bool  # SOPHIA_AI_BUDGET_HARD_STOP is on
    blocked: bool  # hard stop on and the budget reached: calls are refused
    unknown_cost_calls: int  # this month's calls whose cost is unknown: spend is a lower bound

    def alert_text(self) -> str:
        """One line for every LLM result once a threshold is crossed; empty before."""
        if not self.alerts:
            return ""
        unknown = f" plus {self.unknown_cost_calls} calls of unknown cost" if self.unknown_cost_calls else ""
        return (
            f"Budget alert ({self.alerts[-1]}): {self.percent:.1f} % of the monthly LLM budget used in {self.month} "
            f"(${self.spend_usd:,.2f} of ${self.budget_usd:,.2f}{unknown})."
        )


def budget_status(ledger: UsageLedger, settings: Settings, now: datetime) -> BudgetStatus:
    """This month's spend against SOPHIA_AI_MONTHLY_BUDGET_USD, with the alert thresholds reached."""
    budget = settings.get_float(BUDGET_SETTING, minimum=0.0)
    if budget <= 0:
        raise ConfigError(
            f"{BUDGET_SETTING} is {budget:g}; the monthly budget must be more than 0 USD.",
            hint=f"Set {BUDGET_SETTING} to the most you want to spend a month, e.g. 1000.",
        )
    spend, unknown = ledger.month_totals(now)
    percent = spend / budget * 100
    # Rounded to a billionth of a dollar: a sum of float costs that is exactly at a threshold on paper
    # (e.g. 0.1 + 0.2 of 0.4 at 75 %) must count as reaching it, not fall a float hair short.
    alerts = tuple(label for threshold, label in BUDGET_ALERTS if round(spend, 9) >= round(budget * threshold / 100, 9))
    hard_stop = settings.flag(HARD_STOP_SETTING)
    return BudgetStatus(
        month=_utc(now).strftime("%Y-%m"),
        spend_usd=spend,
        budget_usd=budget,
        percent=percent,
        alerts=alerts,
        hard_stop=hard_stop,
        blocked=hard_stop and "100%" in alerts,
        unknown_cost_calls=unknown,
    )


def check_budget(ledger: UsageLedger, settings: Settings, now: datetime) -> BudgetStatus:
    """The budget status; PolicyError when the hard stop is on and the month's budget is spent."""
    status = budget_status(ledger, settings, now)
    if status.blocked:
        raise PolicyError(
            f"LLM call refused: the monthly budget is spent (${status.spend_usd:,.2f} of "
            f"${status.budget_usd:,.2f} in {status.month}, {status.percent:.1f} %) and "
            f"{HARD_STOP_SETTING}=1 stops calls past it.",
            hint=(
                f"Raise {BUDGET_SETTING} (now {status.budget_usd:g}), or set {HARD_STOP_SETTING}=0 to allow calls "
                "past the budget with alerts; spend counts from the 1st of each month (UTC)."
            ),
        )
    return status


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return moment.astimezone(UTC)


def _month_bounds(now: datetime) -> tuple[datetime, datetime]:
    now = _utc(now)
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end
