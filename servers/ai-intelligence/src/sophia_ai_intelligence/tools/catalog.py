"""`llm_models` (the catalogue, merged with what the gateway lists) and `llm_estimate` (cost before calling)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import ConfigError, InputError, SophiaError
from sophia_shared.output import page_of
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..gateway.base import ChatMessage
from ..names import LLM_ESTIMATE, LLM_MODELS
from ..prices import PriceTable
from ..state import AIState
from ..tokens import estimate_cost

PAGE = 100
LIST_TIMEOUT_SECONDS = 5.0
DEFAULT_ESTIMATE_MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku-latest", "claude-sonnet-4"]


class ModelLine(BaseModel):
    model: str
    provider: str
    context_window: int = Field(description="-1 when unknown.")
    input_per_1m_usd: float = Field(description="-1 when unknown.")
    output_per_1m_usd: float = Field(description="-1 when unknown.")
    capabilities: list[str]
    listed_by_gateway: bool = Field(description="The gateway/provider listed it just now.")
    in_price_table: bool


class ModelCatalogue(ToolResult):
    prices_as_of: str = Field(description="Date of the price table; prices change, check before big decisions.")
    gateway: str = Field(description="What the gateway said: how many models it listed, or why it was not asked.")
    items: list[ModelLine]
    truncated: bool
    next_cursor: str

    def render_text(self) -> str:
        lines = [f"Prices as of {self.prices_as_of} (USD per 1M tokens in/out). Gateway: {self.gateway}"]
        lines += ["model | provider | context | in | out | capabilities", "--- | --- | --- | --- | --- | ---"]
        for m in self.items:
            window = "?" if m.context_window < 0 else f"{m.context_window:,}"
            price_in = "?" if m.input_per_1m_usd < 0 else f"{m.input_per_1m_usd:g}"
            price_out = "?" if m.output_per_1m_usd < 0 else f"{m.output_per_1m_usd:g}"
            lines.append(
                f"{m.model} | {m.provider} | {window} | {price_in} | {price_out} | {', '.join(m.capabilities)}"
            )
        if self.truncated:
            lines.append(f'More: call again with cursor="{self.next_cursor}".')
        return "\n".join(lines)


def _line(entry: Any, listed: set[str]) -> ModelLine:
    return ModelLine(
        model=entry.model, provider=entry.provider,
        context_window=-1 if entry.context_window is None else entry.context_window,
        input_per_1m_usd=-1.0 if entry.input_per_1m is None else entry.input_per_1m,
        output_per_1m_usd=-1.0 if entry.output_per_1m is None else entry.output_per_1m,
        capabilities=list(entry.capabilities), listed_by_gateway=entry.model in listed, in_price_table=True,
    )  # fmt: skip


def catalogue(
    prices: PriceTable, listed: list[str], *, provider: str, capability: str, max_input_price: float, min_context: int
) -> list[ModelLine]:
    """The price table filtered, plus models the gateway listed that the table does not know (unpriced)."""
    names = set(listed)
    entries = prices.catalogue(
        provider=provider, capability=capability, max_input_per_1m=None if max_input_price < 0 else max_input_price
    )
    lines = [_line(e, names) for e in entries if min_context <= 0 or (e.context_window or 0) >= min_context]
    if max_input_price < 0 and min_context <= 0 and not capability:
        known = {e.model for e in prices.entries}
        lines += [
            ModelLine(model=m, provider=provider or "", context_window=-1, input_per_1m_usd=-1, output_per_1m_usd=-1,
                      capabilities=[], listed_by_gateway=True, in_price_table=False)
            for m in listed
            if prices.price_of(m) is None and m not in known
        ]  # fmt: skip
    return sorted(lines, key=lambda m: (m.input_per_1m_usd < 0, m.input_per_1m_usd, m.model))


async def gateway_models(state: AIState) -> tuple[list[str], str]:
    """What the gateway lists right now (bounded in time), and a sentence saying what happened."""
    try:
        gateway = await run_blocking(state.gateway)
    except ConfigError:
        return [], "not configured (the catalogue below is the shipped table)"
    with anyio.move_on_after(LIST_TIMEOUT_SECONDS) as scope:
        try:
            listed = await gateway.list_models()
        except SophiaError as exc:
            return [], f"could not list models ({exc.message})"
    if scope.cancelled_caught:
        return [], f"did not list models within {LIST_TIMEOUT_SECONDS:g} s"
    return listed, f"listed {len(listed)} model(s)"


@sophia_tool(LLM_MODELS, title="LLM model catalogue and prices", read_only=True, open_world=True)
async def llm_models(
    ctx: Context[Any, Any],
    provider: Annotated[
        str, Field(description="Only this provider: openai, anthropic, openrouter, together-ai, huggingface.")
    ] = "",
    capability: Annotated[str, Field(description="Only models with it: chat, vision, tools, json or embeddings.")] = "",
    max_input_price: Annotated[float, Field(description="Most USD per 1M input tokens; -1 for any.")] = -1.0,
    min_context: Annotated[
        int, Field(ge=0, description="Smallest context window in tokens, e.g. 128000; 0 for any.")
    ] = 0,
    cursor: Annotated[str, Field(description="next_cursor from the previous call with the same filters.")] = "",
) -> ModelCatalogue:
    """The LLM catalogue: provider, context window, list price in/out per 1M tokens and capabilities,
    from a dated price table, merged with what the gateway lists when it is reachable (unpriced models
    it lists are shown too). Cheapest first. Use it to pick "the cheapest model with a 128k context"."""
    state = state_of(ctx, AIState)
    prices = await run_blocking(state.prices)
    listed, said = await gateway_models(state)
    lines = catalogue(
        prices,
        listed,
        provider=provider,
        capability=capability,
        max_input_price=max_input_price,
        min_context=min_context,
    )
    page = page_of(
        lines, cursor=cursor, request=(LLM_MODELS, provider, capability, max_input_price, min_context), page_size=PAGE
    )
    return ModelCatalogue(
        prices_as_of=prices.as_of,
        gateway=said,
        items=page.items,
        truncated=page.truncated,
        next_cursor=page.next_cursor,
    )


class Estimate(BaseModel):
    model: str
    input_tokens: int
    output_tokens: int = Field(description="Assumed, as given.")
    cost_usd: float = Field(description="-1 when the model or its price is unknown.")
    method: str = Field(description="How tokens were counted (an approximation unless a real tokenizer ships).")


class EstimateTable(ToolResult):
    prices_as_of: str
    items: list[Estimate]

    def render_text(self) -> str:
        lines = [
            f"Estimated cost (prices as of {self.prices_as_of}); "
            f"tokens by: {self.items[0].method if self.items else '-'}"
        ]
        lines += ["model | input tokens | output tokens (assumed) | cost USD", "--- | --- | --- | ---"]
        for e in sorted(self.items, key=lambda e: (e.cost_usd < 0, e.cost_usd)):
            cost = "unknown" if e.cost_usd < 0 else f"{e.cost_usd:.6f}"
            lines.append(f"{e.model} | {e.input_tokens} | {e.output_tokens} | {cost}")
        return "\n".join(lines)


def estimate(prices: PriceTable, *, prompt: str, system: str, models: list[str], output_tokens: int) -> EstimateTable:
    if not prompt.strip():
        raise InputError("There is no prompt to estimate.", hint="Pass the prompt you intend to send.")
    messages = ([ChatMessage("system", system)] if system else []) + [ChatMessage("user", prompt)]
    items = []
    for model in dict.fromkeys(m.strip() for m in models if m.strip()):
        found = estimate_cost(messages, model, output_tokens=output_tokens, prices=prices)
        items.append(
            Estimate(model=model, input_tokens=found.input.tokens, output_tokens=output_tokens,
                     cost_usd=-1.0 if found.cost_usd is None else round(found.cost_usd, 8), method=found.input.method)
        )  # fmt: skip
    return EstimateTable(prices_as_of=prices.as_of, items=items)


@sophia_tool(LLM_ESTIMATE, title="Estimate LLM cost before calling", read_only=True)
async def llm_estimate(
    ctx: Context[Any, Any],
    prompt: Annotated[str, Field(description="The prompt you intend to send.")],
    models: Annotated[
        list[str], Field(max_length=20, description="Models to price it on; empty for a default set.")
    ] = [],  # noqa: B006
    system: Annotated[str, Field(description="The system instruction, if any.")] = "",
    output_tokens: Annotated[
        int, Field(ge=0, le=100_000, description="Answer length to assume, in tokens (default 500).")
    ] = 500,
) -> EstimateTable:
    """What a prompt would cost on several models before calling any: input tokens (an approximation,
    marked as such, unless a real tokenizer ships), the assumed output length, and the cost from the dated
    price table (unknown when the model is not in it). Makes no LLM call."""
    state = state_of(ctx, AIState)
    prices = await run_blocking(state.prices)
    return estimate(
        prices, prompt=prompt, system=system, models=models or DEFAULT_ESTIMATE_MODELS, output_tokens=output_tokens
    )
