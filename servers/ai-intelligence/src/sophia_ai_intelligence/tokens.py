"""Token counts before a call: a real tokenizer where one ships offline, otherwise a marked approximation.

No GPT, Claude or Llama tokenizer is installed or shipped (tiktoken downloads its BPE files at run time),
so chat models get the approximation below. The local embedder's WordPiece tokenizer ships with
sophia-shared, so its counts are exact.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .gateway.base import ChatMessage
from .prices import ModelPrice, PriceTable, normalise_model

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "APPROXIMATION",
    "CHAT_APPROXIMATION",
    "CostEstimate",
    "TokenEstimate",
    "estimate_chat_tokens",
    "estimate_cost",
    "estimate_tokens",
]

APPROXIMATION = (
    "approximation: ~4 characters per token for ASCII text (English), 1 token per other character; "
    "no tokenizer for this model ships offline, so real counts differ"
)
CHAT_APPROXIMATION = APPROXIMATION + "; plus 3 tokens per message and 3 for the reply (OpenAI's chat format)"
MINILM_METHOD = "exact: all-MiniLM-L6-v2 WordPiece tokenizer (shipped), special tokens included, before truncation"

_CHARS_PER_TOKEN = 4
# OpenAI's documented framing cost of its chat format; other providers frame differently.
_TOKENS_PER_MESSAGE = 3
_REPLY_PRIMING_TOKENS = 3

_MINILM_NAMES = frozenset({"sentence-transformers/all-minilm-l6-v2", "all-minilm-l6-v2"})


@dataclass(frozen=True)
class TokenEstimate:
    tokens: int
    method: str  # says whether this is a real tokenizer's count or the approximation, and which
    exact: bool


@dataclass(frozen=True)
class CostEstimate:
    """What one call would cost on `model`: input counted, output assumed by the caller."""

    model: str
    input: TokenEstimate
    output_tokens: int  # an assumption the caller states, not a prediction
    price: ModelPrice | None
    cost_usd: float | None  # None when the model or its price is not in the table


def estimate_tokens(text: str, model: str) -> TokenEstimate:
    """Tokens `text` takes for `model`; `method` says how they were counted."""
    if _is_minilm(model):
        return TokenEstimate(len(_minilm_tokenizer().encode(text).ids), MINILM_METHOD, exact=True)
    return TokenEstimate(_approximate(text), APPROXIMATION, exact=False)


def estimate_chat_tokens(messages: Sequence[ChatMessage], model: str) -> TokenEstimate:
    """Prompt tokens of a chat request (always the approximation: no chat tokenizer ships)."""
    body = sum(_approximate(m.content) + _TOKENS_PER_MESSAGE for m in messages)
    return TokenEstimate(body + _REPLY_PRIMING_TOKENS, CHAT_APPROXIMATION, exact=False)


def estimate_cost(
    messages: Sequence[ChatMessage], model: str, *, output_tokens: int, prices: PriceTable
) -> CostEstimate:
    """The prompt's token estimate and its cost on `model` with `output_tokens` assumed for the answer."""
    counted = estimate_chat_tokens(messages, model)
    price = prices.price_of(model)
    cost = price.cost(counted.tokens, output_tokens) if price is not None else None
    return CostEstimate(model=model, input=counted, output_tokens=output_tokens, price=price, cost_usd=cost)


def _approximate(text: str) -> int:
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    # Non-Latin scripts take about a token per character or more; counting them at 1/4 would be 4× low.
    return math.ceil(ascii_chars / _CHARS_PER_TOKEN) + (len(text) - ascii_chars)


def _is_minilm(model: str) -> bool:
    from sophia_shared.embedding import MINILM_MODEL_ID

    name = normalise_model(model)
    return name in _MINILM_NAMES or name == MINILM_MODEL_ID.lower()


@functools.cache
def _minilm_tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer

    from sophia_shared.embedding.minilm import TOKENIZER_PATH

    tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
    # The file pads and cuts at 128; a count wants neither.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer
