"""Token estimates say how they were counted; costs come from the price table or are unknown."""

from __future__ import annotations

import pytest

from sophia_ai_intelligence.gateway.base import ChatMessage
from sophia_ai_intelligence.prices import shipped_price_table
from sophia_ai_intelligence.tokens import (
    APPROXIMATION,
    CHAT_APPROXIMATION,
    estimate_chat_tokens,
    estimate_cost,
    estimate_tokens,
)


def test_chat_models_get_the_approximation_marked_as_such() -> None:
    estimate = estimate_tokens("a" * 400, "gpt-4o-mini")
    assert estimate.tokens == 100
    assert not estimate.exact
    assert estimate.method == APPROXIMATION and estimate.method.startswith("approximation:")


def test_approximation_rounds_up_and_counts_empty_text_as_zero() -> None:
    assert estimate_tokens("abcde", "claude-3-5-haiku-20241022").tokens == 2
    assert estimate_tokens("", "gpt-4o").tokens == 0


def test_non_ascii_characters_count_one_token_each() -> None:
    # Four CJK characters are at least four tokens in every BPE vocabulary we route to; /4 would say 1.
    assert estimate_tokens("東京都庁", "gpt-4o").tokens == 4


def test_the_local_embedder_uses_its_real_wordpiece_tokenizer() -> None:
    estimate = estimate_tokens("hello world", "sentence-transformers/all-MiniLM-L6-v2")
    assert estimate.exact and estimate.method.startswith("exact:")
    assert estimate.tokens == 4  # [CLS] hello world [SEP]


def test_local_embedder_count_is_not_cut_at_the_model_limit() -> None:
    assert estimate_tokens("word " * 600, "sentence-transformers/all-MiniLM-L6-v2").tokens == 602


def test_chat_estimate_adds_message_framing_and_says_so() -> None:
    messages = [ChatMessage("system", "a" * 40), ChatMessage("user", "b" * 80)]
    estimate = estimate_chat_tokens(messages, "gpt-4o")
    assert estimate.tokens == 10 + 20 + 2 * 3 + 3
    assert estimate.method == CHAT_APPROXIMATION and not estimate.exact


def test_estimate_cost_prices_counted_input_and_assumed_output() -> None:
    messages = [ChatMessage("user", "x" * 3976)]  # 994 + 3 + 3 = 1000 tokens
    estimate = estimate_cost(messages, "gpt-4o-mini", output_tokens=500, prices=shipped_price_table())
    assert estimate.input.tokens == 1000 and estimate.output_tokens == 500
    assert estimate.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert estimate.price is not None and estimate.price.model == "gpt-4o-mini"


def test_estimate_cost_of_an_unknown_model_is_none() -> None:
    estimate = estimate_cost(
        [ChatMessage("user", "hi")], "mystery-model", output_tokens=10, prices=shipped_price_table()
    )
    assert estimate.cost_usd is None and estimate.price is None
    assert estimate.input.tokens > 0
