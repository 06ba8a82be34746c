"""The ai-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "ai_intelligence"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("PORTKEY_API_KEY", "Portkey API key.", secret=True),
    _spec("OPENROUTER_API_KEY", "OpenRouter API key.", secret=True),
    _spec("ARIZE_API_KEY", "Arize API key (tracing).", secret=True),
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
)
