"""The AI server's tool names: hints, docstrings and refusals import them, so none can drift."""

from __future__ import annotations

LLM_CHAT = "llm_chat"
LLM_COMPARE = "llm_compare"
LLM_EMBED = "llm_embed"
LLM_MODELS = "llm_models"
LLM_ESTIMATE = "llm_estimate"
LLM_USAGE = "llm_usage"
LLM_ROUTING = "llm_routing"
LLM_CACHE_STATS = "llm_cache_stats"
LLM_CACHE_CLEAR = "llm_cache_clear"
