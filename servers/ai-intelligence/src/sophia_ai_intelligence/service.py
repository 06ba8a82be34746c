"""One LLM call, end to end: budget → cache → gateway → cost → cache store → ledger → trace.

No MCP types: the tools wrap it, and tests call it directly. Blocking stores run in worker threads;
the gateway call is async (its SDK's async client), so cancellation stops the request.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sophia_shared.errors import InputError, SophiaError
from sophia_shared.workers import run_blocking

from .cache import CacheLookup, ResponseCache
from .gateway.base import ChatRequest, ChatResult, OnDelta
from .ledger import BudgetStatus, UsageEvent, UsageLedger, budget_status, check_budget
from .state import AIState

CacheMode = Literal["off", "exact", "semantic"]
CACHE_MODES: tuple[CacheMode, ...] = ("off", "exact", "semantic")


@dataclass(frozen=True)
class ChatOutcome:
    result: ChatResult
    cache: CacheLookup | None  # what the cache said ("off" when it was not consulted)
    cost_usd: float | None  # None: the model is not in the price table
    budget: BudgetStatus
    profile: str  # which routing config the call used


def cache_mode_of(value: str, default: str) -> CacheMode:
    mode = (value or default).strip().lower()
    for known in CACHE_MODES:
        if mode == known:
            return known
    raise InputError(f"Unknown cache mode '{mode}'.", hint="Use off, exact or semantic.")


class LlmService:
    """Makes LLM calls for the tools, with the cache, ledger, budget and tracing around each one."""

    def __init__(self, state: AIState, *, clock: Callable[[], datetime] | None = None) -> None:
        self.state = state
        self._clock = clock or (lambda: datetime.now(UTC))

    def resolved(self, request: ChatRequest) -> ChatRequest:
        """The request with its model filled in: the cache must key on the model that will answer."""
        if request.model:
            return request
        default = self.state.settings.get("SOPHIA_AI_DEFAULT_MODEL") or ""
        return dataclasses.replace(request, model=default)

    async def chat(
        self, request: ChatRequest, *, tool: str, cache_mode: CacheMode, on_delta: OnDelta | None = None
    ) -> ChatOutcome:
        state, settings = self.state, self.state.settings
        began = time.perf_counter()
        request = self.resolved(request)
        if not request.trace_id:
            request = dataclasses.replace(request, trace_id=uuid.uuid4().hex)

        def prepare() -> tuple[UsageLedger, ResponseCache, BudgetStatus, CacheLookup]:
            # One worker-thread hop for the local checks: a cache hit must cost milliseconds, not hops.
            ledger, cache = state.ledger(), state.cache()
            budget = check_budget(ledger, settings, self._clock())
            return ledger, cache, budget, cache.lookup(request, mode=cache_mode)

        ledger, cache, budget_before, lookup = await run_blocking(prepare)
        if lookup.result is not None and lookup.status in ("hit", "semantic_hit"):
            return await self._from_cache(request, lookup, tool=tool, began=began, ledger=ledger, budget=budget_before)

        gateway = await run_blocking(state.gateway)
        profile = gateway.routing().source
        prices = await run_blocking(state.prices)
        tracing = state.tracing()
        started = time.perf_counter()
        with tracing.llm_span(tool=tool, request=request) as span:
            try:
                result = await gateway.chat(request, on_delta=on_delta)
            except SophiaError as exc:
                failed = UsageEvent(
                    at=self._clock(), tool=tool, profile=profile, provider="", model=request.model,
                    latency_ms=(time.perf_counter() - started) * 1000, cache_status=lookup.status,
                    trace_id=request.trace_id, prompt_hash=lookup.key, error=exc.message[:500],
                )  # fmt: skip
                await run_blocking(lambda: ledger.record(failed))
                raise
            cost = prices.cost(result.model or request.model, result.input_tokens, result.output_tokens)
            span.finish(result, cost_usd=cost, cache_status=lookup.status)
        event = UsageEvent(
            at=self._clock(), tool=tool, profile=profile, provider=result.provider, model=result.model or request.model,
            fallbacks=result.fallbacks, input_tokens=result.input_tokens, output_tokens=result.output_tokens,
            latency_ms=result.latency_ms, cost_usd=cost, cache_status=lookup.status, trace_id=result.trace_id or
            request.trace_id, prompt_hash=lookup.key,
        )  # fmt: skip

        def finish() -> BudgetStatus:
            if cache_mode != "off":
                cache.store(request, result, embed=cache_mode == "semantic", cost_usd=cost)
            ledger.record(event)
            return budget_status(ledger, settings, self._clock())

        budget = await run_blocking(finish)
        return ChatOutcome(result=result, cache=lookup, cost_usd=cost, budget=budget, profile=profile)

    async def _from_cache(
        self,
        request: ChatRequest,
        lookup: CacheLookup,
        *,
        tool: str,
        began: float,
        ledger: UsageLedger,
        budget: BudgetStatus,
    ) -> ChatOutcome:
        """A cache hit: nothing is sent, nothing is spent; the ledger still counts the call."""
        assert lookup.result is not None
        elapsed = (time.perf_counter() - began) * 1000
        cached = dataclasses.replace(lookup.result, latency_ms=elapsed, fallbacks=(), trace_id=request.trace_id)
        event = UsageEvent(
            at=self._clock(), tool=tool, profile="cache", provider=cached.provider, model=cached.model,
            input_tokens=0, output_tokens=0, latency_ms=elapsed, cost_usd=0.0, cache_status=lookup.status,
            trace_id=request.trace_id, prompt_hash=lookup.key,
        )  # fmt: skip
        await run_blocking(lambda: ledger.record(event))
        # A hit spends nothing: the budget checked before the lookup still holds.
        return ChatOutcome(result=cached, cache=lookup, cost_usd=0.0, budget=budget, profile="cache")
