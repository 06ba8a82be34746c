"""The built-in fetch (no keys): public URLs to readable text under one SSRF policy (`ssrf`)."""

from __future__ import annotations

from sophia_shared.settings import Settings

from .extract import Extracted, Link, extract
from .fetcher import Document, FetchedBody, Fetcher, FetchLimits
from .ssrf import AllowList, CheckedTarget, check_url

__all__ = [
    "AllowList",
    "CheckedTarget",
    "Document",
    "Extracted",
    "FetchLimits",
    "FetchedBody",
    "Fetcher",
    "Link",
    "check_url",
    "extract",
    "fetch_document",
]


async def fetch_document(
    settings: Settings, url: str, *, max_bytes: int | None = None, fetcher: Fetcher | None = None
) -> Document:
    """`url` as a `Document` under the fetch settings; pass a long-lived `fetcher` to share its caches."""
    if fetcher is not None:
        return await fetcher.document(url, max_bytes=max_bytes)
    own = Fetcher.from_settings(settings)
    try:
        return await own.document(url, max_bytes=max_bytes)
    finally:
        await own.aclose()
