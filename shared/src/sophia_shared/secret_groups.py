"""Where a flat secret (`TAVILY_API_KEY`) lives in the grouped ESC layout, and back.

The one table both directions use: `sophia secrets export` places a variable in the group its prefix
names, under the key `name-lower-hyphen`, and the settings reader (`esc_document.source_values`)
turns a key in a group back into the variable with `group_variable`. A test checks that every
declared secret of every server is placed in that server's own group, so export and read agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class VendorPrefix:
    prefix: str  # "TAVILY_"
    group: str  # the ESC group: the key of the server that reads it
    vendor: str  # "Tavily": the feature, as `sophia secrets check` groups settings


# The seed's grouping, plus OPENAI_ and ANTHROPIC_ (the AI server declares both keys, and a table
# without them would leave two of its routing targets out of every export) and the cost report's
# Prometheus token.
VENDOR_PREFIXES: tuple[VendorPrefix, ...] = (
    VendorPrefix("ARIZE_", "ai_intelligence", "Arize"),
    VendorPrefix("OPENROUTER_", "ai_intelligence", "OpenRouter"),
    VendorPrefix("PORTKEY_", "ai_intelligence", "Portkey"),
    VendorPrefix("HUGGINGFACE_", "ai_intelligence", "Hugging Face"),
    VendorPrefix("TOGETHER_", "ai_intelligence", "Together AI"),
    VendorPrefix("OPENAI_", "ai_intelligence", "OpenAI"),
    VendorPrefix("ANTHROPIC_", "ai_intelligence", "Anthropic"),
    VendorPrefix("APIFY_", "data_intelligence", "Apify"),
    VendorPrefix("PHANTOM_", "data_intelligence", "PhantomBuster"),
    VendorPrefix("TWINGLY_", "data_intelligence", "Twingly"),
    VendorPrefix("TAVILY_", "data_intelligence", "Tavily"),
    VendorPrefix("ZENROWS_", "data_intelligence", "ZenRows"),
    VendorPrefix("LAMBDA_", "infrastructure", "Lambda Cloud"),
    VendorPrefix("DOCKER_", "infrastructure", "Docker Hub"),
    VendorPrefix("PULUMI_", "infrastructure", "Pulumi"),
    VendorPrefix("SOPHIA_PROMETHEUS_", "infrastructure", "Prometheus"),
    VendorPrefix("SNOWFLAKE_", "business_intelligence", "Snowflake"),
    VendorPrefix("PINECONE_", "business_intelligence", "Pinecone"),
)

GROUPS: tuple[str, ...] = tuple(dict.fromkeys(row.group for row in VENDOR_PREFIXES))

# CI and runner variables: never copied into ESC, whatever a prefix list says.
_NEVER_EXPORTED = re.compile(r"^(GITHUB_.*|ACTIONS_.*|RUNNER_.*|CI|HOME|PATH)$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def normalize_name(name: str) -> str:
    """`foo-bar` and `FOO_BAR` are the same variable: FOO_BAR."""
    return name.strip().replace("-", "_").upper()


def vendor_of(variable: str) -> VendorPrefix | None:
    """The table row whose prefix `variable` starts with (longest prefix wins)."""
    name = normalize_name(variable)
    rows = [row for row in VENDOR_PREFIXES if name.startswith(row.prefix)]
    return max(rows, key=lambda row: len(row.prefix)) if rows else None


def group_of(variable: str) -> str | None:
    """The ESC group `variable` is exported to, or None when no prefix matches."""
    row = vendor_of(variable)
    return row.group if row is not None else None


def esc_key(variable: str) -> str:
    """`TAVILY_API_KEY` → `tavily-api-key`, the key inside its group."""
    return normalize_name(variable).lower().replace("_", "-")


def group_variable(key: str) -> str | None:
    """`tavily-api-key` in an ESC group → `TAVILY_API_KEY`; None if that is no variable name."""
    name = key.replace("-", "_").upper()
    return name if _VARIABLE.match(name) else None


def never_exported(variable: str) -> bool:
    """GITHUB_TOKEN, GITHUB_*, ACTIONS_*, RUNNER_*: the runner's own credentials stay in CI."""
    return bool(_NEVER_EXPORTED.match(normalize_name(variable)))
