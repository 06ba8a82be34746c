"""The dated model catalogue and price table: shipped in the package, overridable by SOPHIA_AI_PRICES_FILE.

Prices are USD per 1M tokens. A model that is not in the table, or whose price is null, has an unknown
cost: `cost()` returns None and callers say "unknown", never an estimate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sophia_shared.errors import ConfigError
from sophia_shared.settings import Settings

__all__ = [
    "CAPABILITIES",
    "PRICES_FILE_SETTING",
    "Capability",
    "ModelPrice",
    "PriceTable",
    "load_price_table",
    "load_prices",
    "normalise_model",
    "shipped_price_table",
]

PRICES_FILE_SETTING = "SOPHIA_AI_PRICES_FILE"
Capability = Literal["chat", "vision", "tools", "json", "embeddings"]
CAPABILITIES: tuple[Capability, ...] = ("chat", "vision", "tools", "json", "embeddings")

# Routing prefixes callers put before a model id ("openai/gpt-4o-mini" on OpenRouter, "@openai-prod/…"
# in Portkey's catalogue). Organisation prefixes such as "meta-llama/" are part of the id and stay.
_PROVIDER_PREFIXES = ("openai", "anthropic", "openrouter", "together-ai", "together", "togetherai", "huggingface", "hf")


@dataclass(frozen=True)
class ModelPrice:
    """One catalogue entry: who serves it, its window, what it can do and its list price (None = unknown)."""

    model: str
    provider: str
    input_per_1m: float | None
    output_per_1m: float | None
    context_window: int | None
    capabilities: tuple[str, ...]
    as_of: str
    source: str  # the provider page the price was read from, or the override file
    aliases: tuple[str, ...] = ()

    @property
    def price_known(self) -> bool:
        return self.input_per_1m is not None and self.output_per_1m is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        if self.input_per_1m is None or self.output_per_1m is None:
            return None
        return (input_tokens * self.input_per_1m + output_tokens * self.output_per_1m) / 1_000_000


def _chat_only() -> list[Capability]:
    return ["chat"]


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    input_per_1m: float | None = Field(ge=0)
    output_per_1m: float | None = Field(ge=0)
    context_window: int | None = Field(default=None, ge=1)
    capabilities: list[Capability] = Field(default_factory=_chat_only)
    aliases: list[str] = Field(default_factory=list)
    as_of: str = ""  # defaults to the table's


class _ProviderNote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = ""


class _TableFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    providers: dict[str, _ProviderNote] = Field(default_factory=dict)
    models: list[_ModelEntry]
    note: str = ""


class PriceTable:
    """Model entries indexed by normalised id and alias; later entries (an override file) win."""

    def __init__(self, entries: Iterable[ModelPrice], *, as_of: str, origin: str, note: str = "") -> None:
        self.as_of = as_of
        self.origin = origin  # "shipped table" or "shipped table + <file>"
        self.note = note
        self._entries: dict[str, ModelPrice] = {}
        self._index: dict[str, str] = {}
        for entry in entries:
            self._add(entry)

    def _add(self, entry: ModelPrice) -> None:
        key = entry.model.lower()
        old = self._entries.pop(key, None)
        if old is not None:
            for name, target in list(self._index.items()):
                if target == key:
                    del self._index[name]
        self._entries[key] = entry
        for name in (entry.model, *entry.aliases):
            self._index[name.lower()] = key

    @property
    def entries(self) -> list[ModelPrice]:
        return list(self._entries.values())

    def price_of(self, model: str) -> ModelPrice | None:
        """The entry for `model` (id, alias or provider-prefixed id), or None when the table lacks it."""
        for candidate in _lookup_candidates(model):
            key = self._index.get(candidate)
            if key is not None:
                return self._entries[key]
        return None

    def cost(self, model: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """USD for one call, or None when the model, its price or a token count is unknown."""
        entry = self.price_of(model)
        if entry is None or input_tokens is None or output_tokens is None:
            return None
        return entry.cost(input_tokens, output_tokens)

    def catalogue(
        self,
        *,
        provider: str = "",
        capability: str = "",
        max_input_per_1m: float | None = None,
        max_output_per_1m: float | None = None,
    ) -> list[ModelPrice]:
        """Entries matching every given filter; a price filter leaves out models whose price is unknown."""
        found = []
        for entry in self._entries.values():
            if provider and entry.provider != _canonical_provider(provider):
                continue
            if capability and capability not in entry.capabilities:
                continue
            if max_input_per_1m is not None and (entry.input_per_1m is None or entry.input_per_1m > max_input_per_1m):
                continue
            if max_output_per_1m is not None and (
                entry.output_per_1m is None or entry.output_per_1m > max_output_per_1m
            ):
                continue
            found.append(entry)
        return found

    def with_entries(self, entries: Iterable[ModelPrice], *, origin: str) -> PriceTable:
        table = PriceTable(self.entries, as_of=self.as_of, origin=origin, note=self.note)
        for entry in entries:
            table._add(entry)
        return table


def normalise_model(model: str) -> str:
    """`model` lower-cased without routing prefixes: "openrouter/openai/GPT-4o-mini" → "gpt-4o-mini"."""
    return _lookup_candidates(model)[-1]


def _lookup_candidates(model: str) -> list[str]:
    name = model.strip().lower()
    candidates = [name]
    while "/" in name:
        head, rest = name.split("/", 1)
        if not (head.startswith("@") or head in _PROVIDER_PREFIXES):
            break
        name = rest
        candidates.append(name)
    return candidates


def _canonical_provider(provider: str) -> str:
    name = provider.strip().lower()
    return "together-ai" if name in {"together", "togetherai"} else name


def _entries_from(table: _TableFile, *, default_source: str) -> list[ModelPrice]:
    return [
        ModelPrice(
            model=item.model,
            provider=_canonical_provider(item.provider),
            input_per_1m=item.input_per_1m,
            output_per_1m=item.output_per_1m,
            context_window=item.context_window,
            capabilities=tuple(item.capabilities),
            as_of=item.as_of or table.as_of,
            source=table.providers.get(item.provider, _ProviderNote()).source or default_source,
            aliases=tuple(item.aliases),
        )
        for item in table.models
    ]


def _parse(raw: Any, where: str) -> _TableFile:
    try:
        return _TableFile.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()[:5]
        )
        raise ConfigError(
            f"The price table {where} is not valid: {problems}.",
            hint=_FILE_FORMAT_HINT,
        ) from None


_FILE_FORMAT_HINT = (
    'Use the shipped format: {"as_of": "YYYY-MM-DD", "models": [{"model": "…", "provider": "openai", '
    '"input_per_1m": 0.15, "output_per_1m": 0.6, "context_window": 128000, "capabilities": ["chat"]}]} '
    f"(USD per 1M tokens; null = unknown), or unset {PRICES_FILE_SETTING}."
)


def shipped_price_table() -> PriceTable:
    """The table shipped in the package (data/models.json)."""
    text = resources.files("sophia_ai_intelligence").joinpath("data", "models.json").read_text("utf-8")
    parsed = _parse(json.loads(text), "shipped with sophia-ai-intelligence")
    return PriceTable(
        _entries_from(parsed, default_source="shipped table"), as_of=parsed.as_of, origin="shipped", note=parsed.note
    )


def load_price_table(settings: Settings | None = None, *, path: Path | None = None) -> PriceTable:
    """The shipped table, with entries from `path` or SOPHIA_AI_PRICES_FILE replacing or adding models."""
    table = shipped_price_table()
    if path is None and settings is not None:
        configured = settings.get(PRICES_FILE_SETTING)
        path = Path(configured).expanduser() if configured else None
    if path is None:
        return table
    where = f"{path} ({PRICES_FILE_SETTING})"
    try:
        raw: Any = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the price table {where}: {exc.strerror or exc}.", hint=_FILE_FORMAT_HINT
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The price table {where} is not valid JSON: {exc}.", hint=_FILE_FORMAT_HINT) from None
    parsed = _parse(raw, where)
    return table.with_entries(_entries_from(parsed, default_source=f"override file {path}"), origin=f"shipped + {path}")


def load_prices(settings: Settings) -> PriceTable:
    """The server's price table: shipped, overridden by SOPHIA_AI_PRICES_FILE when set."""
    return load_price_table(settings)
