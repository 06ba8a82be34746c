"""The data-intelligence server's settings: declared here, nowhere else."""

from __future__ import annotations

from functools import partial

from sophia_shared.setting_specs import SettingSpec, declare

SERVER_KEY = "data_intelligence"  # names the write-gate variable and the ESC group

_spec = partial(declare, SERVER_KEY)

SETTINGS: tuple[SettingSpec, ...] = (
    _spec("TAVILY_API_KEY", "Tavily API key (web search, extract, crawl, map).", secret=True),
    _spec("ZENROWS_API_KEY", "ZenRows API key (scraping with JS rendering and proxies).", secret=True),
    _spec("APIFY_API_TOKEN", "Apify API token (store, actor runs, datasets).", secret=True),
    _spec("PHANTOM_BUSTER_API_KEY", "PhantomBuster API key (agents).", secret=True),
    _spec("TWINGLY_API_KEY", "Twingly Blog Search API key.", secret=True),
    _spec("SOPHIA_TAVILY_BASE_URL", "Tavily API base (tests, proxies).", default="https://api.tavily.com"),
    _spec("SOPHIA_ZENROWS_BASE_URL", "ZenRows Universal Scraper API base.", default="https://api.zenrows.com"),
    _spec(
        "SOPHIA_ZENROWS_BATCH_BASE_URL",
        "ZenRows Batch API base (tests, proxies).",
        default="https://async.api.zenrows.com/v1",
    ),
    _spec("SOPHIA_APIFY_BASE_URL", "Apify API base.", default="https://api.apify.com"),
    _spec("SOPHIA_PHANTOMBUSTER_BASE_URL", "PhantomBuster API base.", default="https://api.phantombuster.com"),
    _spec("SOPHIA_TWINGLY_BASE_URL", "Twingly Blog Search API base.", default="https://api.twingly.com"),
    _spec(
        "SOPHIA_FETCH_ALLOW_HOSTS",
        "Hosts (or host:port) the built-in fetch may reach even on private or loopback addresses, comma-separated; "
        "empty refuses every internal target.",
    ),
    _spec("SOPHIA_FETCH_MAX_BYTES", "Largest response body the built-in fetch reads.", default="5000000"),
    _spec("SOPHIA_FETCH_TIMEOUT_SECONDS", "Time limit of one fetch, redirects included.", default="20"),
    _spec("SOPHIA_FETCH_MAX_REDIRECTS", "Redirects the built-in fetch follows.", default="5"),
    _spec("SOPHIA_FETCH_IGNORE_ROBOTS", "1 ignores robots.txt (default: respected).", default="0"),
    _spec(
        "SOPHIA_FETCH_USER_AGENT",
        "User agent of the built-in fetch.",
        default="SophiaMCP/0.1 (+data-intelligence fetch; respects robots.txt)",
    ),
)

# Vendor prefixes this server reads, so test fixtures can clear a developer's exports by prefix.
ENV_PREFIXES: tuple[str, ...] = (
    "TAVILY_",
    "ZENROWS_",
    "APIFY_",
    "PHANTOM_BUSTER_",
    "PHANTOMBUSTER_",
    "TWINGLY_",
    "SOPHIA_TAVILY_",
    "SOPHIA_ZENROWS_",
    "SOPHIA_APIFY_",
    "SOPHIA_PHANTOMBUSTER_",
    "SOPHIA_TWINGLY_",
    "SOPHIA_FETCH_",
)
