"""`llm_cache_stats` and `llm_cache_clear` (write-gated): our response cache in front of the gateway."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from sophia_shared.gate import require_write
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..names import LLM_CACHE_CLEAR, LLM_CACHE_STATS
from ..settings import SERVER_KEY
from ..state import AIState


class CacheReport(ToolResult):
    entries: int
    live_entries: int = Field(description="Entries still within the TTL.")
    hits: int
    semantic_hits: int
    misses: int
    hit_rate: float = Field(description="-1 before any lookup.")
    saved_input_tokens: int
    saved_output_tokens: int
    saved_cost_usd: float
    ttl_seconds: int
    similarity: float = Field(description="Cosine a semantic hit needs.")
    bytes: int

    def render_text(self) -> str:
        rate = "-" if self.hit_rate < 0 else f"{self.hit_rate * 100:.0f} %"
        return (
            f"LLM cache: {self.live_entries} live of {self.entries} entries ({self.bytes / 1024:.0f} KB); "
            f"{self.hits} exact + {self.semantic_hits} semantic hits, {self.misses} misses (hit rate {rate}); "
            f"saved {self.saved_input_tokens}+{self.saved_output_tokens} tokens, ${self.saved_cost_usd:.4f}. "
            f"TTL {self.ttl_seconds} s, semantic similarity ≥ {self.similarity}."
        )


class CacheCleared(ToolResult):
    removed: int

    def render_text(self) -> str:
        return f"Removed {self.removed} cached answer(s)."


def cache_report(state: AIState) -> CacheReport:
    stats = state.cache().stats()
    return CacheReport(
        entries=stats.entries, live_entries=stats.live_entries, hits=stats.hits, semantic_hits=stats.semantic_hits,
        misses=stats.misses, hit_rate=-1.0 if stats.hit_rate is None else round(stats.hit_rate, 4),
        saved_input_tokens=stats.saved_input_tokens, saved_output_tokens=stats.saved_output_tokens,
        saved_cost_usd=round(stats.saved_cost_usd, 6), ttl_seconds=stats.ttl_seconds, similarity=stats.similarity,
        bytes=stats.bytes,
    )  # fmt: skip


@sophia_tool(LLM_CACHE_STATS, title="LLM cache statistics", read_only=True)
async def llm_cache_stats(ctx: Context[Any, Any]) -> CacheReport:
    """Statistics of the server's own LLM response cache (exact and semantic): entries, hits, misses,
    hit rate, tokens and dollars saved, TTL and similarity threshold. Works offline."""
    state = state_of(ctx, AIState)
    return await run_blocking(lambda: cache_report(state))


@sophia_tool(LLM_CACHE_CLEAR, title="Clear the LLM cache", read_only=False, destructive=True, writes=True)
async def llm_cache_clear(
    ctx: Context[Any, Any],
    model: Annotated[str, Field(description="Only this model's answers; empty for all.")] = "",
    older_than_seconds: Annotated[int, Field(ge=0, description="Only answers older than this; 0 for all ages.")] = 0,
) -> CacheCleared:
    """Remove cached LLM answers (all, one model's, or older ones) so the next calls ask the model again
    (this tool exists only because SOPHIA_AI_INTELLIGENCE_ALLOW_WRITE=1 is set)."""
    state = state_of(ctx, AIState)
    return await run_blocking(lambda: clear_cache(state, model=model, older_than_seconds=older_than_seconds))


def clear_cache(state: AIState, *, model: str, older_than_seconds: int) -> CacheCleared:
    require_write(state.settings, SERVER_KEY, "clear the LLM cache")  # the second gate
    return CacheCleared(removed=state.cache().clear(model=model, older_than_seconds=older_than_seconds))
