"""Throughput of the local embedder on short deal-note sentences (part of `sophia bench`)."""

from __future__ import annotations

import time

from sophia_shared.embedding import MiniLMEmbedder

_SUBJECTS = ("The customer", "Their CFO", "Procurement", "Our champion", "The new VP", "Legal", "The buyer")
_EVENTS = (
    "pushed back on the pricing",
    "froze the budget",
    "left the company",
    "asked for a longer trial",
    "wants a security review",
    "chose a competitor",
    "requested a discount",
    "moved the deal to next quarter",
    "asked for references",
    "approved the pilot",
    "needs an ROI analysis",
)
_WHEN = ("on Monday", "last week", "after the demo", "before renewal", "during the call")
WARM_UP_SENTENCES = 64


def deal_note_sentences(n: int) -> list[str]:
    """`n` short, varied, deterministic sentences (deal {i} keeps them distinct)."""
    return [
        f"{_SUBJECTS[i % len(_SUBJECTS)]} {_EVENTS[i % len(_EVENTS)]} {_WHEN[i % len(_WHEN)]} (deal {i})."
        for i in range(n)
    ]


def embedding_throughput(n: int = 1000) -> dict[str, float]:
    """Embed `n` short sentences after a warm-up; sentences per second and milliseconds per sentence."""
    if n < 1:
        raise ValueError("n must be at least 1")
    embedder = MiniLMEmbedder()
    started = time.perf_counter()
    # The first call loads the model (checksums, ONNX session); timed apart from the steady state.
    embedder.embed(deal_note_sentences(WARM_UP_SENTENCES))
    first_call = time.perf_counter() - started
    sentences = deal_note_sentences(n)
    started = time.perf_counter()
    embedder.embed(sentences)
    elapsed = time.perf_counter() - started
    return {
        "sentences": float(n),
        "seconds": elapsed,
        "sentences_per_second": n / elapsed,
        "ms_per_sentence": elapsed * 1000 / n,
        "load_and_warm_up_seconds": first_call,
    }
