"""The data-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "data_intelligence"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("TAVILY_API_KEY", "Tavily API key (web search).", secret=True),
    _spec("ZENROWS_API_KEY", "ZenRows API key (scraping).", secret=True),
    _spec("APIFY_API_TOKEN", "Apify API token (actor runs).", secret=True),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = ("TAVILY_", "ZENROWS_", "APIFY_", "PHANTOM_BUSTER_", "PHANTOMBUSTER_", "TWINGLY_")
