"""The ai-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "ai_intelligence"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)

# Provider credentials the default routing config uses; a provider without one is left out.
PROVIDER_KEYS: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together-ai": "TOGETHER_AI_API_KEY",
    "huggingface": "HUGGINGFACE_API_TOKEN",
}

SETTINGS: tuple[SettingSpec, ...] = (
    _spec("PORTKEY_API_KEY", "Portkey API key (Portkey's cloud gateway).", secret=True),
    _spec(
        "SOPHIA_PORTKEY_BASE_URL",
        "A self-hosted Portkey gateway, e.g. http://127.0.0.1:8787/v1 (default: Portkey's cloud when PORTKEY_API_KEY "
        "is set).",
    ),
    _spec(
        "PORTKEY_CONFIG",
        "Routing config: a saved Portkey config id (pc-…) or a JSON config object; default: the suite's "
        "load-balance over the providers that have keys.",
    ),
    _spec("OPENAI_API_KEY", "OpenAI API key (a routing target).", secret=True),
    _spec("ANTHROPIC_API_KEY", "Anthropic API key (a routing target).", secret=True),
    _spec("OPENROUTER_API_KEY", "OpenRouter API key (a routing target).", secret=True),
    _spec("TOGETHER_AI_API_KEY", "Together AI API key (a routing target).", secret=True),
    _spec("HUGGINGFACE_API_TOKEN", "Hugging Face token (a routing target).", secret=True),
    _spec(
        "PORTKEY_VIRTUAL_KEYS",
        "Portkey virtual keys per provider instead of raw keys, e.g. openai=vk-abc,anthropic=vk-def.",
        secret=True,
    ),
    _spec(
        "SOPHIA_AI_CUSTOM_HOST",
        "An OpenAI-compatible server (Ollama, vLLM, …) the gateway should route to, e.g. http://127.0.0.1:11434/v1.",
    ),
    _spec("SOPHIA_AI_DEFAULT_MODEL", "Model used when a call names none.", default="gpt-4o-mini"),
    _spec("SOPHIA_AI_REQUEST_TIMEOUT_SECONDS", "Timeout of one LLM call, retries included.", default="120"),
    _spec("SOPHIA_AI_CACHE_MODE", "Default cache mode per call: off, exact or semantic.", default="exact"),
    _spec("SOPHIA_AI_CACHE_SIMILARITY", "Cosine similarity a semantic cache hit needs.", default="0.95"),
    _spec("SOPHIA_AI_CACHE_TTL_SECONDS", "How long a cached answer stays valid.", default="3600"),
    _spec("SOPHIA_AI_MONTHLY_BUDGET_USD", "Monthly LLM budget; alerts at 75 % and 90 %.", default="1000"),
    _spec("SOPHIA_AI_BUDGET_HARD_STOP", "1 refuses LLM calls once the month's spend passes the budget.", default="0"),
    _spec("SOPHIA_AI_PRICES_FILE", "A JSON price table that overrides the shipped one (per 1M tokens in/out)."),
    _spec("ARIZE_SPACE_ID", "Arize space id: with ARIZE_API_KEY, every LLM call is traced to Arize."),
    _spec("ARIZE_API_KEY", "Arize API key (tracing).", secret=True),
    _spec(
        "SOPHIA_ARIZE_OTLP_ENDPOINT",
        "OTLP/HTTP traces endpoint.",
        default="https://otlp.arize.com/v1/traces",
    ),
    _spec("SOPHIA_AI_TRACE_CONTENT", "1 puts prompt and output text in trace spans (off by default).", default="0"),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = (
    "PORTKEY_",
    "OPENROUTER_",
    "OPENAI_",
    "ANTHROPIC_",
    "TOGETHER_",
    "HUGGINGFACE_",
    "ARIZE_",
    "SOPHIA_PORTKEY_",
    "SOPHIA_AI_",
    "SOPHIA_ARIZE_",
    "OTEL_",
)
