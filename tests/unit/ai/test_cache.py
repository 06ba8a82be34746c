"""The response cache: exact and semantic hits and misses (real local embedder), TTL, stats, clear, two processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from sophia_ai_intelligence.cache import ResponseCache, open_cache, semantic_parts
from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest, ChatResult
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.embedding import local_embedder
from sophia_shared.errors import ConfigError, InputError
from sophia_shared.settings import Settings

SYSTEM = ChatMessage("system", "You are terse.")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _request(prompt: str, *, model: str = "gpt-4o-mini", system: ChatMessage = SYSTEM, **params: object) -> ChatRequest:
    return ChatRequest(messages=(system, ChatMessage("user", prompt)), model=model, **params)  # type: ignore[arg-type]


def _result(text: str = "Paris.") -> ChatResult:
    return ChatResult(
        text=text, model="gpt-4o-mini-2024-07-18", provider="openai", input_tokens=20, output_tokens=3, latency_ms=300.0
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(tmp_path: Path, clock: Clock) -> ResponseCache:
    return ResponseCache(tmp_path / "ai" / "cache.sqlite3", ttl_seconds=3600, similarity=0.95, clock=clock)


def _loose(cache: ResponseCache, similarity: float) -> ResponseCache:
    """The same file with another threshold (what a second configuration would see)."""
    return ResponseCache(cache.path, ttl_seconds=cache.ttl_seconds, similarity=similarity, clock=cache._clock)


# -- keys ------------------------------------------------------------------------------------------


def test_key_ignores_the_trace_id_but_not_what_changes_the_answer() -> None:
    base = _request("Hello")
    assert ResponseCache.key_for(base) == ResponseCache.key_for(replace(base, trace_id="t-1"))
    changed = [
        replace(base, model="gpt-4o"),
        replace(base, temperature=0.0),
        replace(base, max_tokens=10),
        replace(base, json_output=True),
        _request("Hello!"),
        _request("Hello", system=ChatMessage("system", "You are verbose.")),
    ]
    keys = {ResponseCache.key_for(r) for r in changed}
    assert len(keys) == len(changed) and ResponseCache.key_for(base) not in keys


def test_semantic_text_is_the_last_user_message() -> None:
    request = ChatRequest(
        messages=(
            ChatMessage("user", "first question"),
            ChatMessage("assistant", "first answer"),
            ChatMessage("user", "second question"),
        ),
        model="m",
    )
    parts = semantic_parts(request)
    assert parts is not None and parts[0] == "second question"
    assert semantic_parts(ChatRequest(messages=(SYSTEM,), model="m")) is None


# -- exact -----------------------------------------------------------------------------------------


def test_exact_mode_misses_then_hits_the_stored_answer(cache: ResponseCache) -> None:
    request = _request("What is the capital of France?")
    assert cache.lookup(request, mode="exact").status == "miss"
    cache.store(request, _result(), embed=False, cost_usd=0.001)
    found = cache.lookup(replace(request, trace_id="another-trace"), mode="exact")
    assert found.status == "hit" and found.result == _result()
    assert found.similarity is None and found.cost_usd == 0.001 and found.age_seconds == 0


def test_exact_mode_does_not_serve_a_paraphrase(cache: ResponseCache) -> None:
    cache.store(_request("What is the capital of France?"), _result(), embed=True)
    assert cache.lookup(_request("What's the capital of France?"), mode="exact").status == "miss"


def test_off_mode_neither_reads_nor_counts(cache: ResponseCache) -> None:
    request = _request("What is the capital of France?")
    cache.store(request, _result(), embed=False)
    found = cache.lookup(request, mode="off")
    assert found.status == "off" and found.result is None and found.key == ResponseCache.key_for(request)
    stats = cache.stats()
    assert (stats.hits, stats.misses) == (0, 0)


def test_unknown_mode_is_an_input_error(cache: ResponseCache) -> None:
    with pytest.raises(InputError, match="off, exact, semantic"):
        cache.lookup(_request("x"), mode="fuzzy")  # type: ignore[arg-type]


def test_storing_again_replaces_the_answer(cache: ResponseCache) -> None:
    request = _request("Capital of France?")
    cache.store(request, _result("Paris."), embed=False)
    cache.store(request, _result("Paris, France."), embed=False)
    found = cache.lookup(request, mode="exact")
    assert found.result is not None and found.result.text == "Paris, France."
    assert cache.stats().entries == 1


# -- semantic (the real local embedder) ------------------------------------------------------------


@pytest.mark.parametrize(
    "paraphrase",
    [
        "What's the capital of France?",  # cosine 0.99 with the local embedder
        "What is France's capital?",  # 0.98
        "So, what is the capital of France?",  # 0.98
    ],
)
def test_semantic_mode_serves_a_close_rewording_at_the_default_threshold(cache: ResponseCache, paraphrase: str) -> None:
    original = "What is the capital of France?"
    cache.store(_request(original), _result(), embed=True, cost_usd=0.002)
    found = cache.lookup(_request(paraphrase), mode="semantic")
    assert found.status == "semantic_hit"
    assert found.similarity is not None and 0.95 <= found.similarity <= 1.0
    assert found.cached_prompt == original and found.result == _result() and found.cost_usd == 0.002


@pytest.mark.parametrize(
    "other",
    [
        "How do I bake sourdough bread?",  # unrelated: cosine 0.13
        "What is the capital of Germany?",  # same shape, other answer: 0.66
    ],
)
def test_semantic_mode_misses_below_the_threshold(cache: ResponseCache, other: str) -> None:
    cache.store(_request("What is the capital of France?"), _result(), embed=True)
    found = cache.lookup(_request(other), mode="semantic")
    assert found.status == "miss" and found.result is None


def test_a_lower_threshold_serves_looser_paraphrases_but_not_other_questions(cache: ResponseCache) -> None:
    cache.store(_request("Summarize the quarterly sales report in three bullet points."), _result("• …"), embed=True)
    cache.store(_request("What is the capital of France?"), _result(), embed=True)
    paraphrase = _request("Give me a three-bullet summary of the quarterly sales report.")  # cosine 0.87
    assert cache.lookup(paraphrase, mode="semantic").status == "miss"
    loose = _loose(cache, 0.85)
    found = loose.lookup(paraphrase, mode="semantic")
    assert found.status == "semantic_hit"
    assert found.cached_prompt == "Summarize the quarterly sales report in three bullet points."
    assert found.similarity is not None and 0.85 <= found.similarity < 0.95
    assert loose.lookup(_request("What is the capital of Germany?"), mode="semantic").status == "miss"


def test_semantic_mode_prefers_an_exact_hit(cache: ResponseCache) -> None:
    request = _request("What is the capital of France?")
    cache.store(request, _result(), embed=True)
    assert cache.lookup(request, mode="semantic").status == "hit"


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"model": "gpt-4o"},
        {"system": ChatMessage("system", "Answer in French.")},
        {"temperature": 1.0},
    ],
)
def test_semantic_hits_stay_within_the_same_model_parameters_and_system_prompt(
    cache: ResponseCache, elsewhere: dict[str, object]
) -> None:
    cache.store(_request("What is the capital of France?"), _result(), embed=True)
    found = cache.lookup(_request("What's the capital of France?", **elsewhere), mode="semantic")  # type: ignore[arg-type]
    assert found.status == "miss"


def test_entries_stored_without_embedding_are_not_semantic_candidates(cache: ResponseCache) -> None:
    cache.store(_request("What is the capital of France?"), _result(), embed=False)
    assert cache.lookup(_request("What's the capital of France?"), mode="semantic").status == "miss"


def test_semantic_lookup_uses_the_injected_embedder_and_loads_nothing_for_exact(tmp_path: Path, clock: Clock) -> None:
    made: list[int] = []

    def factory() -> object:
        made.append(1)
        return local_embedder()

    cache = ResponseCache(tmp_path / "c.sqlite3", clock=clock, embedder_factory=factory)  # type: ignore[arg-type]
    cache.store(_request("Hi"), _result(), embed=False)
    cache.lookup(_request("Hi there"), mode="exact")
    assert made == []
    cache.lookup(_request("Hi there"), mode="semantic")
    assert made == [1]


# -- TTL -------------------------------------------------------------------------------------------


def test_entries_expire_after_the_ttl(cache: ResponseCache, clock: Clock) -> None:
    request = _request("What is the capital of France?")
    cache.store(request, _result(), embed=True)
    clock.now += 3600
    assert cache.lookup(request, mode="exact").status == "hit"  # exactly at the TTL: still valid
    clock.now += 1
    assert cache.lookup(request, mode="exact").status == "miss"
    assert cache.lookup(_request("What's the capital of France?"), mode="semantic").status == "miss"
    stats = cache.stats()
    assert (stats.entries, stats.live_entries) == (1, 0)


def test_the_next_store_purges_expired_entries(cache: ResponseCache, clock: Clock) -> None:
    cache.store(_request("old"), _result(), embed=False)
    clock.now += 3601
    cache.store(_request("new"), _result(), embed=False)
    assert cache.stats().entries == 1


def test_ttl_and_similarity_come_from_settings_with_the_data_dir_path(tmp_path: Path) -> None:
    settings = Settings(
        environ={
            "SOPHIA_DATA_DIR": str(tmp_path / "data"),
            "SOPHIA_AI_CACHE_TTL_SECONDS": "60",
            "SOPHIA_AI_CACHE_SIMILARITY": "0.9",
        },
        cwd=tmp_path,
        specs=SETTINGS,
    )
    cache = ResponseCache.from_settings(settings)
    assert (cache.path, cache.ttl_seconds, cache.similarity) == (tmp_path / "data" / "ai" / "cache.sqlite3", 60, 0.9)
    defaults = ResponseCache.from_settings(Settings(environ={}, cwd=tmp_path, specs=SETTINGS))
    assert (defaults.ttl_seconds, defaults.similarity) == (3600, 0.95)


def test_a_similarity_above_one_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings(environ={"SOPHIA_AI_CACHE_SIMILARITY": "95"}, cwd=tmp_path, specs=SETTINGS)
    with pytest.raises(ConfigError, match="SOPHIA_AI_CACHE_SIMILARITY"):
        ResponseCache.from_settings(settings)


# -- stats and clear -------------------------------------------------------------------------------


def test_stats_count_hits_misses_and_what_the_hits_saved(cache: ResponseCache) -> None:
    known, unknown = _request("What is the capital of France?"), _request("Name a colour.", model="house-llm")
    cache.store(known, _result(), embed=True, cost_usd=0.5)
    cache.store(unknown, _result("Blue."), embed=False, cost_usd=None)
    cache.lookup(known, mode="exact")
    cache.lookup(_request("What's the capital of France?"), mode="semantic")
    cache.lookup(unknown, mode="exact")
    cache.lookup(_request("Something else entirely"), mode="semantic")
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.semantic_hits, stats.misses) == (2, 2, 1, 1)
    assert (stats.saved_input_tokens, stats.saved_output_tokens) == (60, 9)
    assert stats.saved_cost_usd == pytest.approx(1.0) and stats.unknown_cost_hits == 1
    assert stats.hit_rate == pytest.approx(0.75) and stats.bytes > 0


def test_clear_by_model_and_age(cache: ResponseCache, clock: Clock) -> None:
    cache.store(_request("a", model="gpt-4o"), _result(), embed=False)
    clock.now += 100
    cache.store(_request("b", model="gpt-4o-mini"), _result(), embed=False)
    cache.store(_request("c", model="gpt-4o-mini"), _result(), embed=False)
    assert cache.clear(older_than_seconds=50) == 1  # only "a" is that old
    assert cache.clear(model="gpt-4o") == 0
    cache.lookup(_request("b", model="gpt-4o-mini"), mode="exact")
    assert cache.clear(model="gpt-4o-mini") == 2
    assert cache.stats().hits == 1  # a filtered clear keeps the history


def test_clear_everything_also_resets_the_counters(cache: ResponseCache) -> None:
    request = _request("a")
    cache.store(request, _result(), embed=False)
    cache.lookup(request, mode="exact")
    assert cache.clear() == 1
    stats = cache.stats()
    assert (stats.entries, stats.hits, stats.misses) == (0, 0, 0)


# -- two processes ---------------------------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from sophia_ai_intelligence.cache import ResponseCache
    from sophia_ai_intelligence.gateway.base import ChatMessage, ChatRequest, ChatResult

    path, me, other, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    cache = ResponseCache(path)

    def request(who, i):
        return ChatRequest(messages=(ChatMessage("user", f"question {i} from {who}"),), model="gpt-4o-mini")

    print("ready", flush=True)
    sys.stdin.readline()  # both processes start together
    for i in range(count):
        cache.store(request(me, i), ChatResult(f"{me} {i}", "gpt-4o-mini", "openai", 1, 1, 1.0), embed=False)
        cache.lookup(request(other, i), mode="exact")
    for i in range(count):  # everything this process wrote is readable at once
        assert cache.lookup(request(me, i), mode="exact").status == "hit"
    """
)


@pytest.mark.slow
def test_two_processes_share_the_store_without_losing_entries_or_counts(tmp_path: Path) -> None:
    path, count = tmp_path / "shared" / "cache.sqlite3", 120
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), me, other, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in (("a", "b"), ("b", "a"))
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    stats = ResponseCache(path).stats()
    assert stats.entries == 2 * count
    # Every lookup was counted once: 2 × count cross lookups (hit or miss) + 2 × count own hits.
    assert stats.hits + stats.misses == 4 * count
    assert stats.hits >= 2 * count


def test_open_cache_is_the_settings_cache_and_touches_no_file(tmp_path: Path) -> None:
    settings = Settings(environ={"SOPHIA_DATA_DIR": str(tmp_path / "data")}, cwd=tmp_path, specs=SETTINGS)
    cache = open_cache(settings)
    assert cache.path == tmp_path / "data" / "ai" / "cache.sqlite3" and not cache.path.exists()
