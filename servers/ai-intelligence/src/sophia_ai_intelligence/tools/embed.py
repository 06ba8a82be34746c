"""`llm_embed`: texts → vectors, through a gateway embedding model or the local MiniLM model (no keys)."""

from __future__ import annotations

import time
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import InputError
from sophia_shared.output import page_of
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..gateway.base import EmbedResult
from ..names import LLM_EMBED
from ..state import AIState

LOCAL = "local"
MAX_TEXTS = 256
PAGE = 32  # vectors per page: 32 × 384 floats is ~100 KB of JSON


class Embedding(BaseModel):
    index: int = Field(description="Position of the text in the request.")
    dimension: int
    vector: list[float] = Field(description="Unit-length (local model) or as the provider returns it; 6 decimals.")


class EmbeddingPage(ToolResult):
    model: str
    dimension: int
    count: int = Field(description="Texts embedded in this call (all pages).")
    input_tokens: int = Field(description="-1 when not reported (the local model is free).")
    items: list[Embedding]
    truncated: bool = Field(description="True when more vectors exist; call again with cursor = next_cursor.")
    next_cursor: str

    def render_text(self) -> str:
        first = self.items[0].index if self.items else 0
        shown = f"vectors {first}–{first + len(self.items) - 1}" if self.items else "no vectors"
        more = f' More: call again with cursor="{self.next_cursor}".' if self.truncated else ""
        preview = "\n".join(
            f"{e.index}: [{', '.join(f'{v:.4f}' for v in e.vector[:4])}, … {e.dimension} values]"
            for e in self.items[:5]
        )
        return f"{self.count} text(s) embedded with {self.model} ({self.dimension}-d); {shown} here.{more}\n{preview}"


async def embed_texts(state: AIState, texts: list[str], *, model: str) -> EmbedResult:
    """The local model in a worker thread, or the gateway's embeddings endpoint."""
    if model in ("", LOCAL):
        from sophia_shared.embedding.minilm import local_embedder

        embedder = local_embedder()
        vectors = await run_blocking(lambda: embedder.embed(texts))
        return EmbedResult(vectors=vectors.tolist(), model=embedder.model, input_tokens=None)
    gateway = await run_blocking(state.gateway)
    tracing = state.tracing()
    started = time.perf_counter()
    with tracing.embedding_span(tool=LLM_EMBED, model=model, texts=texts) as span:
        result = await gateway.embed(texts, model=model)
        span.finish(result, latency_ms=(time.perf_counter() - started) * 1000)
    return result


@sophia_tool(LLM_EMBED, title="Embed texts", read_only=True, open_world=True)
async def llm_embed(
    ctx: Context[Any, Any],
    texts: Annotated[
        list[str], Field(min_length=1, max_length=MAX_TEXTS, description=f"1–{MAX_TEXTS} texts to embed.")
    ],
    model: Annotated[
        str,
        Field(
            description="'local' (default: all-MiniLM-L6-v2, 384-d, on this machine, no keys) or a gateway "
            "embedding model such as text-embedding-3-small."
        ),
    ] = LOCAL,
    cursor: Annotated[str, Field(description="next_cursor from the previous call with the same texts and model.")] = "",
) -> EmbeddingPage:
    """Turn texts into embedding vectors, with the model and dimension. Vectors come 32 per page (call
    again with cursor for the rest); the local model needs no keys and no network."""
    if any(not t.strip() for t in texts):
        raise InputError("One of the texts is empty.", hint="Embed only non-empty texts.")
    if model.strip() not in ("", LOCAL) and len(texts) > PAGE:
        # Paging re-embeds the texts; through a paid model that would charge every page again.
        raise InputError(
            f"{len(texts)} texts for a gateway model; at most {PAGE} per call.",
            hint=f"Split them into calls of {PAGE}, or use model='local' (free, paged).",
        )
    state = state_of(ctx, AIState)
    result = await embed_texts(state, texts, model=model.strip())
    items = [
        Embedding(index=i, dimension=len(v), vector=[round(float(x), 6) for x in v])
        for i, v in enumerate(result.vectors)
    ]
    page = page_of(items, cursor=cursor, request=(LLM_EMBED, model, *texts), page_size=PAGE)
    dimension = len(result.vectors[0]) if result.vectors else 0
    return EmbeddingPage(
        model=result.model, dimension=dimension, count=len(texts),
        input_tokens=-1 if result.input_tokens is None else result.input_tokens, items=page.items,
        truncated=page.truncated, next_cursor=page.next_cursor,
    )  # fmt: skip
