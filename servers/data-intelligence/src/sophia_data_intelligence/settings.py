"""The data-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from sophia_shared.setting_specs import SettingSpec

SERVER_KEY = "data_intelligence"  # names the write-gate variable and the ESC group


def _spec(name: str, description: str, *, secret: bool = False, default: str = "") -> SettingSpec:
    return SettingSpec(name, SERVER_KEY, secret, description, default)


SETTINGS: tuple[SettingSpec, ...] = (
    _spec("TAVILY_API_KEY", "Tavily API key (web search).", secret=True),
    _spec("ZENROWS_API_KEY", "ZenRows API key (scraping).", secret=True),
    _spec("APIFY_API_TOKEN", "Apify API token (actor runs).", secret=True),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = ("TAVILY_", "ZENROWS_", "APIFY_", "PHANTOM_BUSTER_", "PHANTOMBUSTER_", "TWINGLY_")
