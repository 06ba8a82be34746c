"""The shipped price table, model-id normalisation, costs, the catalogue filters and the override file."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest

from sophia_ai_intelligence.prices import (
    CAPABILITIES,
    PriceTable,
    load_price_table,
    load_prices,
    normalise_model,
    shipped_price_table,
)
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.errors import ConfigError
from sophia_shared.settings import Settings


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return shipped_price_table()


def _settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(environ=values, cwd=tmp_path, specs=SETTINGS)


def test_shipped_table_is_dated_and_covers_the_five_providers(table: PriceTable) -> None:
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", table.as_of)
    providers = {e.provider for e in table.entries}
    assert providers == {"openai", "anthropic", "together-ai", "huggingface"}  # OpenRouter resolves to these
    assert all(e.as_of == table.as_of and e.source for e in table.entries)
    assert all(set(e.capabilities) <= set(CAPABILITIES) for e in table.entries)


def test_shipped_table_names_a_source_page_for_every_provider_including_openrouter() -> None:
    raw = json.loads(resources.files("sophia_ai_intelligence").joinpath("data", "models.json").read_text("utf-8"))
    assert set(raw["providers"]) == {"openai", "anthropic", "openrouter", "together-ai", "huggingface"}
    assert all(note["source"] for note in raw["providers"].values())


def test_cost_is_tokens_times_the_per_million_price(table: PriceTable) -> None:
    # gpt-4o-mini: $0.15 in, $0.60 out per 1M tokens.
    assert table.cost("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert table.cost("gpt-4o-mini", 2_000, 1_000) == pytest.approx(2_000 * 0.15e-6 + 1_000 * 0.60e-6)


@pytest.mark.parametrize(
    "name",
    [
        "gpt-4o-mini",
        "GPT-4o-mini",
        "openai/gpt-4o-mini",
        "openrouter/openai/gpt-4o-mini",
        "@openai-prod/gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
    ],
)
def test_price_of_strips_routing_prefixes_and_knows_snapshots(table: PriceTable, name: str) -> None:
    entry = table.price_of(name)
    assert entry is not None and entry.model == "gpt-4o-mini"


def test_openrouter_anthropic_ids_resolve_to_the_anthropic_entry(table: PriceTable) -> None:
    entry = table.price_of("anthropic/claude-3.5-sonnet")
    assert entry is not None and entry.model == "claude-3-5-sonnet-20241022" and entry.provider == "anthropic"


def test_organisation_prefixes_are_part_of_the_id(table: PriceTable) -> None:
    assert (
        normalise_model("together/meta-llama/Llama-3.3-70B-Instruct-Turbo") == "meta-llama/llama-3.3-70b-instruct-turbo"
    )
    entry = table.price_of("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert entry is not None and entry.provider == "together-ai"


def test_unknown_model_costs_none_not_a_guess(table: PriceTable) -> None:
    assert table.price_of("gpt-99-ultra") is None
    assert table.cost("gpt-99-ultra", 1000, 1000) is None


def test_a_listed_model_without_a_per_token_price_costs_none(table: PriceTable) -> None:
    entry = table.price_of("meta-llama/Llama-3.1-8B-Instruct")
    assert entry is not None and entry.provider == "huggingface" and not entry.price_known
    assert table.cost("meta-llama/Llama-3.1-8B-Instruct", 10, 10) is None


def test_missing_token_counts_give_an_unknown_cost(table: PriceTable) -> None:
    assert table.cost("gpt-4o-mini", None, 10) is None


def test_catalogue_filters_by_provider_capability_and_price(table: PriceTable) -> None:
    anthropic = table.catalogue(provider="anthropic")
    assert anthropic and all(e.provider == "anthropic" for e in anthropic)
    embeddings = table.catalogue(capability="embeddings")
    assert {e.model for e in embeddings} == {"text-embedding-3-small", "text-embedding-3-large"}
    cheap = table.catalogue(max_input_per_1m=0.2)
    assert cheap and all(e.input_per_1m is not None and e.input_per_1m <= 0.2 for e in cheap)
    assert "gpt-4o-mini" in {e.model for e in cheap}
    assert table.catalogue(provider="together") == table.catalogue(provider="together-ai")


def test_price_filter_leaves_out_models_whose_price_is_unknown(table: PriceTable) -> None:
    assert all(e.provider != "huggingface" for e in table.catalogue(max_output_per_1m=1000))


def test_override_file_replaces_a_price_and_adds_a_model(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "as_of": "2030-01-01",
                "models": [
                    {"model": "gpt-4o-mini", "provider": "openai", "input_per_1m": 1.0, "output_per_1m": 2.0},
                    {
                        "model": "my-local-llm",
                        "provider": "custom",
                        "input_per_1m": 0,
                        "output_per_1m": 0,
                        "context_window": 8192,
                    },
                ],
            }
        )
    )
    table = load_prices(_settings(tmp_path, SOPHIA_AI_PRICES_FILE=str(path)))
    mini = table.price_of("openai/gpt-4o-mini")
    assert mini is not None and mini.input_per_1m == 1.0 and mini.as_of == "2030-01-01" and str(path) in mini.source
    assert table.price_of("gpt-4o-mini-2024-07-18") is None  # the override's entry has no aliases
    assert table.cost("my-local-llm", 5000, 5000) == 0.0
    assert table.price_of("gpt-4o") is not None  # shipped entries stay
    assert str(path) in table.origin


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        (
            json.dumps(
                {
                    "as_of": "2030-01-01",
                    "models": [{"model": "x", "provider": "p", "input_per_1m": -1, "output_per_1m": 1}],
                }
            ),
            "models.0.input_per_1m",
        ),
        (json.dumps({"as_of": "soon", "models": []}), "as_of"),
        (
            json.dumps(
                {
                    "as_of": "2030-01-01",
                    "models": [
                        {
                            "model": "x",
                            "provider": "p",
                            "input_per_1m": 1,
                            "output_per_1m": 1,
                            "capabilities": ["telepathy"],
                        }
                    ],
                }
            ),
            "capabilities",
        ),
    ],
)
def test_a_bad_override_file_is_a_config_error_naming_it(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad-prices.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_price_table(path=path)
    assert str(path) in caught.value.message and expected in caught.value.message
    assert "SOPHIA_AI_PRICES_FILE" in caught.value.agent_message()


def test_a_missing_override_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read the price table"):
        load_price_table(_settings(tmp_path, SOPHIA_AI_PRICES_FILE=str(tmp_path / "absent.json")))


def test_without_an_override_the_shipped_table_is_used(tmp_path: Path) -> None:
    table = load_prices(_settings(tmp_path))
    assert table.origin == "shipped" and table.price_of("gpt-4o") is not None
