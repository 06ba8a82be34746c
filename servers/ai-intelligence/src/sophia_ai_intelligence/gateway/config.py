"""The Portkey routing config: the default we build, PORTKEY_CONFIG parsed and validated, and what it means.

Sources, first match wins: PORTKEY_CONFIG as a saved id (`pc-…`, sent as is and not validated here:
only Portkey's cloud can resolve it), PORTKEY_CONFIG as a JSON object, else the default. Every JSON
config is checked against Portkey's published schema (`config-object.schema.json`) before it is sent.

The default is the seed's: a load-balance over OpenAI 40 / Anthropic 30 / OpenRouter 30, each
target a fallback cascade (that provider, then the others in order), retry 3 times with the
gateway's exponential backoff on 429/500/502/503/504, cache semantic with max age 3600 s. A provider
with neither a key (OPENAI_API_KEY, …) nor a virtual key (PORTKEY_VIRTUAL_KEYS) is left out and the
remaining weights are scaled back to 100. Together AI and Hugging Face join only the cascade tails.
With SOPHIA_AI_CUSTOM_HOST every call goes to that one OpenAI-compatible server (Ollama, vLLM, …).

Models: a request that names a model sends it to every target (providers that do not serve it fail
over to the next); a request that names none gets, per target, `override_params.model` from
`DEFAULT_MODELS`, except that SOPHIA_AI_DEFAULT_MODEL replaces the default of the provider it
belongs to (`claude-…` → anthropic, `vendor/model` → openrouter, anything else → openai or the
custom host). A JSON or saved config keeps whatever `override_params` it has.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from sophia_shared.errors import ConfigError
from sophia_shared.redaction import DISPLAY_MASK, register_secret
from sophia_shared.settings import Settings

from ..settings import PROVIDER_KEYS
from .base import RoutingPlan, Target

# The seed's split; other keyed providers only join the fallback cascades.
DEFAULT_WEIGHTS: dict[str, float] = {"openai": 40.0, "anthropic": 30.0, "openrouter": 30.0}
DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-3-5-haiku-latest",
    "openrouter": "meta-llama/llama-3.1-70b-instruct",
    "together-ai": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "huggingface": "meta-llama/Llama-3.1-8B-Instruct",
}
RETRY_STATUS_CODES: tuple[int, ...] = (429, 500, 502, 503, 504)
RETRY_ATTEMPTS = 3
CACHE_MAX_AGE_SECONDS = 3600
# Providers the open-source gateway can embed with (it refuses embeddings for anthropic and openrouter).
EMBEDDING_PROVIDERS: tuple[str, ...] = ("openai", "together-ai", "huggingface")
SAVED_CONFIG = re.compile(r"^pc-[A-Za-z0-9_-]+$")
_SECRET_FIELDS = ("api_key", "virtual_key", "aws_secret_access_key", "aws_session_token", "vertex_service_account_json")


@dataclass(frozen=True)
class Credential:
    """How a provider authenticates: a raw key (`api_key`) or a Portkey virtual key."""

    source: str  # "OPENAI_API_KEY", "virtual key", "custom host"
    api_key: str = ""
    virtual_key: str = ""


@dataclass(frozen=True)
class Routing:
    """The routing in effect: what is sent as x-portkey-config (secrets included) and its masked plan."""

    plan: RoutingPlan
    config: dict[str, Any] | str  # a saved id is a string
    per_request_models: bool = False  # the default: a request's model replaces the per-target models
    embedding_config: dict[str, Any] | str | None = None  # None: no target can embed
    leaf_providers: dict[tuple[int, ...], str] = field(default_factory=dict)  # option path → provider

    def chat_config(self, model: str) -> dict[str, Any] | str:
        """The config for one chat request: the default drops its per-target models when `model` is named."""
        if not model or not self.per_request_models or isinstance(self.config, str):
            return self.config
        return _without_model_overrides(self.config)

    def describe_path(self, index_header: str) -> tuple[str, tuple[str, ...]]:
        """`x-portkey-last-used-option-index` ("config.targets[1].targets[0]") → (provider, fallbacks before it)."""
        path = option_path(index_header)
        if path is None or isinstance(self.config, str):
            return "", ()
        provider = self.leaf_providers.get(path, "")
        tried: list[str] = []
        node: Mapping[str, Any] = self.config
        for depth, index in enumerate(path):
            targets = node.get("targets") or []
            if index >= len(targets):
                return provider, tuple(tried)
            if (node.get("strategy") or {}).get("mode") == "fallback":
                tried += [self._label((*path[:depth], i), targets[i]) for i in range(index)]
            node = targets[index]
        return provider, tuple(tried)

    def _label(self, path: tuple[int, ...], node: Mapping[str, Any]) -> str:
        if path in self.leaf_providers:
            return self.leaf_providers[path]
        nested = [p for k, p in sorted(self.leaf_providers.items()) if k[: len(path)] == path]
        return nested[0] if nested else str(node.get("provider", ""))


def option_path(index_header: str) -> tuple[int, ...] | None:
    """ "config.targets[2].targets[0]" → (2, 0); "config" → (); None when the header is absent or unknown."""
    text = (index_header or "").strip()
    if not text.startswith("config"):
        return None
    found = re.findall(r"\.targets\[(\d+)\]", text)
    if re.sub(r"\.targets\[\d+\]", "", text) != "config":
        return None
    return tuple(int(i) for i in found)


# -- loading -----------------------------------------------------------------------------------


def load_routing(
    settings: Settings,
    *,
    custom_hosts: Mapping[str, str] | None = None,
    retry_attempts: int = RETRY_ATTEMPTS,
    target_timeout_ms: int | None = None,
) -> Routing:
    """The routing from settings: PORTKEY_CONFIG (saved id or JSON) or the default built from the keys found.

    `custom_hosts` (provider → OpenAI/Anthropic-compatible base URL ending in /v1) points default
    targets at other servers, as the tests do with local providers.
    """
    raw = (settings.get("PORTKEY_CONFIG") or "").strip()
    if raw:
        return routing_from_setting(raw)
    host = (settings.get("SOPHIA_AI_CUSTOM_HOST") or "").strip()
    default_model = (settings.get("SOPHIA_AI_DEFAULT_MODEL") or "").strip()
    if host:
        return custom_host_routing(host, default_model, settings.get(PROVIDER_KEYS["openai"]) or "")
    credentials = provider_credentials(settings)
    return default_routing(
        credentials,
        default_model=default_model,
        custom_hosts=custom_hosts or {},
        retry_attempts=retry_attempts,
        target_timeout_ms=target_timeout_ms,
    )


def provider_credentials(settings: Settings) -> dict[str, Credential]:
    """Each provider's credential: its key setting, else PORTKEY_VIRTUAL_KEYS; providers with neither are absent."""
    virtual = parse_virtual_keys(settings.get("PORTKEY_VIRTUAL_KEYS") or "")
    found: dict[str, Credential] = {}
    for provider, name in PROVIDER_KEYS.items():
        key = (settings.get(name) or "").strip()
        if key:
            found[provider] = Credential(name, api_key=key)
        elif virtual.get(provider):
            found[provider] = Credential("virtual key", virtual_key=virtual[provider])
    return found


def parse_virtual_keys(text: str) -> dict[str, str]:
    """ "openai=vk-abc,anthropic=vk-def" → {"openai": "vk-abc", …}; each key is registered with the redactor."""
    keys: dict[str, str] = {}
    for part in text.split(","):
        provider, sep, key = part.partition("=")
        if not part.strip():
            continue
        if not sep or not provider.strip() or not key.strip():
            raise ConfigError(
                "PORTKEY_VIRTUAL_KEYS has an entry that is not provider=virtual-key.",
                hint="Write it as provider=vk,… e.g. openai=vk-abc,anthropic=vk-def (providers as Portkey names them).",
            )
        register_secret(key.strip())
        keys[provider.strip().lower()] = key.strip()
    return keys


def routing_from_setting(raw: str) -> Routing:
    """PORTKEY_CONFIG's value: a saved config id, or a JSON config object validated against the schema."""
    if SAVED_CONFIG.match(raw):
        plan = RoutingPlan(
            source="PORTKEY_CONFIG (saved id)",
            config={"saved_config": raw},
            strategy="saved",
            targets=(),
            notes=("A saved config is resolved by Portkey's cloud; it is not validated locally.",),
        )
        return Routing(plan=plan, config=raw)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"PORTKEY_CONFIG is neither a saved config id (pc-…) nor valid JSON: {exc.msg} at character {exc.pos}.",
            hint="Set PORTKEY_CONFIG to a saved Portkey config id such as pc-abc123, or to a JSON config object.",
        ) from None
    if not isinstance(config, dict):
        raise ConfigError(
            "PORTKEY_CONFIG must be a JSON object (or a saved config id pc-…).",
            hint='Write it as {"strategy": {...}, "targets": [...]} as Portkey documents the config object.',
        )
    _register_config_secrets(config)
    validate_config(config, source="PORTKEY_CONFIG")
    leaves = _leaf_providers(config)
    targets = tuple(_target_of(node) for node in _leaves(config))
    plan = RoutingPlan(
        source="PORTKEY_CONFIG (JSON)",
        config=mask_config(config),
        strategy=_strategy(config),
        targets=targets,
    )
    return Routing(plan=plan, config=config, embedding_config=config, leaf_providers=leaves)


# -- the default -------------------------------------------------------------------------------


def default_routing(
    credentials: Mapping[str, Credential],
    *,
    default_model: str = "",
    custom_hosts: Mapping[str, str] | None = None,
    weights: Mapping[str, float] | None = None,
    retry_attempts: int = RETRY_ATTEMPTS,
    target_timeout_ms: int | None = None,
) -> Routing:
    """The seed's load-balance with fallback cascades over the providers that have credentials."""
    hosts = dict(custom_hosts or {})
    base_weights = dict(weights or DEFAULT_WEIGHTS)
    # A custom host changes where a provider is reached, not whether it has credentials.
    usable = {p: c for p, c in credentials.items() if p in PROVIDER_KEYS}
    weighted = [p for p in base_weights if p in usable]
    left_out = tuple(p for p in base_weights if p not in usable)
    extras = [p for p in PROVIDER_KEYS if p in usable and p not in base_weights]
    if not weighted and not extras:
        raise no_provider_error()
    notes: list[str] = []
    total = sum(base_weights.values())
    if not weighted:
        # None of the weighted providers has a key: the others share the load equally.
        weighted, extras = extras, []
        share = {p: total / len(weighted) for p in weighted}
    else:
        kept = sum(base_weights[p] for p in weighted)
        share = {p: base_weights[p] * total / kept for p in weighted}
    if left_out:
        notes.append(
            f"Left out for want of credentials: {', '.join(left_out)}; weights re-normalised to "
            + " / ".join(f"{p} {share[p]:g}" for p in weighted)
            + "."
        )
    models = _provider_models(default_model)
    chain = weighted + extras

    def leaf(provider: str) -> dict[str, Any]:
        node: dict[str, Any] = {"provider": provider}
        cred = usable[provider]
        if cred.api_key:
            node["api_key"] = cred.api_key
        elif cred.virtual_key:
            node["virtual_key"] = cred.virtual_key
        if provider in hosts:
            node["custom_host"] = gateway_custom_host(provider, hosts[provider])
        if target_timeout_ms is not None:
            node["request_timeout"] = target_timeout_ms
        node["override_params"] = {"model": models[provider]}
        return node

    lb_targets: list[dict[str, Any]] = []
    leaves: dict[tuple[int, ...], str] = {}
    for i, provider in enumerate(weighted):
        order = [provider, *[p for p in chain if p != provider]]
        cascade = {
            "strategy": {"mode": "fallback"},
            "targets": [leaf(p) for p in order],
            "weight": round(share[provider], 4),
        }
        if len(order) == 1:
            cascade = {**leaf(provider), "weight": round(share[provider], 4)}
            leaves[(i,)] = provider
        else:
            leaves.update({(i, j): p for j, p in enumerate(order)})
        lb_targets.append(cascade)
    config: dict[str, Any] = {
        "strategy": {"mode": "loadbalance"},
        "targets": lb_targets,
        "cache": {"mode": "semantic", "max_age": CACHE_MAX_AGE_SECONDS},
    }
    if retry_attempts > 0:
        config["retry"] = {"attempts": retry_attempts, "on_status_codes": list(RETRY_STATUS_CODES)}
    validate_config(config, source="the default routing config")
    targets = tuple(
        Target(
            provider=p,
            weight=round(share[p], 4) if p in share else 0.0,
            has_credentials=True,
            credential_source=usable[p].source,
            model=models[p],
            custom_host=hosts.get(p, ""),
        )
        for p in chain
    ) + tuple(Target(provider=p, weight=0.0, has_credentials=False, credential_source="") for p in left_out)
    plan = RoutingPlan(
        source="default",
        config=mask_config(config),
        strategy="loadbalance",
        targets=targets,
        left_out=left_out,
        notes=tuple(notes),
    )
    return Routing(
        plan=plan,
        config=config,
        per_request_models=True,
        embedding_config=_embedding_config(config, chain, leaf),
        leaf_providers=leaves,
    )


def custom_host_routing(host: str, default_model: str, api_key: str = "") -> Routing:
    """Every call to one OpenAI-compatible server (SOPHIA_AI_CUSTOM_HOST) through the gateway."""
    node: dict[str, Any] = {"provider": "openai", "custom_host": host.rstrip("/")}
    if api_key:
        node["api_key"] = api_key
    if default_model:
        node["override_params"] = {"model": default_model}
    validate_config(node, source="the custom-host routing config")
    target = Target(
        provider="openai",
        weight=100.0,
        has_credentials=True,
        credential_source=PROVIDER_KEYS["openai"] if api_key else "custom host",
        model=default_model,
        custom_host=node["custom_host"],
    )
    plan = RoutingPlan(
        source="default",
        config=mask_config(node),
        strategy="single",
        targets=(target,),
        notes=(f"SOPHIA_AI_CUSTOM_HOST is set: every call goes to {node['custom_host']}; provider keys are not used.",),
    )
    return Routing(
        plan=plan, config=node, per_request_models=True, embedding_config=node, leaf_providers={(): "openai"}
    )


def gateway_custom_host(provider: str, base_url: str) -> str:
    """The `custom_host` the open-source gateway needs for `provider`, given a base URL ending in /v1.

    The gateway appends `/chat/completions` for openai and `/messages` for anthropic, but
    `/v1/chat/completions` for openrouter, so OpenRouter's custom host has no /v1.
    """
    url = base_url.rstrip("/")
    return url.removesuffix("/v1") if provider == "openrouter" else url


def _provider_models(default_model: str) -> dict[str, str]:
    models = dict(DEFAULT_MODELS)
    if default_model:
        models[_owner_of(default_model)] = default_model
    return models


def _owner_of(model: str) -> str:
    if model.startswith("claude"):
        return "anthropic"
    if "/" in model:
        return "openrouter"
    return "openai"


def _embedding_config(config: Mapping[str, Any], chain: Iterable[str], leaf: Any) -> dict[str, Any] | None:
    able = [p for p in chain if p in EMBEDDING_PROVIDERS]
    if not able:
        return None
    nodes = []
    for p in able:
        node = dict(leaf(p))
        node.pop("override_params", None)  # the embedding model comes with the request
        nodes.append(node)
    embed: dict[str, Any] = nodes[0] if len(nodes) == 1 else {"strategy": {"mode": "fallback"}, "targets": nodes}
    if "retry" in config:
        embed["retry"] = dict(config["retry"])
    return embed


def _without_model_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(config))

    def strip(node: dict[str, Any]) -> None:
        params = node.get("override_params")
        if isinstance(params, dict):
            params.pop("model", None)
            if not params:
                node.pop("override_params")
        for child in node.get("targets") or []:
            strip(child)

    strip(out)
    return out


# -- validation and display --------------------------------------------------------------------


@functools.cache
def config_schema() -> dict[str, Any]:
    """Portkey's published JSON Schema of the config object (draft-07), shipped with this package."""
    text = resources.files(__package__).joinpath("config-object.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_config(config: Mapping[str, Any], *, source: str) -> None:
    """Raise ConfigError with the schema's own message when `config` is not a valid Portkey config."""
    import jsonschema

    validator = jsonschema.Draft7Validator(config_schema())
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    # The message may quote a value; the redactor masks any key in it before it leaves the server.
    raise ConfigError(
        f"{source} is not a valid Portkey config: at {where}: {error.message}",
        hint=(
            "Fix the config to match Portkey's config object schema (strategy/targets, provider with api_key, "
            "virtual_key or custom_host, retry, cache, …), or unset PORTKEY_CONFIG to use the default routing."
        ),
    )


def mask_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy for display: every credential field replaced by the display mask."""

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: (DISPLAY_MASK if k in _SECRET_FIELDS and v else walk(v)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    masked: dict[str, Any] = walk(config)
    return masked


def no_provider_error() -> ConfigError:
    keys = ", ".join(PROVIDER_KEYS.values())
    return ConfigError(
        "No LLM provider has credentials, so no call can be routed.",
        hint=(
            f"Set at least one provider key ({keys}) or PORTKEY_VIRTUAL_KEYS (provider=vk,…). For a local "
            "OpenAI-compatible server (Ollama, vLLM) run a self-hosted gateway and set SOPHIA_PORTKEY_BASE_URL and "
            "SOPHIA_AI_CUSTOM_HOST (e.g. http://127.0.0.1:11434/v1). Or set PORTKEY_CONFIG to a saved config id."
        ),
    )


def _register_config_secrets(config: Any) -> None:
    if isinstance(config, Mapping):
        for key, value in config.items():
            if key in _SECRET_FIELDS and isinstance(value, str):
                register_secret(value)
            else:
                _register_config_secrets(value)
    elif isinstance(config, list):
        for item in config:
            _register_config_secrets(item)


def _strategy(config: Mapping[str, Any]) -> str:
    mode = (config.get("strategy") or {}).get("mode")
    return str(mode) if mode else "single"


def _leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    children = node.get("targets")
    if not children:
        return [node]
    return [leaf for child in children for leaf in _leaves(child)]


def _leaf_providers(config: Mapping[str, Any]) -> dict[tuple[int, ...], str]:
    found: dict[tuple[int, ...], str] = {}

    def walk(node: Mapping[str, Any], path: tuple[int, ...], inherited: str) -> None:
        provider = str(node.get("provider") or inherited)
        children = node.get("targets")
        if not children:
            found[path] = provider
            return
        for i, child in enumerate(children):
            walk(child, (*path, i), provider)

    walk(config, (), "")
    return found


def _target_of(node: Mapping[str, Any]) -> Target:
    if node.get("api_key"):
        source = "api_key in PORTKEY_CONFIG"
    elif node.get("virtual_key"):
        source = "virtual key"
    elif node.get("custom_host"):
        source = "custom host"
    else:
        source = ""
    model = (node.get("override_params") or {}).get("model", "")
    return Target(
        provider=str(node.get("provider", "")),
        weight=float(node.get("weight", 1)),
        has_credentials=bool(source),
        credential_source=source,
        model=str(model),
        custom_host=str(node.get("custom_host", "")),
    )
